"""The few bus operations dead-letter handling needs beyond the `Bus` interface.

The interface is about groups consuming topics; triage also has to ask
questions about single records, which each backend answers its own way:

* `watermark` / `find_replay`: where a topic ends now, and later, whether a
  replay with a given `x-eventhub-replay-of` was written after that point. A
  redrive worker that died between "sent" and "marked sent" leaves one record
  whose fate is unknown; this is how the next run finds out (Kafka: a
  group-less consumer assigned to the partitions and seeked to the marks;
  Redis: XRANGE after an entry id).
* `handled_by_group`: has the group finished with one record (Kafka: committed
  past its offset; Redis: delivered to the group and no longer pending).
* `move_poison_entries`: Redis only. An entry whose delivery count reached the
  consumer's max_attempts without an ack keeps crashing its consumers; it is
  copied to `<stream>:dlq` with EventHub's failure headers and acked in the
  failing group only, in one Lua script, so it is moved exactly once.

Django-free, like the bus adapters it builds on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from eventhub.bus import Bus, BusError, BusUnavailable, UnknownTopic
from eventhub.sdk import headers as h

log = logging.getLogger(__name__)

REPLAY_COUNT = "x-eventhub-replay-count"  # how many times this record has been replayed, this one included
POISON_ERROR_CLASS = "eventhub.PoisonEntry"

# KafkaBus' admin calls fail ("NodeNotReadyError", "max_in_flight") when several threads
# make them at once (eventhub/bus/kafka.py, kafka-python 3.0.12): ours take turns.
_KAFKA_ADMIN = threading.Lock()

Watermark = dict[str, object]  # {"partitions": {"0": 12}} (Kafka) or {"after": "1700000000000-0"} (Redis)


# --------------------------------------------------------------------------- where a topic ends
def watermark(bus: Bus, topic: str) -> Watermark:
    """Where `topic` ends now: every record written later lies after this mark."""
    if bus.kind == "redis":
        try:
            info = bus.client.xinfo_stream(topic)
        except Exception as error:  # noqa: BLE001 - redis-py errors: say "unknown" with the bus' words
            raise UnknownTopic(f"stream {topic!r}: {error}") from error
        return {"after": _text(info["last-generated-id"])}
    with _KAFKA_ADMIN:
        ends = bus.end_offsets(topic)
    return {"partitions": {str(p): end for p, end in ends.items()}}


def watermarks(bus: Bus, topics: Iterable[str]) -> dict[str, Watermark]:
    """`watermark` for many topics; topics that do not exist are left out."""
    topics = sorted(set(topics))
    if not topics:
        return {}
    if bus.kind == "kafka":
        try:
            with _KAFKA_ADMIN:
                ends = bus.end_offsets_many(topics)
        except UnknownTopic:
            ends = {}
            for topic in topics:
                try:
                    with _KAFKA_ADMIN:
                        ends[topic] = bus.end_offsets(topic)
                except UnknownTopic:
                    continue
        return {topic: {"partitions": {str(p): end for p, end in parts.items()}} for topic, parts in ends.items()}
    marks = {}
    for topic in topics:
        try:
            marks[topic] = watermark(bus, topic)
        except UnknownTopic:
            continue
    return marks


@dataclass(frozen=True)
class Found:
    partition: int
    offset: int | str


def find_replay(
    bus: Bus, topic: str, mark: Watermark, replay_of: int, replay_count: int, timeout_s: float = 30.0
) -> Found | None:
    """The record written after `mark` whose replay headers say (replay_of, replay_count), or None.

    Raises BusError when the topic cannot be read to its end within timeout_s:
    then nobody knows whether the replay was sent.
    """
    return find_replays(bus, topic, mark, {(replay_of, replay_count)}, timeout_s).get((replay_of, replay_count))


def find_replays(
    bus: Bus, topic: str, mark: Watermark, wanted: set[tuple[int, int]], timeout_s: float = 30.0
) -> dict[tuple[int, int], Found]:
    """`find_replay` for many (replay_of, replay_count) pairs in one pass over the topic."""
    keys = {(str(pk).encode(), str(count).encode()): (pk, count) for pk, count in wanted}
    if not keys:
        return {}
    if bus.kind == "redis":
        return _find_in_stream(bus, topic, mark, keys, timeout_s)
    return _find_in_kafka(bus, topic, mark, keys, timeout_s)


def _replay_key(headers: Iterable[tuple[str, bytes | None]]) -> tuple[bytes | None, bytes | None]:
    found: dict[str, bytes | None] = {}
    for name, value in headers:
        found[name] = value
    return found.get(h.REPLAY_OF), found.get(REPLAY_COUNT)


def _find_in_stream(bus: Bus, topic: str, mark: Watermark, keys: dict, timeout_s: float) -> dict:
    client = bus.client
    start = "(" + str(mark.get("after") or "0-0")
    deadline = time.monotonic() + timeout_s
    found = {}
    while True:
        try:
            batch = client.xrange(topic, min=start, max="+", count=1000)
        except Exception as error:  # noqa: BLE001
            raise BusError(f"reading {topic!r}: {error}") from error
        for entry_id, fields in batch:
            headers = [(_text(name)[2:], value) for name, value in fields.items() if _text(name).startswith("h:")]
            key = keys.get(_replay_key(headers))
            if key is not None:
                found[key] = Found(0, _text(entry_id))
        if len(batch) < 1000 or len(found) == len(keys):
            return found
        if time.monotonic() > deadline:
            raise BusError(f"reading {topic!r} took longer than {timeout_s} s")
        start = "(" + _text(batch[-1][0])


def _find_in_kafka(bus: Bus, topic: str, mark: Watermark, keys: dict, timeout_s: float) -> dict:
    from kafka import KafkaConsumer, TopicPartition

    with _KAFKA_ADMIN:
        ends = bus.end_offsets(topic)
    starts = {int(p): int(offset) for p, offset in dict(mark.get("partitions") or {}).items()}
    todo = {p: end for p, end in ends.items() if end > starts.get(p, 0)}
    found = {}
    if not todo:
        return found
    # No group: a read-only look that commits nothing and joins nothing.
    consumer = KafkaConsumer(
        **{
            "request_timeout_ms": bus.request_timeout_ms,
            **bus.client_options,
            "bootstrap_servers": bus.bootstrap_servers,
            "group_id": None,
            "enable_auto_commit": False,
        }
    )
    try:
        partitions = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(partitions.values()))
        for p, tp in partitions.items():
            consumer.seek(tp, starts.get(p, 0))
        deadline = time.monotonic() + timeout_s
        while todo and len(found) < len(keys):
            if time.monotonic() > deadline:
                raise BusError(f"reading {topic!r} took longer than {timeout_s} s")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    key = keys.get(_replay_key(record.headers or ()))
                    if key is not None and record.offset < todo.get(tp.partition, -1):
                        found[key] = Found(tp.partition, record.offset)
            for p in list(todo):
                if consumer.position(partitions[p]) >= todo[p]:
                    del todo[p]
        return found
    finally:
        consumer.close(autocommit=False)


# --------------------------------------------------------------------------- has the group handled it
class CommittedCache:
    """Committed offsets per (group, topic), read once per resolution pass."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._kafka: dict[tuple[str, str], dict[int, int | None]] = {}
        self._redis_groups: dict[str, dict[str, dict]] = {}

    def handled(self, group: str, topic: str, partition: int, offset: str) -> bool:
        """Whether `group` has finished with the record at (partition, offset)."""
        if self.bus.kind == "kafka":
            key = (group, topic)
            if key not in self._kafka:
                self._kafka[key] = self.bus.committed_offsets(group, topic)
            committed = self._kafka[key].get(partition)
            return committed is not None and committed > int(offset)
        return self._redis_handled(group, topic, offset)

    def _redis_handled(self, group: str, topic: str, entry_id: str) -> bool:
        client = self.bus.client
        if topic not in self._redis_groups:
            try:
                rows = client.xinfo_groups(topic)
            except Exception:  # noqa: BLE001 - a missing stream: nothing was handled there
                rows = []
            self._redis_groups[topic] = {_text(row["name"]): row for row in rows}
        row = self._redis_groups[topic].get(group)
        if row is None or _id_tuple(row["last-delivered-id"]) < _id_tuple(entry_id):
            return False  # not even delivered to the group yet
        pending = client.xpending_range(topic, group, min=entry_id, max=entry_id, count=1)
        return not pending


# --------------------------------------------------------------------------- Redis poison entries
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


@dataclass(frozen=True)
class PoisonRule:
    """A designed Redis consumer: its group gives up on an entry after max_attempts deliveries."""

    stream: str
    group: str
    max_attempts: int
    service: str = ""


def move_poison_entries(bus: Bus, rule: PoisonRule, min_idle_ms: int, limit: int = 100) -> list[tuple[str, str]]:
    """Move the group's poison entries to `<stream>:dlq`; returns [(entry id, new id or "gone")].

    Only entries idle for min_idle_ms are taken, so a live consumer still
    working on one (or about to dead-letter it itself) wins the race.
    """
    if bus.kind != "redis" or rule.max_attempts < 1:
        return []
    client = bus.client
    try:
        rows = client.xpending_range(rule.stream, rule.group, min="-", max="+", count=limit, idle=min_idle_ms)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise BusUnavailable(f"XPENDING {rule.stream}/{rule.group}: {error}") from error
    except Exception as error:  # noqa: BLE001 - no stream or no group yet: nothing is poisoned
        if "NOGROUP" in str(error) or "no such key" in str(error).lower():
            return []
        raise BusError(f"XPENDING {rule.stream}/{rule.group}: {error}") from error
    script = client.register_script(_MOVE_POISON)
    dead_letters = h.dead_letter_topic(rule.stream, "redis")
    moved = []
    for row in rows:
        deliveries = row["times_delivered"]
        if deliveries < rule.max_attempts:
            continue
        entry_id = _text(row["message_id"])
        extra = _poison_headers(rule, entry_id, deliveries)
        try:
            result = script(
                keys=[rule.stream, dead_letters],
                args=[rule.group, entry_id, min_idle_ms, rule.max_attempts, *extra],
            )
        except redis.ResponseError as error:  # e.g. WRONGTYPE: the dead-letter key is no stream
            raise BusError(f"moving {entry_id} of {rule.stream} to {dead_letters}: {error}") from error
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


def _poison_headers(rule: PoisonRule, entry_id: str, deliveries: int) -> list[bytes]:
    message = (
        f"delivered {deliveries} times to group {rule.group} without being acknowledged "
        f"(max_attempts {rule.max_attempts}): it keeps crashing its consumers"
    )
    pairs = [
        (h.ORIGINAL_TOPIC, rule.stream),
        (h.ORIGINAL_ENTRY_ID, entry_id),
        (h.GROUP, rule.group),
        (h.ATTEMPTS, str(deliveries)),
        (h.ERROR_CLASS, POISON_ERROR_CLASS),
        (h.ERROR_MESSAGE, message),
        (h.FAILED_AT, datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    ]
    if rule.service:
        pairs.append((h.SERVICE, rule.service))
    fields: list[bytes] = []
    for name, value in pairs:
        fields += [b"h:" + name.encode(), value.encode("utf-8")]
    return fields


# --------------------------------------------------------------------------- helpers
def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    ms, _, seq = _text(entry_id).partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (-1, -1)
