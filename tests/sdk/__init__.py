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
