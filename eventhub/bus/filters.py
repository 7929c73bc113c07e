"""Whether one record matches the topic browser's filters: plain functions, no Django.

The browser scans up to a million records per request, so a record is decoded only as
far as the filters ask, cheapest test first:
1. key (bytes compared as they are);
2. headers (`name:value`, the last value of the header, as `Record.header` reads it);
3. CloudEvents type in binary mode: the `ce_type` header;
4. `q`: a substring of the key, the raw value bytes or a header name or value;
5. only then the value's JSON, once, for `field=path=value` and for the type of a
   structured event (`decode_cloudevent`, both content modes).

Everything here reads hostile input and never raises: a value that is not JSON, too
big or too deep simply does not match a JSON filter. Parsing a filter's text
(`parse_key`, `parse_header`, `parse_field`) raises FilterError naming what is wrong.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from eventhub.bus.base import Record
from eventhub.sdk import headers as h
from eventhub.sdk.cloudevents import decode_cloudevent
from eventhub.sdk.payload import MAX_BYTES, PayloadDecodeError, decode_json

_MISSING = object()
# A field value that may be a decimal number, spelled in JSON in more ways than one.
_FLOAT = re.compile(r"^-?\d*[.eE]")


class FilterError(ValueError):
    """A filter's text does not parse; the message says how it should read."""


@dataclass(frozen=True)
class Filters:
    """What a record must have; an empty Filters matches every record."""

    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    type: str = ""
    fields: tuple[tuple[tuple[str, ...], str], ...] = ()
    q: str = ""
    max_bytes: int = MAX_BYTES  # larger values are not decoded as JSON (they match no JSON filter)
    _q_bytes: bytes = field(default=b"", init=False, repr=False)
    _needles: tuple[bytes, ...] = field(default=(), init=False, repr=False)
    _type_bytes: bytes = field(default=b"", init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_q_bytes", self.q.encode("utf-8"))
        object.__setattr__(self, "_type_bytes", self.type.encode("utf-8"))
        needles = tuple(expected.encode("utf-8") for _path, expected in self.fields if not _FLOAT.match(expected))
        object.__setattr__(self, "_needles", needles)

    @property
    def empty(self) -> bool:
        return self.key is None and not self.headers and not self.type and not self.fields and not self.q

    def matches(self, record: Record) -> bool:
        """Whether `record` passes every filter (the steps of the module docstring, in order)."""
        if self.key is not None and record.key != self.key:
            return False
        for name, value in self.headers:
            if record.header(name) != value:
                return False
        structured = bool(self.type or self.fields) and _structured(record.headers)
        if self.type and not structured and record.header(h.CE_TYPE) != self._type_bytes:
            return False
        if self.q and not self._has_text(record):
            return False
        if not (self.fields or (self.type and structured)):
            return True
        if self._needles and not structured and not self._may_hold_fields(record.value):
            return False
        event = decoded(record, self.max_bytes)
        if event is None:
            return False
        attributes, data = event
        if self.type and structured and attributes.get("type") != self.type:
            return False
        return all(_equals(at_path(data, path), expected) for path, expected in self.fields)

    def _may_hold_fields(self, value: bytes | None) -> bool:
        """False when the value cannot hold the wanted field values, seen without decoding it.

        JSON without a backslash has no escapes: a string is its literal bytes, and an
        integer, true, false or null its literal text, so each wanted value must occur in
        the bytes. (Values that look like decimals may be spelled otherwise: 1e2 is 100.0;
        they are not looked for here.) Most records of a needle search end here.
        """
        if value is None:
            return False
        if b"\\" in value:
            return True
        return all(needle in value for needle in self._needles)

    def _has_text(self, record: Record) -> bool:
        wanted = self._q_bytes
        if record.value is not None and wanted in record.value:
            return True
        if record.key is not None and wanted in record.key:
            return True
        return any(self.q in name or wanted in (value or b"") for name, value in record.headers)


_CLOUDEVENTS = b"application/cloudevents"


def _structured(headers) -> bool:
    """content_mode(headers) == STRUCTURED without decoding every header: the last content-type
    decides, its media type compared on the bytes (this runs for every record a type or field
    filter scans)."""
    found = None
    for name, value in headers:
        if name == "content-type" or (len(name) == 12 and name.lower() == "content-type"):
            found = value
    if not found:
        return False
    if isinstance(found, str):
        found = found.encode("utf-8", "replace")
    head = bytes(found[:23]).lower()
    if head == _CLOUDEVENTS:
        return True
    return head[:1].isspace() and bytes(found[:64]).lstrip().lower().startswith(_CLOUDEVENTS)


def decoded(record: Record, max_bytes: int = MAX_BYTES) -> tuple[dict[str, Any], Any] | None:
    """(CloudEvents attributes, data as JSON) of the record in either content mode; None when unreadable."""
    try:
        event = decode_cloudevent(record.headers, record.value, max_bytes=max_bytes)
    except (PayloadDecodeError, TypeError, ValueError, RecursionError):
        return None
    if isinstance(event.data, bytes):  # structured `data_base64`: JSON when its bytes are
        try:
            return event.attributes, decode_json(event.data, max_bytes=max_bytes)
        except PayloadDecodeError:
            return event.attributes, _MISSING
    return event.attributes, event.data


def at_path(data: Any, path: tuple[str, ...]) -> Any:
    """The value at a dotted path (`customer.id`, `items.0.sku`); _MISSING when there is none."""
    for part in path:
        if isinstance(data, dict):
            data = data.get(part, _MISSING)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
        if data is _MISSING:
            return _MISSING
    return data


def _equals(found: Any, expected: str) -> bool:
    """A string compares as it is; other JSON values by their JSON text (`12`, `true`, `null`)."""
    if found is _MISSING:
        return False
    if isinstance(found, str):
        return found == expected
    try:
        return json.dumps(found, separators=(",", ":"), ensure_ascii=False) == expected
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- parsing the filters' text
def parse_key(text: str) -> bytes:
    """`text` as UTF-8 bytes, or `hex:<hex digits>` for a binary key."""
    if text.startswith("hex:"):
        try:
            return binascii.unhexlify(text[4:].replace(" ", ""))
        except (binascii.Error, ValueError) as error:
            raise FilterError("after hex: come pairs of hex digits (hex:00ff)") from error
    return _utf8(text)


def parse_header(text: str) -> tuple[str, bytes]:
    """`name:value` (the value may be empty or `hex:...`)."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise FilterError("a header filter reads name:value")
    return name.strip(), parse_key(value) if value.startswith("hex:") else _utf8(value)


def parse_field(text: str) -> tuple[tuple[str, ...], str]:
    """`path=value`, the path dotted (`customer.id=c-1`); the first `=` ends the path."""
    path, equals, value = text.partition("=")
    parts = tuple(path.strip().split("."))
    if not equals or not all(parts):
        raise FilterError("a field filter reads path=value, the path dotted (customer.id=c-1)")
    if len(parts) > 32:
        raise FilterError("a field path has at most 32 parts")
    return parts, value


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate from a hostile query string
        raise FilterError("the text is not valid Unicode") from error
