"""Shared plumbing: real services for the run, timing helpers, waiting with a deadline, the result table.

`wait_until` is also the test suite's (through tests/waiting.py), and so are the private
redis-server and PostgreSQL (tests/services.py): bench/ must not import tests/, while the
tests already import bench (tests/load), so the one copy lives here.
"""

from __future__ import annotations

import glob
import inspect
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
    labels: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, detail: str = "") -> None:
        self.figures.append(Figure(name, round(value, 4), unit, detail))
        print(f"  {name:<28} {value:>10.4g} {unit:<6} {detail}", flush=True)

    def label(self, name: str, text: str) -> None:
        """Text beside the figures in var/bench.json, e.g. the database a figure was measured on."""
        self.labels[name] = text

    def as_dict(self) -> dict:
        return {**self.labels, **{f.name: f.value for f in self.figures}}


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


def _postgres_bin(program: str) -> str:
    """Debian keeps initdb and postgres out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(program)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise RuntimeError(
            f"{program} is not installed: run `make test-postgres` (it installs it), "
            "or `sudo apt-get install -y postgresql`"
        )
    return versions[-1]


def start_postgres(options: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, Path]:
    """A private PostgreSQL cluster (initdb in a temporary directory) on a free port, once it answers.

    The tests' (tests/services.py) and the event-store bench's; `options` adds or overrides
    server settings. PostgreSQL refuses to run as root: as root, it runs as the `postgres`
    user the Debian package creates. Durability is off (fsync, full pages): a throwaway cluster.
    `stop_postgres` ends it.
    """
    import psycopg

    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    home = Path(tempfile.mkdtemp(prefix="eventhub-pg-"))
    as_user: dict = {}
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    data = home / "data"
    subprocess.run(
        [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        **as_user,
    )
    port = broker.free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(home),
        "max_connections": "300",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        **(options or {}),
    }
    arguments = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
    log = open(home / "postgres.log", "ab")
    process = subprocess.Popen(
        [postgres, "-D", str(data), "-p", str(port), *arguments], stdout=log, stderr=log, **as_user
    )
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"private postgres exited with {process.returncode}: see {home / 'postgres.log'}")
        try:
            psycopg.connect(url, connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    try:
        wait_until(answers, 30, f"the private PostgreSQL on port {port} to answer")
    except BaseException:
        process.kill()
        shutil.rmtree(home, ignore_errors=True)
        raise
    return process, url, home


def stop_postgres(process: subprocess.Popen, home: Path) -> None:
    """Fast shutdown (SIGINT), then remove the cluster's directory."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    shutil.rmtree(home, ignore_errors=True)


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


def stored_rate(step: Callable[[float], int], n: int, timeout_s: float = 300) -> tuple[float, float]:
    """(rows per second, CPU microseconds of this thread per row) of a loop whose `step(0.5)`
    stores and returns a batch, counted from the end of its first batch (which also pays for
    joining the group) until `n` rows are stored or `timeout_s` has passed."""
    stored, started = 0, None
    deadline = time.monotonic() + timeout_s
    while stored < n and time.monotonic() < deadline:
        got = step(0.5)
        if got and started is None:
            started, cpu_started, first = time.perf_counter(), time.thread_time(), got
        stored += got
    rate = (stored - first) / (time.perf_counter() - started)
    return rate, (time.thread_time() - cpu_started) / (stored - first) * 1e6


def best_of(runs: int, fn: Callable[[], float]) -> float:
    """The best of a few runs: the least disturbed by the rest of the machine."""
    return max(fn() for _ in range(runs))


def best_in_rounds(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The best run of each side, over rounds that run every side once, in turn.

    A ratio of two sides measured one block after the other can give the quiet moments
    of a shared machine to one side only; in rounds both meet the same moments."""
    best = dict.fromkeys(sides, 0.0)
    for _ in range(rounds):
        for name, fn in sides.items():
            best[name] = max(best[name], fn())
    return best


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
