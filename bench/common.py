"""Shared plumbing: real services for the run, timing helpers, the result table."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from eventhub import broker


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    detail: str = ""


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, detail: str = "") -> None:
        self.figures.append(Figure(name, round(value, 4), unit, detail))
        print(f"  {name:<28} {value:>10.4g} {unit:<6} {detail}", flush=True)

    def as_dict(self) -> dict:
        return {f.name: f.value for f in self.figures}


@contextmanager
def services():
    """A private embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set; Redis on database 7 unless REDIS_URL is set."""
    started = None
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        started, bootstrap = broker.start()
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/7"
        _clean_redis(os.environ["REDIS_URL"])
    try:
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["REDIS_URL"]
    finally:
        if started is not None:
            broker.stop(started)


def _clean_redis(redis_url: str) -> None:
    """Leases, snapshots and channel-layer keys a killed earlier run left on the bench's database."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for pattern in ("eventhub:monitor:*", "asgi*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)


def rate(count: int, fn: Callable[[], None]) -> float:
    """Events per second for `fn`, which handles `count` events."""
    started = time.perf_counter()
    fn()
    return count / (time.perf_counter() - started)


def best_of(runs: int, fn: Callable[[], float]) -> float:
    """The best of a few runs: the least disturbed by the rest of the machine."""
    return max(fn() for _ in range(runs))


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
