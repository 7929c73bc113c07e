"""The load scenario: N dashboards open while the bus takes R events/s for S seconds.

Processes, as in production: the collector (`manage.py run_monitor
--no-ingester`), Daphne on the Redis channel layer, the clients
(`bench.swarm`), and this process publishing with a raw kafka-python producer
at a steady rate (a send every 20 ms, flushed every second).

Measured (`LoadResult`):
- the rate achieved (records acknowledged / seconds) against the rate asked, and
  whether the topic holds every record sent (its end offsets after the run);
- every client's closes and errors, frame count and longest gap between frames;
- frames missed: a frame is known by the topic's end offset it shows, and a
  frame that some client got within the publishing window and another did not
  was lost on the way (one count per client and frame);
- how stale the frames are: from a flush that acknowledged N records to each
  client's first frame showing the topic's end offset at N or more (p95);
- RSS of Daphne and of the collector process when the load starts, then every
  second after the warm-up (VmRSS); growth is the mean of the last three samples
  over the mean of the first three taken after the warm-up.

The warm-up matters for the collector: it keeps bounded windows of offsets in
memory (end offsets for ``monitor.collector.HISTORY_S``, 300 s; Burrow samples
for 120 s; committed offsets for 30 s), which fill during the first five minutes
of a run and then stay level. `python -m bench` therefore measures growth after
a warm-up of HISTORY_S + 10 s (`bench_warmup_s`, or EVENTHUB_LOAD_WARMUP_SECONDS):
growth measured earlier is the windows filling, not a leak. How much they hold
when full is the difference between the RSS at the start and after the warm-up,
shown next to the figure (docs/performance.md).

tests/load/test_load.py runs it with assertions; `python -m bench.load` prints it.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import live

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LoadResult:
    seconds: float
    asked_rate: float
    achieved_rate: float
    clients: int
    tick_s: float
    producer_errors: list[str]
    client_problems: list[str]
    frames_min: int
    frames_max: int
    max_gap_s: float
    stale_p95_s: float | None
    missed_checkpoints: int
    sent: int = 0  # records the publisher sent (the warm-up record not counted)
    delivered: int = 0  # of those, on the topic after the run (end offsets)
    frames_missed: int = 0
    rss_kb: dict[str, list[int]] = field(default_factory=dict)
    growth: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    warmup_s: float = 0.0
    rss_start_kb: dict[str, int] = field(default_factory=dict)  # when the load started, before the warm-up

    def lines(self) -> list[str]:
        rss = ", ".join(
            f"{name} {self.rss_start_kb.get(name, samples[0]) / 1024:.0f} at start, "
            f"{samples[0] / 1024:.0f}->{samples[-1] / 1024:.0f} MiB ({self.growth[name]:+.1%})"
            for name, samples in self.rss_kb.items()
        )
        return [
            f"{self.clients} clients, {self.seconds:.0f} s, tick {self.tick_s:g} s",
            f"rate asked {self.asked_rate:,.0f}/s, achieved {self.achieved_rate:,.0f}/s, "
            f"{len(self.producer_errors)} producer errors, {self.delivered:,} of {self.sent:,} records on the topic",
            f"frames per client {self.frames_min}-{self.frames_max}, longest gap {self.max_gap_s:.2f} s, "
            f"{self.frames_missed} missed, {len(self.client_problems)} closes/errors",
            f"frame staleness p95 {self.stale_p95_s if self.stale_p95_s is None else round(self.stale_p95_s, 2)} s, "
            f"{self.missed_checkpoints} checkpoints never shown",
            f"RSS after a {self.warmup_s:.0f} s warm-up: {rss}",
            "cores used: " + ", ".join(f"{name} {used:.2f}" for name, used in self.cpu.items()),
        ]


class _Publisher(threading.Thread):
    """Sends `rate` records/s to `topic` in 20 ms steps; flushes every second and notes
    (time after the flush, records acknowledged) as a checkpoint. `headers(n)`, when given,
    makes the headers of the n-th record (bench/eventstore.py sends the SDK's)."""

    STEP_S = 0.02

    def __init__(
        self, bootstrap: str, topic: str, rate: float, headers: Callable[[int], list[tuple[str, bytes]]] | None = None
    ) -> None:
        super().__init__(name="load-publisher", daemon=True)
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, acks=1)
        self.topic = topic
        self.rate = rate
        self.headers = headers
        self.stop = threading.Event()
        self.sent = 0
        self.errors: list[str] = []
        self.checkpoints: list[tuple[float, int]] = []
        self.started = self.finished = 0.0

    def _failed(self, error: Exception) -> None:
        if len(self.errors) < 20:
            self.errors.append(f"{type(error).__name__}: {error}")

    def run(self) -> None:
        value = b'{"order_id":"o-1","amount":1250,"currency":"EUR","lines":[{"sku":"SKU-1","quantity":1}]}'
        self.started = next_step = next_flush = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - self.started) * self.rate) - self.sent
            for _ in range(max(0, due)):
                self.producer.send(
                    self.topic,
                    value=value,
                    key=str(self.sent % 64).encode(),
                    headers=self.headers(self.sent) if self.headers else None,
                ).add_errback(self._failed)
                self.sent += 1
            if time.monotonic() >= next_flush:
                self.producer.flush(timeout=10)
                self.checkpoints.append((time.monotonic(), self.sent))
                next_flush += 1.0
            next_step += self.STEP_S
            self.stop.wait(max(0.0, next_step - time.monotonic()))
        self.producer.flush(timeout=10)
        self.finished = time.monotonic()
        self.producer.close(timeout=10)


def _growth(samples: list[int]) -> float:
    head, tail = statistics.mean(samples[:3]), statistics.mean(samples[-3:])
    return (tail - head) / head


def run(
    *,
    db_path: Path,
    session_key: str,
    redis_url: str,
    bootstrap: str,
    log_dir: Path,
    seconds: float,
    rate: float,
    clients: int = 100,
    tick_s: float = 1.0,
    warmup_s: float | None = None,
) -> LoadResult:
    from eventhub.bus import open_bus

    warmup_s = warmup_s if warmup_s is not None else min(10.0, max(3.0, seconds / 5))
    topic = f"load-{uuid.uuid4().hex[:8]}"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(topic, 3)
    bus.publish(topic, b'{"warm":true}')  # the topic is in the frames before the clock starts
    env = live.django_env(db_path, redis_url, bootstrap, EVENTHUB_TICK_SECONDS=str(tick_s))
    processes: list[live.Process] = []
    swarm = None
    try:
        monitor = live.start_monitor(env, log_dir)
        processes.append(monitor)
        daphne = live.start_daphne(env, log_dir)
        processes.append(daphne.process)
        swarm = live.start_swarm(daphne.socket_url(), session_key, daphne.url, clients, log_dir, watch=topic)
        pids = {"daphne": daphne.process.pid, "collector": monitor.pid}
        publisher = _Publisher(bootstrap, topic, rate)
        publisher.start()
        began = time.monotonic()
        cpu_before = {name: live.cpu_s(pid) for name, pid in pids.items()}
        rss_start = {name: live.rss_kb(pid) for name, pid in pids.items()}
        rss: dict[str, list[int]] = {name: [] for name in pids}
        next_sample = began + warmup_s
        while time.monotonic() < began + warmup_s + seconds:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            for name, pid in pids.items():
                rss[name].append(live.rss_kb(pid))
            next_sample += 1.0
        cpu = {name: (live.cpu_s(pid) - cpu_before[name]) / (time.monotonic() - began) for name, pid in pids.items()}
        publisher.stop.set()
        publisher.join(30)
        ended = time.monotonic()
        on_topic = sum(bus.end_offsets(topic).values())
        time.sleep(2 * tick_s + 0.5)  # the last checkpoint's frame
        report = swarm.finish()
        swarm = None
    finally:
        if swarm is not None:
            swarm.process.stop()
        for process in reversed(processes):
            process.stop()
        bus.delete_topic(topic)
        bus.close()

    # Only what happened while the publisher ran counts, warm-up included.
    problems, gaps, counts, stale, missed = [], [], [], [], 0
    checkpoints = [(at, n + 1) for at, n in publisher.checkpoints]  # +1: the warm-up record
    for i, client in enumerate(report["clients"]):
        problems += [f"client {i}: {p}" for p in client["closes"] + client["errors"]]
        frames = [at for at in client["frames"] if began <= at <= ended]
        counts.append(len(frames))
        edges = [began, *frames, ended]
        gaps.append(max(b - a for a, b in zip(edges, edges[1:], strict=False)))
        for at, end in checkpoints:
            seen = next((t for t, shown in client["watch"] if shown >= end), None)
            if seen is None:
                missed += 1
            else:
                stale.append(seen - at)
    stale.sort()
    # Frames by the end offset they show, inside the window of the checkpoints: every client
    # was connected throughout it, so each should have every frame any other one got.
    lo, hi = (checkpoints[0][1], checkpoints[-1][1]) if checkpoints else (0, -1)
    shown = [{end for _at, end in client["watch"] if lo <= end <= hi} for client in report["clients"]]
    anywhere = set().union(*shown)
    return LoadResult(
        seconds=publisher.finished - publisher.started,
        asked_rate=rate,
        achieved_rate=publisher.sent / (publisher.finished - publisher.started),
        clients=clients,
        tick_s=tick_s,
        producer_errors=publisher.errors,
        client_problems=problems,
        frames_min=min(counts),
        frames_max=max(counts),
        max_gap_s=max(gaps),
        stale_p95_s=stale[min(len(stale) - 1, int(len(stale) * 0.95))] if stale else None,
        missed_checkpoints=missed,
        sent=publisher.sent,
        delivered=on_topic - 1,  # the warm-up record
        frames_missed=sum(len(anywhere - seen) for seen in shown),
        rss_kb=rss,
        growth={name: _growth(samples) for name, samples in rss.items()},
        cpu=cpu,
        warmup_s=warmup_s,
        rss_start_kb=rss_start,
    )


def bench_warmup_s() -> float:
    """The bench's warm-up: long enough for the collector's largest window to fill (module doc)."""
    from monitor.collector import BURROW_WINDOW_S, HISTORY_S, RATE_WINDOW_S

    default = max(HISTORY_S, BURROW_WINDOW_S, RATE_WINDOW_S) + 10
    return float(os.environ.get("EVENTHUB_LOAD_WARMUP_SECONDS", default))


def bench(results, app, bootstrap: str, redis_url: str, log_dir: Path) -> LoadResult:
    """The load figures for `python -m bench`: 60 s at 2,000 events/s after the warm-up that fills
    the collector's windows (`bench_warmup_s`), unless the environment says otherwise."""
    seconds = float(os.environ.get("EVENTHUB_LOAD_SECONDS", "60"))
    rate = float(os.environ.get("EVENTHUB_LOAD_RATE", "2000"))
    result = run(
        db_path=app.db_path,
        session_key=app.session_key,
        redis_url=redis_url,
        bootstrap=bootstrap,
        log_dir=log_dir,
        seconds=seconds,
        rate=rate,
        warmup_s=bench_warmup_s(),
    )
    problems = len(result.client_problems) + len(result.producer_errors)
    results.add(
        "load_events_per_s",
        result.achieved_rate,
        "ev/s",
        f"asked {rate:,.0f}/s for {result.seconds:.0f} s ({result.warmup_s:.0f} s warm-up), {result.clients} sockets; "
        f"{problems} errors/closes; {result.delivered:,} of {result.sent:,} on the topic; "
        f"frames per socket {result.frames_min}-{result.frames_max}, {result.frames_missed} missed, "
        f"longest gap {result.max_gap_s:.2f} s",
    )
    results.add(
        "load_frame_staleness_p95_s",
        result.stale_p95_s if result.stale_p95_s is not None else float("nan"),
        "s",
        f"a flushed batch -> on every screen (tick {result.tick_s:g} s); {result.missed_checkpoints} never shown",
    )
    for name in ("daphne", "collector"):
        samples = result.rss_kb[name]
        results.add(
            f"load_rss_growth_{name}",
            result.growth[name],
            "ratio",
            f"{samples[0] / 1024:.0f} -> {samples[-1] / 1024:.0f} MiB after the {result.warmup_s:.0f} s warm-up "
            f"({result.rss_start_kb[name] / 1024:.0f} MiB at start); {result.cpu[name]:.2f} cores",
        )
    return result


def main() -> None:
    """python -m bench.load: the full run (EVENTHUB_LOAD_SECONDS, default 60; EVENTHUB_LOAD_RATE, default 2000;
    EVENTHUB_LOAD_WARMUP_SECONDS, default HISTORY_S + 10)."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    from bench import app as bench_app
    from bench.common import services

    seconds = float(os.environ.get("EVENTHUB_LOAD_SECONDS", "60"))
    rate = float(os.environ.get("EVENTHUB_LOAD_RATE", "2000"))
    clients = int(os.environ.get("EVENTHUB_LOAD_CLIENTS", "100"))
    with tempfile.TemporaryDirectory(prefix="eventhub-load-") as folder, services() as (bootstrap, redis_url):
        log_dir = ROOT / "var" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        app = bench_app.setup(Path(folder))
        result = run(
            db_path=app.db_path,
            session_key=app.session_key,
            redis_url=redis_url,
            bootstrap=bootstrap,
            log_dir=log_dir,
            seconds=seconds,
            rate=rate,
            clients=clients,
            warmup_s=bench_warmup_s(),
        )
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
