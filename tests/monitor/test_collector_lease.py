"""Only one collector per bus: a Redis lease (or a process lock without Redis), taken over when freed."""

from __future__ import annotations

import threading

import pytest

from monitor.snapshots import Lease
from tests.monitor.support import make_collector, monitor_store, wait_until  # noqa: F401

pytestmark = pytest.mark.usefixtures("monitor_store")


@pytest.mark.parametrize("layer", ["redis", "memory"])
def test_one_holder_at_a_time(settings, layer):
    settings.EVENTHUB_CHANNEL_LAYER = layer
    first, second = Lease("collector:kafka", 5), Lease("collector:kafka", 5)
    assert first.hold() is True
    assert second.hold() is False
    assert first.hold() is True  # renewing
    first.release()
    assert second.hold() is True
    assert first.hold() is False
    second.release()


def test_a_dead_holder_is_taken_over_when_its_lease_expires(settings):
    settings.EVENTHUB_CHANNEL_LAYER = "redis"
    dead, waiting = Lease("collector:redis", 1), Lease("collector:redis", 1)
    assert dead.hold()
    assert not waiting.hold()
    # The holder stops renewing (killed): the key expires after its TTL.
    wait_until(waiting.hold, 5, "the lease to expire and be taken over")
    assert dead.hold() is False  # the old holder notices it lost the lease
    waiting.release()


@pytest.mark.django_db(transaction=True)
def test_two_running_collectors_only_one_ticks_then_the_other_takes_over(settings, unique):
    settings.EVENTHUB_CHANNEL_LAYER = "redis"
    a = make_collector("kafka", unique, tick_s=0.2, write_history=False)
    b = make_collector("kafka", unique, tick_s=0.2, write_history=False)
    stop_a, stop_b = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=a.run, args=(stop_a,), daemon=True),
        threading.Thread(target=b.run, args=(stop_b,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: a.ticks + b.ticks >= 3, 20, "a few ticks")
        holder, other, stop_holder = (a, b, stop_a) if a.ticks else (b, a, stop_b)
        assert other.ticks == 0
        stop_holder.set()  # the holder stops and frees its lease
        wait_until(lambda: other.ticks >= 1, 20, "the other collector to take over")
    finally:
        stop_a.set()
        stop_b.set()
        for thread in threads:
            thread.join(10)
