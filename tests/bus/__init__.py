"""Tests of the bus adapters against real Redis and a real Kafka-protocol broker."""

from __future__ import annotations

import time

from eventhub.bus import GroupConsumer, Record


def consume(consumer: GroupConsumer, n: int, timeout_s: float = 15.0) -> list[Record]:
    """Poll until `n` records came (or the deadline passed); the first Kafka poll joins the group."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n and time.monotonic() < deadline:
        records += consumer.poll(timeout_s=0.5, max_records=n - len(records))
    return records
