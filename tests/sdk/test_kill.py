"""The kill test: SIGKILL a consumer process mid-stream, restart it, lose nothing.

1. Publish 300 events (every 25th always fails, so it must be dead-lettered).
2. Start tests/sdk/crashy_consumer.py; its handler hangs after 110 events, in
   the middle of a poll batch whose earlier records are handled but not yet
   committed (on Redis, deterministically: the 2nd batch of 100, after 14
   handled records). SIGKILL it there.
3. Start it again (no hang). On Kafka the group rebalances once the dead
   member's session times out; on Redis the new consumer claims the dead one's
   pending entries once they are idle for claim_idle_ms.
4. Every event is then handled or dead-lettered: duplicates are allowed (and
   counted), missing ones are not. The group ends with nothing left to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from eventhub.bus import open_bus
from eventhub.sdk import LocalSchemas, Producer, dead_letter_topic
from tests.sdk import (
    ORDER_SCHEMA,
    read_records,
    total_end_offset,
    total_lag,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("crashy_consumer.py")
EVENTS = 300
FAIL_EVERY = 25
HANG_AFTER = 110


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _start(kind: str, topic: str, group: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), kind, topic, group, str(out), *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.mark.parametrize("kind", ["kafka", "redis"])
def test_killed_consumer_loses_nothing(kind, unique, tmp_path, record_property):
    from tests.conftest import bus_options

    bus = open_bus(kind, **bus_options(kind))
    topic, group = unique("orders"), unique("crashy")
    out = tmp_path / "handled.txt"
    bus.create_topic(topic, partitions=3)
    schemas = LocalSchemas({"order.placed": {"schema": ORDER_SCHEMA, "topic": topic}})
    producer = Producer(bus, "shop", schemas, heartbeat_interval_s=None)
    ids = []
    for n in range(EVENTS):
        payload = {"order_id": f"o-{n}", "amount": n, "fail": n % FAIL_EVERY == 0}
        ids.append(producer.publish_nowait("order.placed", payload, key=f"o-{n}"))
    producer.close()
    failing = {ids[n] for n in range(0, EVENTS, FAIL_EVERY)}

    first = _start(kind, topic, group, out, "--hang-after", str(HANG_AFTER))
    second = None
    try:
        wait_until(lambda: len(_lines(out)) >= HANG_AFTER, 30, "the first consumer")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        handled_before_kill = len(_lines(out))
        assert handled_before_kill == HANG_AFTER  # it hung there: mid-stream, by design

        second = _start(kind, topic, group, out)
        dlq = dead_letter_topic(topic, kind)

        def all_finished() -> bool:
            handled_all = set(_lines(out)) >= set(ids) - failing
            return handled_all and total_lag(bus, group, topic) == 0

        try:
            wait_until(all_finished, 60, "the good events handled and all committed")
        except AssertionError:
            missing = len(set(ids) - failing - set(_lines(out)))
            print(f"missing {missing}; lag {bus.lag(group, topic)}; second {second.poll()}")
            raise
        dead = read_records(bus, dlq, total_end_offset(bus, dlq))
    finally:
        _stop(first)
        if second is not None:
            _stop(second)
        bus.close()
    assert second.returncode == 0

    handled = Counter(_lines(out))
    dead_ids = Counter(r.header("ce_id").decode() for r in dead)
    assert set(dead_ids) == failing  # every failing event reached the dead-letter topic
    assert not failing & set(handled)  # and none of them was handled
    assert set(handled) | set(dead_ids) == set(ids)  # none missing
    duplicates = sum(handled.values()) - len(handled)
    record_property("duplicates", duplicates)
    if kind == "redis":
        # One stream, so the batches are known: the killed consumer's handled but
        # unacked records were claimed and handled again by the new one.
        assert duplicates == 14
    print(f"{kind}: {len(handled)} handled, {len(dead_ids)} dead-lettered, {duplicates} duplicates")
