"""SDK tests: real Kafka-protocol broker and real Redis, no fakes of either.

Helpers shared by the SDK test modules live here (this folder has no
conftest.py of its own): reading a topic through a throwaway consumer group,
and the bus options for subprocesses. Waiting with a deadline: tests/waiting.py.
"""

from __future__ import annotations

import time
import uuid

from eventhub.bus import Bus, Record, UnknownTopic

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
    },
}


def read_records(bus: Bus, topic: str, count: int, timeout_s: float = 20.0) -> list[Record]:
    """The first `count` records of `topic`, read by a new group from the beginning."""
    records: list[Record] = []
    group = f"reader-{uuid.uuid4().hex[:8]}"
    with bus.consumer(group, [topic]) as consumer:
        deadline = time.monotonic() + timeout_s
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} of {count} records from {topic} in {timeout_s}s")
            records += consumer.poll(0.5, count - len(records))
    return records


def total_end_offset(bus: Bus, topic: str) -> int:
    """Records ever written to `topic`; 0 when it does not exist."""
    try:
        return sum(bus.end_offsets(topic).values())
    except UnknownTopic:
        return 0


def total_lag(bus: Bus, group: str, topic: str) -> int:
    return sum(partition.lag for partition in bus.lag(group, topic))


# --------------------------------------------------------------------------- hostile records
BIG_RECORD_BYTES = 16 * 1024 * 1024
# Headers a foreign producer may send: a value that is not UTF-8, a name twice, an empty value.
HOSTILE_HEADERS = [
    ("ce_type", b"order.placed"),
    ("x-trace", b"\xff\xfe\x00"),
    ("x-dup", b"first"),
    ("x-dup", b"second"),
    ("x-empty", b""),
]
# Values no reader may die on: {name: (value, why the SDK refuses it)}.
POISON_VALUES = {
    "200kb-nesting": (b"[" * 200_000, "deeper than 64 levels"),
    "not-utf8": (b'{"city": "K\xf6ln"}', "not UTF-8"),
    "nul-bytes": (b'{"a": "\x00\x00"}', "Invalid control character"),
    "5mb": (b'{"blob": "' + b"x" * (5 * 1024 * 1024) + b'"}', "over the limit of 1048576"),
    "empty": (b"", "the value is empty"),
    "no-value": (None, "the record has no value"),
}


def create_topic_for_big_records(bus: Bus, name: str) -> None:
    """A topic that takes 16 MB records: Apache Kafka's default is 1 MB (Redis has no such limit)."""
    if bus.kind != "kafka":
        bus.create_topic(name)
        return
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bus.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(name, 1, 1, topic_configs={"max.message.bytes": str(BIG_RECORD_BYTES)})])
    finally:
        admin.close()


def publish_raw(bus: Bus, topic: str, records: list[tuple[bytes | None, bytes | None, list]]) -> None:
    """(value, key, headers) as a foreign producer writes them: on Kafka with a 16 MB request size,
    which EventHub's own adapter (kafka-python's 1 MB default) refuses."""
    if bus.kind != "kafka":
        for value, key, headers in records:
            bus.publish(topic, value, key=key, headers=headers)
        return
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bus.bootstrap_servers, max_request_size=BIG_RECORD_BYTES)
    try:
        for value, key, headers in records:
            producer.send(topic, value=value, key=key, headers=headers).get(timeout=30)
    finally:
        producer.close()
