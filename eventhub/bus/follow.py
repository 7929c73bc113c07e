"""Following a changing set of topics on several buses in one consumer group, exactly once per position.

The dead-letter ingester (deadletters/ingest.py) and the event store's indexer
(eventstore/indexer.py) both read "every topic that matches" on each bus and write one row
per record. What they share is here:

1. every `discover_every_s` (and at once after a failure), ask `select(kind)` which topics
   to read on each bus, and re-subscribe that bus' group when the set changed;
2. poll each bus once, hand the batch to `store(kind, records)`, and only after it returns
   commit the batch on the bus. A crash before the commit means the batch comes again, and
   the store must skip what it has (both do, by a unique constraint on the position);
3. a bus that fails is logged once, its consumer dropped, and read again from the group's
   last commit after the next discovery; a store that raises drops the consumer too, so
   the next poll starts again from the last commit.

For one thread. Django-free: the callers bring the storing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from eventhub.bus.base import Bus, BusError, GroupConsumer, Record

log = logging.getLogger(__name__)


@dataclass
class Tail:
    """One bus: the topics followed there and the group consumer reading them."""

    bus: Bus
    topics: frozenset[str] = frozenset()
    consumer: GroupConsumer | None = None

    def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            consumer.close()


class Follower:
    """Follows `select(kind)`'s topics on each bus in group `group`; `store` then commit.

    >>> follower = Follower(buses, "g", "g-host", select=topics_of, store=save, what="indexer")
    >>> if follower.discovery_due(): follower.discover()
    >>> follower.poll(1.0, 500)   # -> what `store` counted
    """

    def __init__(
        self,
        buses: dict[str, Bus],
        group: str,
        client_id: str,
        *,
        select: Callable[[str], frozenset[str]],
        store: Callable[[str, list[Record]], int],
        what: str,
        owned: Iterable[str] = (),
        discover_every_s: float = 5.0,
    ) -> None:
        self.tails = {kind: Tail(bus) for kind, bus in buses.items()}
        self.group, self.client_id = group, client_id
        self._select, self._store, self._what = select, store, what
        self._owned = set(owned)  # buses this follower closes
        self.discover_every_s = discover_every_s
        self._next_discovery = 0.0
        self.down: set[str] = set()  # buses whose last call failed: logged once, not every step

    def discovery_due(self) -> bool:
        """True (and the next one scheduled) when it is time to look at the topics again."""
        now = time.monotonic()
        if now < self._next_discovery:
            return False
        self._next_discovery = now + self.discover_every_s
        return True

    def discover(self) -> None:
        """Re-subscribe each bus' group when its set of topics changed."""
        for kind, tail in self.tails.items():
            try:
                wanted = self._select(kind)
                if wanted == tail.topics and (tail.consumer is not None or not wanted):
                    continue
                tail.close()
                tail.topics = wanted
                if wanted:
                    tail.consumer = tail.bus.consumer(self.group, sorted(wanted), client_id=self.client_id)
                    log.info("%s reads %d topic(s) on %s", self._what, len(wanted), kind)
            except BusError as error:
                self.bus_failed(kind, error)

    def poll(self, timeout_s: float, batch: int) -> int:
        """Poll each bus being read once (sharing `timeout_s`), store, commit; the sum of what `store` returned.

        With nothing to read it waits `timeout_s`, as an idle consumer's poll would: the loops
        call it back to back, and returning at once spun a core until a topic appeared.
        """
        reading = [kind for kind, tail in self.tails.items() if tail.consumer is not None]
        if not reading:
            time.sleep(timeout_s)
            return 0
        return sum(self._poll_bus(kind, timeout_s / len(reading), batch) for kind in reading)

    def _poll_bus(self, kind: str, timeout_s: float, batch: int) -> int:
        tail = self.tails[kind]
        try:
            records = tail.consumer.poll(timeout_s, batch)
            if not records:
                return 0
            stored = self._store(kind, records)
            tail.consumer.commit(records)  # only after the rows are committed
        except BusError as error:
            self.bus_failed(kind, error)
            return 0
        except Exception:
            # The consumer is past a batch that is not stored: leave the group, so that
            # the next poll starts again from the last commit.
            self._restart(kind)
            raise
        self.down.discard(kind)
        return stored

    def discover_soon(self) -> None:
        """Look at the topics again at the next step (a new one may have appeared)."""
        self._next_discovery = 0.0

    def bus_failed(self, kind: str, error: BusError) -> None:
        """Log it (once until the bus answers again) and read that bus again from the last commit."""
        if kind not in self.down:
            log.warning("%s: %s bus failed (%s: %s); retrying", self._what, kind, type(error).__name__, error)
            self.down.add(kind)
        self._restart(kind)

    def _restart(self, kind: str) -> None:
        """Drop the bus' consumer; the next discovery (at once) subscribes again from the last commit."""
        self.tails[kind].close()
        self.tails[kind].topics = frozenset()
        self._next_discovery = 0.0

    def close(self) -> None:
        for kind, tail in self.tails.items():
            tail.close()
            if kind in self._owned:
                tail.bus.close()
