"""collector_tick_s_large and collector_rss_mib_large: the collector at ten times the usual size.

The system: 1,000 topics of 5 partitions (5,000 partitions) and 1,000 consumer
groups, each with offsets committed on all partitions of 5 topics (5,000 group x
topic rows, 25,000 group x partition offsets). Between two ticks 1% of the
partitions (50) get a record, so rates, lag and Burrow's windows move.

The collector runs in a process of its own (`python -m bench.collector_large`,
what `run` starts), so its resident set is the collector's and not the rest of
the bench's. Its clock is stepped (`tick(now=...)`, one tick interval a step) until
every window is full (HISTORY_S, the longest, 300 s), so the memory is what a
collector holds after running for hours, reached in a few minutes; the bus is real.
The tick figure is the median wall time of the ticks after that; it includes
writing 6,000 history rows to the app's SQLite file, storing the snapshot in Redis
and making the delta frame the sockets get.

ws_steady_bytes_per_tick: the frames a tick broadcasts (its topic rows ahead, then the
rest), what each open dashboard showing the whole cluster receives per tick once it has
the whole view (monitor/deltas.py), median over the same ticks; beside it the whole
snapshot's frame, what every socket got each tick before.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import p95_ms

TOPICS = 1_000
PARTITIONS = 5
GROUPS = 1_000
TOPICS_PER_GROUP = 5
CHANGING = 0.01  # the share of partitions that get a record between two ticks
MEASURED_TICKS = 15


def names(prefix: str = "bench-large") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(TOPICS)]


def build(bootstrap: str) -> None:
    """Create the topics, one record per partition, and every group's commits (offset 1)."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.structs import OffsetAndMetadata

    topics = names()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for start in range(0, TOPICS, 100):
            admin.create_topics([NewTopic(name, PARTITIONS, -1) for name in topics[start : start + 100]])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for name in topics:
        for partition in range(PARTITIONS):
            producer.send(name, b'{"n":1}', partition=partition)
    producer.flush()
    producer.close()

    def commit(g: int) -> None:
        # A commit without joining (generation -1), as a tool resetting offsets does.
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=f"bench-large-group-{g:04d}")
        try:
            consumer.commit(
                {
                    TopicPartition(topics[(g * 3 + k) % TOPICS], p): OffsetAndMetadata(1, "", -1)
                    for k in range(TOPICS_PER_GROUP)
                    for p in range(PARTITIONS)
                }
            )
        finally:
            consumer.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(commit, range(GROUPS)))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _deflated(frame: bytes) -> int:
    """The frame's size on the wire to a browser: permessage-deflate as eventhub/webserver.py
    sets it, with a compressor of its own (a socket's, which has seen the frames before,
    does at least as well)."""
    from eventhub.webserver import MEM_LEVEL, WINDOW_BITS

    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -WINDOW_BITS, MEM_LEVEL)
    return len(compressor.compress(frame) + compressor.flush(zlib.Z_SYNC_FLUSH)) - 4  # RFC 7692 drops the tail


def measure(bootstrap: str) -> dict:
    """In the child process: fill the windows with a stepped clock, then time ticks."""
    import django

    django.setup()
    from kafka import KafkaProducer

    from eventhub import background
    from eventhub.bus import open_bus
    from monitor import snapshots
    from monitor.collector import HISTORY_S, Collector

    # The frames the ticks broadcast, as every socket that shows the whole cluster gets them.
    sent: list[str] = []
    send_to_group = snapshots.sockets.send_to_group

    def recording(group: str, message: dict) -> None:
        sent.append(message["frame"])
        send_to_group(group, message)

    snapshots.sockets.send_to_group = recording

    # As the monitor's loop builds it (monitor/loops.py): history written on a thread of its own.
    collector = Collector(
        "kafka", bus_factory=lambda: open_bus("kafka", bootstrap_servers=bootstrap), history_thread=True
    )
    background.settle_heap()  # as the collector's loop does once set up (monitor/loops.py)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    partitions = [(name, p) for name in names() for p in range(PARTITIONS)]
    rng = random.Random(7)
    now = float(int(time.time()))
    fill_ticks = int(HISTORY_S / collector.tick_s) + 1
    process_cpus: list[float] = []  # every thread's: the tick's, the history writer's, the client's I/O

    def step() -> tuple[float, float, dict]:
        nonlocal now
        for name, partition in rng.sample(partitions, int(len(partitions) * CHANGING)):
            producer.send(name, b'{"n":2}', partition=partition)
        producer.flush()
        now += collector.tick_s
        wall, cpu, process = time.perf_counter(), time.thread_time(), time.process_time()
        snapshot = collector.tick(now=now)
        process_cpus.append(time.process_time() - process)
        return time.perf_counter() - wall, time.thread_time() - cpu, snapshot

    try:
        filled = time.perf_counter()
        for _ in range(fill_ticks):
            step()
        filled = time.perf_counter() - filled
        walls, cpus, delta_bytes, deflated_bytes, frames, phases = [], [], [], [], [], []
        step()
        process_cpus.clear()
        for _ in range(MEASURED_TICKS):
            sent.clear()
            wall, cpu, snapshot = step()
            walls.append(wall)
            cpus.append(cpu)
            phases.append(collector.phases)
            # What this tick broadcast: its topics ahead, then the rest (monitor/collector.py).
            delta_bytes.append(sum(len(frame.encode()) for frame in sent))
            deflated_bytes.append(sum(_deflated(frame.encode()) for frame in sent))
            frames.append(len(sent))
        return {
            "tick_s": statistics.median(walls),
            "tick_cpu_s": statistics.median(cpus),
            "process_cpu_s": statistics.median(process_cpus),
            "phases": {name: statistics.median(p[name] for p in phases) for name in phases[0]},
            "rss_mib": rss_mib(),
            "topics": len(snapshot["topics"]),
            "group_rows": len(snapshot["groups"]),
            "fill_ticks": fill_ticks,
            "fill_s": filled,
            "frame_kib": len(json.dumps(snapshot, separators=(",", ":"))) / 1024,
            "delta_bytes": statistics.median(delta_bytes),
            "delta_bytes_max": max(delta_bytes),
            "deflated_bytes": statistics.median(deflated_bytes),
            "frames": statistics.median(frames),
        }
    finally:
        producer.close()
        collector.close()


# Collector.phases, as the detail names them.
PHASES = {"history": "history handed over", "history_behind": "history written on its thread"}


def run(results, app, bootstrap: str, redis_url: str, log_dir: Path) -> None:
    from bench import live

    built = time.perf_counter()
    build(bootstrap)
    built = time.perf_counter() - built
    env = live.django_env(app.db_path, redis_url, bootstrap)
    log = log_dir / "collector-large.log"
    with log.open("w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "bench.collector_large", bootstrap],
            env=env,
            cwd=live.ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the large collector run failed (exit {done.returncode}); see {log}")
    m = json.loads(done.stdout.strip().splitlines()[-1])
    shape = f"{m['topics']} topics x {PARTITIONS} partitions, {m['group_rows']} group rows"
    results.add(
        "collector_tick_s_large",
        m["tick_s"],
        "s",
        f"median of {MEASURED_TICKS} after the windows filled; {shape}; cpu {m['tick_cpu_s']:.3f} s "
        f"(the process's {m['process_cpu_s']:.3f} s); "
        f"phases (medians) {', '.join(f'{PHASES.get(name, name)} {s:.2f} s' for name, s in m['phases'].items())}; "
        f"frame {m['frame_kib']:.0f} KiB (setup {built:.0f} s)",
    )
    results.add(
        "ws_steady_bytes_per_tick",
        m["delta_bytes"] / 1024,
        "KiB",
        f"delta frames per socket per tick ({m['frames']:g} a tick: the topics, then the rest), 1% of "
        f"partitions changing; median of {MEASURED_TICKS}, "
        f"max {m['delta_bytes_max'] / 1024:.1f} KiB; {m['deflated_bytes'] / 1024:.1f} KiB on the wire with "
        f"permessage-deflate; the whole snapshot is {m['frame_kib']:.0f} KiB",
    )
    push_at_large(results, app, bootstrap, redis_url, log_dir)
    results.add(
        "collector_rss_mib_large",
        m["rss_mib"],
        "MiB",
        f"collector process after {m['fill_ticks']} ticks ({m['fill_s']:.0f} s) filled its 300 s windows",
    )


def push_at_large(results, app, bootstrap: str, redis_url: str, log_dir: Path) -> None:
    """push_latency_p95_ms_large: bench/push.py's measure on this system, 200 dashboards, the default tick.

    `manage.py run_monitor` starts with empty windows and ticks in real time, so its
    ticks during these records are cheaper than the stepped collector's above (its
    300 s history is not full yet).
    """
    from bench import push

    tick_s, clients, records = 2.0, 200, 30
    m = push.measure(app, bootstrap, redis_url, log_dir, tick_s=tick_s, clients=clients, records=records)
    results.add("push_latency_p95_ms_large", p95_ms(m["samples"]), "ms", push.detail(m, clients, records, tick_s))


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
