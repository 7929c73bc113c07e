"""Design lints: each code from a minimal design, none from a clean one, fixed query count.

Cycles: only the likely mistakes (a cycle no flow declares, a service reading its own event).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from designer import registry
from designer.lints import lint_design
from designer.models import Consumer, EventType, Flow, FlowStep, Producer, SchemaVersion, Service, Topic

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}}


def _clean_chain(prefix: str) -> dict:
    """producer --event (schema, on a topic)--> consumer: nothing to lint."""
    topic = Topic.objects.create(name=f"{prefix}-topic")
    event = EventType.objects.create(name=f"{prefix}.happened", topic=topic)
    registry.register_version(event, SCHEMA)
    source = Service.objects.create(name=f"{prefix}-source")
    sink = Service.objects.create(name=f"{prefix}-sink")
    Producer.objects.create(service=source, event_type=event)
    Consumer.objects.create(service=sink, event_type=event)
    return {"topic": topic, "event": event, "source": source, "sink": sink}


def _codes() -> list[tuple[str, list[str]]]:
    return [(lint.code, lint.node_ids) for lint in lint_design()]


@pytest.mark.django_db
def test_a_clean_design_has_no_lints():
    _clean_chain("orders")
    _clean_chain("payments")
    assert lint_design() == []


@pytest.mark.django_db
def test_event_without_consumer():
    chain = _clean_chain("orders")
    Consumer.objects.all().delete()
    [lint] = lint_design()
    assert (lint.code, lint.severity, lint.node_ids) == (
        "event-without-consumer",
        "warning",
        [f"event:{chain['event'].pk}"],
    )
    assert lint.message == "Nobody consumes orders.happened."


@pytest.mark.django_db
def test_consumer_without_producer():
    chain = _clean_chain("orders")
    Producer.objects.all().delete()
    [lint] = lint_design()
    assert lint.code == "consumer-without-producer"
    assert lint.severity == "error"
    assert lint.node_ids == [f"event:{chain['event'].pk}", f"service:{chain['sink'].pk}"]
    assert lint.message == "orders-sink consumes orders.happened, but no service produces it."


@pytest.mark.django_db
def test_topic_without_events():
    _clean_chain("orders")
    idle = Topic.objects.create(name="idle", bus="redis")
    assert _codes() == [("topic-without-events", [f"topic:{idle.pk}"])]


@pytest.mark.django_db
def test_event_without_schema_counts_only_registered_versions():
    chain = _clean_chain("orders")
    event = chain["event"]
    SchemaVersion.objects.all().delete()
    assert _codes() == [("event-without-schema", [f"event:{event.pk}"])]
    SchemaVersion.objects.create(event_type=event, version=1, state="draft", schema=SCHEMA)
    assert _codes() == [("event-without-schema", [f"event:{event.pk}"])]


@pytest.mark.django_db
def test_a_cycle_between_services_is_reported_once():
    a = _clean_chain("a")
    b = _clean_chain("b")
    # a-source -> a.happened -> a-sink -> b.happened -> b-sink, then b-sink -> ... -> a-sink closes it.
    Producer.objects.create(service=a["sink"], event_type=b["event"])
    Producer.objects.create(service=b["sink"], event_type=a["event"])
    cycles = [lint for lint in lint_design() if lint.code == "cycle"]
    assert len(cycles) == 1
    [cycle] = cycles
    sink_a, sink_b = a["sink"], b["sink"]
    assert set(cycle.node_ids) == {
        f"service:{sink_a.pk}",
        f"service:{sink_b.pk}",
        f"event:{a['event'].pk}",
        f"event:{b['event'].pk}",
    }
    assert cycle.message == (
        "Services form a cycle that no flow declares: a-sink → (b.happened) → b-sink → (a.happened) → a-sink."
    )
    assert cycle.severity == "warning"


@pytest.mark.django_db
def test_three_service_cycle():
    services = [Service.objects.create(name=n) for n in ("s1", "s2", "s3")]
    events = [EventType.objects.create(name=f"e.n{i}") for i in range(3)]
    for i, event in enumerate(events):
        Producer.objects.create(service=services[i], event_type=event)
        Consumer.objects.create(service=services[(i + 1) % 3], event_type=event)
    cycles = [lint for lint in lint_design() if lint.code == "cycle"]
    assert [c.message for c in cycles] == [
        "Services form a cycle that no flow declares: s1 → (e.n0) → s2 → (e.n1) → s3 → (e.n2) → s1."
    ]


def _saga() -> dict:
    """orders --order.placed--> payments --payment.authorized / payment.failed--> orders, nothing else to lint."""
    topic = Topic.objects.create(name="shop")
    saga = {"orders": Service.objects.create(name="orders"), "payments": Service.objects.create(name="payments")}
    for producer, event, consumer in (
        ("orders", "order.placed", "payments"),
        ("payments", "payment.authorized", "orders"),
        ("payments", "payment.failed", "orders"),
        ("payments", "payment.audited", "audit"),  # not on the loop
    ):
        saga[event] = EventType.objects.create(name=event, topic=topic)
        registry.register_version(saga[event], SCHEMA)
        if consumer not in saga:
            saga[consumer] = Service.objects.create(name=consumer)
        Producer.objects.create(service=saga[producer], event_type=saga[event])
        Consumer.objects.create(service=saga[consumer], event_type=saga[event])
    return saga


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("flows", "flagged"),
    [
        ([], True),
        ([[("orders", "order.placed", "payments")]], True),
        # One flow walks the whole loop (one event per hop is enough): a saga, not a mistake.
        ([[("orders", "order.placed", "payments"), ("payments", "payment.authorized", "orders")]], False),
        ([[("orders", "order.placed", "payments"), ("payments", "payment.failed", "orders")]], False),
        # Each half in a different flow: no flow declares the loop.
        ([[("orders", "order.placed", "payments")], [("payments", "payment.authorized", "orders")]], True),
        # A step with an event that does not travel that hop declares nothing.
        ([[("orders", "order.placed", "payments"), ("payments", "payment.audited", "orders")]], True),
    ],
)
def test_a_cycle_is_flagged_unless_a_flow_declares_it(flows, flagged):
    saga = _saga()
    for number, steps in enumerate(flows):
        flow = Flow.objects.create(name=f"flow {number}", trigger="Customer clicks Pay")
        for order, (producer, event, consumer) in enumerate(steps):
            FlowStep.objects.create(
                flow=flow, order=order, producer=saga[producer], event_type=saga[event], consumer=saga[consumer]
            )
    assert [lint.message for lint in lint_design()] == (
        [
            "Services form a cycle that no flow declares: orders → (order.placed) → payments"
            " → (payment.authorized / payment.failed) → orders."
        ]
        if flagged
        else []
    )


@pytest.mark.django_db
def test_a_service_consuming_its_own_event_is_flagged_unless_a_flow_declares_it():
    chain = _clean_chain("orders")
    source, event = chain["source"], chain["event"]
    Consumer.objects.create(service=source, event_type=event)
    [lint] = lint_design()
    assert (lint.code, lint.severity, lint.node_ids) == (
        "cycle",
        "warning",
        [f"service:{source.pk}", f"event:{event.pk}"],
    )
    assert lint.message == "orders-source consumes orders.happened, which it produces itself, and no flow declares it."

    flow = Flow.objects.create(name="Outbox", trigger="A row lands in the outbox")
    FlowStep.objects.create(flow=flow, producer=source, event_type=event, consumer=source, logic="Relay the outbox")
    assert lint_design() == []


@pytest.mark.django_db
def test_incompatible_draft():
    chain = _clean_chain("orders")
    event = chain["event"]
    registry.register_version(event, {**SCHEMA, "properties": {"id": {"type": "string"}, "n": {}}}, as_draft=True)
    assert lint_design() == []  # compatible draft: nothing to say
    breaking = {**SCHEMA, "properties": {"id": {"type": "integer"}}}
    draft = registry.register_version(event, breaking, as_draft=True)
    [lint] = lint_design()
    assert (lint.code, lint.node_ids) == ("incompatible-draft", [f"event:{event.pk}"])
    assert (
        lint.message
        == f"Draft v{draft.version} of orders.happened is not BACKWARD compatible with v1 (1 breaking change)."
    )


@pytest.mark.django_db
def test_every_code_from_one_minimal_design():
    _clean_chain("a")
    _clean_chain("b")
    lonely = EventType.objects.create(name="nobody.listens")
    Producer.objects.create(service=Service.objects.get(name="a-source"), event_type=lonely)
    orphan = EventType.objects.create(name="nobody.sends")
    Consumer.objects.create(service=Service.objects.get(name="b-sink"), event_type=orphan)
    Topic.objects.create(name="unused")
    Producer.objects.create(
        service=Service.objects.get(name="a-sink"), event_type=EventType.objects.get(name="b.happened")
    )
    Producer.objects.create(
        service=Service.objects.get(name="b-sink"), event_type=EventType.objects.get(name="a.happened")
    )
    registry.register_version(EventType.objects.get(name="a.happened"), {"type": "boolean"}, as_draft=True)
    assert {lint.code for lint in lint_design()} == {
        "event-without-consumer",
        "consumer-without-producer",
        "topic-without-events",
        "event-without-schema",
        "cycle",
        "incompatible-draft",
    }


@pytest.mark.django_db
def test_query_count_does_not_grow_with_the_design():
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            lint_design()
        return len(captured)

    _clean_chain("c0")
    registry.register_version(EventType.objects.get(name="c0.happened"), True, as_draft=True)
    small = queries()
    for i in range(1, 8):
        chain = _clean_chain(f"c{i}")
        registry.register_version(chain["event"], {"type": "string"}, as_draft=True)
        Topic.objects.create(name=f"spare-{i}")
        # A self-consumption each flow declares: every flow's steps come in the same one query.
        Producer.objects.create(service=chain["sink"], event_type=chain["event"])
        flow = Flow.objects.create(name=f"flow {i}", trigger="tick")
        FlowStep.objects.create(flow=flow, producer=chain["sink"], event_type=chain["event"], consumer=chain["sink"])
    assert queries() == small
    assert small <= 10
