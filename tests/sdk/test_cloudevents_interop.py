"""CloudEvents interop with the official SDK (the `cloudevents` package), over the real buses.

Both directions are round trips through the broker: what EventHub's producer writes
reads back with the package's Kafka binding, and what the package writes, in binary
and in structured content mode, is dispatched by type by EventHub's consumer. Redis
entries use the same layout as Kafka records, so both buses run every test.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from deadletters import headers as dead_letter_headers
from eventhub.sdk import Consumer, Event, LocalSchemas, Producer, dead_letter_topic
from tests.sdk import ORDER_SCHEMA, read_records, total_end_offset

ORDER = {"order_id": "o-1", "amount": 12.5}
SHIPPED_SCHEMA = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}}


@pytest.fixture
def topic(bus, unique):
    name = unique("ce-orders")
    bus.create_topic(name)
    return name


@pytest.fixture
def schemas(topic):
    return LocalSchemas(
        {
            "order.placed": {"schema": ORDER_SCHEMA, "version": 1, "topic": topic},
            "order.shipped": {"schema": SHIPPED_SCHEMA, "version": 1, "topic": topic},
        }
    )


@pytest.fixture
def consumer(bus, topic, schemas, unique):
    with Consumer(
        bus, "billing", unique("billing"), [topic], schemas, validate=True, heartbeat_interval_s=None
    ) as consumer:
        yield consumer


def message_of(record) -> KafkaMessage:
    return KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)


def publish_message(bus, topic: str, message: KafkaMessage) -> None:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    bus.publish(topic, message.value, key=key, headers=list(message.headers.items()))


def run_until(consumer: Consumer, condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "consumer did not get there in time"
        consumer.run_once(0.2)


def test_eventhub_events_read_with_the_cloudevents_kafka_binding(bus, topic, schemas):
    with Producer(bus, "checkout", schemas, heartbeat_interval_s=None) as producer:
        event_id = producer.publish_nowait("order.placed", ORDER, key="o-1")
        producer.flush()
    [record] = read_records(bus, topic, 1)

    event = from_binary(message_of(record), JSONFormat())

    assert event.get_id() == event_id
    assert event.get_type() == "order.placed"
    assert event.get_source() == "/services/checkout"
    assert event.get_specversion() == "1.0"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == ORDER
    assert abs(event.get_time() - datetime.now(UTC)) < timedelta(minutes=1)
    assert event.get_extension("partitionkey") == "o-1"


@pytest.mark.parametrize("write", [to_binary, to_structured], ids=["binary", "structured"])
def test_cloudevents_package_events_dispatched_by_type(bus, topic, consumer, write):
    placed = CloudEvent(
        {
            "type": "order.placed",
            "source": "https://shop.example/orders",
            "id": "ce-1",
            "time": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            "datacontenttype": "application/json",
            "subject": "o-1",
        },
        ORDER,
    )
    shipped = CloudEvent({"type": "order.shipped", "source": "/warehouse", "id": "ce-2"}, {"order_id": "o-1"})
    for event in (placed, shipped):
        publish_message(bus, topic, write(event, JSONFormat()))
    seen: dict[str, Event] = {}
    consumer.handler("order.placed")(lambda event: seen.setdefault("placed", event))
    consumer.handler("order.shipped")(lambda event: seen.setdefault("shipped", event))

    run_until(consumer, lambda: len(seen) == 2)

    assert seen["placed"].type == "order.placed"
    assert seen["placed"].payload == ORDER
    assert seen["placed"].id == "ce-1"
    assert seen["placed"].source == "https://shop.example/orders"
    assert seen["placed"].time == "2024-05-01T12:00:00Z"
    assert seen["placed"].attributes["specversion"] == "1.0"
    assert seen["placed"].attributes["subject"] == "o-1"
    assert (seen["shipped"].type, seen["shipped"].payload, seen["shipped"].id) == (
        "order.shipped",
        {"order_id": "o-1"},
        "ce-2",
    )
    assert total_end_offset(bus, dead_letter_topic(topic, bus.kind)) == 0


def test_structured_event_with_invalid_data_is_dead_lettered_by_its_type(bus, topic, consumer):
    """The schema check applies to `data`, and the dead letter is named by the envelope."""
    invalid = CloudEvent({"type": "order.placed", "source": "/shop", "id": "ce-bad"}, {"order_id": "o-2", "amount": -1})
    publish_message(bus, topic, to_structured(invalid, JSONFormat()))
    handled: list[Event] = []
    consumer.handler("order.placed")(handled.append)

    dlq = dead_letter_topic(topic, bus.kind)
    run_until(consumer, lambda: total_end_offset(bus, dlq) == 1)

    [dead] = read_records(bus, dlq, 1)
    meta = dead_letter_headers.decode(dead.headers, dead.value)
    assert meta.error_class == "eventhub.sdk.InvalidPayload"
    assert "$.amount" in meta.error_message
    assert (meta.event_type, meta.event_id) == ("order.placed", "ce-bad")
    assert meta.cloudevent.data == {"order_id": "o-2", "amount": -1}
    assert handled == []
