"""Heartbeats: counters, and records on the real heartbeat topic of each bus."""

from __future__ import annotations

import os
import threading
from datetime import datetime

import pytest

from eventhub.sdk import Consumer, Heartbeat, LocalSchemas, Producer, heartbeat_topic
from eventhub.sdk.payload import PayloadDecodeError, decode_json
from tests.sdk import ORDER_SCHEMA
from tests.waiting import wait_until

FIELDS = {
    "service",
    "instance",
    "role",
    "group",
    "topics",
    "published",
    "handled",
    "failed",
    "dead_lettered",
    "last_error",
    "at",
    "interval_s",
}


class _Reader:
    """Follows the heartbeat topic with a group of its own, keeping one service's beats."""

    def __init__(self, bus, service: str, unique):
        self.service = service
        self.beats: list[dict] = []
        self.keys: set[bytes | None] = set()
        self._consumer = bus.consumer(unique("hb-reader"), [heartbeat_topic(bus.kind)])

    def find(self, **wanted) -> dict | None:
        for record in self._consumer.poll(0.2, 500):
            # The heartbeat topic is shared with other tests (some write hostile beats on purpose:
            # deep nesting), so it is read as the collector reads it, through decode_json.
            try:
                beat = decode_json(record.value or b"")
            except PayloadDecodeError:
                continue
            if isinstance(beat, dict) and beat.get("service") == self.service:
                self.beats.append(beat)
                self.keys.add(record.key)
        return next(
            (b for b in self.beats if all(b.get(k) == v for k, v in wanted.items())),
            None,
        )

    def close(self):
        self._consumer.close()


@pytest.fixture
def reader(bus, unique):
    readers = []

    def make(service):
        readers.append(_Reader(bus, service, unique))
        return readers[-1]

    yield make
    for r in readers:
        r.close()


def test_producer_and_consumer_heartbeats(bus, unique, reader):
    service = unique("svc")
    topic = unique("orders")
    bus.create_topic(topic)
    bus.create_topic(heartbeat_topic(bus.kind))
    beats = reader(service)
    schemas = LocalSchemas({"order.placed": {"schema": ORDER_SCHEMA, "topic": topic}})
    producer = Producer(bus, service, schemas, heartbeat_interval_s=0.2)
    consumer = Consumer(bus, service, unique("g"), [topic], max_attempts=1, heartbeat_interval_s=0.2)

    @consumer.handler("order.placed")
    def handle(event):
        if not event.payload["amount"]:
            raise KeyError("amount")

    try:
        producer.publish("order.placed", {"order_id": "a", "amount": 1})
        producer.publish("order.placed", {"order_id": "b", "amount": 0})
        stop = threading.Event()
        runner = threading.Thread(target=consumer.run, args=(stop,))
        runner.start()
        consumed = wait_until(
            lambda: beats.find(role="consumer", handled=1, dead_lettered=1),
            what="a consumer heartbeat counting the two events",
        )
        published = wait_until(
            lambda: beats.find(role="producer", published=2),
            what="a producer heartbeat counting two events",
        )
        stop.set()
        runner.join(10)
        assert not runner.is_alive()
    finally:
        consumer.close()
        producer.close()

    for beat in (consumed, published):
        assert set(beat) == FIELDS
        assert beat["interval_s"] == 0.2
        assert datetime.fromisoformat(beat["at"]).tzinfo is not None
        hostname_pid = beat["instance"].rsplit("-", 1)[0]
        assert hostname_pid.endswith(f"-{os.getpid()}")
    assert consumed["group"] == consumer.group and consumed["topics"] == [topic]
    assert consumed["failed"] == 1 and consumed["last_error"].startswith("KeyError")
    assert published["group"] is None and published["last_error"] is None
    assert beats.keys == {service.encode()}


def test_counters_are_thread_safe(bus):
    heartbeat = Heartbeat(bus, "svc", "consumer", group="g", topics=["t"])

    def bump():
        for _ in range(2000):
            heartbeat.count("handled")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert heartbeat.snapshot()["handled"] == 16000
    with pytest.raises(ValueError):
        Heartbeat(bus, "svc", "watcher")
