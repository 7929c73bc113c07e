"""Five SIGKILLs of a consumer during 10,000 events: nothing missing, duplicates bounded.

The heavier sibling of tests/sdk/test_kill.py (one kill): the same consumer
process (tests/sdk/crashy_consumer.py, which appends the ce_id of each handled
event to a file with one O_APPEND write) is SIGKILLed five times and started
again at once each time. Every 100th event always fails and must be
dead-lettered.

Where a kill lands matters. Killed "whenever the test looks", the consumer was
almost always between two batches (handling 100 records takes a millisecond,
the round trips around them far longer), which proves little: nothing
handled is uncommitted then. So each consumer is started with --hang-after N,
N chosen off the batch boundaries: its handler blocks after N events, in the
middle of a poll batch whose earlier records are handled but not committed,
and the SIGKILL lands there, the worst place. Every kill leaves work to redo.

After the final restart:
- every good event was handled (at least once) and every failing one is on the
  dead-letter topic (at least once); none is both, none is missing;
- duplicates are counted and bounded: a kill can only lose the commit of the
  poll batch in hand, so at most one batch (the SDK's max_records, 100) is
  handled again per kill: duplicates <= 5 x 100;
- the group ends with lag 0, and the last consumer stops cleanly on SIGTERM.
Kafka: the group rebalances once the dead member's session (2 s on Tansu, 6 s on
Apache Kafka) times out.
Redis: the new consumer claims the dead one's pending entries after 500 ms idle.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from eventhub.bus import open_bus
from eventhub.sdk import LocalSchemas, Producer, dead_letter_topic
from tests.fault import ROOT, header_text, read_topic
from tests.waiting import wait_until

pytestmark = pytest.mark.fault

CONSUMER = ROOT / "tests" / "sdk" / "crashy_consumer.py"
EVENTS = 10_000
FAIL_EVERY = 100
KILLS = 5
BATCH = 100  # eventhub.sdk.Consumer's max_records: what one poll hands over
# Events each consumer handles before its handler hangs (then SIGKILL): about a
# sixth of the stream each, none on a batch boundary.
HANG_AFTER = (1637, 1721, 1555, 1689, 1613)
SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
}


def _handled(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _options(kind: str) -> dict:
    if kind == "kafka":
        return {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]}
    return {"url": os.environ["REDIS_URL"]}


def _publish(bus, topic: str) -> tuple[list[str], set[str]]:
    schemas = LocalSchemas({"order.placed": {"schema": SCHEMA, "topic": topic}})
    producer = Producer(bus, "shop", schemas, heartbeat_interval_s=None)
    ids = [
        producer.publish_nowait(
            "order.placed", {"order_id": f"o-{n}", "amount": n, "fail": n % FAIL_EVERY == 0}, key=f"o-{n}"
        )
        for n in range(EVENTS)
    ]
    producer.close()  # flushes: every event acknowledged
    return ids, {ids[n] for n in range(0, EVENTS, FAIL_EVERY)}


@pytest.mark.parametrize("kind", ["kafka", "redis"])
def test_five_kills_lose_nothing(kind, procs, tmp_path, observed, scratch_topics):
    suffix = os.urandom(4).hex()
    topic, group = f"fault-orders-{suffix}", f"fault-crashy-{suffix}"
    out = tmp_path / "handled.txt"
    scratch_topics.add(kind, topic, dead_letter_topic(topic, kind))
    bus = open_bus(kind, **_options(kind))
    try:
        bus.create_topic(topic, partitions=3)
        started = time.monotonic()
        ids, failing = _publish(bus, topic)
        observed["publish_s"] = time.monotonic() - started

        def consumer(*extra: str):
            return procs.python(f"consumer-{kind}", CONSUMER, kind, topic, group, str(out), *extra)

        kill_points, restarts_s = [], []
        running = consumer("--hang-after", str(HANG_AFTER[0]))
        for k in range(KILLS):
            # This process started when the previous one was killed: it hangs HANG_AFTER[k] lines later.
            target = (kill_points[-1] if kill_points else 0) + HANG_AFTER[k]
            wait_until(lambda t=target: len(_handled(out)) >= t, 90, f"{target} handled before kill {k + 1}")
            assert running.alive(), running.log()[-3000:]
            assert len(_handled(out)) == target  # hung mid-batch, as planned
            running.kill()  # SIGKILL, mid-batch: no commit, no leave-group
            kill_points.append(len(_handled(out)))
            restarted = time.monotonic()
            extra = ("--hang-after", str(HANG_AFTER[k + 1])) if k + 1 < KILLS else ()
            running = consumer(*extra)
            # Progress again after the restart: how long a kill costs.
            wait_until(lambda n=kill_points[-1]: len(_handled(out)) > n, 60, f"progress after kill {k + 1}")
            restarts_s.append(time.monotonic() - restarted)

        good = set(ids) - failing

        def finished() -> bool:
            return set(_handled(out)) >= good and sum(p.lag for p in bus.lag(group, topic)) == 0

        wait_until(finished, 120, "every good event handled and the group caught up")
        assert running.stop() == 0, running.log()[-3000:]  # SIGTERM: a clean stop
        observed["total_s"] = time.monotonic() - started
        dead = read_topic(bus, dead_letter_topic(topic, kind))
    finally:
        bus.close()

    handled = Counter(_handled(out))
    dead_ids = Counter(header_text(record, "ce_id") for record in dead)
    assert set(handled) == good  # every good event handled; nothing else
    assert set(dead_ids) == failing  # every failing one dead-lettered
    assert not set(handled) & set(dead_ids)
    assert set(handled) | set(dead_ids) == set(ids)  # none missing
    duplicates = sum(handled.values()) - len(handled)
    dead_duplicates = sum(dead_ids.values()) - len(dead_ids)
    observed["kill_points"] = ",".join(map(str, kill_points))
    observed["duplicates"] = duplicates
    observed["dead_letter_duplicates"] = dead_duplicates
    observed["max_restart_to_progress_s"] = max(restarts_s)
    assert 0 < duplicates + dead_duplicates <= KILLS * BATCH  # redone, but at most one poll batch per kill
