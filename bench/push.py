"""push_latency_p95_ms: a record on the bus -> the frame that shows it, on 200 open dashboards.

Production's shape, three processes: the collector (`manage.py run_monitor`,
EVENTHUB_TICK_SECONDS=0.5), Daphne on the Redis channel layer, and 200
logged-in /ws/monitor/ clients (`bench.swarm`, a process of their own).
This process publishes one record at a time, at random moments, and notes when
the publish call started; each client notes when a frame first shows the
topic's end offset at or past that record. Latency = frame time - publish time,
one sample per record and client.

The tick bounds it: a record waits up to one tick interval (0.5 s here) for
the next collection, so p95 ~ 0.95 x tick + the tick's own time + the fan-out.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

from bench import live
from bench.app import App
from bench.common import Results, p95_ms
from eventhub.bus import open_bus

CLIENTS = 200
RECORDS = 40
TICK_S = 0.5


def latencies(report: dict, sends: list[tuple[float, int]]) -> tuple[list[float], int]:
    """Seconds from each publish to each client's first frame showing it; and how many never came."""
    samples, missed = [], 0
    for client in report["clients"]:
        changes = client["watch"]
        for started, end in sends:
            seen = next((at for at, shown in changes if shown >= end), None)
            if seen is None:
                missed += 1
            else:
                samples.append(seen - started)
    return samples, missed


def run(results: Results, app: App, bootstrap: str, redis_url: str, log_dir: Path) -> None:
    topic = f"bench-push-{random.randrange(16**6):06x}"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(topic)
    env = live.django_env(app.db_path, redis_url, bootstrap, EVENTHUB_TICK_SECONDS=str(TICK_S))
    monitor = live.start_monitor(env, log_dir)
    daphne = None
    try:
        daphne = live.start_daphne(env, log_dir)
        bus.publish(topic, b'{"n":0}')  # the topic is in the frames before the clock starts
        swarm = live.start_swarm(daphne.socket_url(), app.session_key, daphne.url, CLIENTS, log_dir, watch=topic)
        sends: list[tuple[float, int]] = []
        pids = {"daphne": daphne.process.pid, "collector": monitor.pid, "clients": swarm.process.pid}
        cpu_before = {name: live.cpu_s(pid) for name, pid in pids.items()}
        measured = time.monotonic()
        try:
            for n in range(1, RECORDS + 1):
                # Random gaps, so publishes land at every phase of the tick.
                time.sleep(random.uniform(0.6, 1.2) * TICK_S)
                started = time.monotonic()
                published = bus.publish(topic, b'{"n":%d}' % n)
                sends.append((started, published.offset + 1))
            time.sleep(3 * TICK_S)  # the last record's frame
            measured = time.monotonic() - measured
            cpu = {name: (live.cpu_s(pid) - cpu_before[name]) / measured for name, pid in pids.items()}
        finally:
            report = swarm.finish()
        (log_dir / "push-sends.json").write_text(json.dumps(sends))
        samples, missed = latencies(report, sends)
        problems = sum(len(c["closes"]) + len(c["errors"]) for c in report["clients"])
        results.add(
            "push_latency_p95_ms",
            p95_ms(samples),
            "ms",
            f"{CLIENTS} clients x {RECORDS} records, tick {TICK_S} s; median {statistics.median(samples) * 1000:.0f} ms, "
            f"max {max(samples) * 1000:.0f} ms; {missed} missed, {problems} closes/errors; cores used: "
            + ", ".join(f"{name} {used:.2f}" for name, used in cpu.items()),
        )
    finally:
        if daphne is not None:
            daphne.process.stop()
        monitor.stop()
        bus.delete_topic(topic)
        bus.close()
