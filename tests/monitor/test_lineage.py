"""Observed lineage on the real buses: producers from indexed events' CloudEvents source, consumers
from the groups on the topic, each side marked designed or not; and "add to design".

Events go out through the SDK producer (which writes ce_source /services/<name>), the
indexer records them, a group consumes, and one collector tick reports the edges.
"""

from __future__ import annotations

import pytest

from designer.models import Consumer, EventType, Producer, Service, Topic
from eventhub.sdk import LocalSchemas
from eventhub.sdk import Producer as SdkProducer
from eventstore.indexer import Indexer
from eventstore.models import IndexedEvent
from monitor import lineage
from tests.deadletters.support import step_until
from tests.monitor.support import make_collector, monitor_store  # noqa: F401
from tests.waiting import wait_until

pytestmark = pytest.mark.usefixtures("monitor_store")
ADOPT = "/api/v1/monitor/observed/adopt"


def traffic(bus, unique, service: str, event_type: str, n: int = 4) -> tuple[str, str]:
    """`service` publishes n events of `event_type` on a new topic; a new group consumes them. (topic, group)"""
    topic, group = unique("lineage"), unique("lineage-reader")
    bus.create_topic(topic, 1)
    schemas = LocalSchemas({event_type: {"schema": {"type": "object"}, "version": 1, "topic": topic}})
    with SdkProducer(bus, service, schemas, heartbeat_interval_s=None) as producer:
        for i in range(n):
            producer.publish(event_type, {"n": i})
    with bus.consumer(group, [topic]) as consumer:
        taken: list = []
        wait_until(lambda: taken.extend(consumer.poll(0.5, n)) or len(taken) >= n, 30, "the events consumed")
        consumer.commit(taken)
    indexer = Indexer([bus.kind], buses={bus.kind: bus}, include=[topic], discover_every_s=0.2)
    try:
        step_until(indexer, lambda: IndexedEvent.objects.filter(topic=topic).count() == n, what="indexed")
    finally:
        indexer.close()
    return topic, group


def observed_edge(snapshot: dict, topic: str) -> dict:
    edges = [e for e in snapshot["observed"]["edges"] if e["topic"] == topic]
    assert len(edges) == 1, edges
    return edges[0]


@pytest.mark.django_db
def test_an_undesigned_producer_and_consumer_are_observed(bus, unique):
    service = unique("loyalty")
    topic, group = traffic(bus, unique, service, "points.earned")
    collector = make_collector(bus.kind, unique)
    try:
        edge = observed_edge(collector.tick(), topic)
    finally:
        collector.close()
    assert (edge["from"], edge["to"], edge["group"], edge["event_type"]) == (service, group, group, "points.earned")
    assert edge["bus"] == bus.kind and edge["rate"] > 0
    assert (edge["producer_designed"], edge["consumer_designed"], edge["designed"]) == (False, False, False)


@pytest.mark.django_db
def test_designed_sides_are_marked_and_a_consumer_heartbeat_names_the_group(bus, unique):
    from datetime import UTC, datetime

    from monitor.models import Heartbeat

    service = unique("shop")
    topic, group = traffic(bus, unique, service, "order.placed")
    designed_topic = Topic.objects.create(name=topic, bus=bus.kind, address=topic)
    event = EventType.objects.create(name="order.placed", topic=designed_topic)
    Producer.objects.create(service=Service.objects.create(name=service), event_type=event)
    Heartbeat.objects.create(
        service="billing", instance="i-1", role="consumer", group=group, bus=bus.kind, last_seen=datetime.now(UTC)
    )
    collector = make_collector(bus.kind, unique)
    try:
        edge = observed_edge(collector.tick(), topic)
    finally:
        collector.close()
    assert (edge["from"], edge["to"], edge["group"]) == (service, "billing", group)
    assert (edge["producer_designed"], edge["consumer_designed"], edge["designed"]) == (True, False, False)


@pytest.mark.django_db
def test_flow_check_triggers_are_not_an_observed_producer():
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from eventstore.flow_checks import SOURCE

    def indexed(offset: int, source: str) -> None:
        IndexedEvent.objects.create(
            bus="kafka", topic="orders", partition=0, offset=str(offset), timestamp=datetime.now(UTC),
            ce_type="order.placed", ce_source=source, size=2, validity="valid",
        )  # fmt: skip

    indexed(0, SOURCE)
    indexed(1, "/services/checkout")
    design = SimpleNamespace(producers=[], pairs=set())
    edges = lineage.observed("kafka", design, groups=[])["edges"]
    assert [(e["from"], e["topic"]) for e in edges] == [("checkout", "orders")]


def test_the_service_of_a_source():
    assert lineage.service_of("/services/checkout") == "checkout"
    assert lineage.service_of("urn:shop:web") == "urn:shop:web"


def test_a_designer_adds_an_observed_edge_to_the_design(db, client_as, designer, viewer):
    edge = {
        "bus": "kafka",
        "topic": "loyalty",
        "event_type": "points.earned",
        "producer": "loyalty",
        "consumer": "mailer",
        "group": "mailer-g",
    }
    assert client_as(viewer).post(ADOPT, edge, content_type="application/json").status_code == 403
    response = client_as(designer).post(ADOPT, edge, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["created"] == [
        "topic loyalty",
        "event points.earned",
        "service loyalty",
        "producer loyalty -> points.earned",
        "service mailer",
        "consumer points.earned -> mailer",
    ]
    consumer = Consumer.objects.get(service__name="mailer", event_type__name="points.earned")
    assert consumer.group == "mailer-g" and consumer.event_type.topic.address == "loyalty"
    assert Producer.objects.filter(service__name="loyalty", event_type__name="points.earned").exists()

    again = client_as(designer).post(ADOPT, edge, content_type="application/json")
    assert again.status_code == 200 and again.json() == {"created": []}
    untyped = client_as(designer).post(ADOPT, {**edge, "event_type": ""}, content_type="application/json")
    bad_name = client_as(designer).post(ADOPT, {**edge, "event_type": "Not A Name"}, content_type="application/json")
    assert (untyped.status_code, bad_name.status_code) == (400, 400)
    assert not EventType.objects.filter(name="Not A Name").exists()


@pytest.mark.django_db
def test_the_snapshot_carries_each_types_invalid_share_and_a_rule_fires_on_it(bus, unique):
    from designer.models import SchemaVersion
    from monitor import alerts

    event = EventType.objects.create(name="order.paid")
    SchemaVersion.objects.create(event_type=event, version=1, schema={"type": "object", "required": ["amount"]})
    topic = unique("validity")
    bus.create_topic(topic, 1)
    for i in range(12):
        value = b'{"amount": 1}' if i % 3 else b'{"nothing": 1}'  # 4 of 12 invalid
        bus.publish(topic, value, headers=[("ce_type", b"order.paid"), ("ce_id", f"v-{i}".encode())])
    indexer = Indexer([bus.kind], buses={bus.kind: bus}, include=[topic], discover_every_s=0.2)
    try:
        step_until(indexer, lambda: IndexedEvent.objects.filter(topic=topic).count() == 12, what="indexed")
    finally:
        indexer.close()
    collector = make_collector(bus.kind, unique)
    try:
        snapshot = collector.tick()
    finally:
        collector.close()
    row = next(r for r in snapshot["validity"] if r["event_type"] == "order.paid")
    assert (row["bus"], row["events"], row["invalid"], row["rate"]) == (bus.kind, 12, 4, 0.3333)

    part = {"kind": bus.kind, "validity": [row]}
    rule = alerts.Rule(id=1, name="invalid", kind="invalid_rate", target="order.*", threshold=25)
    (breach,) = alerts.breaches(rule, part)
    assert breach.subject == f"{bus.kind}:type:order.paid" and "33 % of order.paid events are invalid" in breach.message
    assert alerts.breaches(alerts.Rule(id=1, name="x", kind="invalid_rate", threshold=40), part) == []
    few = {"kind": bus.kind, "validity": [{**row, "events": 5, "invalid": 5}]}
    assert alerts.breaches(rule, few) == []  # too few events to call it a rate
