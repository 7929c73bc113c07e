"""The monitor's own processes killed and restarted: the dead-letter ingester and the collector.

Ingester (`manage.py ingest_dead_letters`): SIGKILLed right after its first
rows are stored (when the batch is in the database but maybe not committed on
the bus), more dead letters written while it is down, restarted, and more
written while it runs again. Then the DeadLetter table holds exactly one row
per record of the DLQ topic: no duplicate (same position twice, same ce_id
twice), none missing.

Collector (`manage.py run_monitor --no-ingester`): SIGKILLed while it ticks,
started again at once. The new process waits for the dead one's lease to expire
(it must: the lease is what keeps two collectors from writing two series),
then resumes: the history series of a topic continues (one sample per tick, in
order, no duplicate tick), with a gap bounded by the lease TTL plus the restart.
"""

from __future__ import annotations

import os
import time

import pytest

from eventhub.bus import open_bus
from tests.fault import (
    assert_one_sample_per_tick,
    django_env,
    read_topic,
    rows,
    sample_series,
    scalar,
    send_dead_letters,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.fault

CHUNK = 1000  # dead letters per chunk: before the kill, while it is down, after the restart
TICK_S = 1.0
LEASE_TTL_S = 5.0  # monitor.collector: max(LEASE_TICKS x tick, 5 s)


def _kafka():
    return open_bus("kafka", bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])


def _committed(bus, group: str, topic: str) -> int:
    return sum(offset or 0 for offset in bus.committed_offsets(group, topic).values())


def test_ingester_killed_mid_stream_stores_each_dead_letter_once(procs, app_db, observed, scratch_topics):
    suffix = os.urandom(4).hex()
    source, group = f"fault-payments-{suffix}", f"fault-ingester-{suffix}"
    dlq = f"{source}.dlq"
    scratch_topics.add("kafka", dlq)
    env = django_env(app_db.path)
    argv = ("ingest_dead_letters", "--bus", "kafka", "--group", group, "--pattern", dlq)

    def stored() -> int:
        return scalar(app_db, "SELECT COUNT(*) FROM monitor_deadletter WHERE dlq_topic = ?", dlq)

    bus = _kafka()
    try:
        bus.create_topic(dlq, partitions=3)
        written = send_dead_letters(bus, dlq, source, range(0, CHUNK))
        started = time.monotonic()
        ingester = procs.manage("ingester", *argv, env=env)
        wait_until(lambda: stored() > 0, 60, "the first dead letters stored", logs=procs.tail)
        observed["start_to_rows_s"] = time.monotonic() - started
        ingester.kill()  # right after a batch was stored: maybe before its bus commit
        killed_at = stored()
        # Rows stored but not committed on the bus: the restart must skip them, not store them again.
        observed["stored_not_committed_at_kill"] = killed_at - _committed(bus, group, dlq)

        written += send_dead_letters(bus, dlq, source, range(CHUNK, 2 * CHUNK))  # while it is down
        restarted = time.monotonic()
        ingester = procs.manage("ingester", *argv, env=env)
        wait_until(lambda: stored() > killed_at, 60, "rows again after the restart", logs=procs.tail)
        observed["restart_to_rows_s"] = time.monotonic() - restarted
        written += send_dead_letters(bus, dlq, source, range(2 * CHUNK, 3 * CHUNK))  # while it runs again
        wait_until(lambda: stored() >= len(written), 90, "every dead letter stored", logs=procs.tail)
        observed["restart_to_all_rows_s"] = time.monotonic() - restarted
        wait_until(lambda: sum(p.lag for p in bus.lag(group, dlq)) == 0, 30, "the ingester's commits to catch up")
        assert ingester.stop() == 0, ingester.log()[-3000:]  # SIGTERM: clean stop
        on_topic = read_topic(bus, dlq)
    finally:
        bus.close()

    positions = rows(
        app_db, "SELECT dlq_partition, dlq_offset, event_id FROM monitor_deadletter WHERE dlq_topic = ?", dlq
    )
    observed["killed_at_rows"] = killed_at
    observed["rows"] = len(positions)
    assert len(on_topic) == len(written) == 3 * CHUNK
    assert len(positions) == len(on_topic)  # no duplicate, none missing
    assert {(p, int(o)) for p, o, _ in positions} == {(r.partition, r.offset) for r in on_topic}
    assert sorted(event_id for _, _, event_id in positions) == sorted(written)  # each ce_id once


def test_collector_killed_and_restarted_resumes_the_series(procs, app_db, observed, scratch_topics):
    redis = procs.redis()  # the lease and snapshot store of this test alone
    env = django_env(app_db.path, redis_url=redis.url, EVENTHUB_TICK_SECONDS=str(TICK_S))
    topic = f"fault-series-{os.urandom(4).hex()}"
    scratch_topics.add("kafka", topic)
    bus = _kafka()
    try:
        bus.create_topic(topic)
        bus.publish(topic, b"{}")
        collector = procs.manage("collector", "run_monitor", "--no-ingester", env=env)
        wait_until(lambda: len(sample_series(app_db, "kafka", topic)) >= 3, 60, "three ticks of the first collector")
        collector.kill()
        killed_at = time.monotonic()
        before = sample_series(app_db, "kafka", topic)
        for _ in range(5):  # the topic moves while nobody collects
            bus.publish(topic, b"{}")

        collector = procs.manage("collector", "run_monitor", "--no-ingester", env=env)
        wait_until(
            lambda: len(sample_series(app_db, "kafka", topic)) >= len(before) + 3, 60, "three ticks after the restart"
        )
        observed["kill_to_third_tick_s"] = time.monotonic() - killed_at
        assert collector.alive(), collector.log()[-3000:]
        assert "Traceback" not in collector.log()
        assert collector.stop() == 0
    finally:
        bus.close()

    series = sample_series(app_db, "kafka", topic)
    times = [at for at, _ in series]
    assert times == sorted(set(times))  # in order, no tick written twice
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    restart_gap = (series[len(before)][0] - before[-1][0]).total_seconds()
    observed["restart_gap_s"] = restart_gap
    observed["max_gap_elsewhere_s"] = max(g for i, g in enumerate(gaps) if i != len(before) - 1)
    # One collector at a time, before the kill and after the restart.
    assert_one_sample_per_tick(series[: len(before)], TICK_S)
    assert_one_sample_per_tick(series[len(before) :], TICK_S)
    # The new process waits out the old lease (TTL from its last renewal), then ticks.
    assert LEASE_TTL_S - TICK_S <= restart_gap <= LEASE_TTL_S + 15
    assert series[-1][1] == series[len(before) - 1][1] + 5  # it sees what moved meanwhile
