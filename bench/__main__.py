"""python -m bench [part ...]: run the benchmarks, print a table, write var/bench.json.

Every figure is measured side by side with its reference in this one run (the
raw client, the same tick without sockets...), so ratios hold on a noisy
machine. Parts, in the order they run: sdk, compat, push, collector,
large (the collector at 1,000 topics x 5 partitions and 1,000 groups, bench/collector_large.py,
on a broker of its own),
deadletters, eventstore (on a private PostgreSQL and on SQLite, bench/eventstore.py),
browse (the topic browser's filtered scan, bench/browse.py), traffic (a candidate schema
against the last 1,000 real events, bench/traffic.py),
load (the 60 s load scenario of tests/load after a 310 s warm-up
that fills the collector's windows; EVENTHUB_LOAD_SECONDS, EVENTHUB_LOAD_RATE
and EVENTHUB_LOAD_WARMUP_SECONDS set them), catalog. Naming some runs only those
and writes nothing. The load runs before the catalog part loads its 10,000-event
design: with that design in the snapshot a frame is ~6 MB (docs/performance.md).
docs/performance.md says what each figure means and what bounds it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTS = (
    "sdk",
    "compat",
    "push",
    "collector",
    "large",
    "deadletters",
    "eventstore",
    "browse",
    "traffic",
    "load",
    "catalog",
)


def main(argv: list[str]) -> None:
    wanted = [part for part in argv if part in PARTS] or list(PARTS)
    unknown = [part for part in argv if part not in PARTS]
    if unknown:
        sys.exit(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    from bench import app as bench_app
    from bench.common import Results, services

    results = Results()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-") as folder, services() as (bootstrap, redis_url):
        folder = Path(folder)
        log_dir = ROOT / "var" / "bench-logs"  # kept after the run: what each process said
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        app = bench_app.setup(folder)
        # The figures are ratios and bounds measured side by side, but absolute times move
        # with whatever else the machine runs: say how busy it was.
        print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        print(f"  {'figure':<28} {'value':>10} {'unit':<6} detail")
        if "sdk" in wanted:
            from bench import sdk_publish

            sdk_publish.run(results, bootstrap, redis_url)
        if "compat" in wanted:
            from bench import compat

            compat.run(results, app)
        if "push" in wanted:
            from bench import push

            push.run(results, app, bootstrap, redis_url, log_dir)
        if "collector" in wanted:
            from bench import collector

            collector.run(results, app, bootstrap, redis_url, log_dir)
        if "large" in wanted:
            from bench import collector_large
            from eventhub import broker

            # A broker of its own, stopped after: the system measured is exactly the large one
            # (not it plus the topics the parts before left), and its 5,000 partitions do not
            # slow the parts after it.
            process, own = broker.start(log_path=log_dir / "broker-large.log")
            try:
                collector_large.run(results, app, own, redis_url, log_dir)
            finally:
                broker.stop(process)
        if "deadletters" in wanted:
            from bench import deadletters

            deadletters.run(results, bootstrap)
        if "eventstore" in wanted:
            from bench import eventstore

            eventstore.run(results, log_dir)
        if "browse" in wanted:
            from bench import browse

            browse.run(results, bootstrap)
        if "traffic" in wanted:
            from bench import traffic

            traffic.run(results, app, bootstrap)
        if "load" in wanted:
            from bench import load

            load.bench(results, app, bootstrap, redis_url, log_dir)
        if "catalog" in wanted:
            from bench import catalog

            catalog.run(results, app)
    print(
        f"\n  {len(results.figures)} figures in {time.monotonic() - started:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    if wanted != list(PARTS):
        return
    out = ROOT / "var" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    from eventhub.broker import kind_from_env

    # The broker the figures were measured on: EVENTHUB_BROKER (make bench BROKER=...).
    measured = {"broker": kind_from_env(), **results.as_dict()}
    out.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"  wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
