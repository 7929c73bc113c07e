"""The follower shared by the dead-letter ingester and the indexer (eventhub/bus/follow.py)."""

from __future__ import annotations

import os
import time
import uuid

from eventhub.bus import open_bus
from eventhub.bus.follow import Follower


def test_with_nothing_to_follow_a_poll_waits_its_timeout_instead_of_spinning():
    # The ingester and the indexer call poll back to back. With no topic to read (no
    # dead-letter topic yet, an index pattern matching nothing) it returned at once, so
    # each loop spun a core and slowed every request of the web process around it.
    bus = open_bus("redis", url=os.environ["REDIS_URL"])
    stored: list = []
    follower = Follower(
        {"redis": bus},
        f"follow-{uuid.uuid4().hex[:6]}",
        "follow-test",
        select=lambda kind: frozenset(),
        store=lambda kind, records: stored.append(records) or len(records),
        what="test follower",
        owned=["redis"],
    )
    try:
        follower.discover()
        polls, started, cpu = 0, time.monotonic(), time.thread_time()
        while time.monotonic() - started < 0.5:
            assert follower.poll(0.2, 100) == 0
            polls += 1
        assert polls <= 3, f"{polls} polls in half a second: poll returned without waiting"
        assert time.thread_time() - cpu < 0.25
    finally:
        follower.close()
    assert stored == []
