"""100 dashboards on /ws/monitor/ while the bus takes 2,000 events/s: nothing lost, every frame
on every screen, flat memory.

Real processes on this machine: Daphne and the collector (run_monitor) on a
private Redis and the run's broker, 100 websocket clients in a process of their
own, and this process publishing (bench/load.py). Duration and rate come from
EVENTHUB_LOAD_SECONDS (default 10, so `make test` stays quick) and
EVENTHUB_LOAD_RATE (default 2000); the full run is

    EVENTHUB_LOAD_SECONDS=60 .venv/bin/python -m pytest tests/load -s

whose numbers docs/performance.md reports. Memory growth is measured after a
warm-up of a fifth of the run (3 to 10 s), from VmRSS in /proc/<pid>/status.

What the test asserts is counted, not timed: every event is on the topic, no
socket closed, every socket got every frame, every flushed batch reached every
screen. How fast (the rate the bus took, the longest gap between two frames,
how stale the frames were) depends on the machine and is measured by `make
bench` next to its reference: load_events_per_s (its detail gives the longest
gap) and load_frame_staleness_p95_s; this test prints the same figures.
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

    # The bus took every event.
    assert result.producer_errors == []
    assert result.sent > 0 and result.delivered == result.sent
    # Every socket stayed open and got every frame the others got, the whole time.
    assert result.client_problems == []
    assert result.frames_min > 0 and result.frames_missed == 0
    # The frames followed the bus: each flushed batch was on every screen.
    assert result.missed_checkpoints == 0
    for process, growth in result.growth.items():
        assert growth < 0.10, f"{process} RSS grew {growth:.1%}: {result.rss_kb[process]}"
