"""Causation: an event published with caused_by joins its cause's chain and trace.

On both real buses: a handler reacts to a consumed event, and the reaction's
record on the broker carries the cause's correlation id, id, trace context and
synthetic flag. Then the header building alone, table-driven, without a bus.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from eventhub.bus import Record
from eventhub.sdk import Consumer, Event, LocalSchemas, Producer, causation
from tests.sdk import ORDER_SCHEMA, read_records

CAUSE_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CAUSE_TRACESTATE = "congo=t61rcWkgMzE"
# The span a handler runs in when OpenTelemetry is in use (the API alone, no SDK).
SPAN = SpanContext(
    trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
    span_id=0x00F067AA0BA902B7,
    is_remote=False,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("eventhub", "1")]),
)
SPAN_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PAYMENT_SCHEMA = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}}


@pytest.fixture
def topics(bus, unique):
    orders, payments = unique("orders"), unique("payments")
    bus.create_topic(orders)
    bus.create_topic(payments)
    return orders, payments


@pytest.fixture
def producer(bus, topics):
    orders, payments = topics
    schemas = LocalSchemas(
        {
            "order.placed": {"schema": ORDER_SCHEMA, "topic": orders},
            "payment.authorized": {"schema": PAYMENT_SCHEMA, "topic": payments},
        }
    )
    with Producer(bus, "shop", schemas, heartbeat_interval_s=None) as producer:
        yield producer


@pytest.fixture
def react(bus, topics, producer, unique):
    """react(publish) -> (cause, reaction): `publish(event)` runs in the handler of the consumed order."""
    consumers: list[Consumer] = []

    def run(publish) -> tuple[Record, Record]:
        orders, payments = topics
        consumer = Consumer(bus, "payments", unique("payments"), [orders], max_attempts=1, heartbeat_interval_s=None)
        consumers.append(consumer)
        handled: list[Event] = []

        @consumer.handler("order.placed")
        def authorise(event: Event) -> None:
            publish(event)
            handled.append(event)

        deadline = time.monotonic() + 20
        while not handled:
            assert time.monotonic() < deadline, "the order was not handled in time"
            consumer.run_once(0.2)
        producer.flush()
        [cause] = read_records(bus, orders, 1)
        [reaction] = read_records(bus, payments, 1)
        return cause, reaction

    yield run
    for consumer in consumers:
        consumer.close()


def _headers(record: Record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def test_a_reaction_carries_its_causes_correlation_id_id_traceparent_and_synthetic_flag(producer, react):
    producer.publish(
        "order.placed",
        {"order_id": "o-1", "amount": 5},
        headers={"traceparent": CAUSE_TRACEPARENT, "tracestate": CAUSE_TRACESTATE},
        correlation_id="checkout-42",
        synthetic=True,
    )
    cause, reaction = react(lambda event: producer.publish("payment.authorized", {"order_id": "o-1"}, caused_by=event))

    cause_headers, headers = _headers(cause), _headers(reaction)
    assert cause_headers["x-eventhub-synthetic"] == "true"
    assert headers["x-eventhub-correlation-id"] == "checkout-42"
    assert headers["x-eventhub-causation-id"] == cause_headers["ce_id"]
    assert uuid.UUID(headers["ce_id"]) != uuid.UUID(cause_headers["ce_id"])  # a new event, of its own id
    assert headers["traceparent"] == CAUSE_TRACEPARENT  # no span is current: passed through
    assert headers["tracestate"] == CAUSE_TRACESTATE
    assert headers["x-eventhub-synthetic"] == "true"
    assert [name for name, _ in reaction.headers].count("traceparent") == 1


def test_publish_nowait_chains_too_and_an_explicit_correlation_id_wins(producer, react):
    producer.publish(
        "order.placed",
        {"order_id": "o-2", "amount": 5},
        # The SDK alone sets causation and the synthetic flag: the same names from the caller are dropped.
        headers={"traceparent": CAUSE_TRACEPARENT, "x-eventhub-causation-id": "spoof", "x-eventhub-synthetic": "true"},
    )

    def publish(event: Event) -> None:
        producer.publish_nowait("payment.authorized", {"order_id": "o-2"}, caused_by=event, correlation_id="mine")

    cause, reaction = react(publish)
    cause_headers, headers = _headers(cause), _headers(reaction)
    assert cause_headers["x-eventhub-correlation-id"] == cause_headers["ce_id"]  # the chain started there
    assert headers["x-eventhub-correlation-id"] == "mine"
    assert headers["x-eventhub-causation-id"] == cause_headers["ce_id"]
    assert headers["traceparent"] == CAUSE_TRACEPARENT
    assert "tracestate" not in headers
    # Neither event is synthetic: the header is absent, not "false".
    assert "x-eventhub-synthetic" not in cause_headers and "x-eventhub-synthetic" not in headers
    assert "x-eventhub-causation-id" not in cause_headers


def test_with_a_current_opentelemetry_span_the_reaction_is_its_child(producer, react):
    producer.publish("order.placed", {"order_id": "o-3", "amount": 5}, headers={"traceparent": CAUSE_TRACEPARENT})

    def publish(event: Event) -> None:
        with trace.use_span(NonRecordingSpan(SPAN)):
            producer.publish("payment.authorized", {"order_id": "o-3"}, caused_by=event)

    cause, reaction = react(publish)
    headers = _headers(reaction)
    assert headers["traceparent"] == SPAN_TRACEPARENT
    assert headers["traceparent"].split("-")[1] == format(SPAN.trace_id, "032x")
    assert headers["tracestate"] == "eventhub=1"
    assert headers["x-eventhub-causation-id"] == _headers(cause)["ce_id"]


def test_a_foreign_cause_without_a_chain_starts_one_at_itself(bus, topics, producer, react):
    orders, _ = topics
    bus.publish(
        orders, b'{"order_id": "o-4", "amount": 5}', headers=[("ce_id", b"legacy-7"), ("ce_type", b"order.placed")]
    )
    _, reaction = react(lambda event: producer.publish("payment.authorized", {"order_id": "o-4"}, caused_by=event))
    headers = _headers(reaction)
    assert headers["x-eventhub-correlation-id"] == headers["x-eventhub-causation-id"] == "legacy-7"
    assert "traceparent" not in headers and "x-eventhub-synthetic" not in headers


# --------------------------------------------------------------------------- without a bus

CAUSE = {"x-eventhub-correlation-id": "c-1", "traceparent": CAUSE_TRACEPARENT, "tracestate": CAUSE_TRACESTATE}


@pytest.mark.parametrize(
    ("cause_id", "cause", "caller_headers", "expected"),
    [
        (
            "e-1",
            CAUSE,
            (),
            [
                ("x-eventhub-causation-id", "e-1"),
                ("traceparent", CAUSE_TRACEPARENT),
                ("tracestate", CAUSE_TRACESTATE),
            ],
        ),
        # The caller's own traceparent wins: no trace headers from the cause, not even its tracestate.
        ("e-1", CAUSE, {"traceparent"}, [("x-eventhub-causation-id", "e-1")]),
        # A caller's tracestate alone is kept, the cause's is not added beside it.
        ("e-1", CAUSE, {"tracestate"}, [("x-eventhub-causation-id", "e-1"), ("traceparent", CAUSE_TRACEPARENT)]),
        # A foreign cause: no id, a tracestate without its traceparent.
        (None, {"tracestate": CAUSE_TRACESTATE}, (), []),
        # Header values that are not UTF-8 stay bytes in Event.headers and go on as they came.
        (None, {"traceparent": b"00-\xff"}, (), [("traceparent", "00-\ufffd")]),
    ],
)
def test_causation_headers_without_a_current_span(cause_id, cause, caller_headers, expected):
    built = causation.causation_headers(cause_id, cause, caller_headers)
    assert [(name, value.decode("utf-8", "replace")) for name, value in built] == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-eventhub-synthetic": "true"}, True),
        ({"x-eventhub-synthetic": b"TRUE"}, True),
        ({"x-eventhub-synthetic": "false"}, False),
        ({"x-eventhub-synthetic": "yes"}, False),
        ({}, False),
    ],
)
def test_is_synthetic(headers, expected):
    assert causation.is_synthetic(headers) is expected


def test_a_current_span_replaces_the_causes_trace_context():
    with trace.use_span(NonRecordingSpan(SPAN)):
        built = dict(causation.causation_headers("e-1", CAUSE))
    assert built["traceparent"] == SPAN_TRACEPARENT.encode()
    assert built["tracestate"] == b"eventhub=1"
    # An invalid span context (the default outside any span) does not count as current.
    with trace.use_span(NonRecordingSpan(SpanContext(0, 0, is_remote=False))):
        assert dict(causation.causation_headers("e-1", CAUSE))["traceparent"] == CAUSE_TRACEPARENT.encode()


def test_without_opentelemetry_the_causes_trace_context_passes_through(monkeypatch):
    monkeypatch.setattr(causation, "_opentelemetry", lambda: None)  # as if opentelemetry-api were not installed
    with trace.use_span(NonRecordingSpan(SPAN)):
        built = dict(causation.causation_headers("e-1", CAUSE))
    assert built["traceparent"] == CAUSE_TRACEPARENT.encode()
    assert built["tracestate"] == CAUSE_TRACESTATE.encode()


def test_the_sdk_imports_without_opentelemetry():
    # A fresh interpreter where `import opentelemetry` fails: the SDK still loads and works.
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from eventhub.sdk import causation\n"
        "assert causation._opentelemetry() is None\n"
        "print(causation.causation_headers('e', {'traceparent': 't'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('x-eventhub-causation-id', b'e'), ('traceparent', b't')]"
