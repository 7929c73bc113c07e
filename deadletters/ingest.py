"""The dead-letter ingester: every dead-letter topic on both buses, into the DeadLetter table.

One consumer group per bus and installation (`eventhub-dlq-ingester`, with the
monitor namespace appended outside the default one: `default_group`) tails every
topic that counts as a dead-letter topic: names matching settings.EVENTHUB_DLQ_PATTERNS
plus every designed Topic.dead_letter_topic. The set is re-discovered every few
seconds and the group re-subscribed when it changed.

Exactly once in the table, whatever crashes:
1. poll a batch;
2. insert the rows in one transaction; a row whose DLQ position (bus, topic,
   partition, offset) is already there is skipped (the unique constraint is
   the last word: INSERT OR IGNORE, on PostgreSQL ON CONFLICT DO NOTHING);
3. only then commit the batch on the bus.
A crash before 3 means the batch comes again and step 2 skips what it already
has; nothing is committed before it is in the database, so nothing is lost.
A record the database refuses (a constraint, a value it cannot hold) is parked
in UnstoredDeadLetter with its position and the error instead, and the rest of
its batch stored one by one: a poison record is counted, never read forever.

Alongside, on the same thread (so it sees the database as the ingester left it):
- Redis poison entries of designed Redis consumers are moved to `<stream>:dlq`
  (`RedisBus.move_poison_entries`);
- retried dead letters become `resolved` once their group has handled the
  replay and no failure of that replay came back (`check_resolved`).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from binascii import b2a_base64
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, close_old_connections, transaction
from django.utils import timezone

from deadletters import actions
from deadletters import headers as dead_letter_headers
from deadletters.models import AuditEntry, DeadLetter, UnstoredDeadLetter
from designer import privileged
from designer.models import Consumer as DesignedConsumer
from designer.models import EventType, SchemaVersion, Topic
from eventhub import background, connections
from eventhub.bulk import insert_ignoring_conflicts
from eventhub.bus import (
    Bus,
    BusError,
    BusTimeout,
    BusUnavailable,
    PoisonRule,
    Record,
    UnknownTopic,
    open_bus,
)
from eventhub.bus.follow import Follower
from eventhub.sdk import headers as h
from eventhub.sdk.cloudevents import CloudEvent
from eventhub.sdk.payload import MAX_BYTES

log = logging.getLogger(__name__)

INGESTER_GROUP = "eventhub-dlq-ingester"
DEFAULT_NAMESPACE = "eventhub:monitor"
DISCOVER_EVERY_S = 5.0
RESOLVE_EVERY_S = 5.0
# Poison entries must be idle this long: twice the Redis adapter's claim_idle_ms, so a
# live consumer gets the entry back (and dead-letters it itself) before we step in.
POISON_IDLE_MS = 60_000
BATCH = 500
SEARCH_TEXT_MAX = 64 * 1024
_RESOLVE_LIMIT = 500
_PARK_ERROR_MAX = 2_000
# The database refusing a row (a constraint, a value it cannot hold), or Python failing to
# prepare a value for it. Not OperationalError: unreachable or locked, the batch comes again.
_REFUSED = (IntegrityError, DataError, ValueError, TypeError, OverflowError, RecursionError)


# --------------------------------------------------------------------------- one record -> one row
def _clean(text: Any, limit: int | None = None) -> str:
    """Text safe for any database (PostgreSQL refuses NUL) and within the column."""
    if text is None:
        return ""
    if type(text) is not str or "\x00" in text:
        text = str(text).replace("\x00", "\ufffd")
    return text[:limit] if limit else text


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _int_header(record: Record, name: str) -> int | None:
    """A non-negative whole number header (x-eventhub-replay-count, -replay-of, -schema-version), or None."""
    raw = record.header(name)
    try:
        value = int(raw.decode("ascii").strip()) if raw is not None else None
    except (AttributeError, UnicodeDecodeError, ValueError):
        return None
    return value if value is not None and value >= 0 else None


def _moment(ms: int | None) -> datetime | None:
    if ms is None or ms < 0:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@cache
def _max(name: str) -> int:
    return DeadLetter._meta.get_field(name).max_length


def build_row(kind: str, record: Record, cap: int) -> DeadLetter:
    """An unsaved DeadLetter with everything the record says; never raises on bad input."""
    values = row_values(kind, record, cap)
    for name in ("headers", "raw_headers"):  # lists, as the row reads back from the database
        values[name] = [list(pair) for pair in values[name]]
    return DeadLetter(**values)


def row_values(kind: str, record: Record, cap: int) -> dict[str, Any]:
    """build_row's columns by attribute name; the rest take their defaults. What store() inserts."""
    return _row_and_type(kind, record, cap)[0]


def _row_and_type(kind: str, record: Record, cap: int) -> tuple[dict[str, Any], str | None, int | None]:
    """row_values, the event type's name and the schema version's number (the design's
    EventType and SchemaVersion are looked up per batch).

    Header pairs are tuples (the same JSON): the garbage collector stops tracking a tuple
    of strings, so a batch of rows leaves it a few objects per row to walk, not thirty.
    A structured CloudEvent is stored whole (the raw value, replayed as it came), and its
    `data` is the payload's JSON: what the schema describes, shown and edited.
    """
    meta = dead_letter_headers.decode(record.headers, record.value, max_bytes=max(cap, MAX_BYTES))
    payload = dead_letter_headers.decode_payload(record.value, cap)
    source_topic = meta.original_topic or h.dead_letter_source(record.topic) or ""
    if meta.original_entry_id:
        source_partition, source_offset = 0, meta.original_entry_id
    else:
        source_partition = meta.original_partition
        source_offset = "" if meta.original_offset is None else str(meta.original_offset)
    failed_at = meta.failed_at or _moment(record.timestamp_ms) or timezone.now()
    group = meta.group or (f"connect-{meta.connector}" if meta.connector else "")
    payload_json, payload_problem = payload.json, payload.problem
    if meta.cloudevent is not None and payload_json is not None:
        payload_json, payload_problem = _cloudevent_data(meta.cloudevent)
    # jsonb cannot hold \u0000; the raw bytes keep it. Parsed JSON can only hold NUL from that
    # escape (a raw NUL makes the payload binary), so most payloads skip the walk.
    if payload_json is not None and "\\u0000" in payload.text and _has_nul(payload_json):
        payload_json, payload_problem = None, "holds \\u0000, which the database cannot store as JSON"
    size, truncated = payload.size, payload.truncated
    if meta.payload_size is not None and size < meta.payload_size < 2**63:
        # The SDK cut a value too large for the dead-letter topic (x-eventhub-payload-size).
        size, truncated = meta.payload_size, True
        payload_json, payload_problem = None, f"cut by the consumer at {payload.size} of {size} bytes"
    row = {
        "bus": kind,
        "dlq_topic": _clean(record.topic, _max("dlq_topic")),
        "dlq_partition": record.partition,
        "dlq_offset": str(record.offset),
        "source_topic": _clean(source_topic, _max("source_topic")),
        "source_partition": source_partition,
        "source_offset": _clean(source_offset, _max("source_offset")),
        "key": record.key,
        "payload": payload.raw,
        "payload_size": size,
        "truncated": truncated,
        "payload_json": payload_json,
        "payload_problem": _clean(payload_problem, _max("payload_problem")),
        "payload_text": _clean(payload.text or "", SEARCH_TEXT_MAX),
        "headers": meta.headers_decoded,  # text without NUL: decode renders control characters as hex
        "raw_headers": [
            (_clean(name), None if value is None else b2a_base64(value, newline=False).decode("ascii"))
            for name, value in record.headers
        ],
        "decode_problems": [_clean(problem) for problem in meta.problems],
        "convention": meta.convention,
        "group": _clean(group, _max("group")),
        "service": _clean(meta.service, _max("service")),
        "attempts": meta.attempts,
        "error_class": _clean(meta.error_class, _max("error_class")),
        "error_cause": _clean(meta.error_cause, _max("error_cause")),
        "error_message": _clean(meta.error_message),
        "stacktrace": _clean(meta.stacktrace),
        "event_id": _clean(meta.event_id, _max("event_id")),
        "first_failed_at": failed_at,
        "last_failed_at": failed_at,
        "replay_count": _int_header(record, h.REPLAY_COUNT) or 0,
        # Kept until the batch knows which ids exist.
        "replay_of_id": _int_header(record, h.REPLAY_OF),
    }
    event_type = meta.event_type.strip() if meta.event_type else None
    return row, event_type or None, _int_header(record, h.SCHEMA_VERSION)


def _cloudevent_data(event: CloudEvent) -> tuple[Any, str | None]:
    """(payload JSON, why none) of a structured CloudEvent."""
    if event.data is None:
        return None, "the CloudEvent has no data"
    if isinstance(event.data, bytes):
        return None, "the CloudEvent's data is binary (data_base64)"
    return event.data, None


@dataclass
class _Design:
    """What the design says about a batch: event types, schema versions, services by group."""

    event_types: dict[str, int] = field(default_factory=dict)
    versions: dict[tuple[int, int], int] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_rows(cls, rows: list[dict[str, Any]], names: set[str], numbers: set[int]) -> _Design:
        design = cls()
        design.event_types = dict(EventType.objects.filter(name__in=names).values_list("name", "id"))
        if design.event_types and numbers:
            for pk, event_type_id, version in SchemaVersion.objects.filter(
                event_type_id__in=design.event_types.values(), version__in=numbers
            ).values_list("id", "event_type_id", "version"):
                design.versions[(event_type_id, version)] = pk
        groups = {row["group"] for row in rows if row["group"] and not row["service"]}
        for group, service in (
            DesignedConsumer.objects.filter(group__in=groups).order_by("id").values_list("group", "service__name")
        ):
            design.services.setdefault(group, service)
        return design


def default_group() -> str:
    """One ingester group per EventHub installation (its monitor namespace).

    Installations sharing a Kafka cluster or a Redis (staging and production, test
    apps) would otherwise be members of one group and split the dead letters: each
    would store only what its members were assigned. Named as the heartbeat reader's
    group is (monitor.collector.default_heartbeat_group); the default namespace keeps
    the old name, so an upgraded installation resumes from its committed position.
    """
    namespace = settings.EVENTHUB_MONITOR_NAMESPACE
    if namespace == DEFAULT_NAMESPACE:
        return INGESTER_GROUP
    return f"{INGESTER_GROUP}.{re.sub(r'[^A-Za-z0-9._-]', '.', namespace)}"


def _position(row: dict[str, Any]) -> tuple[str, int, str]:
    return (row["dlq_topic"], row["dlq_partition"], row["dlq_offset"])


def _positions(kind: str, rows: list[dict[str, Any]], *columns: str) -> list[tuple]:
    """`columns` of the stored rows at (or near: topic and offset match) these rows' positions."""
    if not rows:
        return []
    return list(
        DeadLetter.objects.filter(
            bus=kind,
            dlq_topic__in={row["dlq_topic"] for row in rows},
            dlq_offset__in=[row["dlq_offset"] for row in rows],
        ).values_list(*columns)
    )


# --------------------------------------------------------------------------- the ingester
class Ingester:
    """Tails the dead-letter topics of the given buses. For one thread.

    >>> ingester = Ingester()
    >>> ingester.step(1.0)   # poll once on each bus, store, commit; returns new rows
    """

    def __init__(
        self,
        kinds: Iterable[str] = ("kafka", "redis"),
        *,
        buses: dict[str, Bus] | None = None,
        group: str | None = None,
        patterns: list[str] | None = None,
        cap: int | None = None,
        client_id: str | None = None,
        discover_every_s: float = DISCOVER_EVERY_S,
        resolve_every_s: float = RESOLVE_EVERY_S,
        poison_idle_ms: int = POISON_IDLE_MS,
        batch: int = BATCH,
    ) -> None:
        buses = buses or {}
        self.group = group or default_group()
        self.patterns = list(settings.EVENTHUB_DLQ_PATTERNS if patterns is None else patterns)
        self.cap = cap or settings.EVENTHUB_DLQ_PAYLOAD_CAP
        # Adapters of its own unless given: the ingester's admin calls (lag, committed offsets)
        # then never run at the same time as another thread's on a shared Kafka adapter.
        self.follower = Follower(
            {kind: buses.get(kind) or open_bus(kind, **connections.bus_options(kind)) for kind in kinds},
            self.group,
            # Stable per host: a restarted ingester gets back the Redis entries it had not acked.
            client_id or f"{self.group}-{socket.gethostname()}",
            select=self.dead_letter_topics,
            store=lambda kind, records: len(self.store(kind, records)),
            what="dead-letter ingester",
            owned=[kind for kind in kinds if kind not in buses],
            discover_every_s=discover_every_s,
        )
        self.resolve_every_s = resolve_every_s
        self.poison_idle_ms = poison_idle_ms
        self._skipped_rules: set[tuple] = set()
        self.batch = batch
        self._next_resolve = 0.0

    @property
    def tails(self):
        return self.follower.tails

    @property
    def _down(self) -> set[str]:
        return self.follower.down

    # -- the loop ---------------------------------------------------------------------
    def step(self, timeout_s: float = 1.0) -> int:
        """Discover (when due), poll each bus once, store, commit; then housekeeping when due.

        Returns how many new dead letters were stored.
        """
        if self.follower.discovery_due():
            self.discover()
            self.move_poison_entries()
        created = self.follower.poll(timeout_s, self.batch)
        if time.monotonic() >= self._next_resolve:
            self.check_resolved()
            self._next_resolve = time.monotonic() + self.resolve_every_s
        return created

    def discover(self) -> None:
        """Re-subscribe each bus' group when its set of dead-letter topics changed."""
        self.follower.discover()

    def close(self) -> None:
        self.follower.close()

    # -- which topics -------------------------------------------------------------------
    def dead_letter_topics(self, kind: str) -> frozenset[str]:
        """The dead-letter topics that exist on bus `kind` now."""
        names = {topic.name for topic in self.tails[kind].bus.list_topics()}
        # A designed dead-letter topic counts only when named like one (designer/privileged.py):
        # rows saved before that rule, or by hand, never point the ingester at a live topic.
        designed = {
            dead_letter
            for address, dead_letter in Topic.objects.filter(bus=kind)
            .exclude(dead_letter_topic="")
            .values_list("address", "dead_letter_topic")
            if privileged.is_allowed_dead_letter_topic(dead_letter, kind, address)
        }
        return frozenset(name for name in names if name in designed or h.is_dead_letter_topic(name, self.patterns))

    # -- storing ------------------------------------------------------------------------
    def store(self, kind: str, records: list[Record]) -> list[int]:
        """Insert one row per record not stored yet, in one transaction; returns the new ids.

        A batch the database refuses is stored again one record at a time, and a record
        it still refuses is parked (`_park`), so that one bad record neither holds back
        the others nor has its batch read again forever. Any other database error is
        raised: nothing is committed on the bus and the batch comes again.
        """
        rows, kept, names, versions = [], [], [], []
        for record in records:
            try:
                row, name, version = _row_and_type(kind, record, self.cap)
            except Exception as error:  # noqa: BLE001 - a bug the record triggers must not stop ingestion
                self._park(kind, record, error)
            else:
                rows.append(row)
                kept.append(record)
                names.append(name)
                versions.append(version)
        design = _Design.for_rows(rows, set(names) - {None}, set(versions) - {None})
        for row, name, version in zip(rows, names, versions, strict=True):
            row["event_type_id"] = event_type_id = design.event_types.get(name) if name else None
            if event_type_id and version is not None:
                row["schema_version_id"] = design.versions.get((event_type_id, version))
            if not row["service"] and row["group"]:
                row["service"] = _clean(design.services.get(row["group"], ""), _max("service"))
        try:
            return self._insert(kind, rows)
        except _REFUSED as error:
            log.warning(
                "dead-letter ingester: a batch of %d refused (%s); storing one by one", len(rows), type(error).__name__
            )
        ids = []
        for row, record in zip(rows, kept, strict=True):
            try:
                ids += self._insert(kind, [row])
            except _REFUSED as error:
                self._park(kind, record, error)
        return ids

    def _insert(self, kind: str, rows: list[dict[str, Any]]) -> list[int]:
        with transaction.atomic():
            stored = set(_positions(kind, rows, "dlq_topic", "dlq_partition", "dlq_offset"))
            new = {}
            for row in rows:
                position = _position(row)
                if position not in stored:
                    new.setdefault(position, row)  # a batch may hold a record twice after a rebalance
            fresh = list(new.values())
            self._link_replays(fresh)
            insert_ignoring_conflicts(DeadLetter, fresh)
            ids = [
                pk
                for pk, *position in _positions(kind, fresh, "id", "dlq_topic", "dlq_partition", "dlq_offset")
                if tuple(position) in new
            ]
            self._audit_returns(fresh, kind)
            if ids:
                transaction.on_commit(lambda: actions.broadcast_new(ids))
        return ids

    def _park(self, kind: str, record: Record, error: BaseException) -> None:
        """Record that the dead letter at this position could not be stored, and why.

        Only plain, cleaned columns, so that the database takes it when it is up; when
        even this fails the error is raised and the batch comes again.
        """
        position = f"{kind}:{record.topic}/{record.partition}@{record.offset}"
        UnstoredDeadLetter.objects.bulk_create(
            [
                UnstoredDeadLetter(
                    bus=kind,
                    dlq_topic=_clean(record.topic, _max("dlq_topic")),
                    dlq_partition=record.partition,
                    dlq_offset=_clean(record.offset, _max("dlq_offset")),
                    payload_size=len(record.value or b""),
                    error=_clean(f"{type(error).__name__}: {error}", _PARK_ERROR_MAX),
                )
            ],
            ignore_conflicts=True,
        )
        log.error("dead-letter ingester: %s not stored (%s); parked", position, type(error).__name__)

    def _link_replays(self, rows: list[dict[str, Any]]) -> None:
        """A failed replay names its original in x-eventhub-replay-of: link it if it exists."""
        wanted = {row["replay_of_id"] for row in rows if row["replay_of_id"]}
        if not wanted:
            return
        originals = dict(DeadLetter.objects.filter(pk__in=wanted).values_list("id", "first_failed_at"))
        for row in rows:
            if row["replay_of_id"] not in originals:
                row["replay_of_id"] = None
            elif originals[row["replay_of_id"]]:
                row["first_failed_at"] = originals[row["replay_of_id"]]

    def _audit_returns(self, rows: list[dict[str, Any]], kind: str) -> None:
        returned = [row for row in rows if row["replay_of_id"]]
        if not returned:
            return
        by_position = {
            tuple(position): pk
            for pk, *position in _positions(kind, returned, "id", "dlq_topic", "dlq_partition", "dlq_offset")
        }
        AuditEntry.objects.bulk_create(
            AuditEntry(
                dead_letter_id=row["replay_of_id"],
                action="replay_failed",
                result=f"replay {row['replay_count']} failed again: dead letter #{new_id}",
                detail={"dead_letter": new_id, "replay_count": row["replay_count"], "error_class": row["error_class"]},
            )
            for row in returned
            if (new_id := by_position.get(_position(row)))
        )

    # -- Redis poison entries -----------------------------------------------------------
    def poison_rules(self) -> list[PoisonRule]:
        """Designed Redis consumers that dead-letter: (stream, group) with the smallest max_attempts."""
        rules: dict[tuple[str, str], PoisonRule] = {}
        for stream, group, attempts, service in DesignedConsumer.objects.filter(
            event_type__topic__bus=Topic.REDIS, dead_letter=True
        ).values_list("event_type__topic__address", "group", "max_attempts", "service__name"):
            known = rules.get((stream, group))
            if known is None or attempts < known.max_attempts:
                rules[(stream, group)] = PoisonRule(stream, group, attempts, service)
        return list(rules.values())

    def move_poison_entries(self) -> int:
        tail = self.tails.get("redis")
        if tail is None:
            return 0
        moved = 0
        try:
            for rule in self.poison_rules():
                try:
                    moved += len(tail.bus.move_poison_entries(rule, self.poison_idle_ms))
                except (BusUnavailable, BusTimeout):
                    raise
                except BusError as error:
                    self._skip_rule(rule, error)
        except BusError as error:
            self.follower.bus_failed("redis", error)
        if moved:
            self.follower.discover_soon()  # a new <stream>:dlq may have appeared
        return moved

    def _skip_rule(self, rule: PoisonRule, error: BusError) -> None:
        """One broken rule (its key is no stream: WRONGTYPE) is skipped, logged once; the others go on."""
        key = (rule.stream, rule.group, type(error).__name__, str(error)[:200])
        if key not in self._skipped_rules:
            self._skipped_rules.add(key)
            log.warning("poison rule %s/%s skipped: %s", rule.stream, rule.group, error)

    # -- resolution ---------------------------------------------------------------------
    def check_resolved(self) -> list[int]:
        """Mark retried dead letters resolved once their group handled the replay.

        1. For each retried dead letter (latest replay not come back), ask the bus
           whether the group (the targeted one, else the failing one) has
           finished with the replayed record.
        2. For those it has, make sure this ingester has read its dead-letter
           topic to the end, asked *after* step 1: the SDK dead-letters a record
           before committing it, so a failure of the replay would be in the
           table by now.
        3. Then, if no failed replay came back, mark it resolved (conditionally).
        """
        resolved: list[int] = []
        candidates = list(
            DeadLetter.objects.awaiting_resolution()
            .filter(bus__in=list(self.tails))
            .only(
                "id",
                "bus",
                "dlq_topic",
                "group",
                "replay_group",
                "replay_topic",
                "replay_partition",
                "replay_offset",
                "replay_count",
            )
            .order_by("replayed_at")[:_RESOLVE_LIMIT]
        )
        by_bus: dict[str, list[DeadLetter]] = defaultdict(list)
        for dead_letter in candidates:
            if dead_letter.replay_group or dead_letter.group:
                by_bus[dead_letter.bus].append(dead_letter)
        for kind, items in by_bus.items():
            bus = self.tails[kind].bus
            handled_by_group = bus.handled_check()
            try:
                handled = [
                    dl
                    for dl in items
                    if handled_by_group(
                        dl.replay_group or dl.group, dl.replay_topic, dl.replay_partition or 0, dl.replay_offset
                    )
                ]
                caught_up = {topic: self._caught_up(bus, topic) for topic in {dl.dlq_topic for dl in handled}}
            except BusError as error:
                # Only this pass is lost: the next one asks again. The reading goes on.
                log.warning("dead-letter resolution check on %s failed: %s", kind, error)
                continue
            for dl in handled:
                if caught_up[dl.dlq_topic] and actions.mark_resolved(dl.pk, dl.replay_count):
                    resolved.append(dl.pk)
        return resolved

    def _caught_up(self, bus: Bus, topic: str) -> bool:
        try:
            return all(row.lag == 0 for row in bus.lag(self.group, topic))
        except UnknownTopic:
            return True  # no dead-letter topic: no failure can have come back there


def run_forever(stop: threading.Event, **options: Any) -> None:
    """Ingest until `stop` is set; bus and database failures are logged and retried."""
    ingester = Ingester(**options)
    background.settle_heap()
    log.info("dead-letter ingester started (group %s)", ingester.group)
    try:
        while not stop.is_set():
            try:
                background.between_steps()
                ingester.step(1.0)
            except Exception:
                log.exception("dead-letter ingester step failed; retrying")
                stop.wait(2.0)
    finally:
        ingester.close()
        close_old_connections()
