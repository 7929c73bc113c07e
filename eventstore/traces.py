"""Traces: the journey of one chain of events, read back from the event store.

A trace is every indexed event sharing one correlation id (`x-eventhub-correlation-id`,
which the SDK sets on the first event of a chain and passes on with `caused_by=`), with
the dead letters of those events. Two readers: `find_trace` (one trace, for the API and
the trace page) and `list_traces` (traces matching filters, newest first, by cursor).

Both stay fast on millions of rows by walking indexes only (docs/event-store.md, "Traces"):
a trace is read by `correlation_id`, an event by `ce_id`, a key by `key_hash`; the list
walks `timestamp` (or `(ce_type, timestamp)`, `(ce_source, timestamp)`) backwards and looks
at no more than SCAN_BUDGET events per request; the dead letters are found by their
`event_id` (the original ce_id; migration 0003 indexes it).

A replay (a dead letter sent again keeps its ce_id) carries `x-eventhub-replay-count`,
which the indexer keeps; an event replayed by another tool is still recognised as a later
row with the same ce_id, its `replay_count` then how many rows with that id came before it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils.dateparse import parse_datetime

from deadletters.models import DeadLetter
from designer.models import Service
from eventstore import payloads
from eventstore.models import IndexedEvent

TRACE_LIMIT = 2000  # events in one trace answer; more are cut ("truncated": true)
DEAD_LETTER_LIMIT = 500
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
SCAN_CHUNK = 500
SCAN_BUDGET = 5000  # events the list looks at per request; the cursor says where to go on
LIVE_WINDOW = timedelta(minutes=5)  # a trace whose newest event is younger may still grow
SERVICE_PREFIX = "/services/"  # the SDK's ce_source: f"/services/{service}" (eventhub/sdk/producer.py)
IDENT_MAX = 200  # correlation ids and ce_ids are cut at 200 characters by the indexer

_EVENT_COLUMNS = (
    "id",
    "bus",
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key_text",
    "ce_id",
    "ce_type",
    "ce_source",
    "correlation_id",
    "causation_id",
    "replay_count",
    "schema_version_number",
    "validity",
    "invalid_path",
    "invalid_rule",
)
_VALID = {IndexedEvent.VALID: True, IndexedEvent.INVALID: False, IndexedEvent.NO_SCHEMA: None}


class BadCursor(ValueError):
    """A list cursor that this module did not write."""


# --------------------------------------------------------------------------- small helpers
def iso(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z, as the SDK writes ce_time."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def key_hash(key: str) -> str:
    """What IndexedEvent.key_hash holds for a key given as text (eventstore.columns.key_hash)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def service_name(ce_source: str) -> str:
    """`/services/checkout` -> `checkout` (what the SDK writes); another source as it is."""
    if ce_source.startswith(SERVICE_PREFIX) and len(ce_source) > len(SERVICE_PREFIX):
        return ce_source[len(SERVICE_PREFIX) :]
    return ce_source


def services_of(sources: Iterable[str]) -> dict[str, str]:
    """{ce_source: service}: the designed Service's slug when its slug or name matches, else the name."""
    names = {source: service_name(source) for source in sources}
    designed: dict[str, str] = {}
    wanted = set(names.values()) - {""}
    if wanted:
        for slug, name in Service.objects.filter(Q(slug__in=wanted) | Q(name__in=wanted)).values_list("slug", "name"):
            designed.setdefault(name, slug)
            designed[slug] = slug  # a slug match wins over another service's name
    return {source: designed.get(name, name) for source, name in names.items()}


def sources_of(service: str) -> set[str]:
    """The ce_source values a service's events carry: the inverse of `services_of`."""
    names = {service}
    for slug, name in Service.objects.filter(Q(slug=service) | Q(name=service)).values_list("slug", "name"):
        names |= {slug, name}
    return {SERVICE_PREFIX + name for name in names} | {service}


# --------------------------------------------------------------------------- one trace
def _rows(events: QuerySet[IndexedEvent], limit: int) -> list[dict[str, Any]]:
    """The first `limit` + 1 of these events by time, as dicts (one range of the correlation index)."""
    return list(events.order_by("timestamp", "id").values(*_EVENT_COLUMNS)[: limit + 1])


def causal_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events in a topological order of causation_id -> id, ties and roots by time.

    Each event's cause is the earliest event carrying its causation_id as ce_id (later ones
    are replays). Kahn's algorithm with a heap on (time, row id); events caught in a cycle
    (only hand-made headers can make one) come last, by time.
    """
    by_time = sorted(events, key=lambda e: (e["_ts"], e["_pk"]))
    first_with_id: dict[str, dict[str, Any]] = {}
    for event in by_time:
        if event["ce_id"]:
            first_with_id.setdefault(event["ce_id"], event)
    children: dict[int, list[dict[str, Any]]] = defaultdict(list)
    waiting: set[int] = set()
    for event in by_time:
        cause = first_with_id.get(event["causation_id"]) if event["causation_id"] else None
        event["_cause"] = cause if cause is not event else None
        if event["_cause"] is not None:
            children[event["_cause"]["_pk"]].append(event)
            waiting.add(event["_pk"])
    heap = [(e["_ts"], e["_pk"], e) for e in by_time if e["_pk"] not in waiting]
    heapq.heapify(heap)
    ordered: list[dict[str, Any]] = []
    while heap:
        _, _, event = heapq.heappop(heap)
        ordered.append(event)
        for child in children[event["_pk"]]:
            waiting.discard(child["_pk"])
            heapq.heappush(heap, (child["_ts"], child["_pk"], child))
    if waiting:
        ordered += [e for e in by_time if e["_pk"] in waiting]
    return ordered


def _event_dict(row: dict[str, Any], services: Mapping[str, str], replay_count: int) -> dict[str, Any]:
    cause = row["_cause"]
    return {
        "id": row["ce_id"],
        "type": row["ce_type"],
        "source": row["ce_source"],
        "service": services.get(row["ce_source"], ""),
        "bus": row["bus"],
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "time": iso(row["_ts"]),
        "causation_id": row["causation_id"],
        "schema_version": row["schema_version_number"],
        "valid": _VALID.get(row["validity"]),
        "invalid_path": row["invalid_path"],
        "invalid_rule": row["invalid_rule"],
        "key": row["key_text"],
        "latency_ms": None if cause is None else round((row["_ts"] - cause["_ts"]).total_seconds() * 1000),
        "replay_count": replay_count,
        # The stored event's number in the index, when its payload is kept (the payload API takes it).
        "payload_id": row["_pk"],
    }


def dead_letters_of(event_ids: Iterable[str], limit: int = DEAD_LETTER_LIMIT) -> list[dict[str, Any]]:
    """The dead letters of these events (by their original ce_id), oldest first."""
    ids = sorted(set(event_ids) - {""})
    if not ids:
        return []
    rows = (
        DeadLetter.objects.filter(event_id__in=ids)
        .order_by("id")
        .values(
            "id",
            "event_id",
            "status",
            "error_class",
            "group",
            "service",
            "source_topic",
            "replay_count",
            "last_failed_at",
        )[:limit]
    )
    return [
        {
            "id": row["id"],
            "event_id": row["event_id"],
            "status": row["status"],
            "error_class": row["error_class"],
            "group": row["group"],
            "service": row["service"],
            "topic": row["source_topic"],
            "replay_count": row["replay_count"],
            "failed_at": iso(row["last_failed_at"]) if row["last_failed_at"] else None,
        }
        for row in rows
    ]


def find_trace(ident: str, limit: int = TRACE_LIMIT) -> dict[str, Any] | None:
    """The trace that `ident` names (a correlation id, or the ce_id of one of its events); None if none.

    Answers the API's dict: correlation_id, events in causal then time order (at most
    `limit`, the earliest ones, with "truncated"), dead_letters, and "live" while the
    newest event is younger than LIVE_WINDOW.
    """
    ident = (ident or "").strip()
    if not ident or len(ident) > IDENT_MAX or "\x00" in ident:
        return None
    # Most look-ups name a correlation id: one query. Else `ident` is an event's id.
    correlation_id, found = ident, _rows(IndexedEvent.objects.filter(correlation_id=ident), limit)
    if not found:
        owner = (
            IndexedEvent.objects.filter(ce_id=ident)
            .order_by("timestamp", "id")
            .values_list("correlation_id", flat=True)
            .first()
        )
        if owner is None:
            return None
        if owner:
            correlation_id, found = owner, _rows(IndexedEvent.objects.filter(correlation_id=owner), limit)
        else:  # an event without a correlation header is a trace of its own (and its replays)
            found = _rows(IndexedEvent.objects.filter(correlation_id="", ce_id=ident), limit)
    truncated = len(found) > limit
    found = found[:limit]
    for row in found:
        row["_pk"], row["_ts"] = row["id"], row["timestamp"]
    services = services_of({row["ce_source"] for row in found})
    seen: dict[str, int] = defaultdict(int)  # rows per ce_id so far, in time order: replays
    replays: dict[int, int] = {}
    for row in sorted(found, key=lambda r: (r["_ts"], r["_pk"])):
        # The replay header when the indexer read one, else the rows before it with its id.
        replays[row["_pk"]] = max(row["replay_count"], seen[row["ce_id"]] if row["ce_id"] else 0)
        seen[row["ce_id"]] += 1
    events = [_event_dict(row, services, replays[row["_pk"]]) for row in causal_order(found)]
    newest = max((row["_ts"] for row in found), default=None)
    return {
        "correlation_id": correlation_id,
        "events": events,
        "dead_letters": dead_letters_of(row["ce_id"] for row in found),
        "truncated": truncated,
        "services": sorted({e["service"] for e in events}),
        "first_time": iso(min(row["_ts"] for row in found)) if found else None,
        "last_time": iso(newest) if newest else None,
        "live": newest is not None and newest > datetime.now(UTC) - LIVE_WINDOW,
    }


def event_payload(user, pk: int) -> dict[str, Any] | None:
    """Indexed event `pk`'s payload as `user` may see it (eventstore/payloads.py); None for no such event.

    Kept in the row or read back from the bus by position; masked like a dead letter's
    (x-eventhub-pii), an unmasked read audited.
    """
    event = IndexedEvent.objects.select_related("schema_version").filter(pk=pk).first()
    if event is None:
        return None
    shown = payloads.shown(event, user, via="trace")
    return {
        "id": event.pk,
        "event_id": event.ce_id,
        "topic": event.topic,
        "offset": event.offset,
        "found": shown.found,
        "problem": shown.problem,
        "encoding": shown.encoding,
        "payload": shown.value if shown.found else None,
        "masked": shown.masked,
        "truncated": shown.cut,
    }


# --------------------------------------------------------------------------- the list
def encode_cursor(moment: datetime, pk: int) -> str:
    """The position (broker time, row id) a list page stopped at, as an opaque URL-safe token."""
    return base64.urlsafe_b64encode(f"{moment.astimezone(UTC).isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (timestamp, row id) a page starts after; BadCursor for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        moment_text, pk_text = text.split("|")
        moment = parse_datetime(moment_text)
        if moment is None or moment.tzinfo is None or not pk_text.isdigit():
            raise ValueError(text)
        return moment, int(pk_text)
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise BadCursor("Not a cursor this list gave out.") from error


def matching_events(filters: Mapping[str, Any]) -> QuerySet[IndexedEvent]:
    """Events that match the event-level filters (type, service, since, until, key, event_id)."""
    events = IndexedEvent.objects.exclude(correlation_id="")
    if filters.get("type"):
        events = events.filter(ce_type=filters["type"])
    if filters.get("service"):
        events = events.filter(ce_source__in=sorted(sources_of(filters["service"])))
    if filters.get("since"):
        events = events.filter(timestamp__gte=filters["since"])
    if filters.get("until"):
        events = events.filter(timestamp__lt=filters["until"])
    if filters.get("key"):
        events = events.filter(key_hash=key_hash(filters["key"]))
    if filters.get("event_id"):
        events = events.filter(ce_id=filters["event_id"])
    return events


def trace_rows(correlation_ids: list[str]) -> dict[str, dict[str, Any]]:
    """One summary per trace: times, event count, types, services, dead letters and invalid events."""
    if not correlation_ids:
        return {}
    events = IndexedEvent.objects.filter(correlation_id__in=correlation_ids)
    rows: dict[str, dict[str, Any]] = {}
    for stats in (
        events.values("correlation_id")
        .annotate(
            n=Count("id"),
            first=Min("timestamp"),
            last=Max("timestamp"),
            invalid=Count("id", filter=Q(validity=IndexedEvent.INVALID)),
        )
        .order_by()
    ):
        rows[stats["correlation_id"]] = {
            "correlation_id": stats["correlation_id"],
            "first_time": iso(stats["first"]),
            "last_time": iso(stats["last"]),
            "events": stats["n"],
            "types": set(),
            "services": set(),
            "dead_letters": 0,
            "invalid": stats["invalid"],
        }
    kinds = list(events.values_list("correlation_id", "ce_type", "ce_source").distinct().order_by())
    services = services_of({source for _, _, source in kinds})
    for correlation_id, ce_type, source in kinds:
        rows[correlation_id]["types"].add(ce_type)
        rows[correlation_id]["services"].add(services[source])
    failed = list(
        DeadLetter.objects.filter(event_id__in=events.exclude(ce_id="").values("ce_id")).values_list(
            "event_id", flat=True
        )
    )
    if failed:
        owner = dict(events.filter(ce_id__in=set(failed)).values_list("ce_id", "correlation_id"))
        for event_id in failed:
            if event_id in owner:
                rows[owner[event_id]]["dead_letters"] += 1
    for row in rows.values():
        row["types"], row["services"] = sorted(row["types"] - {""}), sorted(row["services"] - {""})
    return rows


def _keeps(row: dict[str, Any], filters: Mapping[str, Any]) -> bool:
    """The trace-level filters: has_dead_letter and invalid (True, False or None for either)."""
    for name, count in (("has_dead_letter", "dead_letters"), ("invalid", "invalid")):
        wanted = filters.get(name)
        if wanted is not None and wanted != (row[count] > 0):
            return False
    return True


def _narrowed(correlation_ids: list[str], filters: Mapping[str, Any]) -> list[str]:
    """Only the traces with a dead letter, or an invalid event, when the filters ask for them.

    One cheap query each, so that the summaries are computed for the traces listed only.
    """
    if not correlation_ids:
        return correlation_ids
    events = IndexedEvent.objects.filter(correlation_id__in=correlation_ids)
    if filters.get("has_dead_letter") is True:
        failed = events.filter(ce_id__in=DeadLetter.objects.exclude(event_id="").values("event_id"))
        keep = set(failed.values_list("correlation_id", flat=True))
        correlation_ids = [cid for cid in correlation_ids if cid in keep]
    if filters.get("invalid") is True and correlation_ids:
        invalid = events.filter(validity=IndexedEvent.INVALID, correlation_id__in=correlation_ids)
        keep = set(invalid.values_list("correlation_id", flat=True))
        correlation_ids = [cid for cid in correlation_ids if cid in keep]
    return correlation_ids


def _after(position: tuple[datetime, int]) -> Q:
    moment, pk = position
    return Q(timestamp__lt=moment) | Q(timestamp=moment, id__lt=pk)


def _not_after(position: tuple[datetime, int]) -> Q:
    moment, pk = position
    return Q(timestamp__gt=moment) | Q(timestamp=moment, id__gte=pk)


def list_traces(
    filters: Mapping[str, Any], cursor: str | None = None, limit: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], str | None]:
    """(traces, next cursor): traces with an event matching `filters`, newest first.

    A trace's place is its newest matching event. The events are walked newest first in
    chunks; the first time a correlation id shows up is its place, unless a matching event
    of it lies before the cursor (it was on an earlier page). At most SCAN_BUDGET events
    are looked at: a page can hold fewer than `limit` traces and still have a next cursor.
    Raises BadCursor.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    events = matching_events(filters)
    start = decode_cursor(cursor) if cursor else None
    position = start
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    scanned = 0
    while len(found) < limit and scanned < SCAN_BUDGET:
        walk = events.filter(_after(position)) if position else events
        chunk = list(walk.order_by("-timestamp", "-id").values_list("timestamp", "id", "correlation_id")[:SCAN_CHUNK])
        if not chunk:
            return found, None
        scanned += len(chunk)
        fresh = list(dict.fromkeys(cid for _, _, cid in chunk if cid not in seen))
        listed_before = set()
        if start and fresh:
            listed_before = set(
                events.filter(_not_after(start), correlation_id__in=fresh).values_list("correlation_id", flat=True)
            )
        rows = trace_rows(_narrowed([cid for cid in fresh if cid not in listed_before], filters))
        for moment, pk, cid in chunk:
            position = (moment, pk)
            if cid in seen:
                continue
            seen.add(cid)
            row = rows.get(cid)
            if row is not None and _keeps(row, filters):
                found.append(row)
                if len(found) == limit:
                    break
    return found, encode_cursor(*position) if position else None
