"""Kafka backend of the bus, on kafka-python 3 (pinned 3.0.12).

It gives the same answers on Apache Kafka (tested on 4.1, `make test-kafka`) and on
the embedded broker, Tansu 0.6. Tansu's differences, each handled here and only
for Tansu, are listed with their causes in docs/kafka-compat.md. Which broker it
is comes from probing, not configuration: a broker whose ApiVersions lack
OffsetForLeaderEpoch (every Apache Kafka since 0.11 has it; replication needs it)
is treated as Tansu (`_Admin.tansu_like`). Then:

- ListOffsets(LATEST) is wrong ("base offset of the last batch + 1"), so end
  offsets come from a Fetch's high watermark (`_Admin._fetched_end_offsets`);
  Apache Kafka gets ListOffsets(LATEST) and ListOffsets(EARLIEST), as designed.
- A group join waits about session_timeout / 2: consumers default to
  `session_timeout_ms=2000, heartbeat_interval_ms=500` there, and to 6000/1000
  (Kafka's smallest allowed session by default) on Apache Kafka.
- Authorized-operations fields come back with all 32 bits set and kafka-python's
  decoding of bit 15 raised ValueError: they are dropped, unread
  (`_Admin._process_acl_operations`).
- ListGroups says "Unknown" for every state (DescribeGroups is right), members
  come back without assignment, and an unknown group is "Empty", not "Dead".
- Producing to a missing topic creates it, even with auto-creation off; the
  adapter checks the topic exists before its first record (cached) so a typo
  raises UnknownTopic on both brokers.
- A Metadata request naming no topic is answered with every topic, so the
  producer would forget a topic it sent to first (`_ensure_topic` names it to the
  producer's sender).

Apache Kafka 4 has its own: groups of the new consumer protocol (KIP-848, type
`consumer`) are unknown to DescribeGroups and are described with
ConsumerGroupDescribe (`kafka_messages`); a fresh cluster answers
COORDINATOR_NOT_AVAILABLE until its offsets topic exists, retried within the
request timeout.

Every call is bounded: request_timeout_ms for requests, connect_timeout_ms
for the first connection, max_block_ms for the producer's metadata waits.
kafka-python errors are mapped to BusUnavailable / UnknownTopic / BusTimeout /
BusError with the original chained as __cause__.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import defaultdict
from functools import cached_property
from typing import Any

import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.cluster import collect_hosts
from kafka.protocol.api_key import ApiKey
from kafka.protocol.api_message import ApiMessage
from kafka.protocol.consumer import FetchRequest, ListOffsetsRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.structs import OffsetAndMetadata

from eventhub.bus import kafka_messages
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
    Published,
    Record,
    RecordTooLarge,
    TopicInfo,
    UnknownTopic,
    Watermark,
    replay_key,
    replay_keys,
    translated_errors,
)

log = logging.getLogger(__name__)

_LATEST = -1  # ListOffsets timestamps meaning "the end of the log"
_EARLIEST = -2  # and "the log start"
# Fetch v13+ names topics by id; v12 still takes names and has everything we need.
_FETCH_MAX_VERSION = 12
# The largest window of a newest-first scan (KafkaBus._scan_backwards), in offsets.
_MAX_WINDOW = 10_000
# Tansu answers a Fetch with max_wait_ms=0 with no partitions at all; 1 ms works on
# both brokers (Kafka returns at once since min_bytes=0 is always satisfied).
_FETCH_MAX_WAIT_MS = 1

_UNAVAILABLE = (
    Errors.KafkaConnectionError,
    Errors.NodeNotReadyError,
    Errors.BrokerNotAvailableError,
    Errors.LeaderNotAvailableError,
    Errors.NotLeaderForPartitionError,
    Errors.CoordinatorNotAvailableError,
    Errors.NotCoordinatorError,
)


def _translate(error: Exception) -> BusError:
    """The bus exception for a kafka-python one (the caller chains the cause)."""
    if isinstance(error, BusError):
        return error
    # Before _UNAVAILABLE: UnknownTopicOrPartition shares InvalidMetadataError with them.
    if isinstance(error, Errors.UnknownTopicOrPartitionError):
        return UnknownTopic(str(error))
    if isinstance(error, (Errors.MessageSizeTooLargeError, Errors.RecordListTooLargeError)):
        return RecordTooLarge(str(error))
    if isinstance(error, Errors.KafkaTimeoutError) and "bootstrap" in str(error):
        return BusUnavailable(f"Kafka is unavailable: {error}")
    if isinstance(error, (Errors.KafkaTimeoutError, Errors.RequestTimedOutError)):
        return BusTimeout(str(error))
    if isinstance(error, _UNAVAILABLE):
        return BusUnavailable(f"Kafka is unavailable: {error}")
    if isinstance(error, Errors.InvalidSessionTimeoutError):
        # A session_timeout_ms given by the caller outside the broker's bounds.
        return BusError(f"{error}: the broker refuses this consumer session timeout (group.min.session.timeout.ms)")
    return BusError(str(error))


# Consumer session defaults per broker (module docstring): Tansu joins a group in
# about session/2; Apache Kafka refuses sessions under group.min.session.timeout.ms (6 s).
TANSU_SESSION_MS = (2000, 500)
KAFKA_SESSION_MS = (6000, 1000)

_COORDINATOR_MOVING = (Errors.CoordinatorNotAvailableError, Errors.CoordinatorLoadInProgressError)
_LEADER_MOVING = (Errors.NotLeaderForPartitionError, Errors.LeaderNotAvailableError)


class ConsumerGroupDescribeRequest(ApiMessage, load_json=kafka_messages):
    pass


class ConsumerGroupDescribeResponse(ApiMessage, load_json=kafka_messages):
    pass


def _kafka_errors() -> contextlib.AbstractContextManager[None]:
    return translated_errors(Errors.KafkaError, _translate)


def _wire_headers(headers: Headers | None) -> list[tuple[str, bytes]]:
    """Headers as kafka-python takes them: (str, bytes) tuples, bytes-like values copied, None as b""."""
    return [(name, b"" if data is None else bytes(data)) for name, data in headers or ()]


def _probe_bootstrap(servers: str | list[str], timeout_s: float) -> None:
    """Raise BusUnavailable at once when no bootstrap server accepts a TCP connection.

    kafka-python retries a refused bootstrap until bootstrap_timeout_ms; a
    plain connect tells "nothing listens there" in a millisecond instead.
    """
    last_error: OSError | None = None
    for host, port, _family in collect_hosts(servers):
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            return
        except OSError as error:
            last_error = error
    raise BusUnavailable(f"no Kafka broker answers at {servers}: {last_error}") from last_error


def _lag(end: int, log_start: int, committed: int | None) -> int:
    # A group with no commit starts at the beginning (auto_offset_reset=earliest),
    # and records deleted by retention can no longer be consumed, so both count
    # from the log start.
    start = log_start if committed is None else max(committed, log_start)
    return max(0, end - start)


class _OneAtATime:
    """Calls into the wrapped client one thread at a time.

    kafka-python's admin client is not safe for concurrent calls: two threads asking at
    once (the collector and a web request, or two redrive sends looking up a new topic)
    fail with NodeNotReadyError ("No node_id provided", "max_in_flight").
    """

    def __init__(self, target) -> None:
        self._target = target
        self._calls = threading.RLock()

    def __getattr__(self, name: str):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            with self._calls:
                return attribute(*args, **kwargs)

        return call


class _Admin(KafkaAdminClient):
    """KafkaAdminClient plus the few wire-level calls it lacks, run on its IO thread."""

    @cached_property
    def tansu_like(self) -> bool:
        """True for a broker without OffsetForLeaderEpoch: not Apache Kafka (module docstring)."""
        return ApiKey.OffsetForLeaderEpoch not in (self._manager.broker_version_data.api_versions or {})

    def supports(self, api: ApiKey) -> bool:
        return api in (self._manager.broker_version_data.api_versions or {})

    def _process_acl_operations(self, obj: dict) -> dict:
        # The Tansu workaround for authorized operations (see module docstring):
        # nothing in EventHub reads them, so drop them instead of decoding.
        obj.pop("authorized_operations", None)
        return obj

    async def _find_coordinator_ids(self, keys, key_type=0):
        # A fresh Kafka cluster creates its offsets topic on the first FindCoordinator and
        # answers COORDINATOR_NOT_AVAILABLE until it exists; a moving coordinator says so too.
        deadline = time.monotonic() + self.config["request_timeout_ms"] / 1000
        while True:
            try:
                return await super()._find_coordinator_ids(keys, key_type)
            except _COORDINATOR_MOVING:
                if time.monotonic() > deadline:
                    raise
                await self._net.sleep(0.1)

    def list_group_offsets(self, *args, **kwargs):
        return self._while_coordinator_moves(super().list_group_offsets, *args, **kwargs)

    def describe_groups(self, *args, **kwargs):
        return self._while_coordinator_moves(super().describe_groups, *args, **kwargs)

    def _while_coordinator_moves(self, call, *args, **kwargs):
        """A group call again while its coordinator loads or moves: on a fresh Kafka cluster
        OffsetFetch answers COORDINATOR_LOAD_IN_PROGRESS until the offsets topic is loaded."""
        deadline = time.monotonic() + self.config["request_timeout_ms"] / 1000
        while True:
            try:
                return call(*args, **kwargs)
            except (*_COORDINATOR_MOVING, Errors.NotCoordinatorError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    async def _leaders(self, topics: list[str] | None, skip_missing: bool = False) -> dict[str, dict[int, int]]:
        """{topic: {partition: leader node}}; topics=None lists every non-internal topic.

        A missing topic raises UnknownTopicOrPartitionError, or is left out with skip_missing.
        """
        request = MetadataRequest(
            topics=None if topics is None else [MetadataRequest.MetadataRequestTopic(name=name) for name in topics],
            allow_auto_topic_creation=False,
        )
        response = await self._manager.send(request)
        leaders: dict[str, dict[int, int]] = {}
        for topic in response.topics:
            error = Errors.for_code(topic.error_code)
            if error is Errors.UnknownTopicOrPartitionError and skip_missing:
                continue
            if error is not Errors.NoError:
                raise error(f"topic {topic.name!r}")
            if topics is None and topic.is_internal:
                continue
            leaders[topic.name] = {p.partition_index: p.leader_id for p in topic.partitions}
        return leaders

    async def _list_offsets(
        self, by_node: dict[int, dict[str, list[int]]], *timestamps: int
    ) -> list[dict[tuple[str, int], int]]:
        """ListOffsets at each timestamp for every partition: one request per leader and
        timestamp, all in flight at once. One {(topic, partition): offset} per timestamp."""
        _Topic = ListOffsetsRequest.ListOffsetsTopic
        _Partition = _Topic.ListOffsetsPartition
        pending = [
            [
                self._manager.send(
                    ListOffsetsRequest(
                        isolation_level=0,  # read_uncommitted: the high watermark, as consumers see it
                        topics=[
                            _Topic(name=topic, partitions=[_Partition(partition_index=p, timestamp=ts) for p in parts])
                            for topic, parts in node_topics.items()
                        ],
                    ),
                    node_id=node,
                )
                for node, node_topics in by_node.items()
            ]
            for ts in timestamps
        ]
        results = []
        for futures in pending:
            offsets: dict[tuple[str, int], int] = {}
            for future in futures:
                response = await future
                for topic in response.topics:
                    for p in topic.partitions:
                        error = Errors.for_code(p.error_code)
                        if error is not Errors.NoError:
                            raise error(f"ListOffsets {topic.name}[{p.partition_index}]")
                        offsets[(topic.name, p.partition_index)] = p.offset
            results.append(offsets)
        return results

    async def _end_offsets(
        self, topics: list[str], skip_missing: bool = False, with_start: bool = True
    ) -> dict[str, dict[int, tuple[int, int]]]:
        """{topic: {partition: (end offset, log start offset)}}.

        1. Metadata: partition leaders.
        2. Apache Kafka: ListOffsets(LATEST) and ListOffsets(EARLIEST), one
           request per leader each, all in flight at once: two round trips.
           Without `with_start` only LATEST, and the log start offsets are given as 0
           (the collector reads 5,000 partitions' ends a tick and no start).
           Tansu: see `_fetched_end_offsets`.
        """
        leaders = await self._leaders(topics, skip_missing)
        by_node: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for topic, partitions in leaders.items():
            for partition, leader in partitions.items():
                if leader < 0:
                    raise Errors.LeaderNotAvailableError(f"{topic}[{partition}] has no leader")
                by_node[leader][topic].append(partition)
        if self.tansu_like:
            return await self._fetched_end_offsets(leaders, by_node)
        if not with_start:
            [latest] = await self._list_offsets(by_node, _LATEST)
            return {topic: {p: (latest[(topic, p)], 0) for p in partitions} for topic, partitions in leaders.items()}
        latest, earliest = await self._list_offsets(by_node, _LATEST, _EARLIEST)
        return {
            topic: {p: (latest[(topic, p)], max(0, earliest[(topic, p)])) for p in partitions}
            for topic, partitions in leaders.items()
        }

    async def _fetched_end_offsets(
        self, leaders: dict[str, dict[int, int]], by_node: dict[int, dict[str, list[int]]]
    ) -> dict[str, dict[int, tuple[int, int]]]:
        """End offsets on Tansu, whose ListOffsets(LATEST) is wrong (module docstring).

        Every Fetch response carries the partition's high watermark and log start offset:
        1. ListOffsets(LATEST): a fetch position at or before the high watermark
           (Tansu returns at most the last batch from there).
        2. Fetch at those positions with max_bytes=1, one request per leader,
           all in flight at once; read high_watermark and log_start_offset.
        """
        [latest] = await self._list_offsets(by_node, _LATEST)

        _FTopic = FetchRequest.FetchTopic
        _FPartition = _FTopic.FetchPartition
        pending = {
            node: self._manager.send(
                FetchRequest(
                    max_wait_ms=_FETCH_MAX_WAIT_MS,
                    min_bytes=0,
                    max_bytes=1,
                    isolation_level=0,  # read_uncommitted: the high watermark, as consumers see it
                    session_id=0,
                    session_epoch=-1,  # a one-off fetch, no fetch session
                    topics=[
                        _FTopic(
                            topic=topic,
                            partitions=[
                                _FPartition(partition=p, fetch_offset=max(0, latest[(topic, p)]), partition_max_bytes=1)
                                for p in parts
                            ],
                        )
                        for topic, parts in node_topics.items()
                    ],
                    max_version=_FETCH_MAX_VERSION,
                ),
                node_id=node,
            )
            for node, node_topics in by_node.items()
        }
        ends: dict[str, dict[int, tuple[int, int]]] = {topic: {} for topic in leaders}
        for future in pending.values():
            response = await future
            for topic in response.responses:
                for p in topic.partitions:
                    error = Errors.for_code(p.error_code)
                    if error is Errors.OffsetOutOfRangeError:
                        # Retention moved the log start past our position between
                        # the two requests (Kafka only); LATEST is right there.
                        ends[topic.topic][p.partition_index] = (latest[(topic.topic, p.partition_index)], 0)
                        continue
                    if error is not Errors.NoError:
                        raise error(f"Fetch {topic.topic}[{p.partition_index}]")
                    ends[topic.topic][p.partition_index] = (p.high_watermark, max(0, p.log_start_offset))
        for topic, partitions in leaders.items():
            missing = set(partitions) - set(ends[topic])
            if missing:
                raise Errors.KafkaError(f"Fetch returned no high watermark for {topic} {sorted(missing)}")
        return ends

    def leaders(self, topics: list[str] | None) -> dict[str, dict[int, int]]:
        return self._manager.run(self._leaders, topics)

    async def _offsets_at(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """ListOffsets(timestamp) for every partition of `topic`: the first offset at or after it, -1 for none."""
        leaders = (await self._leaders([topic]))[topic]
        by_node: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for partition, leader in leaders.items():
            by_node[leader][topic].append(partition)
        [found] = await self._list_offsets(by_node, timestamp_ms)
        return {p: found[(topic, p)] for p in leaders}

    def offsets_at(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        return self._manager.run(self._retrying_leader_moves, self._offsets_at, topic, timestamp_ms)

    def end_offsets(
        self, topics: list[str], skip_missing: bool = False, with_start: bool = True
    ) -> dict[str, dict[int, tuple[int, int]]]:
        return self._manager.run(self._retrying_leader_moves, self._end_offsets, topics, skip_missing, with_start)

    async def _retrying_leader_moves(self, call, *args):
        """`call` again, with fresh metadata, while a partition's leadership is moving.

        Apache Kafka answers NOT_LEADER_OR_FOLLOWER for a moment after a topic is created
        (the metadata names the leader before the broker has taken the partition over), and
        during a leader election; both are over well within the request timeout.
        """
        deadline = time.monotonic() + self.config["request_timeout_ms"] / 1000
        while True:
            try:
                return await call(*args)
            except _LEADER_MOVING:
                if time.monotonic() > deadline:
                    raise
                await self._net.sleep(0.05)

    async def _describe_consumer_groups(self, groups: list[str]) -> dict[str, dict]:
        """ConsumerGroupDescribe (KIP-848) per coordinator: {group: {"state", "members", "assigned"}}.

        Groups the broker does not know as `consumer` groups are left out.
        """
        coordinators = await self._find_coordinator_ids(groups)
        by_node: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            by_node[coordinators[group]].append(group)
        pending = [
            self._manager.send(
                ConsumerGroupDescribeRequest(group_ids=node_groups, include_authorized_operations=False), node_id=node
            )
            for node, node_groups in by_node.items()
        ]
        described = {}
        for future in pending:
            response = await future
            for group in response.groups:
                if group.error_code:
                    continue
                described[group.group_id] = {
                    "state": group.group_state,
                    "members": len(group.members),
                    "assigned": {
                        tp.topic_name for member in group.members for tp in member.assignment.topic_partitions
                    },
                }
        return described

    def describe_consumer_groups(self, groups: list[str]) -> dict[str, dict]:
        return self._manager.run(self._describe_consumer_groups, groups)


class KafkaBus(Bus):
    """One admin client and one producer per adapter, both built on first use.

    Thread-safe: publishes and sends from many threads share the producer.
    Consumers are one KafkaConsumer each, for one thread.
    """

    kind = "kafka"

    def __init__(
        self,
        bootstrap_servers: str | list[str] = "127.0.0.1:9092",
        *,
        client_id: str = "eventhub",
        session_timeout_ms: int | None = None,
        heartbeat_interval_ms: int | None = None,
        request_timeout_ms: int = 5000,
        connect_timeout_ms: int = 3000,
        linger_ms: int = 0,
        client_options: dict | None = None,
    ) -> None:
        """Connects lazily. `client_options` go to every kafka-python client (SSL, SASL...).

        Consumer session and heartbeat default to what the broker allows (TANSU_SESSION_MS
        or KAFKA_SESSION_MS, probed on first use); give both to choose.
        """
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.request_timeout_ms = request_timeout_ms
        self.connect_timeout_ms = connect_timeout_ms
        self.linger_ms = linger_ms
        self.client_options = dict(client_options or {})
        self._lock = threading.Lock()
        self._admin_client: _Admin | None = None
        self._producer_client: KafkaProducer | None = None
        self._known_topics: set[str] = set()  # seen to exist (created or looked up)
        self._sendable: set[str] = set()  # checked for the producer, see _ensure_topic
        self._send_error: Exception | None = None
        # Bound once: every record's future holds it until acknowledged, and a bound method
        # per record would be one more object for the cyclic GC to track (see send).
        self._on_send_error = self._remember_send_error
        self._lookup_by_time: bool | None = None  # see _timestamp_lookup_works
        self._closed = False

    def __repr__(self) -> str:
        return f"<KafkaBus {self.bootstrap_servers}>"

    # -- clients ---------------------------------------------------------------

    def _common_config(self) -> dict:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.connect_timeout_ms,
            # The default (30 s) would keep reporting a restarted broker as down.
            "reconnect_backoff_max_ms": 1000,
            **self.client_options,
        }

    def _admin(self) -> _Admin:
        admin = self._admin_client
        if admin is not None:
            return admin
        with self._lock:
            if self._closed:
                raise BusError("the bus is closed")
            if self._admin_client is None:
                if not self.client_options.get("proxy_url"):  # through a proxy, a direct connect proves nothing
                    _probe_bootstrap(self.bootstrap_servers, self.connect_timeout_ms / 1000)
                with _kafka_errors():
                    self._admin_client = _OneAtATime(_Admin(**self._common_config()))  # type: ignore[assignment]
            return self._admin_client

    def _producer(self) -> KafkaProducer:
        producer = self._producer_client
        if producer is not None:
            return producer
        self._admin()  # fails fast, with the bootstrap probe, when nothing listens
        with self._lock:
            if self._closed:
                raise BusError("the bus is closed")
            if self._producer_client is None:
                with _kafka_errors():
                    self._producer_client = KafkaProducer(
                        **self._common_config(),
                        linger_ms=self.linger_ms,
                        max_block_ms=self.request_timeout_ms,
                        allow_auto_create_topics=False,
                    )
            return self._producer_client

    def _ensure_topic(self, topic: str) -> None:
        # Cached: one metadata round trip per topic per adapter, then free.
        if topic in self._sendable:
            return
        if topic not in self._known_topics and not self.topic_exists(topic):
            raise UnknownTopic(f"topic {topic!r} does not exist")
        if self._admin().tansu_like:
            # Tansu answers a Metadata request that names no topic with every topic (Kafka:
            # none). The producer's first one does, so it finds this topic's partitions
            # already known and never adds the topic to those its refreshes name: the next
            # refresh drops it, its leader turns unknown, and kafka-python's sender loops
            # asking for metadata, a third of a core for as long as the producer lives.
            self._producer()._sender.add_topic(topic)
        self._known_topics.add(topic)
        self._sendable.add(topic)

    def _unavailable_or_timeout(self, error: Exception, what: str, topic: str | None = None) -> BusError:
        """A producer wait ran out: tell a dead broker, a deleted topic and a slow broker apart."""
        try:
            if topic is not None and not self.topic_exists(topic):
                self._known_topics.discard(topic)
                self._sendable.discard(topic)
                return UnknownTopic(f"{what}: topic {topic!r} does not exist")
            self.ping()
        except BusUnavailable as down:
            return BusUnavailable(f"{what}: {down}")
        return BusTimeout(f"{what}: {error}")

    # -- Bus -------------------------------------------------------------------

    def ping(self) -> None:
        with _kafka_errors():
            self._admin().leaders([])

    def create_topic(self, name: str, partitions: int = 1) -> bool:
        admin = self._admin()
        # -1 lets the broker pick its default replication factor (Kafka >= 2.4).
        replication = -1 if admin._manager.broker_version >= (2, 4) else 1
        try:
            with _kafka_errors():
                admin.create_topics(
                    {name: {"num_partitions": partitions, "replication_factor": replication}},
                    wait_for_metadata=True,
                )
        except BusError as error:
            if isinstance(error.__cause__, Errors.TopicAlreadyExistsError):
                return False
            # Tansu answers UnknownError when the topic was created by a produce.
            if isinstance(error.__cause__, Errors.UnknownError) and self.topic_exists(name):
                return False
            raise
        self._known_topics.add(name)
        return True

    def list_topics(self) -> list[TopicInfo]:
        with _kafka_errors():
            leaders = self._admin().leaders(None)
        return [TopicInfo(name, len(partitions)) for name, partitions in sorted(leaders.items())]

    def topic_exists(self, name: str) -> bool:
        try:
            with _kafka_errors():
                self._admin().leaders([name])
        except UnknownTopic:
            return False
        return True

    def delete_topic(self, name: str) -> None:
        self._known_topics.discard(name)
        self._sendable.discard(name)
        with _kafka_errors():
            self._admin().delete_topics([name])

    def publish(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> Published:
        future = self._send(topic, value, key, headers)
        try:
            with _kafka_errors():
                metadata = future.get(timeout=(self.request_timeout_ms + self.linger_ms) / 1000)
        except BusTimeout as error:
            raise self._unavailable_or_timeout(error, f"publish to {topic!r}", topic) from error.__cause__
        return Published(metadata.topic, metadata.partition, metadata.offset)

    def publish_many(self, records: list[OutgoingRecord]) -> list[Published | BusError]:
        """All sent before the first wait: the producer batches them and keeps up to five
        requests in flight per broker; idempotence keeps each partition's order."""
        pending: list[Any] = []
        refused: dict[str | None, BusError] = {}  # by topic (None: every topic, the broker is down)
        for topic, value, key, headers in records:
            # A broker down refuses the records after it too, a missing or silent topic its next
            # records (each try could block for max_block_ms); a record too large only itself.
            error = refused.get(None) or refused.get(topic)
            if error is None:
                try:
                    pending.append(self._send(topic, value, key, headers))
                    continue
                except BusUnavailable as refusal:
                    error = refused[None] = refusal
                except (UnknownTopic, BusTimeout) as refusal:
                    error = refused[topic] = refusal
                except BusError as refusal:
                    error = refusal
            pending.append(error)
        deadline = time.monotonic() + (self.request_timeout_ms + self.linger_ms) / 1000
        outcomes: list[Published | BusError] = []
        timed_out: dict[str, BusError] = {}  # per topic: why its records were not acknowledged
        for (topic, *_), future in zip(records, pending, strict=True):
            if isinstance(future, BusError):
                outcomes.append(future)
                continue
            try:
                with _kafka_errors():
                    metadata = future.get(timeout=max(0.0, deadline - time.monotonic()))
                outcomes.append(Published(metadata.topic, metadata.partition, metadata.offset))
            except BusTimeout as error:
                if topic not in timed_out:  # asked once per topic, not once per record
                    timed_out[topic] = self._unavailable_or_timeout(error, f"publish to {topic!r}", topic)
                outcomes.append(timed_out[topic])
            except BusError as error:
                outcomes.append(error)
        return outcomes

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        self._send(topic, value, key, headers).add_errback(self._on_send_error)

    def _send(self, topic: str, value: bytes | None, key: bytes | None, headers: Headers | None):
        # Every record of a throughput run comes through here: the common case is kept to
        # set lookups and the one producer call (no context manager, no pass over the headers).
        if topic not in self._sendable:
            self._ensure_topic(topic)
        producer = self._producer_client or self._producer()
        try:
            try:
                return producer.send(topic, value=value, key=key, headers=headers or [])
            except TypeError:
                # kafka-python takes only (str, bytes) tuples as headers and checks them before
                # it queues anything: send copies. A null value (other clients write them; we
                # read them back as None) goes out as an empty one.
                return producer.send(topic, value=value, key=key, headers=_wire_headers(headers))
        except Errors.KafkaError as error:
            bus_error = _translate(error)
            if isinstance(bus_error, BusTimeout):
                # The producer waited max_block_ms for metadata of a topic we had seen.
                raise self._unavailable_or_timeout(bus_error, f"send to {topic!r}", topic) from error
            raise bus_error from error

    def _remember_send_error(self, error: Exception) -> None:
        with self._lock:
            if self._send_error is None:
                self._send_error = error

    def flush(self, timeout_s: float = 10.0) -> None:
        producer = self._producer_client
        if producer is not None:
            try:
                with _kafka_errors():
                    producer.flush(timeout=timeout_s)
            except BusTimeout as error:
                raise self._unavailable_or_timeout(error, "flush") from error.__cause__
        with self._lock:
            error, self._send_error = self._send_error, None
        if error is not None:
            raise _translate(error) from error

    def consumer(self, group: str, topics: list[str], *, client_id: str | None = None) -> KafkaGroupConsumer:
        with _kafka_errors():
            self._admin().leaders(list(topics))  # UnknownTopic for any missing one
        with _kafka_errors():
            consumer = KafkaConsumer(
                *topics,
                **{**self._common_config(), "client_id": client_id or self.client_id},
                group_id=group,
                enable_auto_commit=False,  # nothing is committed unless asked
                auto_offset_reset="earliest",  # a group new to a topic starts at its beginning
                **self.consumer_session(),
                allow_auto_create_topics=False,
            )
        try:
            _wait_for_partitions(consumer, topics, self.request_timeout_ms / 1000)
        except BaseException:
            consumer.close(autocommit=False)
            raise
        return KafkaGroupConsumer(consumer, group, list(topics), self.request_timeout_ms)

    def consumer_session(self) -> dict[str, int]:
        """session_timeout_ms and heartbeat_interval_ms for a consumer of this broker."""
        defaults = TANSU_SESSION_MS if self._admin().tansu_like else KAFKA_SESSION_MS
        return {
            "session_timeout_ms": self.session_timeout_ms or defaults[0],
            "heartbeat_interval_ms": self.heartbeat_interval_ms or defaults[1],
        }

    def end_offsets_many(self, topics: list[str]) -> dict[str, dict[int, int]]:
        if not topics:
            return {}
        with _kafka_errors():
            ends = self._admin().end_offsets(list(topics), with_start=False)
        return {topic: {p: hw for p, (hw, _start) in sorted(parts.items())} for topic, parts in ends.items()}

    def _committed(self, group: str) -> dict[str, dict[int, int]]:
        """{topic: {partition: committed offset}} for every partition the group committed on."""
        try:
            with _kafka_errors():
                offsets = self._admin().list_group_offsets(group).get(group, {})
        except BusError as error:
            if isinstance(error.__cause__, Errors.GroupIdNotFoundError):
                return {}
            raise
        committed: dict[str, dict[int, int]] = defaultdict(dict)
        for tp, meta in offsets.items():
            if meta.offset >= 0:
                committed[tp.topic][tp.partition] = meta.offset
        return committed

    def committed_offsets_many(self, groups: list[str]) -> dict[str, dict[str, dict[int, int | None]]]:
        """One OffsetFetch per coordinator for all groups (Kafka 3.0+, KIP-709; Tansu).

        Only committed partitions are listed. One unknown group fails the whole
        batch, and older brokers take one group per request: then group by group.
        """
        groups = list(groups)
        if not groups:
            return {}
        try:
            with _kafka_errors():
                offsets = self._admin().list_group_offsets(groups)
        except (BusUnavailable, BusTimeout):
            raise
        except BusError:
            return {group: dict(self._committed(group)) for group in groups}
        result: dict[str, dict[str, dict[int, int | None]]] = {group: {} for group in groups}
        for group, partitions in offsets.items():
            for tp, meta in partitions.items():
                if meta.offset >= 0:
                    result.setdefault(group, {}).setdefault(tp.topic, {})[tp.partition] = meta.offset
        return result

    def committed_offsets(self, group: str, topic: str) -> dict[int, int | None]:
        with _kafka_errors():
            partitions = self._admin().leaders([topic])[topic]
        done = self._committed(group).get(topic, {})
        return {p: done.get(p) for p in sorted(partitions)}

    def _lag_rows(
        self, group: str, topics: list[str], committed: dict[str, dict[int, int]], skip_missing: bool = False
    ) -> list[PartitionLag]:
        with _kafka_errors():
            ends = self._admin().end_offsets(topics, skip_missing)
        rows = []
        for topic in sorted(ends):
            for partition, (end, log_start) in sorted(ends[topic].items()):
                done = committed.get(topic, {}).get(partition)
                rows.append(PartitionLag(group, topic, partition, end, done, _lag(end, log_start, done)))
        return rows

    def lag(self, group: str, topic: str) -> list[PartitionLag]:
        return self._lag_rows(group, [topic], self._committed(group))

    def group_lag(self, group: str) -> list[PartitionLag]:
        committed = self._committed(group)
        topics = set(committed) | set(self._describe([group])[group]["assigned"])
        if not topics:
            return []
        # Offsets of deleted topics can outlive them in the group: skip those.
        return self._lag_rows(group, sorted(topics), committed, skip_missing=True)

    def _describe(self, groups: list[str]) -> dict[str, dict]:
        """{group: {"state", "members", "protocol_type", "assigned": topics}}.

        DescribeGroups first; on Kafka 4 the groups it calls "not a classic group"
        (KIP-848 `consumer` groups) are asked again with ConsumerGroupDescribe.
        """
        admin = self._admin()
        with _kafka_errors():
            described = admin.describe_groups(groups)
        result = {}
        for group in groups:
            info = described.get(group) or {}
            assigned: set[str] = set()
            for member in info.get("members", ()):
                assignment = member.get("member_assignment")
                # Apache Kafka fills assignments in (decoded to a dict); Tansu sends b"".
                if isinstance(assignment, dict):
                    assigned.update(tp["topic"] for tp in assignment.get("assigned_partitions") or ())
            result[group] = {
                "state": "Dead" if info.get("error") else info.get("group_state", "Dead"),
                "members": len(info.get("members", ())),
                "protocol_type": info.get("protocol_type", ""),
                "assigned": assigned,
            }
        unknown = [g for g in groups if "not a classic group" in str((described.get(g) or {}).get("error") or "")]
        if unknown and admin.supports(ApiKey.ConsumerGroupDescribe):
            with _kafka_errors():
                for group, info in admin.describe_consumer_groups(unknown).items():
                    result[group] = {**info, "protocol_type": "consumer"}
        return result

    def _group_info(
        self, group: str, described: dict, committed: dict[str, dict[int, int]], *, with_offsets: bool = False
    ) -> GroupInfo:
        topics = tuple(sorted(set(committed) | described["assigned"]))
        state = described["state"]
        # Kafka says "Dead" for a group it does not know; Tansu says "Empty".
        if state == "Empty" and not described["protocol_type"] and not topics:
            state = "Dead"
        return GroupInfo(group, state, described["members"], topics, committed if with_offsets else None)

    def describe_group(self, group: str) -> GroupInfo:
        return self._group_info(group, self._describe([group])[group], self._committed(group))

    def list_groups(self) -> list[GroupInfo]:
        admin = self._admin()
        with _kafka_errors():
            groups = sorted({g["group_id"] for g in admin.list_groups()})
        if not groups:
            return []
        # ListGroups' state is "Unknown" on Tansu: DescribeGroups has the real one.
        described = self._describe(groups)
        with _kafka_errors():
            offsets = admin.list_group_offsets(groups)
        infos = []
        for group in groups:
            committed: dict[str, dict[int, int]] = {}
            for tp, meta in offsets.get(group, {}).items():
                if meta.offset >= 0:
                    committed.setdefault(tp.topic, {})[tp.partition] = meta.offset
            infos.append(self._group_info(group, described[group], committed, with_offsets=True))
        return infos

    # -- single records, for dead-letter triage ------------------------------------

    def watermark(self, topic: str) -> Watermark:
        return {"partitions": {str(p): end for p, end in self.end_offsets(topic).items()}}

    def find_replays(
        self, topic: str, mark: Watermark, wanted: set[tuple[int, int]], timeout_s: float = 30.0
    ) -> dict[tuple[int, int], Found]:
        """Read each partition from the mark to today's end with a group-less consumer.

        No group: a read-only look that commits nothing and joins nothing.
        """
        keys = replay_keys(wanted)
        ends = self.end_offsets(topic)
        starts = {int(p): int(offset) for p, offset in dict(mark.get("partitions") or {}).items()}
        todo = {p: end for p, end in ends.items() if end > starts.get(p, 0)}
        found: dict[tuple[int, int], Found] = {}
        if not keys or not todo:
            return found
        consumer = self._groupless_consumer()
        try:
            partitions = {p: TopicPartition(topic, p) for p in todo}
            consumer.assign(list(partitions.values()))
            for p, tp in partitions.items():
                consumer.seek(tp, starts.get(p, 0))
            deadline = time.monotonic() + timeout_s
            while todo and len(found) < len(keys):
                if time.monotonic() > deadline:
                    raise BusError(f"reading {topic!r} took longer than {timeout_s} s")
                with _kafka_errors():
                    polled = consumer.poll(timeout_ms=500)
                for tp, records in polled.items():
                    for record in records:
                        key = keys.get(replay_key(record.headers or ()))
                        if key is not None and record.offset < todo.get(tp.partition, -1):
                            found[key] = Found(tp.partition, record.offset)
                for p in list(todo):
                    if consumer.position(partitions[p]) >= todo[p]:
                        del todo[p]
            return found
        finally:
            consumer.close(autocommit=False)

    def read(
        self, topic: str, partition: int, start: int | str, limit: int = 1, timeout_s: float = 5.0
    ) -> list[Record]:
        """Assign the partition to a group-less consumer, seek to `start`, poll until `limit` or the end.

        The end comes from `end_offsets` (the Fetch high watermark on Tansu), so a read
        past it returns at once instead of waiting out the timeout.
        """
        end = self.end_offsets(topic).get(partition)
        if end is None:
            raise UnknownTopic(f"topic {topic!r} has no partition {partition}")
        start = max(int(start), 0)
        if start >= end or limit <= 0:
            return []
        stop = min(end, start + limit)
        consumer = self._groupless_consumer(auto_offset_reset="earliest", max_poll_records=min(limit, 500))
        tp = TopicPartition(topic, partition)
        found: list[Record] = []
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            deadline = time.monotonic() + timeout_s
            while len(found) < limit and consumer.position(tp) < stop:
                if time.monotonic() > deadline:
                    raise BusTimeout(f"reading {topic!r}/{partition} from {start} took longer than {timeout_s} s")
                with _kafka_errors():
                    polled = consumer.poll(timeout_ms=200, max_records=limit - len(found))
                found += [_record(r) for r in polled.get(tp, ()) if r.offset >= start][: limit - len(found)]
            return found
        finally:
            consumer.close(autocommit=False)

    # -- scans, for the topic browser -------------------------------------------------

    def _ends(self, topic: str) -> dict[int, tuple[int, int]]:
        """{partition: (end offset, log start offset)}; UnknownTopic for a missing topic."""
        with _kafka_errors():
            return self._admin().end_offsets([topic])[topic]

    def scan_positions(
        self,
        topic: str,
        *,
        newest_first: bool = True,
        from_time_ms: int | None = None,
        from_offset: int | str | None = None,
        partitions: list[int] | None = None,
    ) -> dict[int, int]:
        ends = self._ends(topic)
        chosen = sorted(ends) if partitions is None else list(partitions)
        missing = set(chosen) - set(ends)
        if missing:
            raise UnknownTopic(f"topic {topic!r} has no partition {sorted(missing)[0]}")
        if from_time_ms is not None:
            found = self._offsets_for_time(topic, from_time_ms, {p: ends[p] for p in chosen})
            return {p: found[p] for p in chosen}
        if from_offset is not None:
            return {p: max(int(from_offset), ends[p][1]) for p in chosen}
        return {p: ends[p][0] if newest_first else ends[p][1] for p in chosen}

    def _offsets_for_time(self, topic: str, ms: int, ends: dict[int, tuple[int, int]]) -> dict[int, int]:
        """The first offset whose timestamp is at or after `ms`, per partition (the end when none is).

        Apache Kafka: ListOffsets with the timestamp. Tansu answers that request without
        looking at the timestamp (the probe in `_timestamp_lookup_works`), so there the
        offset is found by bisection over the records' own timestamps: a few single-record
        reads per partition, assuming timestamps grow with offsets (CreateTime from one
        clock); docs/kafka-compat.md.
        """
        if self._timestamp_lookup_works(topic, ends):
            with _kafka_errors():
                found = self._admin().offsets_at(topic, ms)
            return {p: ends[p][0] if found.get(p, -1) < 0 else found[p] for p in ends}
        consumer = self._groupless_consumer(auto_offset_reset="earliest", max_poll_records=1)
        try:
            return {p: self._bisect_time(consumer, topic, p, ms, start, end) for p, (end, start) in ends.items()}
        finally:
            consumer.close(autocommit=False)

    def _timestamp_lookup_works(self, topic: str, ends: dict[int, tuple[int, int]]) -> bool:
        """Whether ListOffsets honours timestamps here: every Apache Kafka does; probed on Tansu-like brokers.

        The probe asks for a timestamp far in the future on a partition that has records:
        the right answer is -1 ("no such record"); Tansu 0.6 answers an offset. Cached
        per adapter once a topic with records gave an answer.
        """
        admin = self._admin()
        if not admin.tansu_like:
            return True
        if self._lookup_by_time is None:
            if not any(end > start for end, start in ends.values()):
                return False  # nothing to probe with; bisection finds the end at once
            with _kafka_errors():
                far = admin.offsets_at(topic, 2**62)
            self._lookup_by_time = all(offset < 0 for p, offset in far.items() if ends[p][0] > ends[p][1])
            log.info("ListOffsets by timestamp %s on this broker", "works" if self._lookup_by_time else "is ignored")
        return self._lookup_by_time

    def _bisect_time(self, consumer: KafkaConsumer, topic: str, partition: int, ms: int, low: int, high: int) -> int:
        """The first offset in [low, high) whose record's timestamp is >= ms; `high` when none is."""
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        while low < high:
            middle = (low + high) // 2
            found = self._first_at(consumer, tp, middle, high)
            if found is None:  # nothing left from there (a gap at the end): look lower
                high = middle
            elif (found.timestamp if found.timestamp is not None else -1) >= ms:
                high = middle
            else:
                low = found.offset + 1
        return low

    def _first_at(self, consumer: KafkaConsumer, tp: TopicPartition, offset: int, end: int):
        """The first record at or after `offset` and before `end`, or None."""
        consumer.seek(tp, offset)
        deadline = time.monotonic() + self.request_timeout_ms / 1000
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise BusTimeout(f"reading {tp.topic}/{tp.partition} at {offset} took too long")
            with _kafka_errors():
                polled = consumer.poll(timeout_ms=200, max_records=1)
            for record in polled.get(tp, ()):
                if offset <= record.offset < end:
                    return record
        return None

    def scan(
        self,
        topic: str,
        positions: dict[int, int | str],
        *,
        newest_first: bool = True,
        batch: int = 500,
        timeout_s: float = 10.0,
    ):
        ends = self._ends(topic)
        missing = set(positions) - set(ends)
        if missing:
            raise UnknownTopic(f"topic {topic!r} has no partition {sorted(missing)[0]}")
        if newest_first:
            todo = {p: (ends[p][1], min(int(pos), ends[p][0])) for p, pos in positions.items()}
        else:
            todo = {p: (max(int(pos), ends[p][1]), ends[p][0]) for p, pos in positions.items()}
        todo = {p: (low, high) for p, (low, high) in todo.items() if low < high}
        if not todo:
            return
        consumer = self._groupless_consumer(auto_offset_reset="earliest", max_poll_records=batch)
        try:
            if newest_first:
                yield from self._scan_backwards(consumer, topic, todo, batch, timeout_s)
            else:
                yield from self._scan_forwards(consumer, topic, todo, batch, timeout_s)
        finally:
            consumer.close(autocommit=False)

    def _scan_forwards(self, consumer: KafkaConsumer, topic: str, todo: dict[int, tuple[int, int]], batch, timeout_s):
        tps = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        for p, (low, _high) in todo.items():
            consumer.seek(tps[p], low)
        stops = {p: high for p, (_low, high) in todo.items()}
        quiet_since = time.monotonic()
        while stops:
            with _kafka_errors():
                polled = consumer.poll(timeout_ms=200, max_records=batch)
            got = False
            for tp in sorted(polled):
                stop = stops.get(tp.partition)
                records = [_record(r) for r in polled[tp] if stop is not None and r.offset < stop]
                if records:
                    got = True
                    yield records
            for p in list(stops):
                if consumer.position(tps[p]) >= stops[p]:
                    consumer.pause(tps[p])  # caught up: records written since are not this scan's
                    del stops[p]
            if got:
                quiet_since = time.monotonic()
            elif stops and time.monotonic() - quiet_since > timeout_s:
                raise BusTimeout(f"scanning {topic!r}: no record for {timeout_s} s although some were due")

    def _scan_backwards(self, consumer: KafkaConsumer, topic: str, todo: dict[int, tuple[int, int]], batch, timeout_s):
        """Newest first: windows of offsets read forwards, from the end down, partition by partition
        in turn (one window each per round), each window handed out reversed.

        The first window is `batch` offsets (a page of the newest answers at once); each next
        one is twice the last, up to _MAX_WINDOW: every window costs a seek and a fetch
        round trip, which small windows would pay per few hundred records.
        """
        tops = {p: high for p, (_low, high) in todo.items()}
        sizes = dict.fromkeys(tops, batch)
        while tops:
            for p in list(tops):
                log_start, top = todo[p][0], tops[p]
                low = max(log_start, top - sizes[p])
                sizes[p] = min(sizes[p] * 2, max(batch, _MAX_WINDOW))
                tp = TopicPartition(topic, p)
                consumer.assign([tp])
                consumer.seek(tp, low)
                window: list[Record] = []
                quiet_since = time.monotonic()
                while consumer.position(tp) < top:
                    with _kafka_errors():
                        polled = consumer.poll(timeout_ms=200, max_records=batch)
                    records = [_record(r) for r in polled.get(tp, ()) if low <= r.offset < top]
                    window += records
                    if records:
                        quiet_since = time.monotonic()
                    elif time.monotonic() - quiet_since > timeout_s:
                        raise BusTimeout(f"scanning {topic!r}/{p}: no record for {timeout_s} s")
                if low <= log_start:
                    del tops[p]
                else:
                    tops[p] = low
                if window:
                    yield window[::-1]

    def next_position(self, record: Record, newest_first: bool = True) -> int:
        return int(record.offset) if newest_first else int(record.offset) + 1

    def _groupless_consumer(self, **options: Any) -> KafkaConsumer:
        """A consumer outside any group, for reads that must not join, rebalance or commit anything."""
        return KafkaConsumer(
            **{
                "request_timeout_ms": self.request_timeout_ms,
                **self.client_options,
                **options,
                "bootstrap_servers": self.bootstrap_servers,
                "group_id": None,
                "enable_auto_commit": False,
            }
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            producer, admin = self._producer_client, self._admin_client
            self._producer_client = self._admin_client = None
        # Closing must not raise or hang, even with the broker gone.
        if producer is not None:
            try:
                producer.close(timeout=self.request_timeout_ms / 1000)
            except Errors.KafkaTimeoutError:
                # Records still unsent (broker gone): kafka-python 3.0.12's close()
                # raises from its flush before force-closing, and would retry
                # from __del__. Do the force-close it skipped.
                log.warning("closing the Kafka producer: records still unsent after %d ms", self.request_timeout_ms)
                producer._sender.force_close()
                producer._closed = True
            except Exception:  # noqa: BLE001
                log.warning("closing the Kafka producer failed", exc_info=True)
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001
                log.warning("closing the Kafka admin client failed", exc_info=True)


def _wait_for_partitions(consumer: KafkaConsumer, topics: list[str], timeout_s: float) -> None:
    """Until the consumer's own metadata has partitions for every topic, before it joins its group.

    A topic created a moment ago can be in the admin's metadata and still come back without
    partitions (LEADER_NOT_AVAILABLE) in a new client's first metadata. The group's assignment,
    made from that metadata, then gives the member no partition of it ("No partition metadata
    for topic"), and kafka-python looks again only after metadata_max_age_ms, 5 minutes: the
    group would sit idle that long (seen on Apache Kafka in make test-kafka).
    """
    deadline = time.monotonic() + timeout_s
    missing = set(topics)
    while True:
        with _kafka_errors():
            missing = {topic for topic in missing if not consumer.partitions_for_topic(topic)}
        if not missing:
            return
        if time.monotonic() > deadline:
            raise BusTimeout(f"no partition metadata for {sorted(missing)} after {timeout_s} s")
        time.sleep(0.05)
        with _kafka_errors():
            consumer.topics()  # a fresh metadata request


def _record(r) -> Record:
    """kafka-python's ConsumerRecord as the bus' Record."""
    return Record(
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key,
        value=r.value,
        headers=list(r.headers or ()),
        timestamp_ms=r.timestamp,
    )


class KafkaGroupConsumer(GroupConsumer):
    """A KafkaConsumer in a group, auto-commit off; for one thread."""

    def __init__(self, consumer: KafkaConsumer, group: str, topics: list[str], timeout_ms: int) -> None:
        super().__init__(group, topics)
        self._consumer = consumer
        self._timeout_ms = timeout_ms

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        with _kafka_errors():
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [_record(r) for tp in sorted(batches) for r in batches[tp]]

    def commit(self, records: list[Record]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            # Kafka commits "the next offset to read" per partition.
            offsets[tp] = max(offsets.get(tp, 0), int(record.offset) + 1)
        if not offsets:
            return
        with _kafka_errors():
            self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
                timeout_ms=self._timeout_ms,
            )

    def close(self) -> None:
        try:
            self._consumer.close(autocommit=False, timeout_ms=self._timeout_ms)
        except Exception:  # noqa: BLE001 - closing must not raise, even with the broker gone
            log.warning("closing the Kafka consumer failed", exc_info=True)
