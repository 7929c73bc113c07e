"""Decode dead-letter record headers and payloads for display and redrive.

Dead-letter records carry where they came from and why they failed in headers, in one
of several conventions. ``decode`` recognises them all and returns one normalised
``DeadLetterMeta``:

* ``eventhub``: EventHub's own SDK, the ``x-eventhub-*`` headers named in
  ``eventhub/sdk/headers.py`` (the SDK writes them; ``EVENTHUB_HEADERS`` below maps them
  to fields). All values are UTF-8 text; numbers are decimal, ``x-eventhub-failed-at``
  is ISO-8601 in UTC.
* ``spring``: Spring Kafka's ``DeadLetterPublishingRecoverer``: ``kafka_dlt-*`` (and the
  ``kafka_*`` family it uses when publishing to other topics). Partition and delivery
  attempts are 4-byte, offset and timestamp 8-byte big-endian integers.
* ``connect``: Kafka Connect's ``DeadLetterQueueReporter``: ``__connect.errors.*``,
  text.
* ``streams``: Kafka Streams' dead letter queue (KIP-1034, ``ExceptionHandlerUtils``),
  ``__streams.errors.*``, text; ``exception`` holds Java's ``Throwable.toString()``,
  i.e. ``class: message``.
* ``confluent``: Confluent's data-contract rules with a DLQ action (``DlqAction`` of the
  Schema Registry serdes): ``__rule.*``, text. ``__rule.topic`` is the original topic and
  ``__rule.exception`` the message of the rule's exception (no class: the error class is
  the Java class the message starts with, as in ``java.lang.Foo: why``, else
  ``CONFLUENT_RULE_ERROR_CLASS``); the rule's name, mode and subject are only displayed.
* CloudEvents' Kafka binding gives the event id and type whatever the dead-letter
  convention: the ``ce_id`` and ``ce_type`` headers in binary mode, the JSON envelope in
  the value in structured mode (``content-type: application/cloudevents+json``, decoded
  by ``eventhub/sdk/cloudevents.py`` when ``decode`` is given the value).

Decoding never raises. Every header is rendered for display (UTF-8 text when it is
valid and free of control characters, Spring's binary integers as decimal, otherwise
``0x`` and hex), and anything wrong with a recognised header (missing value, bad
number, bad UTF-8) becomes a line in ``problems``; unrecognised headers may be binary
(tracing ids and the like), so they are only displayed. Header names are matched
case-insensitively. When a header repeats, the ``original-*`` ones keep their first
value (Spring appends the hop it came from on each re-publish, so the first is the
true origin) and the rest keep their last value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from eventhub.sdk import headers as h
from eventhub.sdk.cloudevents import STRUCTURED, CloudEvent, content_mode, decode_cloudevent
from eventhub.sdk.payload import MAX_BYTES, MAX_DEPTH, PayloadDecodeError, decode_json

# DeadLetterMeta field -> header name: the contract the SDK writes to.
EVENTHUB_HEADERS: MappingProxyType[str, str] = MappingProxyType(
    {
        "original_topic": h.ORIGINAL_TOPIC,
        "original_partition": h.ORIGINAL_PARTITION,
        "original_offset": h.ORIGINAL_OFFSET,
        "original_entry_id": h.ORIGINAL_ENTRY_ID,
        "group": h.GROUP,
        "attempts": h.ATTEMPTS,
        "error_class": h.ERROR_CLASS,
        "error_message": h.ERROR_MESSAGE,
        "stacktrace": h.STACKTRACE,
        "failed_at": h.FAILED_AT,
        "service": h.SERVICE,
        "payload_size": h.PAYLOAD_SIZE,
    }
)

# The error class of a Confluent DLQ record: its headers carry the rule's exception message only.
CONFLUENT_RULE_ERROR_CLASS = "confluent.RuleFailed"


@dataclass
class DeadLetterMeta:
    # "eventhub" | "spring" | "connect" | "streams" | "confluent" | "unknown"
    convention: str = "unknown"
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    original_entry_id: str | None = None
    original_timestamp: datetime | None = None
    group: str | None = None
    service: str | None = None
    attempts: int | None = None
    error_class: str | None = None
    error_cause: str | None = None
    error_message: str | None = None
    stacktrace: str | None = None
    failed_at: datetime | None = None
    connector: str | None = None
    task_id: int | None = None
    stage: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    payload_size: int | None = None
    # A structured CloudEvent's envelope, decoded (None in binary mode or when it does not decode).
    cloudevent: CloudEvent | None = None
    headers_decoded: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Payload:
    raw: bytes
    truncated: bool
    size: int
    json: Any | None
    text: str | None
    is_binary: bool
    problem: str | None = None  # why json is None, for the reader: cut, empty, not JSON, too deep...


# --- value decoders: raw bytes -> (value, display or None for the default, problem) ---

Decoded = tuple[Any, str | None, str | None]


def _text(raw: bytes) -> Decoded:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), None, "not valid UTF-8"
    if not text.strip():
        return None, None, "empty value"
    if _CONTROL.search(text):
        return text, None, "binary, not text"
    return text, text, None  # displayed as is: what _render would make of it, without decoding again


def _optional_text(raw: bytes) -> Decoded:
    # Messages and stack traces may legitimately be empty (exceptions without message).
    value, display, problem = _text(raw)
    return value, display, None if problem == "empty value" else problem


_DIGITS = re.compile(rb"\s*-?\d+\s*")


def _int(binary_sizes: tuple[int, ...] = ()) -> Callable[[bytes], Decoded]:
    def decode(raw: bytes) -> Decoded:
        # ASCII digits first, even when the length matches a binary size: a real
        # big-endian partition or offset made only of bytes 0x30-0x39 would be in the
        # hundreds of millions, far beyond anything a broker holds.
        if _DIGITS.fullmatch(raw):
            if len(raw) > 40:  # no offset has 40 digits; int() refuses past 4300
                return None, None, "number too long"
            number = int(raw)
        elif len(raw) in binary_sizes:
            number = int.from_bytes(raw, "big", signed=True)
        else:
            sizes = " or ".join(f"{n}-byte" for n in binary_sizes)
            return (
                None,
                None,
                f"not a number ({sizes} or digits)" if sizes else "not a number",
            )
        if number < 0:
            return None, str(number), f"negative value {number}"
        return number, str(number), None

    return decode


def _epoch_ms(raw: bytes) -> Decoded:
    number, display, problem = _int((8,))(raw)
    if number is None:
        return None, display, problem
    try:
        return datetime.fromtimestamp(number / 1000, UTC), display, None
    except (OverflowError, OSError, ValueError):
        return None, display, f"timestamp {number} out of range"


def _iso_time(raw: bytes) -> Decoded:
    text, _, problem = _text(raw)
    if text is None or problem:
        return None, None, problem or "empty value"
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None, None, "not an ISO-8601 time"
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC), None, "no time zone, read as UTC"
    return moment.astimezone(UTC), None, None


_ENTRY_ID = re.compile(r"\d+-\d+")


def _entry_id(raw: bytes) -> Decoded:
    text, display, problem = _text(raw)
    if text and not problem and not _ENTRY_ID.fullmatch(text.strip()):
        problem = "not a Redis entry id (ms-seq)"
    return text, display, problem


def _exception_class(raw: bytes) -> Decoded:
    # Kafka Streams writes Throwable.toString(): "java.lang.Foo: the message".
    text, display, problem = _text(raw)
    return (text.split(": ", 1)[0].strip() if text else None), display, problem


# --- conventions: header name -> (field, decoder, keep first occurrence) -------------


@dataclass(frozen=True)
class _Rule:
    field: str
    decode: Callable[[bytes], Decoded]
    first: bool = False


def _spring_rules() -> dict[str, _Rule]:
    rules = {
        "kafka_deliveryattempt": _Rule("attempts", _int((4,))),
        "retry_topic-attempts": _Rule("attempts", _int((1, 4))),
    }
    # Value-exception headers are listed after key-exception ones, so they win when
    # both are present (see _fill: later rules for the same field take precedence).
    for prefix in ("kafka_", "kafka_dlt-"):
        rules |= {
            prefix + "original-topic": _Rule("original_topic", _text, True),
            prefix + "original-partition": _Rule("original_partition", _int((4,)), True),
            prefix + "original-offset": _Rule("original_offset", _int((8,)), True),
            prefix + "original-timestamp": _Rule("original_timestamp", _epoch_ms, True),
            prefix + "original-consumer-group": _Rule("group", _text, True),
            prefix + "key-exception-fqcn": _Rule("error_class", _text),
            prefix + "key-exception-message": _Rule("error_message", _optional_text),
            prefix + "key-exception-stacktrace": _Rule("stacktrace", _optional_text),
            prefix + "exception-fqcn": _Rule("error_class", _text),
            prefix + "exception-cause-fqcn": _Rule("error_cause", _optional_text),
            prefix + "exception-message": _Rule("error_message", _optional_text),
            prefix + "exception-stacktrace": _Rule("stacktrace", _optional_text),
        }
    return rules


_RULE_TOPIC, _RULE_EXCEPTION, _RULE_NAME = "__rule.topic", "__rule.exception", "__rule.name"

_CONVENTIONS: dict[str, dict[str, _Rule]] = {
    "eventhub": {
        h.ORIGINAL_TOPIC: _Rule("original_topic", _text),
        h.ORIGINAL_PARTITION: _Rule("original_partition", _int()),
        h.ORIGINAL_OFFSET: _Rule("original_offset", _int()),
        h.ORIGINAL_ENTRY_ID: _Rule("original_entry_id", _entry_id),
        h.GROUP: _Rule("group", _text),
        h.ATTEMPTS: _Rule("attempts", _int()),
        h.ERROR_CLASS: _Rule("error_class", _text),
        h.ERROR_MESSAGE: _Rule("error_message", _optional_text),
        h.STACKTRACE: _Rule("stacktrace", _optional_text),
        h.FAILED_AT: _Rule("failed_at", _iso_time),
        h.SERVICE: _Rule("service", _text),
        h.PAYLOAD_SIZE: _Rule("payload_size", _int()),
    },
    "spring": _spring_rules(),
    "connect": {
        "__connect.errors.topic": _Rule("original_topic", _text),
        "__connect.errors.partition": _Rule("original_partition", _int()),
        "__connect.errors.offset": _Rule("original_offset", _int()),
        "__connect.errors.connector.name": _Rule("connector", _text),
        "__connect.errors.task.id": _Rule("task_id", _int()),
        "__connect.errors.stage": _Rule("stage", _text),
        # The executing class (converter, transform, connector) is only displayed.
        "__connect.errors.class.name": _Rule("", _text),
        "__connect.errors.exception.class.name": _Rule("error_class", _text),
        "__connect.errors.exception.message": _Rule("error_message", _optional_text),
        "__connect.errors.exception.stacktrace": _Rule("stacktrace", _optional_text),
    },
    "streams": {
        "__streams.errors.topic": _Rule("original_topic", _text),
        "__streams.errors.partition": _Rule("original_partition", _int()),
        "__streams.errors.offset": _Rule("original_offset", _int()),
        "__streams.errors.exception": _Rule("error_class", _exception_class),
        "__streams.errors.message": _Rule("error_message", _optional_text),
        "__streams.errors.stacktrace": _Rule("stacktrace", _optional_text),
    },
    "confluent": {
        _RULE_TOPIC: _Rule("original_topic", _text),
        # The class is worked out of the message afterwards (_confluent_error).
        _RULE_EXCEPTION: _Rule("error_message", _optional_text),
        # Which rule failed, in which mode (WRITE, READ, UPGRADE, DOWNGRADE), for which subject:
        # only displayed.
        _RULE_NAME: _Rule("", _text),
        "__rule.mode": _Rule("", _text),
        "__rule.subject": _Rule("", _text),
    },
}
_CLOUDEVENTS: dict[str, _Rule] = {
    h.CE_ID: _Rule("event_id", _text),
    h.CE_TYPE: _Rule("event_type", _text),
    h.CE_SOURCE: _Rule("", _text),
    h.CE_SPECVERSION: _Rule("", _text),
    h.CE_TIME: _Rule("", _text),
    "content-type": _Rule("", _text),
}
_ALL_RULES: dict[str, _Rule] = {
    name.lower(): rule for rules in (*_CONVENTIONS.values(), _CLOUDEVENTS) for name, rule in rules.items()
}


def decode(headers: Iterable[Any] | None, value: bytes | None = None, *, max_bytes: int = MAX_BYTES) -> DeadLetterMeta:
    """Normalise dead-letter headers, a list of ``(name, value)``; never raises.

    1. Each header is rendered for display and, when recognised, decoded.
    2. The convention with the most recognised headers is the record's convention.
    3. Its headers fill the fields; other conventions' headers fill what is left.
    4. A structured CloudEvent (given its ``value``, at most ``max_bytes``) names the
       event id and type from its envelope, ahead of any ``ce_*`` header.
    """
    meta = DeadLetterMeta()
    found: dict[str, list[Any]] = {}
    for index, item in enumerate(_iterate(headers, meta)):
        try:
            name, raw = item
        except (TypeError, ValueError):
            meta.problems.append(f"header #{index + 1} is not a (name, value) pair")
            continue
        if type(name) is not str:
            name = _as_name(name)
        if "\x00" in name:  # no database stores NUL in text; the raw headers keep the name
            name = name.replace("\x00", "\ufffd")
        if raw is not None and type(raw) is not bytes:
            raw = _as_bytes(raw, meta, index)
        key, decoded, display, problem = (
            _header(name, raw) if raw is None or len(raw) <= _MEMO_BYTES else _one(name, raw)
        )
        meta.headers_decoded.append((name, display))
        if key is None:
            continue
        if problem:
            meta.problems.append(f"{name}: {problem}")
        found.setdefault(key, []).append(decoded)

    counts = dict.fromkeys(_CONVENTIONS, 0)
    for key in found:
        for convention in _CONVENTIONS_OF.get(key, ()):
            counts[convention] += 1
    best = max(counts, key=counts.__getitem__)  # ties go to the first listed
    if counts[best]:
        meta.convention = best
        _fill(meta, _CONVENTION_FIELDS[best], found)
    for convention, keyed in _CONVENTION_FIELDS.items():
        if convention != meta.convention and counts[convention]:  # none of its headers: nothing to fill
            _fill(meta, keyed, found)
    if _RULE_EXCEPTION in found or _RULE_NAME in found:
        _confluent_error(meta, found)
    content_types = found.get(h.CONTENT_TYPE)
    if value is not None and content_types and content_types[-1]:
        _envelope(meta, content_types[-1], value, max_bytes)
    _fill(meta, _CLOUDEVENT_FIELDS, found)
    return meta


# Most header values repeat from record to record (the type, the source, the group, the
# error class): a short one is decoded once. Long ones (messages, stack traces) are not kept.
_MEMO_BYTES = 256


def _one(name: str, raw: bytes | None) -> tuple[str | None, Any, str, str | None]:
    """(rule key or None when no rule reads it, decoded value, display, problem) of one header."""
    key = name.lower()
    rule = _ALL_RULES.get(key)
    if rule is None:
        return None, None, _render(raw), None
    if raw is None:
        return key, None, _render(raw), "no value"
    decoded, display, problem = rule.decode(raw)
    return key, decoded, display if display is not None else _render(raw), problem


_header = lru_cache(maxsize=4096)(_one)


def decode_payload(value: bytes | None, cap_bytes: int) -> Payload:
    """Keep at most ``cap_bytes`` of a record value and say what it looks like.

    Text is valid UTF-8 with no control characters other than tab and newlines, so
    Avro or Protobuf payloads (Confluent's framing starts with a NUL byte) count as
    binary. JSON is parsed only when the whole value was kept and is text, through
    the SDK's decoder (size and depth limits: eventhub/sdk/payload.py); ``problem``
    says why a value has no JSON.
    """
    if value is None:
        return Payload(b"", False, 0, None, None, False, "no value")
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    value = bytes(value)
    cap = max(0, cap_bytes)
    raw, truncated = value[:cap], len(value) > cap
    text = _utf8_prefix(raw, allow_cut=truncated)
    if text is not None and _CONTROL.search(text):
        text = None
    parsed, problem = None, None
    if truncated:
        problem = f"cut at {len(raw)} of {len(value)} bytes: not read as JSON"
    else:
        try:
            parsed = decode_json(raw, max_bytes=max(cap, 1), max_depth=MAX_DEPTH)
        except PayloadDecodeError as error:
            problem = str(error)
        if text is None and problem is None:
            parsed, problem = None, "control characters: shown as binary"
    return Payload(raw, truncated, len(value), parsed, text, text is None and bool(raw), problem)


# --- helpers -----------------------------------------------------------------------

# Throwable.toString() of the cause that a Java rule exception wraps: "java.lang.Foo: why".
_JAVA_CLASS = re.compile(r"((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*): ")


def _confluent_error(meta: DeadLetterMeta, found: dict[str, list[Any]]) -> None:
    """The error class of a Confluent DLQ record, from its ``__rule.exception`` message."""
    if meta.error_class is not None:
        return
    message = meta.error_message or ""
    match = _JAVA_CLASS.match(message)
    if match:
        meta.error_class, meta.error_message = match[1], message[match.end() :]
        return
    meta.error_class = CONFLUENT_RULE_ERROR_CLASS
    names = [name for name in found.get(_RULE_NAME, ()) if name]
    if not message and names:
        meta.error_message = f"rule {names[-1]} failed"


def _envelope(meta: DeadLetterMeta, content_type: str, value: bytes, max_bytes: int) -> None:
    headers = [(h.CONTENT_TYPE, content_type)]
    if content_mode(headers) != STRUCTURED:
        return
    try:
        meta.cloudevent = decode_cloudevent(headers, value, max_bytes=max_bytes)
    except (ValueError, TypeError) as error:  # PayloadDecodeError, or a value that is not bytes
        meta.problems.append(f"structured CloudEvent not read: {error}")
        return
    meta.event_id = meta.cloudevent.id or meta.event_id
    meta.event_type = meta.cloudevent.type or meta.event_type


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FIELDS = {f.name for f in fields(DeadLetterMeta)}


def _fill(meta: DeadLetterMeta, keyed: tuple[tuple[str, _Rule], ...], found: dict[str, list[Any]]) -> None:
    """Set empty fields from these rules; for one field, later rules win."""
    chosen: dict[str, Any] = {}
    for key, rule in keyed:
        values = found.get(key)
        if values and None in values:
            values = [v for v in values if v is not None]
        if values:
            chosen[rule.field] = values[0] if rule.first else values[-1]
    for name, value in chosen.items():
        if getattr(meta, name) is None:
            setattr(meta, name, value)


def _keyed(rules: dict[str, _Rule]) -> tuple[tuple[str, _Rule], ...]:
    """The rules that fill a field, names lower-cased: worked out once, not per record."""
    return tuple((name.lower(), rule) for name, rule in rules.items() if rule.field in _FIELDS)


# Rule key -> the conventions that name it, in the order of _CONVENTIONS.
_CONVENTIONS_OF: dict[str, tuple[str, ...]] = {}
for _convention, _rules in _CONVENTIONS.items():
    for _name in _rules:
        _CONVENTIONS_OF[_name.lower()] = (*_CONVENTIONS_OF.get(_name.lower(), ()), _convention)
_CONVENTION_FIELDS = {convention: _keyed(rules) for convention, rules in _CONVENTIONS.items()}
_CLOUDEVENT_FIELDS = _keyed(_CLOUDEVENTS)


def _iterate(headers: Iterable[Any] | None, meta: DeadLetterMeta) -> Iterable[Any]:
    if headers is None:
        return []
    if isinstance(headers, (str, bytes)) or not hasattr(headers, "__iter__"):
        meta.problems.append("headers are not a list of (name, value) pairs")
        return []
    return headers


def _as_name(name: Any) -> str:
    if isinstance(name, str):
        return name
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).decode("utf-8", "replace")
    return str(name)


def _as_bytes(raw: Any, meta: DeadLetterMeta, index: int) -> bytes | None:
    if raw is None or isinstance(raw, bytes):
        return raw
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "replace")
    meta.problems.append(f"header #{index + 1}: value is a {type(raw).__name__}, not bytes")
    return str(raw).encode("utf-8", "replace")


def _render(raw: bytes | None) -> str:
    if raw is None:
        return "(null)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    # Control characters would garble the page: such values are binary in all but name.
    return "0x" + raw.hex() if _CONTROL.search(text) else text


def _utf8_prefix(raw: bytes, allow_cut: bool) -> str | None:
    # A cut at cap_bytes may split a multi-byte character: drop up to 3 trailing bytes.
    for drop in range(4 if allow_cut else 1):
        try:
            return raw[: len(raw) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None
