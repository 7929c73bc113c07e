"""What one record on the bus says, as the event store's columns: plain functions, no Django.

Everything here reads hostile input (anyone can write to a topic) and never raises:
a header that is not UTF-8, a key of binary garbage or a malformed `traceparent`
gives an empty or replaced value, not an error.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable

from eventhub.bus import Record
from eventhub.sdk import headers as h
from eventhub.sdk.cloudevents import STRUCTURED, CloudEvent, content_mode, decode_cloudevent
from eventhub.sdk.payload import PayloadDecodeError, decode_json

KEY_TEXT_MAX = 100
# W3C Trace Context: version "-" trace-id "-" parent-id "-" flags, lower-case hex.
# Version ff is invalid, and so is an all-zero trace id.
_TRACEPARENT = re.compile(r"^(?!ff)[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?$")
_NO_TRACE = "0" * 32


def header_text(record: Record, name: str, limit: int) -> str:
    """The last value of header `name` as text fit for any database: UTF-8 (replaced), no NUL, cut."""
    raw = record.header(name)
    if not raw:
        return ""
    return bytes(raw).decode("utf-8", "replace").replace("\x00", "\ufffd").strip()[:limit]


def header_int(record: Record, name: str) -> int | None:
    """A non-negative integer header (x-eventhub-schema-version), or None."""
    text = header_text(record, name, 20)
    return int(text) if text.isascii() and text.isdigit() and int(text) < 2**31 else None


def trace_id(traceparent: str) -> str:
    """The 32-hex trace-id of a W3C `traceparent` value; "" when it is not one."""
    match = _TRACEPARENT.match(traceparent.strip())
    if not match or match["trace"] == _NO_TRACE:
        return ""
    return match["trace"]


def key_hash(key: bytes | None) -> str:
    """sha256 of the key, hex: what a search by key compares. "" for a record without a key."""
    return hashlib.sha256(bytes(key)).hexdigest() if key is not None else ""


def key_text(key: bytes | None) -> str:
    """The key's first KEY_TEXT_MAX characters, printable: to show, not to search."""
    if not key:
        return ""
    text = bytes(key[: KEY_TEXT_MAX * 4]).decode("utf-8", "replace")[:KEY_TEXT_MAX]
    if text.isprintable():  # most keys: no walk
        return text
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def sampled(topic: str, partition: int, offset: int | str, rate: float) -> bool:
    """Whether the record at this position is kept at `rate` (0..1).

    A hash of the position, not a random draw: every indexer (and a restarted one)
    keeps the same records, so a re-read batch stays exactly-once.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(f"{topic}\x00{partition}\x00{offset}".encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64


def matches(name: str, patterns: Iterable[str]) -> bool:
    """fnmatch, case-sensitive, any of `patterns`."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def envelope(record: Record, max_bytes: int) -> CloudEvent | PayloadDecodeError | None:
    """The record's CloudEvent when it travels in structured mode (its error when unreadable); None in binary mode."""
    if content_mode(record.headers) != STRUCTURED:
        return None
    try:
        return decode_cloudevent(record.headers, record.value, max_bytes=max_bytes)
    except (PayloadDecodeError, TypeError, ValueError) as error:
        return error if isinstance(error, PayloadDecodeError) else PayloadDecodeError(str(error))


def attribute(record: Record, event: CloudEvent | PayloadDecodeError | None, name: str, limit: int) -> str:
    """CloudEvents attribute `name`: from the envelope in structured mode, else from its `ce_` header."""
    if event is None:
        return header_text(record, h.CE_PREFIX + name, limit)
    value = event.attributes.get(name) if isinstance(event, CloudEvent) else None
    return value.replace("\x00", "\ufffd").strip()[:limit] if isinstance(value, str) else ""


def data(record: Record, event: CloudEvent | PayloadDecodeError | None, max_bytes: int):
    """The event's data as JSON (the value in binary mode, `data` of the envelope in structured mode).

    Raises PayloadDecodeError when it is not JSON; `data_base64` counts as JSON when its bytes are.
    """
    if event is None:
        return decode_json(record.value, max_bytes=max_bytes)
    if isinstance(event, PayloadDecodeError):
        raise event
    if isinstance(event.data, bytes):
        return decode_json(event.data, max_bytes=max_bytes)
    return event.data
