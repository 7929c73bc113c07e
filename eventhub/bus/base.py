"""The one interface every bus backend implements.

Django-free on purpose: the SDK, the collector and the dead-letter ingester all
talk to Kafka and Redis Streams through this, and services import the SDK
without Django.

Vocabulary shared by both backends:
- a *topic* is a Kafka topic or a Redis stream;
- a *partition* is a Kafka partition; a Redis stream is one partition, 0;
- an *offset* is a Kafka offset (int) or a Redis entry id (str, "ms-seq");
- *committed* means "committed offset" on Kafka and "acknowledged" on Redis;
- *lag* is end offset minus committed offset on Kafka, and entries not yet
  delivered plus entries delivered but not acked on Redis: in both cases the
  number of records the group has not yet finished with.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

Headers = list[tuple[str, bytes]]
OutgoingRecord = tuple[str, bytes | None, bytes | None, Headers | None]  # topic, value, key, headers


class BusError(Exception):
    """Base class of every error a bus adapter raises."""


class BusUnavailable(BusError):
    """The broker or server does not answer (refused, unreachable, shut down)."""


class UnknownTopic(BusError):
    """The topic or stream does not exist."""


class BusTimeout(BusError):
    """The broker answered too slowly; the operation gave up after its deadline."""


class RecordTooLarge(BusError):
    """The client or the broker refuses a record this large (Kafka: max.message.bytes, max_request_size)."""


@contextlib.contextmanager
def translated_errors(client_error: type[Exception], translate: Callable[[Exception], BusError]) -> Iterator[None]:
    """Raise the client library's errors as the bus errors `translate` picks, the original as __cause__.

    Each adapter wraps its client calls in this: callers catch BusError, never kafka-python's or redis-py's errors.
    """
    try:
        yield
    except client_error as error:
        raise translate(error) from error


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int | str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    timestamp_ms: int | None = None
    # Redis only: how many times the group has delivered this entry (XPENDING).
    delivery_count: int | None = None

    def header(self, name: str) -> bytes | None:
        """The last value of header `name`, or None."""
        return self._last_values.get(name)

    @cached_property
    def _last_values(self) -> dict[str, bytes | None]:
        """Each header's last value, looked up by name: the indexer asks a record for ten."""
        try:
            return dict(self.headers)  # a later pair overwrites an earlier one
        except (TypeError, ValueError):  # not all pairs: the ones that are
            return {
                item[0]: item[1]
                for item in self.headers
                if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)
            }


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int | str


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    end_offset: int
    committed: int | None  # None: the group never committed on this partition
    lag: int


# Where a scan is in one partition: a Kafka offset, or a Redis XRANGE bound ("-", "+", "(ms-seq").
Position = int | str

# Where a topic ends at one moment: {"partitions": {"0": 12}} (Kafka) or {"after": "ms-seq"} (Redis).
Watermark = dict[str, object]


@dataclass(frozen=True)
class Found:
    """Where a record was found: a partition and an offset (Redis: 0 and the entry id)."""

    partition: int
    offset: int | str


def replay_keys(wanted: set[tuple[int, int]]) -> dict[tuple[bytes, bytes], tuple[int, int]]:
    """(replay-of, replay-count) pairs, keyed by the header values that carry them."""
    return {(str(pk).encode(), str(count).encode()): (pk, count) for pk, count in wanted}


def replay_key(headers) -> tuple[bytes | None, bytes | None]:
    """The (replay-of, replay-count) header values of one record; the last value of each wins."""
    from eventhub.sdk import headers as h  # the SDK defines every header name

    found = dict(headers)
    return found.get(h.REPLAY_OF), found.get(h.REPLAY_COUNT)


@dataclass(frozen=True)
class PoisonRule:
    """A designed Redis consumer: its group gives up on an entry after max_attempts deliveries."""

    stream: str
    group: str
    max_attempts: int
    service: str = ""


@dataclass(frozen=True)
class GroupInfo:
    group: str
    state: str  # Stable, Empty, PreparingRebalance, Dead, Unknown...
    members: int
    topics: tuple[str, ...] = ()
    # The committed offsets ({topic: {partition: offset}}) when listing the group read
    # them anyway (Kafka: one OffsetFetch for all groups); None: ask committed_offsets_many.
    committed: dict[str, dict[int, int]] | None = field(default=None, compare=False, hash=False, repr=False)


class GroupConsumer(abc.ABC):
    """A member of a consumer group. Nothing is committed unless asked."""

    def __init__(self, group: str, topics: list[str]) -> None:
        self.group = group
        self.topics = topics

    @abc.abstractmethod
    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]: ...

    @abc.abstractmethod
    def commit(self, records: list[Record]) -> None:
        """Mark these records done (Kafka: commit offset+1 per partition; Redis: XACK)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Leave the group. Records polled but not committed go back to the group."""

    def __enter__(self) -> GroupConsumer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Bus(abc.ABC):
    kind: str  # "kafka" or "redis"

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise BusUnavailable (within a bounded time) unless the bus answers."""

    @abc.abstractmethod
    def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Create the topic; False when it already existed."""

    @abc.abstractmethod
    def list_topics(self) -> list[TopicInfo]: ...

    @abc.abstractmethod
    def delete_topic(self, name: str) -> None: ...

    @abc.abstractmethod
    def publish(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> Published:
        """Send one record and wait for the broker's acknowledgement."""

    def publish_many(self, records: list[OutgoingRecord]) -> list[Published | BusError]:
        """Send `records` (topic, value, key, headers) together and wait for every acknowledgement.

        Per record, in order: where it landed, or the BusError that kept it out (one record's
        failure does not stop the others). Records of one topic and key keep their order.
        The adapters keep them all in flight at once; this default sends one at a time.
        """
        outcomes: list[Published | BusError] = []
        for topic, value, key, headers in records:
            try:
                outcomes.append(self.publish(topic, value, key, headers))
            except BusError as error:
                outcomes.append(error)
        return outcomes

    @abc.abstractmethod
    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record without waiting; `flush` waits for it and reports failures.

        For throughput: records are batched in the background and reach the
        broker within a few milliseconds even if `flush` is never called, but
        only `flush` says whether they made it.
        """

    @abc.abstractmethod
    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every record queued by `send` so far is acknowledged.

        Raises the first failure since the previous flush (UnknownTopic for a
        missing topic), or BusTimeout/BusUnavailable when the deadline passes.
        """

    @abc.abstractmethod
    def topic_exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def consumer(self, group: str, topics: list[str], *, client_id: str | None = None) -> GroupConsumer:
        """Join `group`; a group new to a topic starts at its beginning.

        Raises UnknownTopic when one of `topics` does not exist.
        """

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next record will get (Redis: entries added)."""
        return self.end_offsets_many([topic])[topic]

    @abc.abstractmethod
    def end_offsets_many(self, topics: list[str]) -> dict[str, dict[int, int]]:
        """`end_offsets` for many topics in as few round trips as the backend allows."""

    @abc.abstractmethod
    def committed_offsets(self, group: str, topic: str) -> dict[int, int | None]:
        """Per partition, the group's committed offset (Redis: entries acked), None if never."""

    @abc.abstractmethod
    def lag(self, group: str, topic: str) -> list[PartitionLag]: ...

    @abc.abstractmethod
    def group_lag(self, group: str) -> list[PartitionLag]:
        """`lag` for every topic the group consumes or has committed on."""

    def committed_offsets_many(self, groups: list[str]) -> dict[str, dict[str, dict[int, int | None]]]:
        """{group: {topic: {partition: committed}}} for every topic each group committed on.

        The monitor's collector calls this every tick for every group, so the
        backends override it with a batched read; this default asks group by group.
        """
        return {g: {t: self.committed_offsets(g, t) for t in self.describe_group(g).topics} for g in groups}

    @abc.abstractmethod
    def list_groups(self) -> list[GroupInfo]: ...

    # -- single records, for dead-letter triage ------------------------------------
    # The interface above is about groups consuming topics; triage also asks about
    # single records. A redrive worker that died between "sent" and "marked sent"
    # leaves one record whose fate is unknown: `watermark` before the send and
    # `find_replays` after tell the next run. `handled_check` tells whether a group
    # has finished with a replayed record, so the dead letter can be resolved.

    @abc.abstractmethod
    def watermark(self, topic: str) -> Watermark:
        """Where `topic` ends now: every record written later lies after this mark."""

    @abc.abstractmethod
    def find_replays(
        self, topic: str, mark: Watermark, wanted: set[tuple[int, int]], timeout_s: float = 30.0
    ) -> dict[tuple[int, int], Found]:
        """The records written after `mark` whose replay headers say one of `wanted`.

        `wanted` holds (x-eventhub-replay-of, x-eventhub-replay-count) pairs. Raises
        BusError when the topic cannot be read to its end within timeout_s: then
        nobody knows whether those replays were sent.
        """

    def handled_check(self) -> Callable[[str, str, int, str], bool]:
        """`handled(group, topic, partition, offset)`: has the group finished with that record?

        Kafka: the group committed past its offset. Each (group, topic) is read once,
        so make one check per pass over many records.
        """
        committed: dict[tuple[str, str], dict[int, int | None]] = {}

        def handled(group: str, topic: str, partition: int, offset: str) -> bool:
            if (group, topic) not in committed:
                committed[(group, topic)] = self.committed_offsets(group, topic)
            done = committed[(group, topic)].get(partition)
            return done is not None and done > int(offset)

        return handled

    def move_poison_entries(self, rule: PoisonRule, min_idle_ms: int, limit: int = 100) -> list[tuple[str, str]]:
        """Dead-letter the entries `rule.group` keeps failing on; [(entry id, new id or "gone")].

        Only Redis Streams has such entries (a Kafka consumer moves on by committing);
        see RedisBus.move_poison_entries.
        """
        return []

    @abc.abstractmethod
    def read(
        self, topic: str, partition: int, start: int | str, limit: int = 1, timeout_s: float = 5.0
    ) -> list[Record]:
        """Up to `limit` records of one partition from position `start` on (Redis: entry id), in order.

        A look without a group: it joins nothing and commits nothing. Fewer records (or
        none) when the partition ends first or `start` is gone (compacted, trimmed, past
        the end). Raises UnknownTopic for a missing topic or partition.
        """

    # -- scans, for the topic browser -------------------------------------------------
    # A scan reads a topic group-less, partition by partition, in batches, from a start
    # position per partition: oldest first up to where each partition ended when the scan
    # began, or newest first down to its log start. A position is opaque to callers:
    # `scan_positions` makes the first ones and `next_position` the one after a record,
    # so a caller can stop anywhere and continue later from exactly there.

    @abc.abstractmethod
    def scan_positions(
        self,
        topic: str,
        *,
        newest_first: bool = True,
        from_time_ms: int | None = None,
        from_offset: int | str | None = None,
        partitions: list[int] | None = None,
    ) -> dict[int, Position]:
        """Where a scan of `partitions` (default all) starts: the end (newest first), the
        first record at or after `from_time_ms`, `from_offset`, else the log start.

        Raises UnknownTopic for a missing topic or partition.
        """

    @abc.abstractmethod
    def scan(
        self,
        topic: str,
        positions: dict[int, Position],
        *,
        newest_first: bool = True,
        batch: int = 500,
        timeout_s: float = 10.0,
    ) -> Iterator[list[Record]]:
        """Batches of records from `positions` on; each batch is of one partition, in scan order.

        Oldest first stops at each partition's end as it was when the scan began (a
        busy topic does not keep it going); newest first stops at the log start.
        Raises BusTimeout when no record came for `timeout_s` although some were due.
        Closing the iterator early releases its client.
        """

    def tail_positions(self, topic: str) -> dict[int, Position]:
        """Where an oldest-first scan sees only records written from now on (a live tail starts here)."""
        return self.scan_positions(topic, newest_first=True)

    @abc.abstractmethod
    def next_position(self, record: Record, newest_first: bool = True) -> Position:
        """The position a scan in that direction continues from, `record` being the last one read."""

    @abc.abstractmethod
    def describe_group(self, group: str) -> GroupInfo:
        """State, members and topics of one group; state "Dead" when it does not exist."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
