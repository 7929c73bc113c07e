"""collector_tick_s at 500 topics x 100 groups, and the same tick with 0 and 100 open dashboards.

The system: 500 one-partition topics with 2 records each on the private broker;
100 consumer groups, each with offsets committed on 10 topics (1,000 group x
topic rows, every topic read by two groups). A tick (`Collector.tick`) reads
all of it, computes rates/lag/Burrow status, writes 1,500 history rows,
stores the snapshot in Redis and sends it once to the channel-layer group.

ws0/ws100: the same tick while a Daphne process on the Redis channel layer
holds 0 or 100 logged-in /ws/monitor/ sockets (clients in their own process).
channels_redis sends one message per Daphne process, not per socket, so the
tick's own work does not grow with the sockets; on 2 cores its wall time still
shares the machine with Daphne writing the frame to every socket, which is why
the thread CPU time of the tick is shown next to it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from bench import live
from bench.app import App
from bench.common import Results
from eventhub.bus import open_bus

TOPICS = 500
GROUPS = 100
TOPICS_PER_GROUP = 10
TICKS = 7


def build(bootstrap: str, prefix: str = "bench-sys") -> list[str]:
    """Create the topics, two records each, and the groups' commits (offset 1: lag 1)."""
    names = [f"{prefix}-{i:03d}" for i in range(TOPICS)]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for start in range(0, TOPICS, 100):
            admin.create_topics([NewTopic(name, 1, -1) for name in names[start : start + 100]])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for name in names:
        for _ in range(2):
            producer.send(name, b'{"n":1}')
    producer.flush()
    producer.close()
    for g in range(GROUPS):
        # A group commit without joining (generation -1): what a tool resetting offsets does.
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=f"{prefix}-group-{g:03d}", enable_auto_commit=False
        )
        offsets = {
            TopicPartition(names[(g * 5 + k) % TOPICS], 0): OffsetAndMetadata(1, "", -1)
            for k in range(TOPICS_PER_GROUP)
        }
        consumer.commit(offsets)
        consumer.close()
    return names


def _ticks(collector, n: int) -> tuple[list[float], list[float], dict]:
    walls, cpus, snapshot = [], [], {}
    for _ in range(n):
        wall, cpu = time.perf_counter(), time.thread_time()
        snapshot = collector.tick()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return walls, cpus, snapshot


def run(results: Results, app: App, bootstrap: str, redis_url: str, log_dir: Path) -> None:
    import json

    from monitor.collector import Collector

    built = time.perf_counter()
    build(bootstrap)
    built = time.perf_counter() - built
    collector = Collector(
        "kafka", bus_factory=lambda: open_bus("kafka", bootstrap_servers=bootstrap), tick_s=2.0, history_thread=True
    )
    try:
        _ticks(collector, 2)  # warm-up: clients connected, design loaded
        walls, cpus, snapshot = _ticks(collector, TICKS)
        frame_kb = len(json.dumps(snapshot, separators=(",", ":"))) / 1024
        topics, groups = len(snapshot["topics"]), len(snapshot["groups"])
        results.add(
            "collector_tick_s",
            statistics.median(walls),
            "s",
            f"median of {TICKS}; {topics} topics, {groups} group rows; cpu {statistics.median(cpus):.3f} s; "
            f"frame {frame_kb:.0f} KiB (setup {built:.0f} s)",
        )

        env = live.django_env(app.db_path, redis_url, bootstrap)
        daphne = live.start_daphne(env, log_dir)
        try:
            ws0_walls, ws0_cpus, _ = _ticks(collector, TICKS)
            swarm = live.start_swarm(daphne.socket_url(), app.session_key, daphne.url, 100, log_dir)
            try:
                _ticks(collector, 1)
                ws100_walls, ws100_cpus, _ = _ticks(collector, TICKS)
            finally:
                report = swarm.finish()
            more_walls, more_cpus, _ = _ticks(collector, TICKS)
            ws0_walls += more_walls
            ws0_cpus += more_cpus
        finally:
            daphne.process.stop()
        frames = [len(c["frames"]) for c in report["clients"]]
        problems = sum(len(c["closes"]) + len(c["errors"]) for c in report["clients"])
        results.add(
            "collector_tick_s_ws0",
            statistics.median(ws0_walls),
            "s",
            f"Daphne up, no socket; cpu {statistics.median(ws0_cpus):.3f} s",
        )
        results.add(
            "collector_tick_s_ws100",
            statistics.median(ws100_walls),
            "s",
            f"100 sockets; cpu {statistics.median(ws100_cpus):.3f} s; frames/client {min(frames)}-{max(frames)}, "
            f"{problems} closes/errors",
        )
    finally:
        collector.close()
