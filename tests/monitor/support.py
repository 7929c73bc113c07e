"""Helpers for the live-monitor tests: deadlines instead of sleeps, real buses, collectors."""

from __future__ import annotations

import time

from eventhub.bus import Bus, open_bus
from tests.conftest import bus_options
from tests.waiting import wait_until  # noqa: F401 (the monitor tests import it from here)


def produce_and_consume(bus: Bus, topic: str, group: str, produced: int, consumed: int) -> None:
    """Create `topic` (one partition), publish `produced` records, consume and commit `consumed`."""
    bus.create_topic(topic, 1)
    for i in range(produced):
        bus.publish(topic, f'{{"n": {i}}}'.encode(), key=str(i).encode())
    with bus.consumer(group, [topic]) as consumer:
        taken = []
        deadline = time.monotonic() + 20
        while len(taken) < consumed and time.monotonic() < deadline:
            taken += consumer.poll(0.2, consumed - len(taken))
        assert len(taken) >= consumed, f"consumed only {len(taken)} of {consumed}"
        consumer.commit(taken[:consumed])


def make_collector(kind: str, unique, **options):
    from monitor.collector import Collector

    options.setdefault("heartbeat_group", unique("eventhub-monitor-hb"))
    return Collector(kind, bus_factory=lambda: open_bus(kind, **bus_options(kind)), **options)


def group_row(snapshot: dict, group: str, topic: str) -> dict | None:
    return next((g for g in snapshot["groups"] if g["group"] == group and g["topic"] == topic), None)


def topic_row(snapshot: dict, name: str) -> dict | None:
    return next((t for t in snapshot["topics"] if t["name"] == name), None)


import pytest  # noqa: E402


@pytest.fixture
def monitor_store(settings, unique):
    """A namespace of its own for snapshot keys and leases (Redis store), per test."""
    settings.EVENTHUB_MONITOR_NAMESPACE = unique("eh-test:monitor")
    return settings.EVENTHUB_MONITOR_NAMESPACE
