"""CloudEvents on the bus, read in both content modes of the Kafka protocol binding.

- binary: each attribute travels as a `ce_<name>` header (`datacontenttype` as
  `content-type`) and the record value is the data alone. EventHub's producer
  writes this mode.
- structured: `content-type: application/cloudevents+json` (parameters such as
  `; charset=utf-8` allowed) and the value is the whole event in CloudEvents' JSON
  format, the attributes and `data` (or `data_base64`) in one object; `ce_*`
  headers, if any, are not attributes then.

Every reader (the SDK consumer, the dead-letter ingester) decodes records through
`decode_cloudevent`, so both modes mean the same everywhere; Redis Streams entries
use the same layout. The JSON goes through the SDK's `decode_json`, with its size
and depth limits. See docs/cloudevents.md.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eventhub.sdk import headers as h
from eventhub.sdk.payload import MAX_BYTES, MAX_DEPTH, PayloadDecodeError, decode_json

HeadersIn = Mapping[str, str | bytes | None] | Iterable[tuple[str, str | bytes | None]]

BINARY = "binary"
STRUCTURED = "structured"


@dataclass(frozen=True)
class CloudEvent:
    mode: str  # BINARY or STRUCTURED
    # id, type, source, specversion, time, datacontenttype, subject, extensions: what the record has.
    # Header values are text; envelope values are as the JSON has them.
    attributes: dict[str, Any]
    data: Any  # the data as JSON; bytes from `data_base64`; None when a structured event has none

    @property
    def id(self) -> str | None:
        return self.text("id")

    @property
    def type(self) -> str | None:
        return self.text("type")

    def text(self, name: str) -> str | None:
        """Attribute `name` when it is a string (an envelope may hold anything)."""
        value = self.attributes.get(name)
        return value if isinstance(value, str) else None


def content_mode(headers: HeadersIn | None) -> str:
    """STRUCTURED when the record's content-type says its value is a whole CloudEvent, else BINARY.

    Asked of every record the indexer reads: only the content-type header's value is decoded.
    """
    if not headers:
        return BINARY
    items = headers.items() if isinstance(headers, Mapping) else headers
    raw = None
    for name, value in items:
        if str(name).lower() == h.CONTENT_TYPE:  # the last one counts, as _header_text picks it
            raw = value
    if raw is None:
        return BINARY
    content_type = _content_type([(h.CONTENT_TYPE, _pairs([(h.CONTENT_TYPE, raw)])[0][1])])
    return STRUCTURED if content_type.startswith("application/cloudevents") else BINARY


def decode_cloudevent(
    headers: HeadersIn | None,
    value: bytes | None,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> CloudEvent:
    """The record as a CloudEvent in either content mode; raises PayloadDecodeError.

    1. The content-type header picks the mode (its media type, case-insensitive,
       parameters ignored). A structured event in another format than JSON
       (`application/cloudevents+avro`, batches) is refused.
    2. Binary: the attributes are the `ce_*` headers, the data is the value as JSON
       (a record with no `ce_*` header at all is plain JSON with no attributes).
    3. Structured: the value must be a JSON object; the data is its `data`, or the
       bytes of its `data_base64`. The envelope may be one level deeper than
       `max_depth`, so that the data itself has the same limit in both modes.
    """
    pairs = _pairs(headers)
    content_type = _content_type(pairs)
    if not content_type.startswith("application/cloudevents"):
        attributes = {name[len(h.CE_PREFIX) :]: text for name, text in pairs if name.startswith(h.CE_PREFIX)}
        if content_type:
            attributes.setdefault("datacontenttype", _header_text(pairs, h.CONTENT_TYPE))
        return CloudEvent(BINARY, attributes, decode_json(value, max_bytes=max_bytes, max_depth=max_depth))
    if content_type != h.CLOUDEVENTS_JSON_CONTENT_TYPE:
        raise PayloadDecodeError(
            f"the CloudEvents format {content_type!r} is not supported, only {h.CLOUDEVENTS_JSON_CONTENT_TYPE}"
        )
    envelope = decode_json(value, max_bytes=max_bytes, max_depth=max_depth + 1)
    if not isinstance(envelope, dict):
        raise PayloadDecodeError(f"a structured CloudEvent is a JSON object, not {_json_kind(envelope)}")
    attributes = {name: item for name, item in envelope.items() if name not in ("data", "data_base64")}
    if "data_base64" not in envelope:
        return CloudEvent(STRUCTURED, attributes, envelope.get("data"))
    if "data" in envelope:
        raise PayloadDecodeError("a structured CloudEvent has both data and data_base64")
    encoded = envelope["data_base64"]
    try:
        data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
    except (binascii.Error, ValueError):
        data = None
    if data is None:
        raise PayloadDecodeError("data_base64 of a structured CloudEvent is not base64 text")
    return CloudEvent(STRUCTURED, attributes, data)


def _pairs(headers: HeadersIn | None) -> list[tuple[str, str]]:
    """(lower-cased name, text) of each header; bytes that are not UTF-8 are decoded with replacement."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for name, raw in items:
        if isinstance(raw, (bytes, bytearray, memoryview)):
            raw = bytes(raw).decode("utf-8", "replace")
        pairs.append((str(name).lower(), "" if raw is None else str(raw)))
    return pairs


def _header_text(pairs: list[tuple[str, str]], name: str) -> str:
    """The last value of header `name`, as `Record.header()` picks it."""
    found = [text for key, text in pairs if key == name]
    return found[-1] if found else ""


def _content_type(pairs: list[tuple[str, str]]) -> str:
    """The media type of the content-type header, lower-cased, without parameters; "" without one."""
    return _header_text(pairs, h.CONTENT_TYPE).split(";", 1)[0].strip().lower()


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"
