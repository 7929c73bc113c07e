"""The demo shop's services on the real Kafka-protocol broker: a reaction chains to the event it handles.

The simulator's topic names are the demo design's (`orders`, `payments`, ...), so each test
picks out its own order by id: the worker's broker may hold other runs' records.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from eventhub.bus import Bus, Record, open_bus
from eventhub.sdk import Consumer
from monitor.simulator import Shop

ANY = {"type": "object"}
TOPIC_OF = {
    "order.placed": "orders",
    "refund.requested": "orders",
    "order.confirmed": "orders",
    "order.cancelled": "orders",
    "payment.authorized": "payments",
    "payment.failed": "payments",
    "payment.refunded": "payments",
    "inventory.reserved": "inventory",
    "inventory.out_of_stock": "inventory",
    "shipment.dispatched": "shipping",
    "shipment.delivered": "shipping",
}
SCHEMAS = {name: {"schema": ANY, "version": 1, "topic": topic, "bus": "kafka"} for name, topic in TOPIC_OF.items()}


@pytest.fixture
def shop(kafka_bootstrap):
    bus = open_bus("kafka", bootstrap_servers=kafka_bootstrap)
    for topic in set(TOPIC_OF.values()):
        bus.create_topic(topic)
    shop = Shop({"kafka": bus}, SCHEMAS, heartbeat_s=None)
    shop.wire()
    yield shop
    shop.close()
    bus.close()


def _drain(consumer: Consumer, timeout_s: float = 30) -> None:
    """Step the consumer until it has finished records and then finds no more."""
    deadline = time.monotonic() + timeout_s
    finished = 0
    while (done := consumer.run_once(0.5)) or not finished:
        finished += done
        assert time.monotonic() < deadline, f"{consumer.service} still busy after {timeout_s}s"


def _record_of_order(bus: Bus, topic: str, order_id: str, timeout_s: float = 30) -> Record:
    """The first record on `topic` about `order_id`."""
    deadline = time.monotonic() + timeout_s
    with bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic]) as reader:
        while True:
            for record in reader.poll(0.2, 100):
                if json.loads(record.value).get("order_id") == order_id:
                    return record
            assert time.monotonic() < deadline, f"nothing about {order_id} on {topic} in {timeout_s}s"


def test_payment_and_reservation_are_caused_by_the_order(shop):
    bus = shop.buses["kafka"]
    order_id = f"o-{uuid.uuid4()}"
    order = {
        "order_id": order_id,
        "total": {"amount": 999, "currency": "EUR"},
        "lines": [{"sku": "SKU-1", "quantity": 1}],
    }
    shop.publish("orders", "order.placed", order, order_id)
    payments, inventory = (next(c for c in shop.consumers if c.service == name) for name in ("payments", "inventory"))
    _drain(payments)
    _drain(inventory)

    placed = _record_of_order(bus, "orders", order_id)
    for topic in ("payments", "inventory"):
        reaction = _record_of_order(bus, topic, order_id)
        assert reaction.header("x-eventhub-causation-id") == placed.header("ce_id")
        assert reaction.header("x-eventhub-correlation-id") == placed.header("x-eventhub-correlation-id")
