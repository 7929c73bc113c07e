"""Two collector processes started together produce ONE series; kill the holder, the other takes over.

Two `manage.py run_monitor --no-ingester` processes share a Redis (a private
one) and a database. Each bus is collected under a lease (a Redis lock with a
TTL of max(5 ticks, 5 s), renewed every tick); the other process waits. Proof,
from what a user sees (the history table) and what the processes say:
1. exactly one process logs "collecting kafka";
2. the topic's history has one sample per tick (n samples span at least n - 2 ticks);
3. after the holder is SIGKILLed, the other logs "collecting kafka" and the
   series continues after a gap no longer than the lease TTL plus two ticks.
"""

from __future__ import annotations

import os
import time

import pytest

from eventhub.bus import open_bus
from tests.fault import (  # noqa: F401 - app_db, observed, procs, scratch_topics: fixtures
    app_db,
    assert_one_sample_per_tick,
    django_env,
    observed,
    procs,
    sample_series,
    scratch_topics,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.scaleout]

TICK_S = 1.0
LEASE_TTL_S = 5.0  # monitor.collector: max(LEASE_TICKS x tick, 5 s)
HOLDS = "collecting kafka"


def _gaps(series) -> list[float]:
    return [(b[0] - a[0]).total_seconds() for a, b in zip(series, series[1:], strict=False)]


def test_two_collectors_one_series_and_takeover(procs, app_db, observed, scratch_topics):  # noqa: F811
    redis = procs.redis()
    env = django_env(app_db.path, redis_url=redis.url, EVENTHUB_TICK_SECONDS=str(TICK_S))
    topic = f"fault-two-collectors-{os.urandom(4).hex()}"
    scratch_topics.add("kafka", topic)
    with open_bus("kafka", bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"]) as bus:
        bus.create_topic(topic)
        bus.publish(topic, b"{}")

    collectors = [procs.manage(f"collector-{n}", "run_monitor", "--no-ingester", env=env) for n in "ab"]
    wait_until(lambda: len(sample_series(app_db, "kafka", topic)) >= 6, 60, "six ticks", logs=procs.tail)
    holders = [c for c in collectors if HOLDS in c.log()]
    assert len(holders) == 1, procs.tail()  # one process collects Kafka, the other waits
    holder = holders[0]
    waiting = next(c for c in collectors if c is not holder)
    assert all(c.alive() for c in collectors)
    before = sample_series(app_db, "kafka", topic)
    assert_one_sample_per_tick(before, TICK_S)  # one series: the other process waits

    holder.kill()
    killed_at = time.monotonic()
    wait_until(lambda: HOLDS in waiting.log(), LEASE_TTL_S + 10, "the other collector to take over", logs=procs.tail)
    observed["takeover_logged_after_s"] = time.monotonic() - killed_at
    wait_until(lambda: len(sample_series(app_db, "kafka", topic)) >= len(before) + 3, 30, "three ticks after takeover")
    assert waiting.alive()

    series = sample_series(app_db, "kafka", topic)
    gaps = _gaps(series)
    takeover_gap = (series[len(before)][0] - before[-1][0]).total_seconds()
    observed["samples_before_kill"] = len(before)
    observed["takeover_gap_s"] = takeover_gap
    observed["min_gap_s"] = min(gaps)
    assert_one_sample_per_tick(series[len(before) :], TICK_S)  # still one series after the takeover
    assert takeover_gap <= LEASE_TTL_S + 2 * TICK_S
