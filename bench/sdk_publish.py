"""SDK publish (schema validation, CloudEvents headers) vs the raw client sending the same payloads."""

from __future__ import annotations

import json
import uuid

import redis
from kafka import KafkaProducer

from bench.common import Results, best_in_rounds, rate
from eventhub.bus import open_bus
from eventhub.sdk import LocalSchemas, Producer

N = 5000
# Each side's figure is its best run; the sides take turns (bench.common.best_in_rounds). Nine
# rounds: with five, the Kafka same-records ratio of one code moved between 0.67 and 1.02 from
# run to run; with nine, 0.885-0.899 (docs/performance.md).
ROUNDS = 9
SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "customer_id": {"type": "string"},
        "total": {"type": "object", "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}}},
        "lines": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["order_id", "customer_id", "total"],
}


def _payloads() -> list[dict]:
    return [
        {
            "order_id": str(uuid.uuid4()),
            "customer_id": str(uuid.uuid4()),
            "total": {"amount": 1000 + i, "currency": "EUR"},
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        }
        for i in range(N)
    ]


def _same_records(producer: Producer, payloads: list[dict]) -> list[tuple[bytes, bytes, list]]:
    """(value, key, headers) of the records the SDK would send for these payloads, made up front."""
    records = []
    for payload in payloads:
        _, value, key, headers, _ = producer._prepare(
            "order.placed", payload, payload["order_id"], None, None, None, None, False
        )
        records.append((value, key, headers))
    return records


def _redis_fields(value: bytes, key: bytes, headers: list) -> list[bytes]:
    fields = [b"v", value, b"k", key]
    for name, data in headers:
        fields += [b"h:" + name.encode(), data]
    return fields


def run(results: Results, bootstrap: str, redis_url: str) -> None:
    payloads = _payloads()
    topic = f"bench-sdk-{uuid.uuid4().hex[:6]}"

    # Kafka: raw kafka-python producer, async sends then flush (what a throughput-minded user writes).
    kafka_bus = open_bus("kafka", bootstrap_servers=bootstrap)
    kafka_bus.create_topic(topic)
    raw = KafkaProducer(bootstrap_servers=bootstrap)

    def raw_kafka() -> None:
        for payload in payloads:
            raw.send(topic, json.dumps(payload, separators=(",", ":")).encode(), key=payload["order_id"].encode())
        raw.flush()

    schemas = LocalSchemas({"order.placed": {"schema": SCHEMA, "version": 1, "topic": topic}})
    producer = Producer(kafka_bus, "bench", schemas, heartbeat_interval_s=None)

    def sdk_kafka() -> None:
        for payload in payloads:
            producer.publish_nowait("order.placed", payload, key=payload["order_id"])
        producer.flush()

    # The raw client again, carrying the eight CloudEvents headers the SDK writes: kafka-python's
    # per-header encoding is most of what separates the SDK from the bare client.
    ce_headers = [
        (name, b"x" * size)
        for name, size in (("ce_id", 36), ("ce_type", 12), ("ce_source", 15), ("ce_specversion", 3),
                           ("content-type", 16), ("x-eventhub-schema-version", 1), ("ce_time", 24),
                           ("x-eventhub-correlation-id", 36))
    ]  # fmt: skip

    def raw_kafka_headers() -> None:
        for payload in payloads:
            raw.send(
                topic,
                json.dumps(payload, separators=(",", ":")).encode(),
                key=payload["order_id"].encode(),
                headers=ce_headers,
            )
        raw.flush()

    # The raw client sending the very records the SDK sends (the same value, key and headers,
    # made beforehand): what is left between the two is the SDK's own work per event.
    same = _same_records(producer, payloads)

    def raw_kafka_same() -> None:
        for value, key, headers in same:
            raw.send(topic, value, key=key, headers=headers)
        raw.flush()

    best = best_in_rounds(
        ROUNDS,
        {
            "raw": lambda: rate(N, raw_kafka),
            "sdk": lambda: rate(N, sdk_kafka),
            "headers": lambda: rate(N, raw_kafka_headers),
            "same": lambda: rate(N, raw_kafka_same),
        },
    )
    raw_rate, sdk_rate, headers_rate, same_rate = best["raw"], best["sdk"], best["headers"], best["same"]
    raw.close()
    results.add(
        "sdk_publish_ratio_kafka",
        sdk_rate / raw_rate,
        "ratio",
        f"sdk {sdk_rate:,.0f}/s raw {raw_rate:,.0f}/s (raw with the same 8 headers {headers_rate:,.0f}/s)",
    )
    results.add(
        "sdk_publish_ratio_kafka_same_records",
        sdk_rate / same_rate,
        "ratio",
        f"sdk {sdk_rate:,.0f}/s raw sending the same records {same_rate:,.0f}/s",
    )
    kafka_bus.delete_topic(topic)
    kafka_bus.close()

    # Redis: raw redis-py XADD in pipelines of 500 vs the SDK over the Redis adapter.
    client = redis.Redis.from_url(redis_url)
    stream = f"bench-sdk-{uuid.uuid4().hex[:6]}"

    def raw_redis() -> None:
        pipe = client.pipeline(transaction=False)
        for i, payload in enumerate(payloads, 1):
            pipe.xadd(stream, {"k": payload["order_id"], "v": json.dumps(payload, separators=(",", ":"))})
            if i % 500 == 0:
                pipe.execute()
        pipe.execute()

    redis_bus = open_bus("redis", url=redis_url)
    schemas = LocalSchemas({"order.placed": {"schema": SCHEMA, "version": 1, "topic": stream}})
    producer = Producer(redis_bus, "bench", schemas, heartbeat_interval_s=None)

    def sdk_redis() -> None:
        for payload in payloads:
            producer.publish_nowait("order.placed", payload, key=payload["order_id"])
        producer.flush()

    # The same entries the adapter writes (v, k and one h:<name> field per header), pipelined alike.
    same = [_redis_fields(value, key, headers) for value, key, headers in _same_records(producer, payloads)]

    def raw_redis_same() -> None:
        pipe = client.pipeline(transaction=False)
        for i, fields in enumerate(same, 1):
            pipe.execute_command("XADD", stream, "*", *fields)
            if i % 500 == 0:
                pipe.execute()
        pipe.execute()

    best = best_in_rounds(
        ROUNDS,
        {
            "raw": lambda: rate(N, raw_redis),
            "sdk": lambda: rate(N, sdk_redis),
            "same": lambda: rate(N, raw_redis_same),
        },
    )
    raw_rate, sdk_rate, same_rate = best["raw"], best["sdk"], best["same"]
    results.add("sdk_publish_ratio_redis", sdk_rate / raw_rate, "ratio", f"sdk {sdk_rate:,.0f}/s raw {raw_rate:,.0f}/s")
    results.add(
        "sdk_publish_ratio_redis_same_records",
        sdk_rate / same_rate,
        "ratio",
        f"sdk {sdk_rate:,.0f}/s raw sending the same entries {same_rate:,.0f}/s",
    )
    client.delete(stream)
    redis_bus.close()
