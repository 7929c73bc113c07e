"""An indexed event's payload, as a user may see it: kept in the row, or read back from the bus by position.

The index stores where an event is, not what it says (unless its topic keeps payloads):
showing one reads that single record again, group-less (`Bus.read`), and checks it is
the same event (its CloudEvents id) before showing it, since a Redis stream trimmed and
refilled, or a Kafka topic deleted and re-created, may hold another record there now.
What is shown is masked by the `x-eventhub-pii` marks of the event type's latest schema
(deadletters/sensitive.py), and an unmasked read of marked values is audited.

One reading serves the event page (`text`, `kind`) and the payload API (`value`, `encoding`).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from deadletters import sensitive
from designer.models import EventType
from eventhub import connections
from eventhub.bus import BusError, UnknownTopic
from eventhub.hexdump import LIMIT as HEX_LIMIT
from eventhub.hexdump import hexdump
from eventhub.sdk.payload import PayloadDecodeError, decode_json
from eventstore import columns
from eventstore.models import IndexedEvent

log = logging.getLogger(__name__)


@dataclass
class Payload:
    """One payload as `user` may see it; `where` says where it came from."""

    where: str  # "stored", "bus", "gone" (no longer on the bus, or another event is there now), "unreachable"
    size: int = 0
    cut: bool = False  # kept only up to the cap
    problem: str = ""
    masked: list[str] = field(default_factory=list)
    revealed: list[str] = field(default_factory=list)
    data: Any = sensitive.NOT_JSON  # the JSON, masked; NOT_JSON when it is not JSON (or not here)
    raw: bytes = b""

    @property
    def found(self) -> bool:
        return self.where in ("stored", "bus")

    @property
    def encoding(self) -> str:
        """How `value` is written: "json", "text" (UTF-8 without NUL) or "base64"."""
        if self.data is not sensitive.NOT_JSON:
            return "json"
        return "text" if _text(self.raw) is not None else "base64"

    @property
    def value(self) -> Any:
        """For the API: the masked JSON, the text, or the bytes in base64 (all of it hidden when marked)."""
        if self.data is not sensitive.NOT_JSON:
            return self.data
        if self.masked:
            return "•••"
        text = _text(self.raw)
        return text if text is not None else base64.b64encode(self.raw).decode("ascii")

    @property
    def kind(self) -> str:
        """For the page: "json", "text", "binary"; "" when there is nothing to show."""
        if not self.found or not self.raw:
            return ""
        if self.data is not sensitive.NOT_JSON or self.masked:
            return "json" if self.data is not sensitive.NOT_JSON else "text"
        return "text" if _text(self.raw) is not None else "binary"

    @property
    def text(self) -> str:
        kind = self.kind
        if kind == "json":
            return json.dumps(self.data, indent=2, ensure_ascii=False)
        if kind == "text":
            return "•••" if self.masked else _text(self.raw) or ""
        return hexdump(self.raw) if kind == "binary" else ""

    @property
    def hex_cut(self) -> bool:
        return self.kind == "binary" and len(self.raw) > HEX_LIMIT


def shown(row: IndexedEvent, user, *, via: str = "event-store") -> Payload:
    """The payload of `row` for `user`: read, decoded (both CloudEvents modes), masked."""
    where, raw, read, problem = _value(row)
    if where in ("gone", "unreachable"):
        return Payload(where, problem=problem)
    result = Payload(where, size=row.size, raw=raw or b"")
    if not raw:
        result.problem = "the record has no value (a tombstone or an empty payload)"
        return result
    result.cut = where == "stored" and row.size > len(raw)
    try:
        # A kept payload has lost its headers: a structured envelope shows whole.
        data = columns.data(*read, max_bytes=len(raw) + 1) if read else decode_json(raw, max_bytes=len(raw) + 1)
    except PayloadDecodeError as error:
        data, result.problem = sensitive.NOT_JSON, str(error)
    if result.cut:
        data, result.problem = sensitive.NOT_JSON, "only the first bytes are kept"
    masked = sensitive.shown_payload(
        user, _event_type_id(row), data, via=via, topic=row.topic, offset=row.offset, bus=row.bus
    )
    result.data, result.masked, result.revealed = masked.payload, masked.masked, masked.revealed
    return result


def _value(row: IndexedEvent) -> tuple[str, bytes | None, Any, str]:
    """(where, raw value, (record, envelope) or None, problem) of the row's event."""
    if row.payload is not None:
        return "stored", bytes(row.payload), None, ""
    start: int | str = row.offset if row.bus == "redis" else int(row.offset)
    try:
        found = connections.bus(row.bus).read(row.topic, row.partition, start, limit=1, timeout_s=5.0)
    except UnknownTopic:
        return "gone", None, None, "its topic is no longer on the bus"
    except BusError as error:
        log.info("event %s: not read from the bus (%s: %s)", row.pk, type(error).__name__, error)
        return "unreachable", None, None, f"the {row.bus} bus did not answer ({type(error).__name__})"
    record = found[0] if found else None
    if record is None or str(record.offset) != row.offset:
        return "gone", None, None, "no longer on the bus (past the topic's retention, or trimmed)"
    event = columns.envelope(record, len(record.value or b"") + 1)
    if row.ce_id and columns.attribute(record, event, "id", 200) != row.ce_id:
        return "gone", None, None, "another event is at this position now (the topic was re-created or trimmed)"
    return "bus", record.value, (record, event), ""


def _event_type_id(row: IndexedEvent) -> int | None:
    if row.schema_version_id:
        return row.schema_version.event_type_id
    if not row.ce_type:
        return None
    return EventType.objects.filter(name=row.ce_type).values_list("id", flat=True).first()


def _text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text
