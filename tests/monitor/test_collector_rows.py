"""The collector's group rows against the plain functions they shortcut, tick after tick.

`Collector._part` skips work that cannot change a row: a consume rate is not walked for a
partition whose committed offset has not moved since before the rate window, and a
stopped partition keeps its Burrow verdict while nothing is observed to change
(monitor/burrow.py, `Judge`). Here random readings go through `_part` on a stepped clock
(no broker: the reading is made here) and every row must say what the plain functions
say over the collector's own history.
"""

from __future__ import annotations

import random

import pytest

from eventhub.bus.base import GroupInfo
from monitor import burrow, rates
from monitor.collector import Collector, Design, Reading

pytestmark = pytest.mark.django_db

TOPICS, PARTITIONS, GROUPS = ("t-a", "t-b"), 3, ("g-1", "g-2", "g-3")


@pytest.mark.parametrize("seed", range(6))
def test_rows_say_what_the_plain_functions_say(seed):
    rng = random.Random(seed)
    collector = Collector(
        "kafka", bus_factory=lambda: None, publish=False, write_history=False, tick_s=1.0,
        rate_window_s=4.0, history_s=12.0, burrow_window_s=6.0,
    )  # fmt: skip
    ends = {t: dict.fromkeys(range(PARTITIONS), 10) for t in TOPICS}
    committed = {g: {t: dict.fromkeys(range(PARTITIONS), 5) for t in TOPICS} for g in GROUPS}
    groups = {g: GroupInfo(g, "Stable", 1, TOPICS) for g in GROUPS}
    now, kept = 1_000.0, 0
    for _ in range(60):
        now += 1.0
        for partitions in ends.values():
            for p in partitions:
                partitions[p] += rng.choice((0, 0, 0, 1, 3))
        for g in GROUPS:
            if rng.random() < 0.15:  # a burst of commits, then quiet for a while
                for t in TOPICS:
                    for p in range(PARTITIONS):
                        committed[g][t][p] = rng.randint(committed[g][t][p], ends[t][p])
        reading = Reading(
            {t: dict(e) for t, e in ends.items()},
            groups,
            {g: {t: dict(p) for t, p in c.items()} for g, c in committed.items()},
        )
        part = collector._part(reading, Design(), now)
        for row in part["groups"]:
            group, topic = row["group"], row["topic"]
            consume = rates.group_consume_rate(collector.commit_history, group, topic, range(PARTITIONS), now, 4.0)
            assert row["consume_rate"] == (None if consume is None else round(consume, 3))
            samples = {(topic, p): collector._samples[(group, topic, p)] for p in range(PARTITIONS)}
            verdict = burrow.evaluate_group(samples, now, 6.0)
            assert (row["status"], row["reason"]) == (verdict.status.value, verdict.reason)
        kept += len(collector._judge._kept)
    assert kept > 0  # some verdicts were kept, so the shortcut was taken
