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


def measure(
    app: App, bootstrap: str, redis_url: str, log_dir: Path, *, tick_s: float, clients: int, records: int
) -> dict:
    """Publish `records` records one at a time to a new topic while `clients` dashboards watch it."""
    topic = f"bench-push-{random.randrange(16**6):06x}"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(topic)
    env = live.django_env(app.db_path, redis_url, bootstrap, EVENTHUB_TICK_SECONDS=str(tick_s))
    monitor = live.start_monitor(env, log_dir)
    daphne = None
    try:
        daphne = live.start_daphne(env, log_dir)
        bus.publish(topic, b'{"n":0}')  # the topic is in the frames before the clock starts
        swarm = live.start_swarm(
            daphne.socket_url(), app.session_key, daphne.url, clients, log_dir, watch=topic, timeout_s=600
        )
        sends: list[tuple[float, int]] = []
        pids = {"daphne": daphne.process.pid, "collector": monitor.pid, "clients": swarm.process.pid}
        cpu_before = {name: live.cpu_s(pid) for name, pid in pids.items()}
        measured = time.monotonic()
        try:
            for n in range(1, records + 1):
                # Random gaps, so publishes land at every phase of the tick.
                time.sleep(random.uniform(0.6, 1.2) * tick_s)
                started = time.monotonic()
                published = bus.publish(topic, b'{"n":%d}' % n)
                sends.append((started, published.offset + 1))
            time.sleep(3 * tick_s)  # the last record's frame
            measured = time.monotonic() - measured
            cpu = {name: (live.cpu_s(pid) - cpu_before[name]) / measured for name, pid in pids.items()}
        finally:
            report = swarm.finish()
        (log_dir / f"push-sends-{clients}.json").write_text(json.dumps(sends))
        samples, missed = latencies(report, sends)
        steady = [
            (c["bytes"] - c["first_bytes"]) / (len(c["frames"]) - 1) for c in report["clients"] if len(c["frames"]) > 1
        ]
        return {
            "samples": samples,
            "missed": missed,
            "problems": sum(len(c["closes"]) + len(c["errors"]) for c in report["clients"]),
            "cpu": cpu,
            "first_kib": statistics.median(c["first_bytes"] for c in report["clients"]) / 1024,
            "steady_kib": statistics.median(steady) / 1024 if steady else float("nan"),
        }
    finally:
        if daphne is not None:
            daphne.process.stop()
        monitor.stop()
        bus.delete_topic(topic)
        bus.close()


def detail(m: dict, clients: int, records: int, tick_s: float) -> str:
    samples = m["samples"]
    return (
        f"{clients} clients x {records} records, tick {tick_s} s; median {statistics.median(samples) * 1000:.0f} ms, "
        f"max {max(samples) * 1000:.0f} ms; {m['missed']} missed, {m['problems']} closes/errors; "
        f"first frame {m['first_kib']:.0f} KiB, then {m['steady_kib']:.1f} KiB a frame; cores used: "
        + ", ".join(f"{name} {used:.2f}" for name, used in m["cpu"].items())
    )


def run(results: Results, app: App, bootstrap: str, redis_url: str, log_dir: Path) -> None:
    m = measure(app, bootstrap, redis_url, log_dir, tick_s=TICK_S, clients=CLIENTS, records=RECORDS)
    results.add("push_latency_p95_ms", p95_ms(m["samples"]), "ms", detail(m, CLIENTS, RECORDS, TICK_S))
