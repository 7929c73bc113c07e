"""Redis Streams backend of the bus, on redis-py (Redis >= 7.0).

A topic is a stream (key = topic name) with one partition, 0; offsets are
entry ids ("ms-seq", str); a group is a stream consumer group of the same
name on each of its topics.

Entry encoding, one stream entry per record (Redis values are binary-safe,
so bytes round-trip exactly, b"\\x00\\xff" included):

    v          the value; absent when the value is None (b"" is an empty value)
    k          the key; absent when the key is None
    h:<name>   one field per header, in header order; <name> is the UTF-8
               header name; a name may repeat: Redis keeps duplicate fields
               and their order, and this module reads replies unparsed so
               that redis-py's dict conversion does not merge them

Any other field (an entry written by a foreign producer) is read as a header
named after the field, so nothing is silently dropped.

Groups, acks and lag:
- groups are created at "0" with ENTRIESREAD 0: a group new to a topic starts
  at its beginning and Redis can count what it has read;
- "committed" is the number of entries the group has finished with (acked, or
  trimmed before anyone read them); end offset is entries-added; so lag =
  entries not yet delivered + entries delivered but not acked, which is
  Kafka's end - committed for the same produce N / consume-and-ack M;
- XINFO GROUPS' lag is nil on Redis 7.0 after XDEL/XTRIM or for groups made
  at "$" by others: then the undelivered entries are counted (`_COUNT_AFTER`).

Consumers (`RedisGroupConsumer.poll`), in order:
1. once, this consumer name's own pending entries (a restarted consumer with
   a stable client_id gets back what it had not acked);
2. every claim_idle_ms / 2 (at most 1 s), entries idle longer than
   claim_idle_ms taken with XAUTOCLAIM from any consumer, dead ones included
   (a SIGKILLed worker's entries reach the survivors; so do entries a live
   consumer has held unacked for longer than claim_idle_ms);
3. new entries, XREADGROUP ">".
`close` hands the consumer's unacked entries to the placeholder consumer
`RELEASED`, marked idle for a year, so any other member claims them within a
second (Kafka's "uncommitted records go back to the group"), then deletes the
consumer, so the group is Empty as soon as its last member closes.

Group state is "Stable" while some consumer was active within
session_timeout_ms, else "Empty"; "Dead" when no stream has the group.
Record.delivery_count comes from XPENDING for redelivered entries (1 for new
ones), for the dead-letter code to spot poison entries.

Every call is bounded by socket timeouts; blocking reads block at most
max_block_ms per round trip, well under the socket timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from redis._parsers import Encoder
from redis.backoff import ExponentialBackoff
from redis.connection import PythonRespSerializer
from redis.retry import Retry

from eventhub.bus.base import (
    Bus,
    BusError,
    BusTimeout,
    BusUnavailable,
    Found,
    GroupConsumer,
    GroupInfo,
    Headers,
    OutgoingRecord,
    PartitionLag,
    PoisonRule,
    Published,
    Record,
    TopicInfo,
    UnknownTopic,
    Watermark,
    replay_key,
    replay_keys,
    translated_errors,
)

try:  # redis-py packs commands with hiredis when it is installed (requirements.txt pins it)
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # then with redis-py's own packer (_python_pack), as redis-py would
    _hiredis_pack = None

log = logging.getLogger(__name__)

RELEASED = "eventhub.released"  # placeholder owner of entries handed back by close()
_RELEASED_IDLE_MS = 365 * 24 * 3600 * 1000
_CREATE_GROUP = "eventhub.create"  # a group that only lives inside create_topic's MULTI

# Entries whose id is after ARGV[1]: the fallback when XINFO GROUPS' lag is nil.
_COUNT_AFTER = """
local n, start = 0, '(' .. ARGV[1]
while true do
  local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1000)
  n = n + #batch
  if #batch < 1000 then return n end
  start = '(' .. batch[#batch][1]
end
"""

# Hand a consumer's pending entries to RELEASED, marked long idle, then delete
# the consumer. Atomic, so no entry can be left with a deleted owner.
_RELEASE = """
while true do
  local rows = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 500, ARGV[2])
  if #rows == 0 then break end
  -- JUSTID: the handover must not count as a delivery.
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
  for _, row in ipairs(rows) do args[#args + 1] = row[1] end
  for _, word in ipairs({'IDLE', ARGV[4], 'JUSTID'}) do args[#args + 1] = word end
  redis.call(unpack(args))
end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""

# Delete RELEASED and consumers idle for longer than ARGV[3] ms, when they have
# nothing pending (deleting a consumer drops its pending entries, so never then).
_REAP = """
local reaped = 0
for _, row in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local c = {}
  for i = 1, #row, 2 do c[row[i]] = row[i + 1] end
  if c['pending'] == 0 and (c['name'] == ARGV[2] or c['idle'] > tonumber(ARGV[3])) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])
    reaped = reaped + 1
  end
end
return reaped
"""

# KEYS: stream, dead-letter stream. ARGV: group, entry id, min idle ms, min deliveries,
# then header (field, value) pairs to add. Returns the new entry id, "gone" when the
# entry was deleted meanwhile (it is just acked), or false when it no longer qualifies.
_MOVE_POISON = """
local rows = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', tonumber(ARGV[3]), ARGV[2], ARGV[2], 1)
if #rows == 0 or tonumber(rows[1][4]) < tonumber(ARGV[4]) then return false end
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local moved = 'gone'
if #entries > 0 then
  local args = {'XADD', KEYS[2], '*'}
  for _, item in ipairs(entries[1][2]) do args[#args + 1] = item end
  for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
  moved = redis.call(unpack(args))
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return moved
"""


def _is_missing(error: Exception) -> bool:
    text = str(error)
    return "no such key" in text.lower() or text.startswith("NOGROUP") or "requires the key to exist" in text


def _translate(error: redis.RedisError) -> BusError:
    """The bus exception for a redis-py one (the caller chains the cause)."""
    if isinstance(error, redis.ConnectionError):
        return BusUnavailable(f"Redis is unavailable: {error}")
    if isinstance(error, redis.TimeoutError):
        if "connect" in str(error).lower():
            return BusUnavailable(f"Redis is unavailable: {error}")
        return BusTimeout(str(error))
    if isinstance(error, redis.ResponseError) and _is_missing(error):
        return UnknownTopic(str(error))
    return BusError(str(error))


def _redis_errors() -> contextlib.AbstractContextManager[None]:
    return translated_errors(redis.RedisError, _translate)


def _check(result: object) -> object:
    """Raise the error a pipeline(raise_on_error=False) left in place of a result."""
    if isinstance(result, redis.RedisError):
        raise _translate(result) from result
    return result


def _pack(args: list[bytes]) -> bytes:
    """One command in the Redis protocol, as redis-py would send it."""
    if _hiredis_pack is not None:
        return _hiredis_pack(tuple(args))
    return _python_pack(args)


_PYTHON_PACKER = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)


def _python_pack(args: list[bytes]) -> bytes:
    return b"".join(_PYTHON_PACKER.pack(*args))


def _xadd_command(topic: str, value: bytes | None, key: bytes | None, headers: Headers | None) -> bytes:
    """XADD of one record, packed. NOMKSTREAM: a missing stream is an error, as a missing topic
    is on Kafka. All arguments bytes: hiredis packs bytes faster than str."""
    return _pack(_encode(value, key, headers, [b"XADD", topic.encode("utf-8"), b"NOMKSTREAM", b"*"]))


def _xadd_replies(client: redis.Redis, entries: list[tuple[str, bytes]]) -> list[object]:
    """Send the packed XADD of each (stream, command) in one round trip; per entry its reply:
    the entry id, None when the stream is missing, or the redis.ResponseError Redis answered.

    This is redis-py's pipeline without its per-command work (it would inspect and pack each
    of an SDK entry's 24 arguments in Python at execute time): the commands come packed by
    the thread that made the records, and the pool's connection sends them and reads the
    replies. A lost connection is retried as the pipeline retries it (the client's Retry),
    then raised: none of the entries is known to be in.
    """
    packed = [b"".join([command for _topic, command in entries])]
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        return connection.retry.call_with_retry(
            lambda: _send_and_read(connection, packed, len(entries)), lambda _error: connection.disconnect()
        )
    finally:
        pool.release(connection)


def _send_and_read(connection: redis.Connection, packed: list[bytes], count: int) -> list[object]:
    connection.send_packed_command(packed)
    return _read_replies(connection, count)


def _read_replies(connection: redis.Connection, count: int) -> list[object]:
    replies: list[object] = []
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as error:  # this entry's; the next replies are still to be read
            replies.append(error)
    return replies


def _outcome(topic: str, reply: object) -> Published | BusError:
    if isinstance(reply, redis.RedisError):
        error = _translate(reply)
        error.__cause__ = reply
        return error
    if reply is None:
        return UnknownTopic(f"stream {topic!r} does not exist")
    return Published(topic, 0, _text(reply))


def _xadd_many(client: redis.Redis, entries: list[tuple[str, bytes]]) -> list[Published | BusError]:
    """Each (stream, packed XADD) in one round trip; per entry where it landed or why not."""
    if not entries:
        return []
    try:
        with _redis_errors():
            replies = _xadd_replies(client, entries)
    except BusError as error:
        return [error] * len(entries)
    return [_outcome(topic, reply) for (topic, _command), reply in zip(entries, replies, strict=True)]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _encode(
    value: bytes | None, key: bytes | None, headers: Headers | None, fields: list[bytes] | None = None
) -> list[bytes]:
    """The XADD field list (see the module docstring), after what `fields` holds when given."""
    if value is None and key is None:
        # Same rule as Kafka: a record needs a value, or a key (a tombstone).
        raise ValueError("a record needs a value or a key")
    if fields is None:
        fields = []
    if value is not None:
        fields += (b"v", value if type(value) is bytes else bytes(value))
    if key is not None:
        fields += (b"k", key if type(key) is bytes else bytes(key))
    return _encode_headers(headers, fields)


# `h:<name>` in UTF-8 by header name: a producer writes the same few names on every entry.
_HEADER_FIELDS: dict[str, bytes] = {}


def _new_header_field(name: str) -> bytes:
    if len(_HEADER_FIELDS) >= 1024:  # names made up per entry must not grow it without end
        _HEADER_FIELDS.clear()
    field = _HEADER_FIELDS[name] = b"h:" + name.encode("utf-8")
    return field


def _encode_headers(headers: Headers | None, fields: list[bytes] | None = None) -> list[bytes]:
    """One (h:<name>, value) pair per header, after what `fields` holds when given."""
    if fields is None:
        fields = []
    for name, data in headers or ():
        fields += (_HEADER_FIELDS.get(name) or _new_header_field(name), data if type(data) is bytes else bytes(data))
    return fields


def _decode(topic: str, entry_id: bytes, fields: list[bytes], delivery_count: int | None) -> Record:
    value = key = None
    headers: Headers = []
    for name, data in zip(fields[::2], fields[1::2], strict=True):
        if name == b"v":
            value = data
        elif name == b"k":
            key = data
        elif name.startswith(b"h:"):
            headers.append((name[2:].decode("utf-8", "replace"), data))
        else:
            headers.append((name.decode("utf-8", "replace"), data))
    offset = entry_id.decode()
    return Record(
        topic=topic,
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp_ms=int(offset.split("-", 1)[0]),
        delivery_count=delivery_count,
    )


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _poison_headers(rule: PoisonRule, entry_id: str, deliveries: int) -> Headers:
    from eventhub.sdk import headers as h

    message = (
        f"delivered {deliveries} times to group {rule.group} without being acknowledged "
        f"(max_attempts {rule.max_attempts}): it keeps crashing its consumers"
    )
    pairs = [
        (h.ORIGINAL_TOPIC, rule.stream),
        (h.ORIGINAL_ENTRY_ID, entry_id),
        (h.GROUP, rule.group),
        (h.ATTEMPTS, str(deliveries)),
        (h.ERROR_CLASS, h.POISON_ERROR_CLASS),
        (h.ERROR_MESSAGE, message),
        (h.FAILED_AT, datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    ]
    if rule.service:
        pairs.append((h.SERVICE, rule.service))
    return [(name, value.encode("utf-8")) for name, value in pairs]


class RedisBus(Bus):
    """One redis-py client (a thread-safe connection pool) per adapter.

    The client connects on first use. `send` queues records for a background
    thread that writes them with pipelined XADDs.
    """

    kind = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        claim_idle_ms: int = 30000,
        session_timeout_ms: int = 10000,
        socket_timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_block_ms: int = 1000,
        linger_ms: int = 2,
        batch_size: int = 500,
        max_buffered: int = 100_000,
    ) -> None:
        self.url = url
        self.claim_idle_ms = claim_idle_ms
        self.session_timeout_ms = session_timeout_ms
        # A blocking read must come back before the socket times out.
        self.max_block_ms = min(max_block_ms, int(socket_timeout_s * 1000 * 0.8))
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            # redis-py's default (10 retries, up to 1 s apart) takes seconds to
            # say that nothing listens; two quick retries ride out a blip.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
            decode_responses=False,
            protocol=2,
        )
        # Replies that carry entries are parsed here, not by redis-py, which would
        # merge repeated header fields into one dict key.
        for command in ("XREADGROUP", "XAUTOCLAIM", "XRANGE", "XREVRANGE"):
            self._client.set_response_callback(command, lambda response, **options: response)
        self._count_after = self._client.register_script(_COUNT_AFTER)
        self._release_script = self._client.register_script(_RELEASE)
        self._reap_script = self._client.register_script(_REAP)
        self._move_poison_script = self._client.register_script(_MOVE_POISON)
        self._sender = _Sender(self._client, linger_ms / 1000, batch_size, max_buffered)

    def __repr__(self) -> str:
        return f"<RedisBus {self.url}>"

    @property
    def client(self) -> redis.Redis:
        return self._client

    # -- topics ----------------------------------------------------------------

    def ping(self) -> None:
        with _redis_errors():
            self._client.ping()

    def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Create an empty stream; a stream has one partition whatever `partitions` says."""
        # Redis has no "create empty stream": make one with a throwaway group
        # and drop the group, in one MULTI so nobody sees the group.
        pipe = self._client.pipeline(transaction=True)
        pipe.exists(name)
        pipe.xgroup_create(name, _CREATE_GROUP, id="$", mkstream=True)
        pipe.xgroup_destroy(name, _CREATE_GROUP)
        with _redis_errors():
            existed, _created, _destroyed = pipe.execute()
        return not existed

    def _streams(self) -> list[str]:
        with _redis_errors():
            keys = self._client.scan_iter(count=1000, _type="stream")
            return sorted({_text(key) for key in keys})

    def list_topics(self) -> list[TopicInfo]:
        return [TopicInfo(name, 1) for name in self._streams()]

    def topic_exists(self, name: str) -> bool:
        with _redis_errors():
            return self._client.type(name) == b"stream"

    def delete_topic(self, name: str) -> None:
        if not self.topic_exists(name):
            raise UnknownTopic(f"stream {name!r} does not exist")
        with _redis_errors():
            self._client.delete(name)

    # -- producing -------------------------------------------------------------

    def publish(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> Published:
        fields = _encode(value, key, headers)
        # NOMKSTREAM: publishing to a missing topic is an error, as on Kafka.
        with _redis_errors():
            entry_id = self._client.execute_command("XADD", topic, "NOMKSTREAM", "*", *fields)
        if entry_id is None:
            raise UnknownTopic(f"stream {topic!r} does not exist")
        return Published(topic, 0, _text(entry_id))

    def publish_many(self, records: list[OutgoingRecord]) -> list[Published | BusError]:
        """One pipeline of XADDs: one round trip for the lot, in order."""
        return _xadd_many(
            self._client, [(topic, _xadd_command(topic, value, key, headers)) for topic, value, key, headers in records]
        )

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        # Packed here, not by the writer thread: the record's fields are still in this core's
        # cache, and the writer then touches one bytes object per entry instead of two dozen.
        self._sender.enqueue(topic, _xadd_command(topic, value, key, headers))

    def flush(self, timeout_s: float = 10.0) -> None:
        self._sender.flush(timeout_s)

    # -- consuming -------------------------------------------------------------

    def consumer(self, group: str, topics: list[str], *, client_id: str | None = None) -> RedisGroupConsumer:
        """`client_id` names the Redis consumer; give a stable one (per worker, not
        per thread) to get this worker's unacked entries back after a restart."""
        name = client_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        pipe = self._client.pipeline(transaction=False)
        for topic in topics:
            # At "0" with ENTRIESREAD 0: a new group starts at the beginning and
            # XINFO GROUPS can report its lag. Register the consumer now so the
            # group is Stable from the start, as after a Kafka join.
            pipe.xgroup_create(topic, group, id="0", entries_read=0)
            pipe.xgroup_createconsumer(topic, group, name)
        with _redis_errors():
            results = pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, redis.ResponseError) and str(result).startswith("BUSYGROUP"):
                continue  # the group already exists: join it
            _check(result)
        return RedisGroupConsumer(self, group, list(topics), name)

    # -- offsets and lag -------------------------------------------------------

    def _stream_infos(self, topics: list[str]) -> dict[str, dict]:
        pipe = self._client.pipeline(transaction=False)
        for topic in topics:
            pipe.xinfo_stream(topic)
        with _redis_errors():
            results = pipe.execute(raise_on_error=False)
        return {topic: _check(info) for topic, info in zip(topics, results, strict=True)}

    def end_offsets_many(self, topics: list[str]) -> dict[str, dict[int, int]]:
        return {topic: {0: info["entries-added"]} for topic, info in self._stream_infos(list(topics)).items()}

    def _undelivered(self, topic: str, stream: dict, group: dict) -> int:
        """Entries after the group's last-delivered id."""
        if group.get("lag") is not None:
            return group["lag"]
        last = _id_tuple(group["last-delivered-id"])
        first = stream.get("first-entry")
        if first is None or last >= _id_tuple(stream["last-generated-id"]):
            return 0
        if last < _id_tuple(first[0]):
            return stream["length"]
        with _redis_errors():
            return self._count_after(keys=[topic], args=[group["last-delivered-id"]])

    def _lag_row(self, group: str, topic: str, stream: dict, info: dict | None) -> PartitionLag:
        end = stream["entries-added"]
        if info is None:
            # Not a member yet: a new group would start at the beginning.
            return PartitionLag(group, topic, 0, end, None, stream["length"])
        lag = self._undelivered(topic, stream, info) + info["pending"]
        return PartitionLag(group, topic, 0, end, end - lag, lag)

    def _groups_of(self, topics: list[str]) -> dict[str, dict[str, dict]]:
        """{topic: {group: XINFO GROUPS row}}; topics that vanished meanwhile are skipped."""
        pipe = self._client.pipeline(transaction=False)
        for topic in topics:
            pipe.xinfo_groups(topic)
        with _redis_errors():
            results = pipe.execute(raise_on_error=False)
        groups: dict[str, dict[str, dict]] = {}
        for topic, rows in zip(topics, results, strict=True):
            if isinstance(rows, redis.ResponseError) and _is_missing(rows):
                continue
            groups[topic] = {_text(row["name"]): row for row in _check(rows)}
        return groups

    def committed_offsets(self, group: str, topic: str) -> dict[int, int | None]:
        return {0: self.lag(group, topic)[0].committed}

    def committed_offsets_many(self, groups: list[str]) -> dict[str, dict[str, dict[int, int | None]]]:
        """Two pipelines for all groups: XINFO GROUPS of every stream, XINFO STREAM of theirs."""
        wanted = set(groups)
        by_topic = self._groups_of(self._streams())
        topics = sorted(topic for topic, by_name in by_topic.items() if wanted & by_name.keys())
        streams = self._stream_infos(topics)
        result: dict[str, dict[str, dict[int, int | None]]] = {group: {} for group in groups}
        for topic in topics:
            for name, info in by_topic[topic].items():
                if name in wanted:
                    result[name][topic] = {0: self._lag_row(name, topic, streams[topic], info).committed}
        return result

    def lag(self, group: str, topic: str) -> list[PartitionLag]:
        pipe = self._client.pipeline(transaction=False)
        pipe.xinfo_stream(topic)
        pipe.xinfo_groups(topic)
        with _redis_errors():
            stream, groups = (_check(result) for result in pipe.execute(raise_on_error=False))
        info = next((row for row in groups if _text(row["name"]) == group), None)
        return [self._lag_row(group, topic, stream, info)]

    def group_lag(self, group: str) -> list[PartitionLag]:
        groups = self._groups_of(self._streams())
        topics = sorted(topic for topic, by_name in groups.items() if group in by_name)
        streams = self._stream_infos(topics)
        return [self._lag_row(group, topic, streams[topic], groups[topic][group]) for topic in topics]

    # -- groups ----------------------------------------------------------------

    def _group_infos(self, only: str | None = None) -> list[GroupInfo]:
        groups = self._groups_of(self._streams())
        pairs = [(topic, name) for topic, by_name in groups.items() for name in by_name if only in (None, name)]
        pipe = self._client.pipeline(transaction=False)
        for topic, name in pairs:
            pipe.xinfo_consumers(topic, name)
        with _redis_errors():
            results = pipe.execute(raise_on_error=False) if pairs else []
        topics: dict[str, set[str]] = defaultdict(set)
        active: dict[str, set[str]] = defaultdict(set)
        for (topic, name), consumers in zip(pairs, results, strict=True):
            topics[name].add(topic)
            if isinstance(consumers, redis.ResponseError) and _is_missing(consumers):
                continue
            for consumer in _check(consumers):
                if _text(consumer["name"]) != RELEASED and consumer["idle"] < self.session_timeout_ms:
                    active[name].add(_text(consumer["name"]))
        return [
            GroupInfo(name, "Stable" if active[name] else "Empty", len(active[name]), tuple(sorted(topics[name])))
            for name in sorted(topics)
        ]

    def list_groups(self) -> list[GroupInfo]:
        return self._group_infos()

    def describe_group(self, group: str) -> GroupInfo:
        found = self._group_infos(only=group)
        return found[0] if found else GroupInfo(group, "Dead", 0, ())

    # -- single records, for dead-letter triage ------------------------------------

    def watermark(self, topic: str) -> Watermark:
        try:
            info = self._client.xinfo_stream(topic)
        except redis.RedisError as error:
            raise _translate(error) from error
        return {"after": _text(info["last-generated-id"])}

    def find_replays(
        self, topic: str, mark: Watermark, wanted: set[tuple[int, int]], timeout_s: float = 30.0
    ) -> dict[tuple[int, int], Found]:
        """XRANGE from the mark to the end, a thousand entries at a time."""
        keys = replay_keys(wanted)
        found: dict[tuple[int, int], Found] = {}
        if not keys:
            return found
        start = "(" + str(mark.get("after") or "0-0")
        deadline = time.monotonic() + timeout_s
        while True:
            with _redis_errors():
                batch = self._client.xrange(topic, min=start, max="+", count=1000)
            for entry_id, fields in batch:
                key = keys.get(replay_key(_decode(topic, entry_id, fields, None).headers))
                if key is not None:
                    found[key] = Found(0, _text(entry_id))
            if len(batch) < 1000 or len(found) == len(keys):
                return found
            if time.monotonic() > deadline:
                raise BusError(f"reading {topic!r} took longer than {timeout_s} s")
            start = "(" + _text(batch[-1][0])

    def read(
        self, topic: str, partition: int, start: int | str, limit: int = 1, timeout_s: float = 5.0
    ) -> list[Record]:
        """XRANGE from entry id `start` (inclusive), COUNT `limit`; a stream has one partition, 0."""
        if partition != 0 or not self.topic_exists(topic):
            raise UnknownTopic(f"stream {topic!r} has no partition {partition}")
        if limit <= 0:
            return []
        with _redis_errors():
            entries = self._client.xrange(topic, min=str(start), max="+", count=limit)
        return [_decode(topic, entry_id, fields, None) for entry_id, fields in entries]

    # -- scans, for the topic browser -------------------------------------------------

    def scan_positions(
        self,
        topic: str,
        *,
        newest_first: bool = True,
        from_time_ms: int | None = None,
        from_offset: int | str | None = None,
        partitions: list[int] | None = None,
    ) -> dict[int, str]:
        """XRANGE bounds: "+" (newest first), "<ms>-0" for a time, the entry id, else "-"."""
        if any(p != 0 for p in partitions or ()) or not self.topic_exists(topic):
            raise UnknownTopic(f"stream {topic!r} has no partition {(partitions or [0])[-1]}")
        if from_time_ms is not None:
            return {0: f"{max(0, from_time_ms)}-0"}
        if from_offset is not None:
            return {0: str(from_offset)}
        return {0: "+" if newest_first else "-"}

    def scan(
        self,
        topic: str,
        positions: dict[int, int | str],
        *,
        newest_first: bool = True,
        batch: int = 500,
        timeout_s: float = 10.0,
    ):
        """XRANGE (XREVRANGE newest first) COUNT `batch` at a time; oldest first ends at the stream's
        last id as the scan began."""
        if any(p != 0 for p in positions) or not self.topic_exists(topic):
            raise UnknownTopic(f"stream {topic!r} has no partition {max(positions, default=0)}")
        if 0 not in positions:
            return
        position = str(positions[0])
        if not newest_first:
            with _redis_errors():
                end = _text(self._client.xinfo_stream(topic)["last-generated-id"])
        while True:
            with _redis_errors():
                if newest_first:
                    entries = self._client.xrevrange(topic, max=position, min="-", count=batch)
                else:
                    entries = self._client.xrange(topic, min=position, max=end, count=batch)
            if not entries:
                return
            yield [_decode(topic, entry_id, fields, None) for entry_id, fields in entries]
            if len(entries) < batch:
                return
            position = "(" + _text(entries[-1][0])

    def tail_positions(self, topic: str) -> dict[int, str]:
        """After the stream's last generated id ("+" means the end only when reading backwards)."""
        try:
            with _redis_errors():
                last = _text(self._client.xinfo_stream(topic)["last-generated-id"])
        except BusError as error:
            if not self.topic_exists(topic):
                raise UnknownTopic(f"stream {topic!r} does not exist") from error
            raise
        return {0: f"({last}"}

    def next_position(self, record: Record, newest_first: bool = True) -> str:
        return f"({record.offset}"

    def handled_check(self):
        """An entry is handled once delivered to the group and no longer pending there."""
        groups_of: dict[str, dict[str, dict]] = {}

        def handled(group: str, topic: str, partition: int, entry_id: str) -> bool:
            if topic not in groups_of:
                try:
                    rows = self._client.xinfo_groups(topic)
                except redis.RedisError:  # a missing stream: nothing was handled there
                    rows = []
                groups_of[topic] = {_text(row["name"]): row for row in rows}
            row = groups_of[topic].get(group)
            if row is None or _id_tuple(row["last-delivered-id"]) < _id_tuple(entry_id):
                return False  # not even delivered to the group yet
            with _redis_errors():
                pending = self._client.xpending_range(topic, group, min=entry_id, max=entry_id, count=1)
            return not pending

        return handled

    def move_poison_entries(self, rule: PoisonRule, min_idle_ms: int, limit: int = 100) -> list[tuple[str, str]]:
        """Move the group's poison entries to `<stream>:dlq`; returns [(entry id, new id or "gone")].

        An entry whose delivery count reached the consumer's max_attempts without an
        ack keeps crashing its consumers. It is copied to the dead-letter stream with
        EventHub's failure headers and acked in the failing group only, in one Lua
        script, so it is moved exactly once. Only entries idle for min_idle_ms are
        taken, so a live consumer still working on one (or about to dead-letter it
        itself) wins the race.
        """
        from eventhub.sdk import headers as h

        if rule.max_attempts < 1:
            return []
        try:
            rows = self._client.xpending_range(rule.stream, rule.group, min="-", max="+", count=limit, idle=min_idle_ms)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise BusUnavailable(f"XPENDING {rule.stream}/{rule.group}: {error}") from error
        except redis.RedisError as error:
            if _is_missing(error):  # no stream or no group yet: nothing is poisoned
                return []
            raise BusError(f"XPENDING {rule.stream}/{rule.group}: {error}") from error
        dead_letters = h.dead_letter_topic(rule.stream, "redis")
        moved = []
        for row in rows:
            deliveries = row["times_delivered"]
            if deliveries < rule.max_attempts:
                continue
            entry_id = _text(row["message_id"])
            extra = _encode_headers(_poison_headers(rule, entry_id, deliveries))
            try:
                result = self._move_poison_script(
                    keys=[rule.stream, dead_letters],
                    args=[rule.group, entry_id, min_idle_ms, rule.max_attempts, *extra],
                )
            except redis.ResponseError as error:  # e.g. WRONGTYPE: the dead-letter key is no stream
                raise BusError(f"moving {entry_id} of {rule.stream} to {dead_letters}: {error}") from error
            except redis.RedisError as error:
                raise _translate(error) from error
            if result:
                moved.append((entry_id, _text(result)))
                log.warning(
                    "moved poison entry %s of %s (group %s, %d deliveries) to %s",
                    entry_id,
                    rule.stream,
                    rule.group,
                    deliveries,
                    dead_letters,
                )
        return moved

    def close(self) -> None:
        try:
            self._sender.close(timeout_s=2.0)
        finally:
            self._client.close()


@dataclass(slots=True)
class _Batch:
    """Up to batch_size queued records, packed into one write."""

    entries: list[tuple[str, bytes]]  # (stream, packed XADD)
    packed: list[bytes]
    sent: bool = False  # on the connection now; False after the connection was lost


class _Sender:
    """Writes what `send` queues: pipelines of up to batch_size XADDs, in order, on one connection.

    1. The thread whose `send` fills a batch sends it, then reads the replies to the batch
       sent before it (Redis answered those while the caller built this one): Redis works
       while the caller builds the next batch, and at most two batches are in flight. The
       caller, not a background thread, because a caller busy publishing holds the GIL: a
       background thread would wait up to the switch interval (5 ms) for it after every
       socket call, and fall behind until `flush`.
    2. A background thread writes what lingers: linger_s after a record is queued, it sends
       whatever is queued and reads the replies to the batch before, so records reach Redis
       even without `flush`, like Kafka's producer; when there is nothing new to send it
       reads every reply still due, so a failure is seen without waiting for the next batch.
    3. `flush` has that thread write everything queued before it and read every reply, then
       raises the first failure since the previous flush.

    Every use of the connection holds `_io`, and batches are taken from the head of the
    queue and sent in that order; `_lock` (the condition's) guards the queue and counters.
    """

    def __init__(self, client: redis.Redis, linger_s: float, batch_size: int, max_buffered: int) -> None:
        self._client = client
        self._linger_s = linger_s
        self._batch_size = batch_size
        self._max_buffered = max_buffered
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: list[tuple[str, bytes]] = []  # (stream, packed XADD)
        self._queued = 0  # records ever queued
        self._done = 0  # records ever written or failed
        self._error: BusError | None = None
        self._flushing = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()
        # Under _io: the connection (the pool's, taken on first use) and the batches sent on
        # it whose replies are still to be read, oldest first.
        self._connection: redis.Connection | None = None
        self._in_flight: list[_Batch] = []
        self._retry = client.get_retry()  # the one RedisBus gives its client, as its pipelines use

    def enqueue(self, topic: str, command: bytes) -> None:
        # The condition's lock taken directly: `with self._cond` costs a Python call per record.
        with self._lock:
            if self._closed or self._thread is None or len(self._queue) >= self._max_buffered:
                self._before_enqueue()
            self._queue.append((topic, command))
            self._queued += 1
            if len(self._queue) == 1:
                self._cond.notify_all()  # a linger period starts
            full = len(self._queue) >= self._batch_size
        if full:
            with self._io:
                if self._send_batch(only_full=True):
                    self._finish_in_flight(keep=1)

    def _before_enqueue(self) -> None:
        """The rare cases of `enqueue` (the lock held): closed, first record, buffer full."""
        if self._closed:
            raise BusError("the bus is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="eventhub-redis-sender", daemon=True)
            self._thread.start()
        if not self._cond.wait_for(lambda: len(self._queue) < self._max_buffered, timeout=5.0):
            raise BusTimeout("the send buffer stayed full for 5 s; is Redis keeping up?")

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queued > self._done or self._closed)
                if self._closed and self._queued == self._done:
                    break
                # Linger so that a burst of sends shares one round trip.
                if not (self._flushing or self._closed):
                    self._cond.wait_for(lambda: self._flushing or self._closed, timeout=self._linger_s)
                everything = self._flushing or self._closed  # someone waits for every reply
            with self._io:
                sent = self._send_batch(only_full=False)
                while sent and everything:
                    self._finish_in_flight(keep=0)
                    sent = self._send_batch(only_full=False)
                # What was just sent stays in flight for a busy caller to finish; with nothing
                # new, every reply due is read now (else this loop would wake every linger_s).
                self._finish_in_flight(keep=1 if sent else 0)
        with self._io:
            if self._connection is not None:
                self._client.connection_pool.release(self._connection)
                self._connection = None

    def _send_batch(self, only_full: bool) -> bool:
        """(Holding _io.) Send the head of the queue; False when there was none to send."""
        if any(not batch.sent for batch in self._in_flight):
            self._finish_in_flight(keep=0)  # resent first: batches go out in queue order
        with self._lock:
            if not self._queue or (only_full and len(self._queue) < self._batch_size):
                return False
            entries, self._queue = self._queue[: self._batch_size], self._queue[self._batch_size :]
            self._cond.notify_all()  # room in the buffer
        batch = _Batch(entries, [b"".join([command for _topic, command in entries])])
        self._in_flight.append(batch)
        try:
            self._connected().send_packed_command(batch.packed)
            batch.sent = True
        except redis.RedisError:
            self._lost_connection()  # sent again by _finish_in_flight, with the client's retries
        return True

    def _connected(self) -> redis.Connection:
        """(Holding _io.) The pool's connection this sender writes on; connects on first use."""
        if self._connection is None:
            self._connection = self._client.connection_pool.get_connection()
        return self._connection

    def _lost_connection(self) -> None:
        """Whatever was in flight on the connection must be sent again, on a new one."""
        if self._connection is not None:
            self._connection.disconnect()
        for batch in self._in_flight:
            batch.sent = False

    def _finish_in_flight(self, keep: int) -> None:
        """(Holding _io.) Read the replies of all batches in flight but the newest `keep`."""
        while len(self._in_flight) > keep:
            batch = self._in_flight.pop(0)
            error = self._replies_of(batch)
            with self._cond:
                if error is not None and self._error is None:
                    self._error = error
                self._done += len(batch.entries)
                self._cond.notify_all()

    def _replies_of(self, batch: _Batch) -> BusError | None:
        """The batch's first failure, if any.

        A lost connection is retried as redis-py's pipeline retries it (the client's Retry):
        the whole batch sent again on a new connection. When that fails too, the batch fails:
        none of its entries is known to be in.
        """

        def attempt() -> list[object]:
            connection = self._connected()
            if not batch.sent:
                connection.send_packed_command(batch.packed)
            batch.sent = False  # until every reply is read: a failure means sending it again
            return _read_replies(connection, len(batch.entries))

        try:
            with _redis_errors():
                replies = self._retry.call_with_retry(attempt, lambda _error: self._lost_connection())
        except BusError as error:
            # Replies may be half read: start again on a new connection, the later batches
            # in flight included.
            self._lost_connection()
            return error
        for (topic, _command), reply in zip(batch.entries, replies, strict=True):
            if reply is None or isinstance(reply, redis.RedisError):
                return _outcome(topic, reply)
        return None

    def flush(self, timeout_s: float) -> None:
        with self._cond:
            target = self._queued
            self._flushing = True
            self._cond.notify_all()
            try:
                finished = self._cond.wait_for(lambda: self._done >= target, timeout=timeout_s)
            finally:
                self._flushing = False
            error, self._error = self._error, None
        if not finished:
            raise BusTimeout(f"flush: {target - self._done} records still unsent after {timeout_s} s")
        if error is not None:
            raise error

    def close(self, timeout_s: float) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)


class RedisGroupConsumer(GroupConsumer):
    """A named consumer in a stream consumer group; for one thread."""

    def __init__(self, bus: RedisBus, group: str, topics: list[str], name: str) -> None:
        super().__init__(group, topics)
        self.name = name
        self._bus = bus
        self._client = bus.client
        self._own_cursor: dict[str, bytes | str] = {topic: "0" for topic in topics}
        self._claim_cursor: dict[str, bytes | str] = {topic: "0-0" for topic in topics}
        # At least every second: entries handed back by a closing member are
        # claimable at once and should not wait claim_idle_ms / 2 to move on.
        self._claim_every_s = min(max(bus.claim_idle_ms / 2000, 0.01), 1.0)
        self._next_claim = 0.0
        self._closed = False

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        if self._closed:
            raise BusError("the consumer is closed")
        deadline = time.monotonic() + timeout_s
        with _redis_errors():
            records = self._own_pending(max_records)
            if not records and time.monotonic() >= self._next_claim:
                records = self._claim(max_records)
            while not records:
                remaining_ms = int((deadline - time.monotonic()) * 1000)
                block_ms = min(remaining_ms, self._bus.max_block_ms) if remaining_ms >= 1 else None
                records = self._read_new(max_records, block_ms)
                if block_ms is None or time.monotonic() >= deadline:
                    break
        return records

    def _read(
        self, topics: list[str], after: list, max_records: int, block_ms: int | None = None
    ) -> dict[str, list[tuple[bytes, list[bytes] | None]]]:
        """XREADGROUP of `topics` after the ids `after` (">": new entries).

        Returns {topic: [(id, fields or None when deleted)]}.
        """
        block = ["BLOCK", block_ms] if block_ms is not None else []
        reply = self._client.execute_command(
            "XREADGROUP", "GROUP", self.group, self.name, "COUNT", max_records, *block, "STREAMS", *topics, *after
        )
        return {_text(stream): entries for stream, entries in reply or ()}

    def _with_counts(self, topic: str, entries: list[tuple[bytes, list[bytes]]]) -> list[Record]:
        """Records for redelivered entries, with their delivery counts from XPENDING."""
        if not entries:
            return []
        ids = [entry_id for entry_id, _fields in entries]
        rows = self._client.xpending_range(
            topic,
            self.group,
            min=min(ids, key=_id_tuple),
            max=max(ids, key=_id_tuple),
            count=len(ids),
            consumername=self.name,
        )
        counts = {row["message_id"]: row["times_delivered"] for row in rows}
        return [_decode(topic, entry_id, fields, counts.get(entry_id)) for entry_id, fields in entries]

    def _drop_deleted(self, topic: str, entries: list) -> list[tuple[bytes, list[bytes]]]:
        # An entry XDELeted while pending comes back with no fields: ack it away.
        gone = [entry_id for entry_id, fields in entries if fields is None]
        if gone:
            self._client.xack(topic, self.group, *gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields is not None]

    def _own_pending(self, max_records: int) -> list[Record]:
        if not self._own_cursor:
            return []
        topics = list(self._own_cursor)
        by_topic = self._read(topics, [self._own_cursor[t] for t in topics], max_records)
        records = []
        for topic in topics:
            entries = by_topic.get(topic) or []
            if not entries:
                del self._own_cursor[topic]  # this consumer's history is replayed
                continue
            self._own_cursor[topic] = entries[-1][0]
            records += self._with_counts(topic, self._drop_deleted(topic, entries))
        return records

    def _claim(self, max_records: int) -> list[Record]:
        pipe = self._client.pipeline(transaction=False)
        for topic in self.topics:
            pipe.execute_command(
                "XAUTOCLAIM",
                topic,
                self.group,
                self.name,
                self._bus.claim_idle_ms,
                self._claim_cursor[topic],
                "COUNT",
                max_records,
            )
        results = pipe.execute()
        records: list[Record] = []
        scanned_all = True
        for topic, (cursor, entries, *_deleted) in zip(self.topics, results, strict=True):
            self._claim_cursor[topic] = cursor
            scanned_all = scanned_all and _text(cursor) == "0-0"
            claimed = self._drop_deleted(topic, entries)
            if claimed:
                records += self._with_counts(topic, claimed)
                # Whoever we took entries from may be gone for good: tidy up.
                self._bus._reap_script(
                    keys=[topic],
                    args=[self.group, RELEASED, max(self._bus.session_timeout_ms, self._bus.claim_idle_ms)],
                )
        if scanned_all:
            self._next_claim = time.monotonic() + self._claim_every_s
        return records

    def _read_new(self, max_records: int, block_ms: int | None) -> list[Record]:
        return [
            _decode(topic, entry_id, fields, 1)
            for topic, entries in self._read(self.topics, [">"] * len(self.topics), max_records, block_ms).items()
            for entry_id, fields in entries
            if fields is not None
        ]

    def commit(self, records: list[Record]) -> None:
        ids: dict[str, list[str]] = defaultdict(list)
        for record in records:
            ids[record.topic].append(str(record.offset))
        if not ids:
            return
        pipe = self._client.pipeline(transaction=False)
        for topic, entry_ids in ids.items():
            pipe.xack(topic, self.group, *entry_ids)
        with _redis_errors():
            pipe.execute()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for topic in self.topics:
            try:
                self._bus._release_script(keys=[topic], args=[self.group, self.name, RELEASED, _RELEASED_IDLE_MS])
            except redis.RedisError:  # closing must not raise (e.g. the stream was deleted)
                log.warning("releasing %s's entries of %s failed", self.name, topic, exc_info=True)
