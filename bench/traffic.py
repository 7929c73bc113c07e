"""traffic_check_ms: a candidate schema replayed against the last 1,000 real events of its type.

1,000 `order.placed` events go to a Kafka topic through the SDK, interleaved with 500 of
another type (so the check reads past records it does not want), and the indexer records
them. Then POST /api/v1/registry/events/order.placed/compatibility (Django's test client,
logged in) is timed with a candidate that 1 in 4 of them fails: the compatibility rules,
the event store's query for the last 1,000 positions, the group-less reads of their
payloads back from the bus, and 1,000 validations. Median of RUNS. The reference beside
it: a raw kafka-python consumer (assign, seek, poll) reading the same span of the topic.
"""

from __future__ import annotations

import json
import time
import uuid

from kafka import KafkaConsumer, TopicPartition

from bench.app import App
from bench.common import Results, median_ms

N = 1000
OTHERS = 500
RUNS = 7
V1 = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}}
CANDIDATE = {**V1, "required": ["order_id", "coupon"]}  # the events without a coupon fail


def run(results: Results, app: App, bootstrap: str) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from designer.models import EventType, SchemaVersion
    from eventhub import connections
    from eventhub.bus import open_bus
    from eventhub.sdk import LocalSchemas, Producer
    from eventstore.indexer import Indexer
    from eventstore.models import IndexedEvent

    settings.KAFKA_BOOTSTRAP_SERVERS = bootstrap
    connections.reset()
    topic = f"bench-traffic-{uuid.uuid4().hex[:6]}"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(topic)
    event, _ = EventType.objects.get_or_create(name="order.placed", defaults={"compatibility_mode": "NONE"})
    EventType.objects.filter(pk=event.pk).update(compatibility_mode="NONE")
    SchemaVersion.objects.get_or_create(event_type=event, version=1, defaults={"schema": V1})
    schemas = LocalSchemas(
        {name: {"schema": {"type": "object"}, "version": 1, "topic": topic} for name in ("order.placed", "parcel.sent")}
    )
    with Producer(bus, "bench", schemas, heartbeat_interval_s=None) as producer:
        for i in range(N):
            payload = {"order_id": f"o-{i}", **({"coupon": "X"} if i % 4 else {})}
            producer.publish_nowait("order.placed", payload)
            if i % 2 == 0:
                producer.publish_nowait("parcel.sent", {"parcel": i})
    indexer = Indexer(["kafka"], buses={"kafka": bus}, include=[topic], discover_every_s=0.2)
    try:
        deadline = time.monotonic() + 120
        while IndexedEvent.objects.filter(topic=topic).count() < N + OTHERS:
            if time.monotonic() > deadline:
                raise AssertionError("the indexer did not index the traffic in 120 s")
            indexer.step(0.5)
    finally:
        indexer.close()

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=app.user_id))
    url = "/api/v1/registry/events/order.placed/compatibility"
    body = json.dumps({"schema": CANDIDATE, "traffic_limit": N})
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.post(url, body, content_type="application/json")
        samples.append(time.perf_counter() - started)
        traffic = response.json()["traffic"]
        assert response.status_code == 200 and traffic["checked"] == N, response.content[:300]
        assert traffic["failing"] == N // 4, traffic

    raw = []
    for _ in range(RUNS):
        started = time.perf_counter()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got = 0
        while got < N + OTHERS:
            got += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
        consumer.close()
        raw.append(time.perf_counter() - started)
    results.add(
        "traffic_check_ms",
        median_ms(samples),
        "ms",
        f"median of {RUNS}, {N} events of the type among {N + OTHERS}, {N // 4} failing; "
        f"a raw consumer reading the span: {median_ms(raw):.0f} ms",
    )
    bus.delete_topic(topic)
    bus.close()
    connections.reset()
