"""The topic browser: look at the records of any topic on either bus, filtered while scanned.

The views (eventstore/api/browse.py, eventstore/views/browse.py) are thin; the work is here:

1. `parse_query` turns the query string into a `BrowseQuery` (FilterProblem names the bad
   parameter, the API answers 400);
2. `browse` asks the bus for start positions (or takes them from the cursor), scans in
   batches (`Bus.scan`), applies the filters to each record as it comes
   (eventhub/bus/filters.py), and stops at `limit` matches, at `budget` records scanned
   or after SCAN_SECONDS, whichever comes first, with a cursor to go on from there;
3. each match is shown as `message`: CloudEvents decoded in both content modes, binary
   keys, headers and values in base64, the payload masked by the `x-eventhub-pii` marks
   of its type, its validity against the registered schema version it names (else the
   latest; eventstore/validity.py, shared with the indexer).

Records are hostile input: nothing in a record can make `message` raise. Sensitive
values stay hidden from filters too: for a user who may not see them, `q` and `field`
never match a record whose type marks fields (a search would tell the value one
character at a time), as deadletters/sensitive.py does for dead letters. Unmasked
reads are audited once per answer, listing the positions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.dateparse import parse_datetime
from jsonschema.exceptions import best_match

from deadletters import sensitive
from deadletters.models import AuditEntry
from designer.models import EventType
from designer.models import Topic as DesignedTopic
from eventhub import connections, roles
from eventhub.bus import Record, UnknownTopic
from eventhub.bus.filters import FilterError, Filters, parse_field, parse_header, parse_key
from eventhub.sdk import headers as h
from eventhub.sdk import pii
from eventhub.sdk.payload import MAX_BYTES, PayloadDecodeError
from eventstore import columns
from eventstore.models import IndexedEvent
from eventstore.validity import Schemas, checked_version

BUSES = ("kafka", "redis")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
DEFAULT_BUDGET, MAX_BUDGET = 100_000, 1_000_000
SCAN_SECONDS = 10.0  # one answer scans at most this long; the cursor goes on from there
SHOWN_MAX = 64 * 1024  # bytes of a value shown; larger ones are cut (`truncated`)
TEXT_MAX = 1000  # characters of a key, q, type or filter value
MAX_REPEATED = 20  # header= and field= parameters
CURSOR_MAX = 20_000
VIA = "topic-browser"

_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_REDIS_ID = re.compile(r"^\(?\d{1,20}(-\d{1,20})?$")


class FilterProblem(ValueError):
    """A query parameter the browser cannot use: `parameter` names it, the message says why."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass
class BrowseQuery:
    filters: Filters = field(default_factory=Filters)
    partition: int | None = None
    newest_first: bool = True
    from_offset: int | str | None = None
    from_time_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    budget: int = DEFAULT_BUDGET
    cursor: dict[int, int | str] | None = None


# --------------------------------------------------------------------------- topics
def valid_topic_name(kind: str, name: str) -> bool:
    """Names a bus could hold: anything else is answered 404 without asking the bus."""
    if kind == "kafka":
        return bool(_KAFKA_TOPIC.match(name))
    return kind == "redis" and 0 < len(name) <= 1024 and "\x00" not in name


def topics(kind: str) -> list[dict[str, Any]]:
    """Every topic (stream) of the bus: partitions, end offsets, and whether the design has it."""
    bus = connections.bus(kind)
    found = bus.list_topics()
    try:
        ends = bus.end_offsets_many([t.name for t in found]) if found else {}
    except UnknownTopic:  # one was deleted since the listing: ask topic by topic, leave it out
        ends = {}
        for t in found:
            try:
                ends[t.name] = bus.end_offsets(t.name)
            except UnknownTopic:
                continue
        found = [t for t in found if t.name in ends]
    designed = set(DesignedTopic.objects.filter(bus=kind).values_list("address", flat=True))
    return [
        {
            "name": t.name,
            "partitions": t.partitions,
            "end_offsets": {str(p): end for p, end in sorted(ends.get(t.name, {}).items())},
            "designed": t.name in designed,
        }
        for t in found
    ]


def topic_info(kind: str, name: str) -> dict[str, Any]:
    """Partitions and end offsets of one topic; UnknownTopic when the bus has no such topic."""
    if not valid_topic_name(kind, name):
        raise UnknownTopic(name)
    ends = connections.bus(kind).end_offsets(name)
    return {"name": name, "partitions": len(ends), "end_offsets": {str(p): end for p, end in sorted(ends.items())}}


# --------------------------------------------------------------------------- the query
def _one(params, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise FilterProblem(name, "give this parameter once")
    if values and len(values[0]) > TEXT_MAX:
        raise FilterProblem(name, f"at most {TEXT_MAX} characters")
    return values[0] if values else None


def _integer(params, name: str, low: int, high: int) -> int | None:
    text = _one(params, name)
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise FilterProblem(name, f"a whole number from {low} to {high}")
    return int(text)


def parse_query(kind: str, params) -> BrowseQuery:
    """The browser's query from a QueryDict (repeatable `header` and `field`); raises FilterProblem."""
    query = BrowseQuery()
    query.partition = _integer(params, "partition", 0, 1_000_000)
    query.limit = _integer(params, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    query.budget = _integer(params, "budget", 1, MAX_BUDGET) or DEFAULT_BUDGET
    newest = _one(params, "newest")
    if newest not in (None, "", "true", "false", "1", "0"):
        raise FilterProblem("newest", "true or false")
    from_offset, from_time = _one(params, "from_offset") or None, _one(params, "from_time") or None
    if from_offset is not None and from_time is not None:
        raise FilterProblem("from_time", "give from_offset or from_time, not both")
    if (from_offset is not None or from_time is not None) and newest in ("true", "1"):
        raise FilterProblem("newest", "newest first starts at the end: leave out from_offset and from_time")
    if from_offset is not None:
        query.from_offset = _offset(kind, from_offset)
    if from_time is not None:
        query.from_time_ms = _time_ms(from_time)
    query.newest_first = from_offset is None and from_time is None and newest not in ("false", "0")
    query.filters = _filters(params)
    cursor = _one(params, "cursor")
    if cursor:
        query.newest_first, query.cursor = decode_cursor(kind, cursor)
    return query


def _offset(kind: str, text: str) -> int | str:
    if kind == "kafka":
        if not text.isascii() or not text.isdigit() or int(text) >= 2**63:
            raise FilterProblem("from_offset", "a Kafka offset: a whole number from 0")
        return int(text)
    if not _REDIS_ID.match(text) or text.startswith("("):
        raise FilterProblem("from_offset", "a Redis entry id: <milliseconds>-<sequence>")
    return text


def _time_ms(text: str) -> int:
    try:
        moment = parse_datetime(text.strip().replace(" ", "+"))  # a "+" in a URL arrives as a space
    except ValueError:
        moment = None
    if moment is None:
        raise FilterProblem("from_time", "an ISO 8601 date and time, e.g. 2026-12-06T05:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return max(0, int(moment.timestamp() * 1000))
    except (OverflowError, OSError, ValueError) as error:
        raise FilterProblem("from_time", "a date and time between 1970 and 9999") from error


def _filters(params) -> Filters:
    try:
        key = _one(params, "key")
        parsed_key = parse_key(key) if key else None
    except FilterError as error:
        raise FilterProblem("key", str(error)) from error
    parsed: dict[str, list] = {}
    for name, parse in (("header", parse_header), ("field", parse_field)):
        values = params.getlist(name)
        if len(values) > MAX_REPEATED:
            raise FilterProblem(name, f"at most {MAX_REPEATED} of them")
        try:
            parsed[name] = [parse(value) for value in values if value and len(value) <= TEXT_MAX]
        except FilterError as error:
            raise FilterProblem(name, str(error)) from error
        if any(len(value) > TEXT_MAX for value in values):
            raise FilterProblem(name, f"at most {TEXT_MAX} characters each")
    q, event_type = _one(params, "q") or "", _one(params, "type") or ""
    for name, text in (("q", q), ("type", event_type)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise FilterProblem(name, "the text is not valid Unicode") from error
    return Filters(key=parsed_key, headers=tuple(parsed["header"]), type=event_type, fields=tuple(parsed["field"]), q=q)


# --------------------------------------------------------------------------- the cursor
def encode_cursor(newest_first: bool, positions: dict[int, int | str]) -> str:
    """Opaque to clients: the direction and where each partition goes on."""
    raw = json.dumps({"n": newest_first, "p": {str(p): pos for p, pos in positions.items()}}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(kind: str, text: str) -> tuple[bool, dict[int, int | str]]:
    if len(text) > CURSOR_MAX:
        raise FilterProblem("cursor", "not a cursor of this browser")
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        newest_first, positions = data["n"], {int(p): pos for p, pos in data["p"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, RecursionError):
        raise FilterProblem("cursor", "not a cursor of this browser") from None
    good = isinstance(newest_first, bool) and all(0 <= p < 1_000_000 for p in positions)
    for pos in positions.values():
        if kind == "kafka":
            good = good and type(pos) is int and 0 <= pos < 2**63
        else:
            good = good and isinstance(pos, str) and (pos in ("-", "+") or bool(_REDIS_ID.match(pos)))
    if not good:
        raise FilterProblem("cursor", "not a cursor of this browser")
    return newest_first, positions


# --------------------------------------------------------------------------- the scan
@dataclass
class _Hidden:
    """What the user may not see: event type ids whose schemas mark fields, and their marks."""

    marks: dict[int, list] = field(default_factory=dict)
    type_ids: dict[str, int] = field(default_factory=dict)
    may_see: bool = False


def _hidden_for(user) -> _Hidden:
    marks = sensitive.marks_by_event_type()
    names = dict(EventType.objects.filter(pk__in=marks).values_list("name", "id")) if marks else {}
    return _Hidden(marks, names, roles.can_view_sensitive(user))


def _record_type(record: Record) -> str:
    """The CloudEvents type of a record in either content mode ("" when it has none)."""
    return columns.attribute(record, columns.envelope(record, MAX_BYTES), "type", 200)


def _tells_hidden(record: Record, filters: Filters, hidden: _Hidden) -> bool:
    """Whether a match would tell a value this user may not see: any `q`, or a `field` on a marked path,
    on a record whose type marks fields."""
    type_id = hidden.type_ids.get(_record_type(record))
    if type_id is None:
        return False
    if filters.q:
        return True
    return any(_overlaps(path, mark) for path, _value in filters.fields for mark in hidden.marks[type_id])


def _overlaps(path: tuple[str, ...], mark: tuple) -> bool:
    """A dotted field path and a marked location where one is inside the other (`customer` and `customer.email`)."""
    return all(m is pii.ANY or str(m) == part for part, m in zip(path, mark, strict=False))


def browse(kind: str, topic: str, query: BrowseQuery, user) -> dict[str, Any]:
    """Scan `topic` on bus `kind` for `query`: {"messages", "scanned", "matched", "next"}.

    UnknownTopic when there is no such topic; BusError when the bus does not answer.
    """
    if not valid_topic_name(kind, topic):
        raise UnknownTopic(topic)
    bus = connections.bus(kind)
    newest_first = query.newest_first
    positions = (
        dict(query.cursor)
        if query.cursor is not None
        else bus.scan_positions(
            topic,
            newest_first=newest_first,
            from_time_ms=query.from_time_ms,
            from_offset=query.from_offset,
            partitions=None if query.partition is None else [query.partition],
        )
    )
    hidden = _hidden_for(user)
    guarded = bool(query.filters.q or query.filters.fields) and not hidden.may_see and bool(hidden.type_ids)
    batch = min(500, query.budget, query.limit if query.filters.empty else 500)
    found: list[Record] = []
    scanned, exhausted = 0, True
    deadline = time.monotonic() + SCAN_SECONDS
    scan = bus.scan(topic, positions, newest_first=newest_first, batch=max(1, batch))
    try:
        for records in scan:
            for record in records:
                scanned += 1
                positions[record.partition] = bus.next_position(record, newest_first)
                if query.filters.matches(record) and not (guarded and _tells_hidden(record, query.filters, hidden)):
                    found.append(record)
                if len(found) >= query.limit or scanned >= query.budget:
                    break
            if len(found) >= query.limit or scanned >= query.budget or time.monotonic() > deadline:
                exhausted = False
                break
    finally:
        scan.close()
    messages = _messages(kind, topic, found, user, hidden)
    return {
        "messages": messages,
        "scanned": scanned,
        "matched": len(found),
        "next": None if exhausted else encode_cursor(newest_first, positions),
    }


def tail_messages(
    kind: str, topic: str, records: list[tuple[Record, int]], user, filters: Filters
) -> list[dict[str, Any]]:
    """The live tail's records (each with its real size: the tail may carry a cut value) as `browse` shows them."""
    hidden = _hidden_for(user)
    if (filters.q or filters.fields) and not hidden.may_see and hidden.type_ids:
        records = [(r, size) for r, size in records if not _tells_hidden(r, filters, hidden)]
    messages = _messages(kind, topic, [r for r, _size in records], user, hidden)
    for message, (record, size) in zip(messages, records, strict=True):
        if size > len(record.value or b""):
            message["size"], message["truncated"] = size, True
    return messages


# --------------------------------------------------------------------------- showing a record
def _shown_bytes(raw: bytes | None) -> tuple[str | None, str | None]:
    """(text, encoding) of bytes: "utf-8" when they are text without NUL, else "base64"."""
    if raw is None:
        return None, None
    raw = bytes(raw)
    try:
        text = raw.decode("utf-8")
        if "\x00" not in text:
            return text, "utf-8"
    except UnicodeDecodeError:
        pass
    return base64.b64encode(raw).decode("ascii"), "base64"


def _header(name: str, value: bytes | None) -> dict[str, str | None]:
    text, encoding = _shown_bytes(value or b"")
    return {"name": name, "value": text, "encoding": encoding}


def _timestamp(ms: int | None) -> str | None:
    try:
        if ms is not None and ms >= 0:
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        pass
    return None


def _messages(kind: str, topic: str, records: list[Record], user, hidden: _Hidden) -> list[dict[str, Any]]:
    types = {_record_type(r) for r in records}
    schemas = Schemas()  # per answer: ids of deleted versions can come back in another database
    versions = schemas.versions_for(types)
    indexed = _indexed(kind, topic, records)
    revealed: list[str] = []
    messages = [_message(r, schemas, versions, hidden, indexed) for r in records]
    for record, message in zip(records, messages, strict=True):
        if message.pop("_revealed"):
            revealed.append(f"{record.partition}:{record.offset}")
    if revealed:
        # One entry per answer, not per message: a page of 500 would be 500 entries.
        AuditEntry.objects.create(
            actor=user,
            action=sensitive.ACTION,
            result=f"read unmasked ({VIA}): {len(revealed)} message(s) of {kind} topic {topic}"[:500],
            detail={"via": VIA, "bus": kind, "topic": topic, "positions": revealed[:100]},
        )
    return messages


def _indexed(kind: str, topic: str, records: list[Record]) -> dict[tuple[int, str], int]:
    """{(partition, offset): IndexedEvent pk} of the records the event store has."""
    if not records:
        return {}
    rows = IndexedEvent.objects.filter(
        bus=kind, topic=topic, partition__in={r.partition for r in records}, offset__in={str(r.offset) for r in records}
    ).values_list("partition", "offset", "pk")
    return {(p, o): pk for p, o, pk in rows}


def _message(
    record: Record,
    schemas: Schemas,
    versions: dict[str, dict[int, int]],
    hidden: _Hidden,
    indexed: dict[tuple[int, str], int],
) -> dict[str, Any]:
    """One record as the browser shows it (see the module docstring); never raises on its content."""
    raw = record.value
    size = len(raw) if raw is not None else 0
    envelope = columns.envelope(record, MAX_BYTES)
    event_type = columns.attribute(record, envelope, "type", 200)
    correlation_id = columns.header_text(record, h.CORRELATION_ID, 200)
    key, key_encoding = _shown_bytes(record.key)
    message: dict[str, Any] = {
        "partition": record.partition,
        "offset": str(record.offset) if isinstance(record.offset, str) else record.offset,
        "timestamp": _timestamp(record.timestamp_ms),
        "key": key,
        "key_encoding": key_encoding,
        "headers": [_header(name, value) for name, value in record.headers],
        "type": event_type,
        "content_mode": "structured" if envelope is not None else "binary",
        "id": columns.attribute(record, envelope, "id", 200),
        "correlation_id": correlation_id,
        "size": size,
        "payload": None,
        "payload_encoding": None,
        "truncated": False,
        "masked": [],
        "valid": None,
        "error": "",
        "schema_version": None,
        "trace_url": _url("trace", correlation_id) if correlation_id else None,
        "event_url": None,
        "_revealed": False,
    }
    pk = indexed.get((record.partition, str(record.offset)))
    if pk is not None:
        message["event_url"] = _url("event-store-event", pk)
    data: Any = None
    readable, problem = False, "the record has no value"
    if raw is not None:
        try:
            data, readable, problem = columns.data(record, envelope, MAX_BYTES), True, ""
        except (PayloadDecodeError, TypeError, ValueError, RecursionError) as error:
            problem = str(error)[:200]
    original = data
    type_id = hidden.type_ids.get(event_type)
    marks = hidden.marks.get(type_id, []) if type_id is not None else []
    hidden_values: list[Any] = []
    # 1. the payload, masked
    if readable and size <= SHOWN_MAX:
        places = pii.locations(data, marks) if marks else []
        if places and not hidden.may_see:
            hidden_values = pii.hidden_values(data, marks)
            data = pii.mask(data, marks)
            message["masked"] = [pii.json_path(place) for place in places]
        message["_revealed"] = bool(places) and hidden.may_see
        message["payload"], message["payload_encoding"] = data, "json"
    elif marks and not hidden.may_see and raw:
        message["payload"], message["payload_encoding"], message["masked"] = pii.MASK, "masked", ["$"]
    elif raw is not None:
        message["payload"], message["payload_encoding"] = _shown_bytes(raw[:SHOWN_MAX])
        message["truncated"] = size > SHOWN_MAX
    # 2. validity against the registered schema version
    number = columns.header_int(record, h.SCHEMA_VERSION)
    checked = checked_version(versions.get(event_type, {}), number)
    validator = schemas.validator(checked[1]) if checked is not None else None
    if validator is not None:
        message["schema_version"] = checked[0]
        if not readable:
            message["valid"], message["error"] = False, f"$: not JSON ({problem})"
        else:
            error = best_match(validator.iter_errors(original))
            message["valid"] = error is None
            if error is not None:
                text = f"{error.json_path}: {error.message}"[:500]
                message["error"] = pii.scrub(text, hidden_values) if hidden_values else text
    return message


def _url(name: str, argument: Any) -> str | None:
    try:
        return reverse(name, args=[argument])
    except NoReverseMatch:  # a correlation id the route cannot carry
        return None
