"""SDK tests: real Kafka-protocol broker and real Redis, no fakes of either.

Helpers shared by the SDK test modules live here (this folder has no
conftest.py of its own): waiting on a condition with a deadline, reading a
topic through a throwaway consumer group, and the bus options for subprocesses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from eventhub.bus import Bus, Record, UnknownTopic

T = TypeVar("T")

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
    },
}


def wait_until(condition: Callable[[], T], timeout_s: float = 15.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


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
