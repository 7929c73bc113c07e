"""Publishing events: validate against the schema, then send as a CloudEvent.

Records use the CloudEvents Kafka protocol binding in binary mode: the event's
attributes travel as `ce_*` headers and the value is the payload alone, compact
JSON in UTF-8. The same layout is used on Redis Streams.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self

import msgspec

from eventhub.bus.base import Bus, Headers, Published
from eventhub.sdk import causation
from eventhub.sdk import headers as h
from eventhub.sdk.heartbeat import DEFAULT_INTERVAL_S, Heartbeat
from eventhub.sdk.ids import new_event_id
from eventhub.sdk.schemas import EventSchema, SchemaSource, Validators, json_path

if TYPE_CHECKING:
    from eventhub.sdk.consumer import Event

log = logging.getLogger(__name__)

HeadersIn = Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]]


class NoTopic(ValueError):
    """Neither the call nor the schema source names the event's topic."""

    __module__ = "eventhub.sdk"


def _as_plain(value: Any) -> Any:
    """What msgspec does not write itself: a subclass of str, int or float (Django's SafeString,
    a value type of the caller's) is written as its plain value, as json.dumps writes it."""
    for plain in (str, int, float):
        if isinstance(value, plain):
            return plain(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The payload's JSON: what json.dumps(separators=(",", ":"), ensure_ascii=False) writes, a
# number's notation aside (1e16, not 1e+16: the same value), about eight times faster. For
# the bench's order it was half of what the SDK adds to the client's own work per event
# (docs/performance.md). Decimals are numbers, as the schema validator takes them.
_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=_as_plain)

# Headers the SDK sets; a caller's header of the same name would contradict them.
_RESERVED = frozenset(
    (
        h.CE_ID,
        h.CE_TYPE,
        h.CE_SOURCE,
        h.CE_SPECVERSION,
        h.CE_TIME,
        h.CONTENT_TYPE,
        h.SCHEMA_VERSION,
        h.CORRELATION_ID,
        h.CAUSATION_ID,
        h.SYNTHETIC,
    )
)


_SYNTHETIC_HEADER = (h.SYNTHETIC, h.SYNTHETIC_TRUE.encode())


def encode_payload(payload: Any) -> bytes:
    """Compact JSON, UTF-8 (not ASCII-escaped), as every EventHub payload.

    ValueError for what JSON cannot hold: a NaN or an infinity (no JSON reader takes one
    back, EventHub's consumer included), a payload that contains itself or nests deeper
    than Python recurses. TypeError for a value of no JSON type.
    """
    try:
        value = _ENCODER.encode(payload)
    except RecursionError:
        raise ValueError("the payload refers to itself (or nests too deep) to be encoded as JSON") from None
    # A float's NaN or infinity comes out as null, a Decimal's as its name: only a payload
    # whose text holds one of these is walked to find out which.
    if b"null" in value or b"NaN" in value or b"Infinity" in value:
        where = _not_finite(payload)
        if where is not None:
            raise ValueError(f"{where} is not a JSON number: JSON has no NaN or infinity")
    return value


def _not_finite(payload: Any) -> str | None:
    """The path of the first NaN or infinite number in the payload, or None."""
    pending: list[tuple[Any, list[str | int]]] = [(payload, [])]
    while pending:
        value, path = pending.pop()
        if isinstance(value, (float, Decimal)):
            if not _finite(value):
                return json_path(path)
        elif isinstance(value, dict):
            pending += [(item, [*path, str(name)]) for name, item in reversed(value.items())]
        elif isinstance(value, (list, tuple)):
            pending += [(item, [*path, index]) for index, item in reversed(list(enumerate(value)))]
    return None


def _finite(number: float | Decimal) -> bool:
    return number.is_finite() if isinstance(number, Decimal) else math.isfinite(number)


def _caller_headers(headers: HeadersIn | None) -> Headers:
    return [(name, value) for name, value in h.encode_headers(headers) if name not in _RESERVED] if headers else []


def encode_key(key: str | bytes | None) -> bytes | None:
    return key if key is None or type(key) is bytes else h.text(key)


class Producer:
    """Validates and publishes events of one service.

    >>> producer = Producer(bus, "checkout", LocalSchemas({...}))
    >>> producer.publish("order.placed", {"order_id": "o-1", "amount": 12.5}, key="o-1")
    """

    def __init__(
        self,
        bus: Bus,
        service: str,
        schemas: SchemaSource,
        source: str | None = None,
        *,
        heartbeat_interval_s: float | None = DEFAULT_INTERVAL_S,
    ):
        self.bus = bus
        self.service = service
        self.source = source or f"/services/{service}"
        self.validators = Validators(schemas)
        # Per event type: the schema last seen and its static headers (see _static_headers).
        self._static: dict[str, tuple[EventSchema, Headers]] = {}
        self.heartbeat: Heartbeat | None = None
        if heartbeat_interval_s:
            self.heartbeat = Heartbeat(bus, service, "producer", interval_s=heartbeat_interval_s).start()

    def publish(
        self,
        event_type: str,
        payload: Any,
        key: str | bytes | None = None,
        headers: HeadersIn | None = None,
        topic: str | None = None,
        correlation_id: str | None = None,
        *,
        caused_by: Event | None = None,
        synthetic: bool = False,
    ) -> Published:
        """Validate, send, and wait for the broker's acknowledgement.

        `caused_by`: the event being handled, when this one reacts to it; the new
        event joins its chain and trace (eventhub/sdk/causation.py). `synthetic`
        marks check traffic; a reaction to a synthetic event is synthetic anyway.
        Raises InvalidPayload (and sends nothing) when the payload does not match.
        """
        topic, value, key_bytes, record_headers, event_id = self._prepare(
            event_type, payload, key, headers, topic, correlation_id, caused_by, synthetic
        )
        try:
            published = self.bus.publish(topic, value, key=key_bytes, headers=record_headers)
        except Exception as exc:
            self._failed(exc)
            raise
        self._published(1)
        log.debug("published %s %s to %s", event_type, event_id, topic)
        return published

    def publish_nowait(
        self,
        event_type: str,
        payload: Any,
        key: str | bytes | None = None,
        headers: HeadersIn | None = None,
        topic: str | None = None,
        correlation_id: str | None = None,
        *,
        caused_by: Event | None = None,
        synthetic: bool = False,
    ) -> str:
        """Validate and hand the record to the bus buffer; returns the event id (`ce_id`).

        For throughput: nothing is acknowledged until `flush()`, which raises if
        any buffered record could not be delivered. Arguments as for `publish()`.
        """
        topic, value, key_bytes, record_headers, event_id = self._prepare(
            event_type, payload, key, headers, topic, correlation_id, caused_by, synthetic
        )
        self.bus.send(topic, value, key=key_bytes, headers=record_headers)
        self._published(1)
        return event_id

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every record given to `publish_nowait` is acknowledged."""
        try:
            self.bus.flush(timeout_s) if timeout_s is not None else self.bus.flush()
        except Exception as exc:
            self._failed(exc)
            raise

    def close(self) -> None:
        """Flush what is buffered and stop the heartbeat. The bus stays open: it is the caller's."""
        try:
            self.flush()
        finally:
            if self.heartbeat is not None:
                self.heartbeat.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _prepare(
        self,
        event_type: str,
        payload: Any,
        key: str | bytes | None,
        headers: HeadersIn | None,
        topic: str | None,
        correlation_id: str | None,
        caused_by: Event | None,
        synthetic: bool,
    ) -> tuple[str, bytes, bytes | None, Headers, str]:
        schema = self.validators.validate(event_type, payload)
        topic = topic or schema.topic
        if not topic:
            raise NoTopic(f"no topic for {event_type}: pass topic= or give the schema source one")
        event_id = new_event_id()
        event_id_bytes = event_id.encode()
        caller = _caller_headers(headers) if headers else ()
        reaction: Headers | tuple = ()
        if caused_by is not None:
            # A foreign cause without a correlation id starts its chain at itself.
            correlation_id = correlation_id or caused_by.correlation_id or caused_by.id
            synthetic = synthetic or causation.is_synthetic(caused_by.headers)
            reaction = causation.causation_headers(caused_by.id, caused_by.headers, {name for name, _ in caller})
        record_headers = [
            *caller,
            (h.CE_ID, event_id_bytes),
            *self._static_headers(schema),
            (h.CE_TIME, h.utc_now_iso_bytes()),
            # A new chain of events starts with its first event's id.
            (h.CORRELATION_ID, correlation_id.encode("utf-8") if correlation_id else event_id_bytes),
            *reaction,
        ]
        if synthetic:
            record_headers.append(_SYNTHETIC_HEADER)
        key_bytes = key.encode("utf-8") if type(key) is str else encode_key(key)
        return topic, encode_payload(payload), key_bytes, record_headers, event_id

    def _static_headers(self, schema: EventSchema) -> Headers:
        """The headers that are the same for every event of one type and version, encoded once.

        Looked up by event type and kept while the source hands out the same schema object
        (LocalSchemas always, RegistrySchemas until it fetches again): no key to build per event.
        """
        cached = self._static.get(schema.event_type)
        if cached is None or cached[0] is not schema:
            cached = self._static[schema.event_type] = (
                schema,
                [
                    (h.CE_TYPE, schema.event_type.encode("utf-8")),
                    (h.CE_SOURCE, self.source.encode("utf-8")),
                    (h.CE_SPECVERSION, h.CE_SPECVERSION_VALUE.encode()),
                    (h.CONTENT_TYPE, h.JSON_CONTENT_TYPE.encode()),
                    (h.SCHEMA_VERSION, str(schema.version).encode()),
                ],
            )
        return cached[1]

    def _published(self, n: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.count("published", n)

    def _failed(self, exc: BaseException) -> None:
        if self.heartbeat is not None:
            self.heartbeat.count("failed")
            self.heartbeat.error(exc)
