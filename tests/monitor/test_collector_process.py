"""`manage.py run_monitor` as `make run` starts it: collects into Redis, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.monitor.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_run_monitor_collects_then_stops_on_sigterm(tmp_path, unique):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'monitor.sqlite3'}",
        "EVENTHUB_VAR_DIR": str(tmp_path),
        "EVENTHUB_CHANNEL_LAYER": "redis",
        "EVENTHUB_TICK_SECONDS": "0.5",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete("eventhub:monitor:snapshot", "eventhub:monitor:part:kafka", "eventhub:monitor:lease:collector:kafka")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_monitor", "--no-ingester"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def kafka_up():
            raw = client.get("eventhub:monitor:snapshot")
            buses = json.loads(raw)["buses"] if raw else []
            return any(b["kind"] == "kafka" and b["up"] for b in buses)

        wait_until(kafka_up, 60, "run_monitor to publish a snapshot with Kafka up")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        output = process.stdout.read().decode()
        assert "run_monitor: stopped" in output
        # The lease is released on the way out, so a new collector can start at once.
        assert client.get("eventhub:monitor:lease:collector:kafka") is None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
