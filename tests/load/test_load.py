"""100 dashboards on /ws/monitor/ while the bus takes 2,000 events/s: no errors, fresh frames, flat memory.

Real processes on this machine: Daphne and the collector (run_monitor) on a
private Redis and the run's broker, 100 websocket clients in a process of their
own, and this process publishing (bench/load.py). Duration and rate come from
EVENTHUB_LOAD_SECONDS (default 10, so `make test` stays quick) and
EVENTHUB_LOAD_RATE (default 2000); the full run is

    EVENTHUB_LOAD_SECONDS=60 .venv/bin/python -m pytest tests/load -s

whose numbers docs/performance.md reports. Memory growth is measured after a
warm-up of a fifth of the run (3 to 10 s), from VmRSS in /proc/<pid>/status.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench import load
from tests.fault import app_db, procs  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

SECONDS = float(os.environ.get("EVENTHUB_LOAD_SECONDS", "10"))
RATE = float(os.environ.get("EVENTHUB_LOAD_RATE", "2000"))
CLIENTS = 100
TICK_S = 1.0


def test_hundred_dashboards_under_two_thousand_events_per_second(app_db, procs):  # noqa: F811
    redis = procs.redis()
    log_dir = ROOT / "var" / "load-logs"  # kept: what each process said, for a failure
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    result = load.run(
        db_path=app_db.path,
        session_key=app_db.session_key,
        redis_url=redis.url,
        bootstrap=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        log_dir=log_dir,
        seconds=SECONDS,
        rate=RATE,
        clients=CLIENTS,
        tick_s=TICK_S,
    )
    print("\n" + "\n".join(result.lines()))

    assert result.producer_errors == []
    assert result.achieved_rate >= 0.9 * RATE, f"the bus took only {result.achieved_rate:.0f} events/s"
    # Every socket stayed open and kept getting frames, the whole time.
    assert result.client_problems == []
    assert result.max_gap_s <= 3 * TICK_S + 1, f"a client went {result.max_gap_s:.1f} s without a frame"
    assert result.frames_min >= result.seconds / (2 * TICK_S)
    # The frames kept up with the bus: each flushed batch was on every screen within a few ticks.
    assert result.missed_checkpoints == 0
    assert result.stale_p95_s is not None and result.stale_p95_s <= 3 * TICK_S + 2
    for process, growth in result.growth.items():
        assert growth < 0.10, f"{process} RSS grew {growth:.1%}: {result.rss_kb[process]}"
