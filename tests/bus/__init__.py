"""Tests of the bus adapters against real Redis and a real Kafka-protocol broker."""

from __future__ import annotations

import time
from collections.abc import Callable

from eventhub.bus import GroupConsumer, Record


def consume(consumer: GroupConsumer, n: int, timeout_s: float = 15.0) -> list[Record]:
    """Poll until `n` records came (or the deadline passed); the first Kafka poll joins the group."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n and time.monotonic() < deadline:
        records += consumer.poll(timeout_s=0.5, max_records=n - len(records))
    return records


def wait_until(condition: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.05) -> object:
    """Return the first truthy value of `condition()`, or fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition still false after {timeout_s} s: {condition}")
        time.sleep(interval_s)  # pacing between checks, not synchronisation
