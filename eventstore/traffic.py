"""A candidate schema against real traffic: how many of the last N events of a type would it reject?

The event store knows where the type's recent events are (IndexedEvent rows, newest
first); their payloads come from the row when the topic keeps them, else from the bus,
read by position range per partition (`Bus.read`, group-less) rather than one record at
a time. Each is validated with the same safe validator the SDK and the indexer use.

The registry asks for this through settings.EVENTHUB_TRAFFIC_CHECK (designer/registry.py
`traffic_check`), so the design layer does not import the event store.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.contrib.auth.models import AnonymousUser
from jsonschema.exceptions import best_match

from deadletters import sensitive
from designer.models import EventType
from eventhub import connections
from eventhub.bus import BusError
from eventhub.sdk.payload import MAX_BYTES, PayloadDecodeError, decode_json
from eventhub.sdk.schemas import check_schema_is_safe, python_validator
from eventstore import columns
from eventstore.models import IndexedEvent

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000
EXAMPLES = 5
WINDOW = 10  # a partition is read over at most WINDOW x the events wanted there (other types interleave)


def check(event_type_name: str, schema: Any, *, limit: int = DEFAULT_LIMIT, user=None) -> dict[str, Any]:
    """{"checked", "failing", "examples": [{"offset", "path", "message"}], "unread"} for the last `limit` events.

    `unread` counts indexed events whose payload could not be had (past the topic's
    retention, the bus down); they are neither checked nor failing. Messages quote
    payload values: the ones `user` may not see (x-eventhub-pii) are scrubbed.
    """
    result: dict[str, Any] = {"checked": 0, "failing": 0, "examples": [], "unread": 0}
    if limit <= 0 or check_schema_is_safe(schema):
        return result
    rows = list(
        IndexedEvent.objects.filter(ce_type=event_type_name)
        .order_by("-timestamp", "-id")
        .values("bus", "topic", "partition", "offset", "payload")[:limit]
    )
    if not rows:
        return result
    validator = python_validator(schema)
    event_type_id = EventType.objects.filter(name=event_type_name).values_list("id", flat=True).first()
    for row, payload in _payloads(rows):
        if payload is _UNREAD:
            result["unread"] += 1
            continue
        result["checked"] += 1
        error = None if payload is _NOT_JSON else best_match(validator.iter_errors(payload))
        if payload is not _NOT_JSON and error is None:
            continue
        result["failing"] += 1
        if len(result["examples"]) < EXAMPLES:
            where = f"{row['bus']}:{row['topic']}/{row['partition']}@{row['offset']}"
            if payload is _NOT_JSON:
                result["examples"].append({"offset": where, "path": "$", "message": "the payload is not JSON"})
                continue
            message = sensitive.scrub_for(user or AnonymousUser(), event_type_id, payload, error.message)
            result["examples"].append({"offset": where, "path": error.json_path, "message": message[:300]})
    return result


_UNREAD = object()
_NOT_JSON = object()


def _decode(value: bytes | None, record=None) -> Any:
    try:
        if record is not None:
            return columns.data(record, columns.envelope(record, MAX_BYTES), MAX_BYTES)
        return decode_json(value, max_bytes=MAX_BYTES)
    except PayloadDecodeError:
        return _NOT_JSON


def _payloads(rows: list[dict]):
    """(row, payload as JSON / _NOT_JSON / _UNREAD) for each row, reading the bus once per partition."""
    wanted: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for row in rows:
        if row["payload"] is not None:
            yield row, _decode(bytes(row["payload"]))
        else:
            wanted[(row["bus"], row["topic"], row["partition"])].append(row)
    for (kind, topic, partition), group in wanted.items():
        found = _read(kind, topic, partition, group)
        for row in group:
            record = found.get(row["offset"])
            yield row, _UNREAD if record is None else _decode(record.value, record)


def _read(kind: str, topic: str, partition: int, group: list[dict]) -> dict[str, Any]:
    """{offset: record} of one partition, from its oldest wanted event on, at most WINDOW x len(group) records."""
    span = WINDOW * len(group)
    if kind == "kafka":
        offsets = sorted(int(row["offset"]) for row in group)
        start = max(offsets[0], offsets[-1] - span + 1)
    else:
        start = min((row["offset"] for row in group), key=lambda entry: tuple(int(p) for p in entry.split("-")))
    try:
        records = connections.bus(kind).read(topic, partition, start, limit=span, timeout_s=10.0)
    except BusError as error:
        log.info("traffic check: %s:%s/%s not read (%s)", kind, topic, partition, error)
        return {}
    return {str(record.offset): record for record in records}
