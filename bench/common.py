"""Shared plumbing: real services for the run, timing helpers, waiting with a deadline, the result table.

`wait_until` is also the test suite's (through tests/waiting.py): bench/ must not
import tests/, while the tests already import bench (tests/load), so the one copy lives here.
"""

from __future__ import annotations

import inspect
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from eventhub import broker

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout_s: float = 20.0,
    what: str | None = None,
    *,
    every_s: float = 0.05,
    pause: Callable[[], object] | None = None,
    logs: Callable[[], str] | None = None,
) -> T:
    """Return the first truthy value of `condition()`; AssertionError once `timeout_s` has passed.

    The condition is checked once more after the deadline, so a slow check cannot lose a
    value that came in time. Between checks it sleeps `every_s` (pacing, not synchronisation),
    or calls `pause` instead (to step a loop the test drives itself). The failure says what
    was waited for (`what`, else the condition's source), the last value seen, how long and
    how many checks; `logs` (e.g. `procs.tail`) adds what the processes said.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    checks = 0
    while True:
        value = condition()
        checks += 1
        if value:
            return value
        if time.monotonic() > deadline:
            message = (
                f"timed out after {time.monotonic() - started:.1f}s (limit {timeout_s:g}s, {checks} checks) "
                f"waiting for {what or _describe(condition)}; last value: {_short(value)}"
            )
            raise AssertionError(message + (f"\n{logs()}" if logs else ""))
        if pause is None:
            time.sleep(every_s)
        else:
            pause()


def _describe(condition: Callable[[], object]) -> str:
    """A lambda's source text (from `lambda` to the end of its line), else the callable's name."""
    name = getattr(condition, "__qualname__", None) or repr(condition)
    if name.endswith("<lambda>"):
        try:
            line = inspect.getsource(condition).strip()
        except (OSError, TypeError):
            return name
        return line[line.find("lambda") :] if "lambda" in line else line
    return name


def _short(value: object, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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


def redis_answers(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


def start_redis_server() -> tuple[subprocess.Popen, str]:
    """A private redis-server on a free port, without persistence, once it answers."""
    if not shutil.which("redis-server"):
        raise RuntimeError(
            "redis-server is not installed: run `make test` or `make bench` (they install it), "
            "or `sudo apt-get install -y redis-server`"
        )
    port = broker.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"private redis-server exited with {process.returncode}")
        return redis_answers(url)

    try:
        wait_until(answers, 10, f"the private redis-server on port {port} to answer")
    except BaseException:
        process.kill()
        raise
    return process, url


@contextmanager
def services():
    """A private broker (EVENTHUB_BROKER: tansu or apache-kafka) unless KAFKA_BOOTSTRAP_SERVERS
    is set; Redis on database 7 of REDIS_URL (default: the local one), or a private redis-server
    when none answers."""
    started = []
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        process, bootstrap = broker.start()
        started.append(process)
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/7"
        if not redis_answers(os.environ["REDIS_URL"]):
            process, url = start_redis_server()
            started.append(process)
            os.environ["REDIS_URL"] = url
        _clean_redis(os.environ["REDIS_URL"])
    try:
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["REDIS_URL"]
    finally:
        for process in reversed(started):
            broker.stop(process)


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
