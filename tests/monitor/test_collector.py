"""The collector's tick on the real buses: lag, rates, heartbeats, design drift, edges."""

from __future__ import annotations

import json
import time

import pytest

from designer.models import Consumer, EventType, Producer, Service, Topic
from eventhub.sdk.headers import heartbeat_topic
from monitor.models import Heartbeat, Sample
from tests.monitor.support import group_row, make_collector, monitor_store, produce_and_consume, topic_row  # noqa: F401
from tests.waiting import wait_until

pytestmark = pytest.mark.usefixtures("monitor_store")


@pytest.mark.django_db
def test_lag_of_a_group_is_produced_minus_consumed(bus, unique):
    topic, group = unique("orders"), unique("billing")
    produce_and_consume(bus, topic, group, produced=10, consumed=4)
    collector = make_collector(bus.kind, unique)
    try:
        first = collector.tick()
        row = group_row(first, group, topic)
        assert row is not None, f"group {group} not in the snapshot"
        assert row["lag"] == 6
        assert row["bus"] == bus.kind
        assert row["designed"] is False
        assert topic_row(first, topic)["end_offset"] == 10
        assert {"bus": bus.kind, "name": topic} in first["drift"]["undesigned_topics"]
        assert {"bus": bus.kind, "group": group} in first["drift"]["undesigned_groups"]
        bus_entry = next(b for b in first["buses"] if b["kind"] == bus.kind)
        assert bus_entry["up"] is True and bus_entry["error"] is None

        # More traffic: the produce rate and the lag follow.
        for i in range(5):
            bus.publish(topic, b"{}", key=str(i).encode())
        second = collector.tick()
        assert group_row(second, group, topic)["lag"] == 11
        assert topic_row(second, topic)["rate"] > 0
        assert second["tick"] > first["tick"]
    finally:
        collector.close()


@pytest.mark.django_db
def test_each_tick_writes_history_samples(bus, unique):
    topic, group = unique("orders"), unique("billing")
    produce_and_consume(bus, topic, group, produced=3, consumed=1)
    collector = make_collector(bus.kind, unique)
    try:
        collector.tick()
        collector.tick()
    finally:
        collector.close()
    topic_samples = Sample.objects.filter(bus=bus.kind, topic=topic, group="", resolution="raw")
    group_samples = Sample.objects.filter(bus=bus.kind, topic=topic, group=group, resolution="raw")
    assert topic_samples.count() == 2
    assert list(group_samples.values_list("lag", flat=True)) == [2, 2]


@pytest.mark.django_db
def test_a_topic_deleted_under_the_collector_does_not_stop_it(bus, unique):
    doomed, kept, group = unique("doomed"), unique("kept"), unique("g")
    produce_and_consume(bus, doomed, group, produced=2, consumed=1)
    produce_and_consume(bus, kept, group, produced=3, consumed=3)
    collector = make_collector(bus.kind, unique)
    try:
        assert topic_row(collector.tick(), doomed) is not None
        bus.delete_topic(doomed)
        after = collector.tick()
        assert topic_row(after, doomed) is None
        assert topic_row(after, kept)["end_offset"] == 3
        assert next(b for b in after["buses"] if b["kind"] == bus.kind)["up"] is True
    finally:
        collector.close()


@pytest.mark.django_db
def test_design_marks_rows_and_edges_get_live_numbers(bus, unique):
    address, group = unique("payments"), unique("ledger")
    produce_and_consume(bus, address, group, produced=8, consumed=5)
    topic = Topic.objects.create(name=address, bus=bus.kind, address=address)
    shop = Service.objects.create(name=unique("shop"))
    ledger = Service.objects.create(name=unique("ledger-svc"))
    event = EventType.objects.create(name=f"payment.done_{unique('e').replace('-', '_')}", topic=topic, owner=shop)
    producer = Producer.objects.create(service=shop, event_type=event)
    consumer = Consumer.objects.create(service=ledger, event_type=event, group=group)
    collector = make_collector(bus.kind, unique)
    try:
        snapshot = collector.tick()
    finally:
        collector.close()
    assert topic_row(snapshot, address)["designed"] is True
    assert group_row(snapshot, group, address)["designed"] is True
    assert {"bus": bus.kind, "name": address} not in snapshot["drift"]["undesigned_topics"]
    assert {"bus": bus.kind, "group": group} not in snapshot["drift"]["undesigned_groups"]
    edges = {e["edge_id"]: e for e in snapshot["edges"]}
    assert edges[f"consumer:{consumer.pk}"]["lag"] == 3
    assert edges[f"consumer:{consumer.pk}"]["status"] in {"OK", "WARN", "STALL", "NOTFOUND"}
    assert f"producer:{producer.pk}" in edges
    assert edges[f"producer:{producer.pk}"]["lag"] is None


@pytest.mark.django_db
def test_silent_designed_edges_are_drift(bus, unique):
    address = unique("quiet")
    bus.create_topic(address, 1)
    topic = Topic.objects.create(name=address, bus=bus.kind, address=address)
    service = Service.objects.create(name=unique("emitter"))
    event = EventType.objects.create(name=f"quiet.thing_{unique('e').replace('-', '_')}", topic=topic, owner=service)
    producer = Producer.objects.create(service=service, event_type=event)
    collector = make_collector(bus.kind, unique)
    try:
        now = time.time()
        collector.tick(now)
        assert not [
            e for e in collector.tick(now + 1)["drift"]["silent_edges"] if e["edge_id"] == f"producer:{producer.pk}"
        ]
        later = collector.tick(now + 400)
    finally:
        collector.close()
    silent = [e for e in later["drift"]["silent_edges"] if e["edge_id"] == f"producer:{producer.pk}"]
    assert silent and silent[0]["silent_s"] >= 399 and silent[0]["service"] == service.name


@pytest.mark.django_db
def test_dead_letter_inflow_is_measured_on_dead_letter_topics(bus, unique):
    sep = ":" if bus.kind == "redis" else "."
    dlq = f"{unique('orders')}{sep}dlq"
    bus.create_topic(dlq, 1)
    collector = make_collector(bus.kind, unique)
    try:
        collector.tick()
        for _ in range(6):
            bus.publish(dlq, b"{}")
        snapshot = collector.tick()
    finally:
        collector.close()
    assert topic_row(snapshot, dlq)["dead_letter"] is True
    assert snapshot["dead_letters"]["by_topic"][dlq] > 0
    assert snapshot["dead_letters"]["inflow_per_min"] >= snapshot["dead_letters"]["by_topic"][dlq]


def _beat(service: str, instance: str, interval_s: float = 1.0, **extra) -> bytes:
    body = {
        "service": service,
        "instance": instance,
        "role": "consumer",
        "group": "g",
        "topics": ["t"],
        "published": 0,
        "handled": 7,
        "failed": 1,
        "dead_lettered": 0,
        "last_error": "ValueError: bad amount",
        "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z",
        "interval_s": interval_s,
        **extra,
    }
    return json.dumps(body).encode()


@pytest.mark.django_db
def test_heartbeats_make_services_up_then_down(bus, unique):
    service = unique("billing-svc")
    topic = heartbeat_topic(bus.kind)
    bus.create_topic(topic, 1)
    collector = make_collector(bus.kind, unique)
    try:
        bus.publish(topic, _beat(service, "host-1", interval_s=30), key=service.encode())
        bus.publish(topic, b"not json", key=b"x")

        def seen():
            snap = collector.tick()
            return next((s for s in snap["services"] if s["service"] == service), None)

        from tests.monitor.support import wait_until

        entry = wait_until(seen, 20, "the heartbeat to be read")
        assert entry["up"] is True
        assert entry["instances"] == 1
        assert entry["last_error"] == "ValueError: bad amount"
        assert Heartbeat.objects.get(service=service).bus == bus.kind
        # No heartbeat for more than 3 intervals (90 s): down.
        later = collector.tick(time.time() + 91)
        entry = next(s for s in later["services"] if s["service"] == service)
        assert entry["up"] is False and entry["instances"] == 0
    finally:
        collector.close()


@pytest.mark.django_db
def test_hostile_heartbeats_are_skipped_and_the_next_one_is_read(bus, unique):
    """Values the collector cannot take (200 KB of nesting, too deep, not UTF-8, NaN, empty,
    5 MB on Redis) between heartbeats of one service: skipped, and the good heartbeat after them read."""
    service = unique("billing-svc")
    topic = heartbeat_topic(bus.kind)
    bus.create_topic(topic, 1)
    deep = _beat(service, "deep").replace(b'"topics": ["t"]', b'"topics": ' + b"[" * 9 + b"]" * 9)
    hostile = [
        b"[" * 200_000,
        deep,
        _beat(service, "latin-1").replace(b'"g"', b'"\xe9"'),
        _beat(service, "nan").replace(b'"interval_s": 1.0', b'"interval_s": NaN'),
        b"",
    ]
    if bus.kind == "redis":  # Kafka clients refuse records over 1 MB
        hostile.append(_beat(service, "5mb", padding="x" * 5 * 1024 * 1024))
    collector = make_collector(bus.kind, unique)
    try:
        for value in hostile:
            bus.publish(topic, value, key=service.encode())
        bus.publish(topic, _beat(service, "host-1", interval_s=30), key=service.encode())

        def seen():
            snap = collector.tick()
            return next((s for s in snap["services"] if s["service"] == service), None)

        entry = wait_until(seen, 20, "the good heartbeat to be read")
    finally:
        collector.close()
    assert entry["up"] is True and entry["instances"] == 1
    assert list(Heartbeat.objects.filter(service=service).values_list("instance", flat=True)) == ["host-1"]


def test_committed_offsets_of_many_groups_in_one_call(bus, unique):
    """The batched read the collector makes every tick (unknown groups come back empty)."""
    topic, first, second, unknown = unique("orders"), unique("g1"), unique("g2"), unique("nobody")
    produce_and_consume(bus, topic, first, produced=6, consumed=2)
    produce_and_consume(bus, topic, second, produced=0, consumed=5)
    found = bus.committed_offsets_many([first, second, unknown])
    assert found[first] == {topic: {0: 2}}
    assert found[second] == {topic: {0: 5}}
    assert found.get(unknown, {}) == {}
