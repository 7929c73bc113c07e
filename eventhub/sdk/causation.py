"""Causation: what ties an event published in reaction to another to that other event.

`producer.publish(..., caused_by=event)` copies onto the new event, from the
handled event:

1. its correlation id (`x-eventhub-correlation-id`; its own id when a foreign
   event has none), so a whole chain shares one; an explicit `correlation_id=` wins;
2. its id (`ce_id`, or `id` in a structured CloudEvent) as `x-eventhub-causation-id`;
3. the W3C trace context: when `opentelemetry-api` is importable and a span is
   current, OpenTelemetry's global propagator writes it (so the new event is a
   child of that span); otherwise the cause's `traceparent` and `tracestate`
   go on unchanged. A `traceparent` the call passes in `headers=` wins over both;
4. `x-eventhub-synthetic: true` when the cause is synthetic.

Plain functions over the cause's id and decoded headers (`Event.id`, `Event.headers`):
no bus, no Django.
OpenTelemetry is optional and imported on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from types import ModuleType

from eventhub.bus.base import Headers
from eventhub.sdk import headers as h

DecodedHeaders = Mapping[str, str | bytes]


def header_text(headers: DecodedHeaders, name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) or value is None else value.decode("utf-8", "replace")


def is_synthetic(headers: DecodedHeaders) -> bool:
    """Whether the event carries `x-eventhub-synthetic: true` (check traffic, not real business)."""
    return (header_text(headers, h.SYNTHETIC) or "").strip().lower() == h.SYNTHETIC_TRUE


def causation_headers(cause_id: str | None, cause: DecodedHeaders, caller_headers: Collection[str] = ()) -> Headers:
    """The causation id and trace context of an event caused by the one with id `cause_id` and headers `cause`.

    `caller_headers` are the header names the call sets itself: with a `traceparent`
    among them, no trace context is added, and no name is ever added twice.
    """
    built: Headers = []
    if cause_id:
        built.append((h.CAUSATION_ID, h.text(cause_id)))
    if h.TRACEPARENT not in caller_headers:
        built += [(name, value) for name, value in trace_context(cause) if name not in caller_headers]
    return built


def trace_context(cause: DecodedHeaders) -> Headers:
    """The current OpenTelemetry span's context if there is one, else the cause's traceparent/tracestate."""
    injected = _current_span_context()
    if injected:
        return injected
    if header_text(cause, h.TRACEPARENT) is None:
        return []  # a tracestate means nothing without its traceparent
    return [(name, h.text(cause[name])) for name in (h.TRACEPARENT, h.TRACESTATE) if cause.get(name) is not None]


def _current_span_context() -> Headers:
    otel = _opentelemetry()
    if otel is None:
        return []
    propagate, trace = otel
    if not trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # the configured propagators: W3C trace context and baggage by default
    return [(name, h.text(value)) for name, value in carrier.items()]


@functools.cache
def _opentelemetry() -> tuple[ModuleType, ModuleType] | None:
    """(opentelemetry.propagate, opentelemetry.trace), or None: the SDK works without them."""
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return None
    return propagate, trace
