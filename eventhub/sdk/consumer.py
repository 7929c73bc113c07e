"""Consuming events: dispatch by type, retry in process, dead-letter, then commit.

At-least-once, on both buses: a record is committed (Kafka offset, Redis XACK)
only once it was handled, dead-lettered or deliberately skipped, and never
before. A crash at any point means redelivery, so handlers must be idempotent.
"""

from __future__ import annotations

import logging
import random
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from eventhub.bus.base import Bus, BusError, GroupConsumer, Headers, Record, RecordTooLarge
from eventhub.sdk import causation
from eventhub.sdk import headers as h
from eventhub.sdk import payload as json_payload
from eventhub.sdk.cloudevents import decode_cloudevent
from eventhub.sdk.heartbeat import DEFAULT_INTERVAL_S, Heartbeat
from eventhub.sdk.payload import PayloadDecodeError
from eventhub.sdk.schemas import (
    InvalidPayload,
    SchemaSource,
    UnknownEventType,
    Validators,
)

log = logging.getLogger(__name__)

_MESSAGE_MAX = 2_000
_STACKTRACE_MAX = 8_000
# A dead letter the broker refuses for its size goes again with its value (and key) cut to this.
_TOO_LARGE_KEEP = 64 * 1024


class NoHandler(LookupError):
    """No handler for the record's event type and no default handler."""

    __module__ = "eventhub.sdk"


class RedeliveredTooOften(RuntimeError):
    """Redis redelivered the entry max_attempts times: earlier deliveries crashed the consumer."""

    __module__ = "eventhub.sdk"


class HandlerFailed(RuntimeError):
    """With dead_letter=False: a record failed every attempt and is left uncommitted."""

    __module__ = "eventhub.sdk"


# Failures that another attempt cannot fix: dead-letter at once.
_NOT_RETRYABLE = (PayloadDecodeError, NoHandler, InvalidPayload, UnknownEventType)


@dataclass(frozen=True)
class Event:
    """One event as its handler sees it, from a CloudEvent in either content mode.

    Binary mode (what EventHub writes): the attributes are the `ce_*` headers and the
    payload is the record value. Structured mode (`application/cloudevents+json`):
    both come from the JSON envelope in the value (eventhub/sdk/cloudevents.py).
    """

    type: str | None  # the CloudEvents type: the ce_type header or the envelope's "type"
    payload: Any  # the event's data, decoded JSON
    key: str | bytes | None  # UTF-8 text when it decodes
    headers: dict[str, str | bytes]
    record: Record  # the raw bus record
    attempt: int  # 1 on the first try
    # The CloudEvents attributes (id, source, time, specversion, subject, extensions), either mode.
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self._attribute("id")

    @property
    def source(self) -> str | None:
        return self._attribute("source")

    @property
    def time(self) -> str | None:
        """RFC 3339 text, as the event carries it."""
        return self._attribute("time")

    @property
    def correlation_id(self) -> str | None:
        """Pass it on to events published while handling this one."""
        return _str_or_none(self.headers.get(h.CORRELATION_ID))

    @property
    def causation_id(self) -> str | None:
        """The id of the event this one reacts to (docs/sdk.md, Causation and tracing)."""
        return _str_or_none(self.headers.get(h.CAUSATION_ID))

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context this event carries, as it came."""
        return _str_or_none(self.headers.get(h.TRACEPARENT))

    @property
    def synthetic(self) -> bool:
        """Check traffic (`x-eventhub-synthetic: true`), and every reaction to it."""
        return causation.is_synthetic(self.headers)

    def _attribute(self, name: str) -> str | None:
        # An Event built by hand (a handler's unit test) may have headers and no attributes.
        value = self.attributes.get(name) if self.attributes else self.headers.get(h.CE_PREFIX + name)
        return _str_or_none(value) if isinstance(value, (str, bytes)) else None


Handler = Callable[[Event], Any]


class Consumer:
    """A member of consumer group `group` that dispatches events to handlers by type.

    >>> consumer = Consumer(bus, "billing", "billing-orders", ["orders"])
    >>> @consumer.handler("order.placed")
    ... def charge(event): ...
    >>> consumer.run(stop)   # or consumer.run_once(1.0) step by step
    """

    def __init__(
        self,
        bus: Bus,
        service: str,
        group: str,
        topics: Iterable[str],
        schemas: SchemaSource | None = None,
        max_attempts: int = 3,
        backoff_s: float = 0.2,
        backoff_max_s: float = 5.0,
        dead_letter: bool = True,
        *,
        validate: bool = False,
        heartbeat_interval_s: float | None = DEFAULT_INTERVAL_S,
        max_records: int = 100,
        poll_timeout_s: float = 1.0,
        client_id: str | None = None,
        max_payload_bytes: int = json_payload.MAX_BYTES,
        max_payload_depth: int = json_payload.MAX_DEPTH,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if validate and schemas is None:
            raise ValueError("validate=True needs schemas")
        self.bus = bus
        self.service = service
        self.group = group
        self.topics = list(topics)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.dead_letter = dead_letter
        self.validators = Validators(schemas) if validate and schemas is not None else None
        self.max_records = max_records
        self.poll_timeout_s = poll_timeout_s
        self.client_id = client_id
        self.max_payload_bytes = max_payload_bytes
        self.max_payload_depth = max_payload_depth
        self._handlers: dict[str, Handler] = {}
        self._default: Handler | None = None
        self._group: GroupConsumer | None = None
        self._dead_letter_topics: set[str] = set()
        self._stop = threading.Event()
        # Held while a step runs, so close() from another thread waits for the record in hand.
        self._lock = threading.Lock()
        self._closed = False
        self.heartbeat: Heartbeat | None = None
        if heartbeat_interval_s:
            self.heartbeat = Heartbeat(
                bus,
                service,
                "consumer",
                group=group,
                topics=self.topics,
                interval_s=heartbeat_interval_s,
            ).start()

    # --- registration ---------------------------------------------------------------

    def handler(self, event_type: str) -> Callable[[Handler], Handler]:
        """Decorator: `@consumer.handler("order.placed")`."""

        def register(fn: Handler) -> Handler:
            self._handlers[event_type] = fn
            return fn

        return register

    def default_handler(self, fn: Handler) -> Handler:
        """Decorator for events of any type without a handler of their own.

        Without one, such events are dead-lettered (NoHandler). Register a
        default that does nothing to ignore them instead.
        """
        self._default = fn
        return fn

    # --- running --------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Poll and handle until `stop` is set or `close()` is called.

        Bus errors (broker away, rebalance during commit) are logged and the
        group re-joined after a pause; uncommitted records then come again.
        HandlerFailed (dead_letter=False) is raised.
        """
        if stop is not None:
            self._stop = stop
        while not self._stop.is_set():
            try:
                if self._step(self.poll_timeout_s) is None:
                    return  # closed meanwhile
            except BusError as exc:
                log.warning(
                    "consumer %s/%s: bus error %s; re-joining",
                    self.service,
                    self.group,
                    type(exc).__name__,
                )
                with self._lock:
                    self._rejoin()  # whatever failed (poll, commit, dead letter), start over from the last commit
                self._stop.wait(self.backoff_max_s)

    def run_once(self, timeout_s: float = 1.0) -> int:
        """Poll once and finish the records polled; returns how many were finished.

        1. Each record in poll order is skipped, handled or dead-lettered.
        2. The finished ones are committed, once per batch (and before any
           backoff wait, so a long retry does not hold finished work back).
        3. When a record cannot be finished (stop requested during a backoff,
           bus error while dead-lettering, HandlerFailed), the records after it
           are not touched and the group is re-joined, so they are polled again
           from the last commit.
        """
        finished = self._step(timeout_s)
        if finished is None:
            raise RuntimeError("the consumer is closed")
        return finished

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop `run()` (after the record in hand), leave the group, stop the heartbeat."""
        self._stop.set()
        acquired = self._lock.acquire(timeout=timeout_s)
        try:
            self._closed = True
            self._rejoin()
        finally:
            if acquired:
                self._lock.release()
        if self.heartbeat is not None:
            self.heartbeat.close()

    def _step(self, timeout_s: float) -> int | None:
        with self._lock:
            if self._closed:
                return None
            records = self._group_consumer().poll(timeout_s, self.max_records)
            done: list[Record] = []  # finished, not yet committed
            finished = 0
            complete = False
            try:
                for record in records:
                    if not self._process(record, lambda: self._commit(done)):
                        break
                    done.append(record)
                    finished += 1
                else:
                    complete = True
            finally:
                try:
                    self._commit(done)
                except Exception:
                    complete = False  # a failed commit leaves the position past uncommitted records
                    raise
                finally:
                    if not complete:
                        self._rejoin()
            return finished

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- one record -----------------------------------------------------------------

    def _process(self, record: Record, before_wait: Callable[[], None]) -> bool:
        """Skip, handle or dead-letter one record; False when it was left unfinished."""
        headers = h.decode_headers(record.headers)
        # What the headers say (binary mode) names the record until its value is decoded.
        event_type = _str_or_none(headers.get(h.CE_TYPE))
        event_id = _str_or_none(headers.get(h.CE_ID))

        replay_group = headers.get(h.REPLAY_GROUP)
        if replay_group is not None and replay_group != self.group:
            log.debug("skipped %s %s: replay for group %s", event_type, event_id, replay_group)
            return True

        # Redis counts deliveries across crashes: this entry has been taking consumers down.
        if record.delivery_count and record.delivery_count > 1 and record.delivery_count >= self.max_attempts:
            error = RedeliveredTooOften(f"delivered {record.delivery_count} times without being acknowledged")
            return self._dead_letter(record, event_type, event_id, error, attempts=record.delivery_count - 1)

        try:
            cloudevent = decode_cloudevent(
                record.headers, record.value, max_bytes=self.max_payload_bytes, max_depth=self.max_payload_depth
            )
        except PayloadDecodeError as exc:
            return self._dead_letter(record, event_type, event_id, exc, attempts=0)
        event_type, event_id = cloudevent.type, cloudevent.id
        try:
            handler = self._handler_for(event_type)
        except NoHandler as exc:
            return self._dead_letter(record, event_type, event_id, exc, attempts=0)

        key = _text_or_bytes(record.key)
        payload = cloudevent.data
        for attempt in range(1, self.max_attempts + 1):
            event = Event(event_type, payload, key, headers, record, attempt, cloudevent.attributes)
            try:
                if self.validators is not None:
                    self.validators.validate(event_type or "", payload)
                handler(event)
            except Exception as exc:  # noqa: BLE001 - any handler error is retried, then dead-lettered
                self._count("failed")
                if self.heartbeat is not None:
                    self.heartbeat.error(exc)
                log.warning(
                    "handler failed on %s %s (attempt %d of %d): %s",
                    event_type,
                    event_id,
                    attempt,
                    self.max_attempts,
                    _error_class(exc),
                )
                if isinstance(exc, _NOT_RETRYABLE) or attempt == self.max_attempts:
                    return self._dead_letter(record, event_type, event_id, exc, attempts=attempt)
                before_wait()
                if self._stop.wait(self.backoff(attempt)):
                    return False
            else:
                self._count("handled")
                return True
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt`: exponential, capped, jittered.

        Jitter between half and all of the delay keeps a minimum pause while
        spreading the retries of many consumers failing on the same outage.
        """
        delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return random.uniform(delay / 2, delay)

    def _handler_for(self, event_type: str | None) -> Handler:
        handler = self._handlers.get(event_type) if event_type is not None else None
        handler = handler or self._default
        if handler is None:
            raise NoHandler(f"no handler for event type {event_type!r} and no default handler")
        return handler

    def _dead_letter(
        self, record: Record, event_type: str | None, event_id: str | None, error: Exception, attempts: int
    ) -> bool:
        if not self.dead_letter:
            raise HandlerFailed(f"{event_type} {event_id} failed after {attempts} attempts") from error
        topic = h.dead_letter_topic(record.topic, self.bus.kind)
        if topic not in self._dead_letter_topics:
            self.bus.create_topic(topic)  # Kafka brokers may not auto-create it
            self._dead_letter_topics.add(topic)
        failure = self._failure_headers(record, error, attempts)
        try:
            self.bus.publish(topic, record.value, key=record.key, headers=list(record.headers) + failure)
        except RecordTooLarge:
            # The source topic took it, the dead-letter topic (or our client) does not: a cut
            # copy with its size, rather than a record that stops the group until it expires.
            value, key = _cut_to_fit(record)
            size = [(h.PAYLOAD_SIZE, h.text(str(len(record.value or b""))))]
            self.bus.publish(topic, value, key=key, headers=_headers_within(record.headers) + failure + size)
            log.warning(
                "dead letter of %s %s too large for %s: value cut to %d bytes",
                event_type,
                event_id,
                topic,
                len(value or b""),
            )
        self._count("dead_lettered")
        log.error(
            "dead-lettered %s %s from %s to %s after %d attempts: %s",
            event_type,
            event_id,
            record.topic,
            topic,
            attempts,
            _error_class(error),
        )
        return True

    def _failure_headers(self, record: Record, error: Exception, attempts: int) -> Headers:
        error_class = _error_class(error)
        message = str(error)[:_MESSAGE_MAX]
        stacktrace = _stacktrace(error)
        failed = [(h.ORIGINAL_TOPIC, record.topic)]
        if self.bus.kind == "redis":
            failed.append((h.ORIGINAL_ENTRY_ID, str(record.offset)))
        else:
            failed += [
                (h.ORIGINAL_PARTITION, str(record.partition)),
                (h.ORIGINAL_OFFSET, str(record.offset)),
            ]
        failed += [
            (h.GROUP, self.group),
            (h.ATTEMPTS, str(attempts)),
            (h.ERROR_CLASS, error_class),
            (h.ERROR_MESSAGE, message),
            (h.STACKTRACE, stacktrace),
            (h.FAILED_AT, h.utc_now_iso()),
            (h.SERVICE, self.service),
        ]
        encoded = [(name, h.text(value)) for name, value in failed]
        if self.bus.kind == "kafka":
            encoded += [
                (h.DLT_ORIGINAL_TOPIC, h.text(record.topic)),
                (h.DLT_ORIGINAL_PARTITION, h.int32_be(record.partition)),
                (h.DLT_ORIGINAL_OFFSET, h.int64_be(int(record.offset))),
            ]
            if record.timestamp_ms is not None:
                encoded.append((h.DLT_ORIGINAL_TIMESTAMP, h.int64_be(record.timestamp_ms)))
            encoded += [
                (h.DLT_ORIGINAL_CONSUMER_GROUP, h.text(self.group)),
                (h.DLT_EXCEPTION_FQCN, h.text(error_class)),
                (h.DLT_EXCEPTION_MESSAGE, h.text(message)),
                (h.DLT_EXCEPTION_STACKTRACE, h.text(stacktrace)),
            ]
        return encoded

    # --- plumbing -------------------------------------------------------------------

    def _group_consumer(self) -> GroupConsumer:
        if self._group is None:
            self._group = self.bus.consumer(self.group, self.topics, client_id=self.client_id)
        return self._group

    def _commit(self, done: list[Record]) -> None:
        if done and self._group is not None:
            self._group.commit(done)
            done.clear()

    def _rejoin(self) -> None:
        """Leave the group; the next poll joins again and starts from the last commit."""
        group, self._group = self._group, None
        if group is not None:
            try:
                group.close()
            except Exception as exc:  # noqa: BLE001 - leaving is best effort: the broker times the member out anyway
                log.warning("closing group consumer %s: %s", self.group, type(exc).__name__)

    def _count(self, counter: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.count(counter)


def _cut_to_fit(record: Record) -> tuple[bytes | None, bytes | None]:
    """(value, key) cut to _TOO_LARGE_KEEP bytes each."""
    value = None if record.value is None else record.value[:_TOO_LARGE_KEEP]
    key = None if record.key is None else record.key[:_TOO_LARGE_KEEP]
    return value, key


def _headers_within(headers: Headers) -> Headers:
    """The original headers, in order, up to _TOO_LARGE_KEEP bytes in all."""
    kept: Headers = []
    budget = _TOO_LARGE_KEEP
    for name, value in headers:
        budget -= len(name) + len(value or b"")
        if budget < 0:
            break
        kept.append((name, value))
    return kept


def _error_class(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _stacktrace(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    # The innermost frames and the message are at the end: keep the tail.
    return text if len(text) <= _STACKTRACE_MAX else "...\n" + text[-_STACKTRACE_MAX:]


def _str_or_none(value: str | bytes | None) -> str | None:
    return value if isinstance(value, str) or value is None else value.decode("utf-8", "replace")


def _text_or_bytes(value: bytes | None) -> str | bytes | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value
