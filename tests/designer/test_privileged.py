"""Design data cannot drive privileged bus actions (designer/privileged.py).

A topic's dead-letter topic makes the ingester copy every record of it; a
dead-lettering consumer of a Redis stream makes it ack that group's entries. A
Designer sets neither; an Operator who also designs (or an Admin) may, and a
dead-letter topic must be named like one.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from designer import asyncapi_db
from designer.models import Consumer, EventType, Service, Topic
from tests.designer.test_api import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def design_operator(django_user_model):
    """Designs and operates: the role that may set privileged fields through the design API."""
    user = django_user_model.objects.create_user("dora", "dora@example.com", "pw")
    user.groups.add(Group.objects.get(name="Designer"), Group.objects.get(name="Operator"))
    return user


@pytest.fixture
def world(db):
    kafka = Topic.objects.create(name="orders")
    stream = Topic.objects.create(name="stock", bus=Topic.REDIS, address="stock")
    service = Service.objects.create(name="billing")
    other = Service.objects.create(name="warehouse")
    on_kafka = EventType.objects.create(name="order.placed", topic=kafka)
    on_redis = EventType.objects.create(name="stock.moved", topic=stream)
    return {
        "kafka": kafka,
        "stream": stream,
        "service": service,
        "other": other,
        "on_kafka": on_kafka,
        "on_redis": on_redis,
    }


def test_a_designer_cannot_point_a_dead_letter_topic_anywhere(world, client_as, designer):
    url = f"/api/v1/topics/{world['kafka'].pk}/"
    refused = send(client_as(designer), "patch", url, {"dead_letter_topic": "payments"})
    assert refused.status_code == 400
    assert "Only an Operator or Admin" in " ".join(refused.json()["dead_letter_topic"])
    assert Topic.objects.get(pk=world["kafka"].pk).dead_letter_topic == "orders.dlq"

    # The default stays open to everyone, new topics included.
    created = send(
        client_as(designer), "post", "/api/v1/topics/", {"name": "refunds", "dead_letter_topic": "refunds.dlq"}
    )
    assert created.status_code == 201, created.content
    refused = send(client_as(designer), "post", "/api/v1/topics/", {"name": "fees", "dead_letter_topic": "fees.DLT"})
    assert refused.status_code == 400


def test_an_operator_sets_only_a_dead_letter_topic_named_like_one(world, client_as, design_operator):
    client = client_as(design_operator)
    url = f"/api/v1/topics/{world['kafka'].pk}/"
    refused = send(client, "patch", url, {"dead_letter_topic": "payments"})
    assert refused.status_code == 400
    assert "is not a dead-letter topic" in " ".join(refused.json()["dead_letter_topic"])
    assert send(client, "patch", url, {"dead_letter_topic": "orders-dlt"}).status_code == 200
    assert Topic.objects.get(pk=world["kafka"].pk).dead_letter_topic == "orders-dlt"


def test_a_designer_cannot_make_a_redis_poison_rule(world, client_as, designer):
    client = client_as(designer)
    body = {"service": world["service"].pk, "event_type": world["on_redis"].pk, "group": "warehouse"}
    refused = send(client, "post", "/api/v1/consumers/", {**body, "dead_letter": True, "max_attempts": 1})
    assert refused.status_code == 400
    assert "poison rule" in " ".join(refused.json()["dead_letter"])
    assert not Consumer.objects.filter(event_type=world["on_redis"]).exists()

    # Without asking for it, a Redis consumer is made without a rule.
    created = send(client, "post", "/api/v1/consumers/", body)
    assert created.status_code == 201, created.content
    assert created.json()["dead_letter"] is False
    url = f"/api/v1/consumers/{created.json()['id']}/"
    assert send(client, "patch", url, {"dead_letter": True}).status_code == 400
    # Kafka consumers are no rule: anyone may have them dead-letter.
    kafka = send(
        client, "post", "/api/v1/consumers/", {"service": world["other"].pk, "event_type": world["on_kafka"].pk}
    )
    assert kafka.status_code == 201 and kafka.json()["dead_letter"] is True


def test_a_designer_cannot_retarget_an_existing_poison_rule(world, client_as, designer, design_operator):
    rule = send(
        client_as(design_operator),
        "post",
        "/api/v1/consumers/",
        {"service": world["service"].pk, "event_type": world["on_redis"].pk, "dead_letter": True, "max_attempts": 5},
    )
    assert rule.status_code == 201, rule.content
    url = f"/api/v1/consumers/{rule.json()['id']}/"
    client = client_as(designer)
    for change in ({"group": "another-teams-group"}, {"max_attempts": 1}):
        assert send(client, "patch", url, change).status_code == 400, change
    assert send(client, "patch", url, {"fields_used": ["sku"]}).status_code == 200  # the rest stays open
    stored = Consumer.objects.get(pk=rule.json()["id"])
    assert (stored.group, stored.max_attempts, stored.dead_letter) == ("billing", 5, True)


def test_a_designer_cannot_move_dead_lettering_consumers_onto_a_stream(world, client_as, designer):
    Consumer.objects.create(service=world["service"], event_type=world["on_kafka"], dead_letter=True)
    url = f"/api/v1/events/{world['on_kafka'].pk}/"
    refused = send(client_as(designer), "patch", url, {"topic": world["stream"].pk})
    assert refused.status_code == 400
    assert EventType.objects.get(pk=world["on_kafka"].pk).topic == world["kafka"]


DOCUMENT = """
asyncapi: 3.0.0
info: {title: Shop, version: "1"}
channels:
  stock:
    address: "stock"
    bindings: {}
    x-eventhub-bus: redis
    x-eventhub-dead-letter-topic: "orders"
    messages:
      moved: {name: stock.moved, payload: {type: object}}
  orders:
    address: "orders"
    x-eventhub-dead-letter-topic: "payments"
    messages:
      placed: {name: order.placed, payload: {type: object}}
operations:
  warehouseReceives:
    action: receive
    channel: {$ref: "#/channels/stock"}
    x-eventhub-service: warehouse
    x-eventhub-consumer: {group: billing, maxAttempts: 1, deadLetter: true}
"""


def test_an_asyncapi_import_by_a_designer_sets_no_privileged_field(world, designer):
    report = asyncapi_db.import_text(DOCUMENT, author=designer)
    assert Topic.objects.get(pk=world["kafka"].pk).dead_letter_topic == "orders.dlq"
    warnings = " ".join(str(w) for w in report.warnings)
    assert "dead-letter topic not changed" in warnings
    assert "not dead-lettering as the document asks" in warnings
    [consumer] = Consumer.objects.filter(event_type__topic__bus=Topic.REDIS)
    assert (consumer.group, consumer.dead_letter) == ("billing", False)
    assert Topic.objects.get(bus=Topic.REDIS, address="stock").dead_letter_topic == "stock:dlq"


def test_an_asyncapi_import_by_an_operator_keeps_its_poison_rule(world, design_operator):
    asyncapi_db.import_text(DOCUMENT, author=design_operator)
    [consumer] = Consumer.objects.filter(event_type__topic__bus=Topic.REDIS)
    assert (consumer.group, consumer.max_attempts, consumer.dead_letter) == ("billing", 1, True)
