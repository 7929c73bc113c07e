"""The indexer: every event on the buses' ordinary topics, one IndexedEvent row each.

One consumer group per bus and installation (`eventhub-indexer.<namespace>`, see
`default_group`) reads every topic that `indexed_topics` selects: names matching
settings.EVENTHUB_INDEX_INCLUDE and none of EVENTHUB_INDEX_EXCLUDE, never a dead-letter
topic (the dead-letter ingester owns those) nor a heartbeat topic. The set is
re-discovered every few seconds and the group re-subscribed when it changed.

Exactly once per position, whatever crashes (eventhub/bus/follow.py, shared with the
dead-letter ingester):
1. poll a batch;
2. insert its rows in one transaction, ignoring a position (bus, topic, partition,
   offset) already stored (the unique constraint decides);
3. only then commit the batch on the bus.
A crash before 3 means the batch comes again and step 2 skips what it has. Sampling
(TopicIndexSetting.sample_rate) hashes the position, so a batch read twice samples the
same events. A restarted indexer resumes from its group's committed position.

Every `purge_every_s` the same thread deletes the events past their retention
(`models.purge_expired`; Celery beat runs it too).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, close_old_connections, transaction
from django.utils import timezone
from jsonschema.exceptions import best_match

from designer import privileged
from designer.models import Topic
from eventhub import background, connections
from eventhub.bulk import insert_ignoring_conflicts
from eventhub.bus import Bus, Record, open_bus
from eventhub.bus.follow import Follower
from eventhub.sdk import headers as h
from eventhub.sdk.payload import MAX_BYTES, PayloadDecodeError
from eventstore import columns, schema_discovery
from eventstore.models import IndexedEvent, TopicIndexSetting, purge_expired
from eventstore.validity import Schemas as _Schemas  # shared with the topic browser

log = logging.getLogger(__name__)

INDEXER_GROUP = "eventhub-indexer"
DISCOVER_EVERY_S = 5.0
PURGE_EVERY_S = 600.0
BATCH = 500
_REFUSED = (IntegrityError, DataError, ValueError, TypeError, OverflowError)


def default_group() -> str:
    """One indexer group per EventHub installation: installations sharing a cluster would split the events."""
    namespace = re.sub(r"[^A-Za-z0-9._-]", ".", settings.EVENTHUB_MONITOR_NAMESPACE)
    return f"{INDEXER_GROUP}.{namespace}"


def _moment(ms: int | None) -> datetime:
    try:
        if ms is not None and ms >= 0:
            return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        pass
    return timezone.now()


@cache
def _max(name: str) -> int:
    return IndexedEvent._meta.get_field(name).max_length


# --------------------------------------------------------------------------- schemas
_UNREADABLE = object()  # the event's data is not JSON


def _data(record: Record, event, max_bytes: int) -> Any:
    """The event's data as JSON, or _UNREADABLE."""
    try:
        return columns.data(record, event, max_bytes)
    except PayloadDecodeError:
        return _UNREADABLE


def _check(payload: Any, validator) -> tuple[str, str, str]:
    """(validity, invalid_path, invalid_rule) of the event's data against a validator."""
    if payload is _UNREADABLE:
        return IndexedEvent.INVALID, "$", "json"
    error = best_match(validator.iter_errors(payload))
    if error is None:
        return IndexedEvent.VALID, "", ""
    return IndexedEvent.INVALID, error.json_path[: _max("invalid_path")], str(error.validator)[: _max("invalid_rule")]


# --------------------------------------------------------------------------- the indexer
class Indexer:
    """Indexes the selected topics of the given buses. For one thread.

    >>> indexer = Indexer()
    >>> indexer.step(1.0)   # poll once on each bus, store, commit; returns new rows
    """

    def __init__(
        self,
        kinds: Iterable[str] = ("kafka", "redis"),
        *,
        buses: dict[str, Bus] | None = None,
        group: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        dead_letter_patterns: list[str] | None = None,
        cap: int | None = None,
        client_id: str | None = None,
        discover_every_s: float = DISCOVER_EVERY_S,
        purge_every_s: float = PURGE_EVERY_S,
        batch: int = BATCH,
    ) -> None:
        buses = buses or {}
        self.group = group or default_group()
        self.include = list(settings.EVENTHUB_INDEX_INCLUDE if include is None else include)
        self.exclude = list(settings.EVENTHUB_INDEX_EXCLUDE if exclude is None else exclude)
        self.dead_letter_patterns = list(
            settings.EVENTHUB_DLQ_PATTERNS if dead_letter_patterns is None else dead_letter_patterns
        )
        self.cap = cap or settings.EVENTHUB_DLQ_PAYLOAD_CAP
        self.max_bytes = MAX_BYTES  # the largest value whose JSON is read to check it (the SDK's limit)
        self.follower = Follower(
            {kind: buses.get(kind) or open_bus(kind, **connections.bus_options(kind)) for kind in kinds},
            self.group,
            # Stable per host: a restarted indexer gets back the Redis entries it had not acked.
            client_id or f"{self.group}-{socket.gethostname()}",
            select=self.indexed_topics,
            store=self.store,
            what="indexer",
            owned=[kind for kind in kinds if kind not in buses],
            discover_every_s=discover_every_s,
        )
        self.purge_every_s = purge_every_s
        self.batch = batch
        self.schemas = _Schemas()
        self.observer = schema_discovery.Observer()
        self._next_purge = time.monotonic() + purge_every_s

    @property
    def tails(self):
        return self.follower.tails

    # -- the loop -----------------------------------------------------------------------
    def step(self, timeout_s: float = 1.0) -> int:
        """Discover (when due), poll each bus once, store, commit; purge when due. Returns new rows."""
        if self.follower.discovery_due():
            self.discover()
            self.observer.flush()
        created = self.follower.poll(timeout_s, self.batch)
        if time.monotonic() >= self._next_purge:
            deleted = purge_expired()
            if deleted:
                log.info("indexer: purged %d expired event(s)", deleted)
            self._next_purge = time.monotonic() + self.purge_every_s
        return created

    def discover(self) -> None:
        """Re-subscribe each bus' group when its set of topics changed."""
        self.follower.discover()

    def close(self) -> None:
        try:
            self.observer.flush()
        except Exception:  # closing must not fail: the samples are a sketch, not data
            log.exception("indexer: the last schema samples were not written")
        self.follower.close()

    # -- which topics -------------------------------------------------------------------
    def indexed_topics(self, kind: str) -> frozenset[str]:
        """The topics on bus `kind` the indexer reads now."""
        names = {topic.name for topic in self.tails[kind].bus.list_topics()}
        designed_dead_letters = {
            dead_letter
            for address, dead_letter in Topic.objects.filter(bus=kind)
            .exclude(dead_letter_topic="")
            .values_list("address", "dead_letter_topic")
            if privileged.is_allowed_dead_letter_topic(dead_letter, kind, address)
        }
        never = {h.HEARTBEAT_TOPIC_KAFKA, h.HEARTBEAT_TOPIC_REDIS} | designed_dead_letters
        return frozenset(
            name
            for name in names
            if name not in never
            and columns.matches(name, self.include)
            and not columns.matches(name, self.exclude)
            and not h.is_dead_letter_topic(name, self.dead_letter_patterns)
        )

    # -- storing ------------------------------------------------------------------------
    def rows(self, kind: str, records: list[Record]) -> list[dict[str, Any]]:
        """The rows (IndexedEvent's columns by attribute name) of the records their topic's sample rate keeps."""
        topic_settings = TopicIndexSetting.objects.for_topics(kind, {record.topic for record in records})
        kept = []
        for record in records:
            setting = topic_settings.get(record.topic)
            if setting is None or columns.sampled(record.topic, record.partition, record.offset, setting.sample_rate):
                kept.append(record)
        # Structured-mode CloudEvents carry their attributes in the value (eventhub/sdk/cloudevents.py).
        events = [columns.envelope(record, self.max_bytes) for record in kept]
        types = [
            columns.attribute(record, event, "type", _max("ce_type"))
            for record, event in zip(kept, events, strict=True)
        ]
        versions = self.schemas.versions_for(set(types))
        return [
            self._row(kind, record, event, ce_type, versions, topic_settings.get(record.topic))
            for record, event, ce_type in zip(kept, events, types, strict=True)
        ]

    def _row(
        self,
        kind: str,
        record: Record,
        event,
        ce_type: str,
        versions: dict[str, dict[int, int]],
        setting: TopicIndexSetting | None,
    ) -> dict[str, Any]:
        number = columns.header_int(record, h.SCHEMA_VERSION)
        registered = versions.get(ce_type, {})
        # The version the event names, else the type's latest: what a consumer would check it against.
        version_id = registered.get(number) if number is not None else None
        checked_id = version_id or (registered[max(registered)] if registered else None)
        validator = self.schemas.validator(checked_id) if checked_id else None
        subject = schema_discovery.subject_of(kind, record.topic, ce_type)
        sampled = self.observer.wants(subject)
        payload = _data(record, event, self.max_bytes) if validator is not None or sampled else _UNREADABLE
        if validator is None:
            validity, path, rule = IndexedEvent.NO_SCHEMA, "", ""
        else:
            validity, path, rule = _check(payload, validator)
        if sampled and payload is not _UNREADABLE:
            self.observer.add(subject, kind, record.topic, ce_type, payload, _moment(record.timestamp_ms))
        value = record.value or b""
        return {
            "bus": kind,
            "topic": record.topic[: _max("topic")],
            "partition": record.partition,
            "offset": str(record.offset)[: _max("offset")],
            "timestamp": _moment(record.timestamp_ms),
            "key_hash": columns.key_hash(record.key),
            "key_text": columns.key_text(record.key),
            "ce_id": columns.attribute(record, event, "id", _max("ce_id")),
            "ce_type": ce_type,
            "ce_source": columns.attribute(record, event, "source", _max("ce_source")),
            "correlation_id": columns.header_text(record, h.CORRELATION_ID, _max("correlation_id")),
            "causation_id": columns.header_text(record, h.CAUSATION_ID, _max("causation_id")),
            # The Distributed Tracing extension's attribute in structured mode, else the header.
            "trace_id": columns.trace_id(
                columns.attribute(record, event, h.TRACEPARENT, 200) or columns.header_text(record, h.TRACEPARENT, 200)
            ),
            "schema_version_number": number,
            "replay_of": columns.header_int(record, h.REPLAY_OF),
            "replay_count": columns.header_int(record, h.REPLAY_COUNT) or 0,
            "schema_version_id": checked_id if validator is not None else version_id,
            "size": len(value),
            "validity": validity,
            "invalid_path": path,
            "invalid_rule": rule,
            "payload": bytes(value[: self.cap]) if setting is not None and setting.keep_payloads else None,
        }

    def store(self, kind: str, records: list[Record]) -> int:
        """Insert a row per kept record not stored yet, in one transaction; returns how many are new.

        A batch the database refuses is stored one row at a time, and a row it still
        refuses is logged and skipped: one bad record must not stop the index.
        """
        rows = self.rows(kind, records)
        try:
            return self._insert(kind, rows)
        except _REFUSED as error:
            log.warning("indexer: a batch of %d refused (%s); storing one by one", len(rows), type(error).__name__)
        created = 0
        for row in rows:
            try:
                created += self._insert(kind, [row])
            except _REFUSED as error:
                where = f"{row['bus']}:{row['topic']}/{row['partition']}@{row['offset']}"
                log.error("indexer: %s not indexed (%s: %s)", where, type(error).__name__, error)
        return created

    def _insert(self, kind: str, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        fresh: dict[tuple[str, int, str], dict[str, Any]] = {}
        for row in rows:
            fresh.setdefault((row["topic"], row["partition"], row["offset"]), row)  # a batch may hold one twice
        # The position's unique constraint skips what is stored: a batch read again after a
        # crash or a rebalance. Rare, so not looked for first.
        with transaction.atomic():
            return insert_ignoring_conflicts(IndexedEvent, list(fresh.values()))


def run_forever(stop: threading.Event, **options: Any) -> None:
    """Index until `stop` is set; bus and database failures are logged and retried."""
    indexer = Indexer(**options)
    background.settle_heap()
    log.info("indexer started (group %s)", indexer.group)
    try:
        while not stop.is_set():
            try:
                background.between_steps()
                indexer.step(1.0)
            except Exception:
                log.exception("indexer step failed; retrying")
                stop.wait(2.0)
    finally:
        indexer.close()
        close_old_connections()
