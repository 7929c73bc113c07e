"""What the collector keeps in memory is bounded by its windows, not by how long it runs.

The tick is stepped with a clock of our own (`tick(now=...)`, one second a step), so
minutes of windows pass in a few real seconds; the bus is real. Short windows (end
offsets 10 s, rates 3 s, Burrow 5 s) keep the test quick; the bounds are the same
arithmetic at 300/30/120 s (docs/performance.md, load figures).
"""

from __future__ import annotations

import time

import pytest

from monitor import rates
from tests.monitor.support import group_row, make_collector, monitor_store, produce_and_consume  # noqa: F401
from tests.waiting import wait_until

pytestmark = [pytest.mark.usefixtures("monitor_store"), pytest.mark.django_db]

HISTORY_S, RATE_WINDOW_S, BURROW_WINDOW_S = 10.0, 3.0, 5.0


def _held(collector, topic: str, group: str) -> tuple[int, int, int]:
    """Points held for our one partition: end offsets, committed offsets, Burrow samples."""
    return (
        len(collector.end_history.points(rates.end_key(topic, 0))),
        len(collector.commit_history.points(rates.committed_key(group, topic, 0))),
        len(collector._samples.get((group, topic, 0), ())),
    )


def _windowed_collector(bus, unique):
    """A collector ticking each second, with this module's short windows, storing nothing."""
    return make_collector(
        bus.kind,
        unique,
        tick_s=1.0,
        history_s=HISTORY_S,
        rate_window_s=RATE_WINDOW_S,
        burrow_window_s=BURROW_WINDOW_S,
        write_history=False,
        publish=False,
    )


def test_points_per_partition_stop_growing_once_each_window_is_full(bus, unique):
    topic, group = unique("orders"), unique("billing")
    produce_and_consume(bus, topic, group, produced=3, consumed=1)
    collector = _windowed_collector(bus, unique)
    start = float(int(time.time()))  # whole seconds: window edges fall exactly on ticks
    try:
        held = []
        for step in range(25):
            bus.publish(topic, b"{}")
            snapshot = collector.tick(now=start + step)
            held.append(_held(collector, topic, group))
        # One point per tick until the window is full (the window's both ends count), then level.
        assert held == [
            (min(n, int(HISTORY_S) + 1), min(n, int(RATE_WINDOW_S) + 1), min(n, int(BURROW_WINDOW_S) + 1))
            for n in range(1, 26)
        ]
        # The dashboard's numbers still come out of the trimmed windows: a consume rate (two
        # committed points or more in the rate window) and lag in seconds for a message older
        # than the end-offset history, estimated as lag / produce rate (27 messages at 1/s).
        row = group_row(snapshot, group, topic)
        assert (row["lag"], row["consume_rate"], row["lag_seconds"]) == (27, 0.0, 27.0)
    finally:
        collector.close()


def test_a_deleted_topic_is_forgotten_once_its_windows_have_passed(bus, unique):
    topic, group = unique("doomed"), unique("billing")
    produce_and_consume(bus, topic, group, produced=3, consumed=1)
    collector = _windowed_collector(bus, unique)
    start = float(int(time.time()))  # whole seconds: window edges fall exactly on ticks
    try:
        for step in range(3):
            collector.tick(now=start + step)
        assert _held(collector, topic, group) == (3, 3, 3)
        bus.delete_topic(topic)
        # Tansu deletes in the background: ticks before the topic is gone would still see it.
        wait_until(lambda: not bus.topic_exists(topic), 10, "the topic to be gone")
        for step in range(3, 3 + int(HISTORY_S) + 2):
            collector.tick(now=start + step)
        assert _held(collector, topic, group) == (0, 0, 0)
        assert rates.end_key(topic, 0) not in collector.end_history
        assert rates.committed_key(group, topic, 0) not in collector.commit_history
        assert (group, topic, 0) not in collector._samples
    finally:
        collector.close()
