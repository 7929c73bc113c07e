"""Header names the SDK writes and reads, and the small codecs around them.

Every EventHub header value is UTF-8 text, so any tool can show it. The one
exception is Spring's `kafka_dlt-*` family, written on Kafka dead letters only
so that Spring-based services and tools read them: its partition, offset and
timestamp are big-endian integers, as Spring writes them.

The dead-letter names are defined here only; `deadletters/headers.py` decodes them.
"""

from __future__ import annotations

import fnmatch
import re
import struct
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from eventhub.bus.base import Headers

# CloudEvents Kafka protocol binding, binary content mode.
CE_ID = "ce_id"
CE_TYPE = "ce_type"
CE_SOURCE = "ce_source"
CE_SPECVERSION = "ce_specversion"
CE_TIME = "ce_time"
CONTENT_TYPE = "content-type"
CE_SPECVERSION_VALUE = "1.0"
JSON_CONTENT_TYPE = "application/json"
CE_PREFIX = "ce_"  # binary mode: attribute <name> travels as header ce_<name>
# Structured content mode: the value is the whole event in CloudEvents' JSON format.
CLOUDEVENTS_JSON_CONTENT_TYPE = "application/cloudevents+json"

SCHEMA_VERSION = "x-eventhub-schema-version"
CORRELATION_ID = "x-eventhub-correlation-id"
CAUSATION_ID = "x-eventhub-causation-id"  # the ce_id of the event this one reacts to
SYNTHETIC = "x-eventhub-synthetic"  # "true" on check traffic and on every reaction to it
SYNTHETIC_TRUE = "true"

# W3C Trace Context (https://www.w3.org/TR/trace-context/), as OpenTelemetry writes it.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# Targeted replay (written by the redrive/replay tools, read by the consumer).
REPLAY_GROUP = "x-eventhub-replay-group"
REPLAY_OF = "x-eventhub-replay-of"  # the dead letter's id in EventHub
REPLAY_COUNT = "x-eventhub-replay-count"  # how many times it was replayed, this replay included

# Dead letters: where the record came from and why it failed.
ORIGINAL_TOPIC = "x-eventhub-original-topic"
ORIGINAL_PARTITION = "x-eventhub-original-partition"
ORIGINAL_OFFSET = "x-eventhub-original-offset"
ORIGINAL_ENTRY_ID = "x-eventhub-original-entry-id"  # Redis
GROUP = "x-eventhub-group"
ATTEMPTS = "x-eventhub-attempts"
ERROR_CLASS = "x-eventhub-error-class"
ERROR_MESSAGE = "x-eventhub-error-message"
STACKTRACE = "x-eventhub-stacktrace"
FAILED_AT = "x-eventhub-failed-at"
SERVICE = "x-eventhub-service"
# Only when the value was too large for the dead-letter topic and was cut: its size before.
PAYLOAD_SIZE = "x-eventhub-payload-size"

DEAD_LETTER_HEADERS = (
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    ORIGINAL_ENTRY_ID,
    GROUP,
    ATTEMPTS,
    ERROR_CLASS,
    ERROR_MESSAGE,
    STACKTRACE,
    FAILED_AT,
    SERVICE,
    PAYLOAD_SIZE,
)

# The error class of a Redis entry that kept crashing its consumers and was dead-lettered
# for them (RedisBus.move_poison_entries).
POISON_ERROR_CLASS = "eventhub.PoisonEntry"

# Spring Kafka's dead-letter family (DeadLetterPublishingRecoverer), Kafka only.
DLT_ORIGINAL_TOPIC = "kafka_dlt-original-topic"
DLT_ORIGINAL_PARTITION = "kafka_dlt-original-partition"  # 4-byte big-endian int
DLT_ORIGINAL_OFFSET = "kafka_dlt-original-offset"  # 8-byte big-endian long
DLT_ORIGINAL_TIMESTAMP = "kafka_dlt-original-timestamp"  # 8-byte big-endian long, ms
DLT_ORIGINAL_CONSUMER_GROUP = "kafka_dlt-original-consumer-group"
DLT_EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
DLT_EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
DLT_EXCEPTION_STACKTRACE = "kafka_dlt-exception-stacktrace"

SPRING_DEAD_LETTER_HEADERS = (
    DLT_ORIGINAL_TOPIC,
    DLT_ORIGINAL_PARTITION,
    DLT_ORIGINAL_OFFSET,
    DLT_ORIGINAL_TIMESTAMP,
    DLT_ORIGINAL_CONSUMER_GROUP,
    DLT_EXCEPTION_FQCN,
    DLT_EXCEPTION_MESSAGE,
    DLT_EXCEPTION_STACKTRACE,
)

HEARTBEAT_TOPIC_KAFKA = "eventhub.heartbeats"
HEARTBEAT_TOPIC_REDIS = "eventhub:heartbeats"


def dead_letter_topic(topic: str, bus_kind: str) -> str:
    """`orders` -> `orders.dlq` on Kafka, `orders:dlq` on Redis (stream naming)."""
    return f"{topic}:dlq" if bus_kind == "redis" else f"{topic}.dlq"


# Dead-letter topics of every convention: EventHub's, Spring's (.DLT, -dlt), Redis streams.
DEFAULT_DLQ_PATTERNS = ["*.dlq", "*.DLT", "*-dlt", "*:dlq"]

_DLQ_SUFFIX = re.compile(r"^(?P<source>.+?)[.\-_:](?:dlq|dlt)$", re.IGNORECASE)


def dead_letter_source(topic_name: str) -> str | None:
    """The topic a dead-letter topic serves: ``orders.DLT`` -> ``orders``."""
    match = _DLQ_SUFFIX.match(topic_name or "")
    return match["source"] if match else None


def is_dead_letter_topic(name: str, patterns: list[str] | None = None) -> bool:
    """Whether ``name`` matches one of the fnmatch patterns (case-sensitive)."""
    patterns = DEFAULT_DLQ_PATTERNS if patterns is None else patterns
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def heartbeat_topic(bus_kind: str) -> str:
    return HEARTBEAT_TOPIC_REDIS if bus_kind == "redis" else HEARTBEAT_TOPIC_KAFKA


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# (millisecond, its text, its UTF-8): a producer stamps hundreds of events per millisecond,
# so the text is formatted once per millisecond. One tuple, so threads swap it atomically.
_last_stamp: tuple[int, str, bytes] = (-1, "", b"")


def _stamp() -> tuple[int, str, bytes]:
    global _last_stamp
    # time.time_ns() is the clock datetime.now() reads; isoformat truncates to milliseconds too.
    ms = time.time_ns() // 1_000_000
    stamp = _last_stamp
    if stamp[0] != ms:
        text = (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        stamp = _last_stamp = (ms, text, text.encode())
    return stamp


def utc_now_iso() -> str:
    """RFC 3339 / ISO-8601 UTC with milliseconds and a `Z`: 2024-05-01T12:00:00.123Z."""
    return _stamp()[1]


def utc_now_iso_bytes() -> bytes:
    """`utc_now_iso()` in UTF-8, as the ce_time header carries it."""
    return _stamp()[2]


def text(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def int32_be(value: int) -> bytes:
    return struct.pack(">i", value)


def int64_be(value: int) -> bytes:
    return struct.pack(">q", value)


def encode_headers(
    headers: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]] | None,
) -> Headers:
    """Caller headers as the bus wants them: a list of (name, bytes)."""
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(name, text(value)) for name, value in pairs]


def decode_headers(headers: Headers) -> dict[str, str | bytes]:
    """Bus headers as a dict for handlers: UTF-8 text where it decodes, else the bytes.

    A repeated name keeps its last value, like `Record.header()`.
    """
    decoded: dict[str, str | bytes] = {}
    for name, value in headers:
        try:
            decoded[name] = value.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            decoded[name] = value
    return decoded
