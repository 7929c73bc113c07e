"""Fault-injection tests: real processes killed, paused and restarted on the real buses.

Everything a fault test needs lives here, as plain helpers and fixtures (the
scale-out tests in tests/scaleout import them: a conftest there is not ours):

- `procs` (fixture): starts subprocesses in their own process group, logs each
  to a file, and at teardown SIGKILLs every group it started, even when the
  test failed (a test that wants a clean stop calls `proc.stop()` itself);
- `procs.redis()`: a PRIVATE redis-server on a free port, restartable on the
  same port (tests that kill Redis never touch the run's shared one);
- `app_db` (fixture): a fresh SQLite file copied from a migrated template that
  holds one Operator and a session for it; subprocesses get it through
  `django_env()`, the test reads it with `rows()` (plain sqlite3, no ORM in the
  test process, so nothing here depends on pytest-django's test database);
- `wait_until` (from tests/waiting.py): poll a condition until a deadline (never
  sleep to synchronise); pass `logs=procs.tail` to see what the processes said;
- `SocketClient`: a /ws/monitor/ client that reconnects like the dashboard;
- `read_topic`: every record of a topic, through a throwaway group.

Timings observed by the tests are attached with `record_property` and printed,
so `pytest -s -m fault` shows the bounds that docs/faults.md reports.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from eventhub.broker import free_port
from eventhub.bus import Bus, Record, UnknownTopic
from eventhub.launcher import web_command
from tests.requirements import require
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).with_name("workers")
PYTHON = sys.executable


# --------------------------------------------------------------------------- processes
@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log_path: Path
    argv: list[str]
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal_group(self, sig: int) -> None:
        """Signal the process group this test started (the process and any children of it).

        Only while the leader is not reaped: its pid (the group id) cannot have
        been reused by an unrelated process then.
        """
        if self.process.returncode is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the group and reap it: no cleanup code of the process runs."""
        self.signal_group(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL it if still there after `grace_s`; returns the exit code."""
        self.signal_group(signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.process.returncode


@dataclass
class RedisServer:
    """A private redis-server on a fixed port; `kill()` then `start()` restarts it, empty."""

    port: int
    procs: Procs
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = self.procs.start(
            f"redis-{self.port}",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        wait_until(self.answers, 10, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)


class Procs:
    """The subprocesses of one test; see the module docstring."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env if env is not None else dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killpg reaches its children
            )
        proc = Proc(name, process, log_path, argv, env or {})
        self.started.append(proc)
        return proc

    def python(self, name: str, script: str | Path, *args: str, env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [PYTHON, str(script), *args], env=env)

    def manage(self, name: str, *args: str, env: dict[str, str]) -> Proc:
        return self.start(name, [PYTHON, "manage.py", *args], env=env)

    def redis(self, port: int | None = None) -> RedisServer:
        require(shutil.which("redis-server"), "redis-server is not installed (apt install redis-server)")
        return RedisServer(port or free_port(), self).start()

    def tail(self, chars: int = 2000) -> str:
        """The end of every log, for failure messages."""
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-chars:]}" for p in self.started)

    def close(self) -> None:
        # SIGKILL straight away: teardown checks nothing, and a graceful Celery stop costs seconds.
        for proc in reversed(self.started):
            proc.signal_group(signal.SIGKILL)
        for proc in self.started:
            try:
                proc.process.wait(10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def procs(tmp_path) -> Iterator[Procs]:
    """Start subprocesses with `procs.start/python/manage/redis`; all are stopped at teardown."""
    started = Procs(tmp_path)
    try:
        yield started
    finally:
        started.close()


def run_worker(script: str, *args: str, env: dict[str, str], timeout_s: float = 120) -> Any:
    """Run tests/fault/workers/<script> to completion; returns the JSON of its last stdout line."""
    result = subprocess.run(
        [PYTHON, str(WORKERS / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if result.returncode != 0:
        raise AssertionError(f"{script} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


# --------------------------------------------------------------------------- Django in subprocesses
def django_env(db_path: Path, *, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of an EventHub subprocess on `db_path` (and a private Redis if given)."""
    env = dict(os.environ)
    env.pop("EVENTHUB_RUN_LOOPS", None)
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        EVENTHUB_VAR_DIR=str(db_path.parent / "var"),
        DJANGO_SETTINGS_MODULE="eventhub.settings",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        EVENTHUB_WORKERS="celery",
        LOG_LEVEL="INFO",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


@dataclass(frozen=True)
class AppDb:
    path: Path
    session_key: str  # a logged-in session of the Operator (cookie `sessionid`)
    user_id: int


@cache
def _template() -> tuple[Path, str, int]:
    """Once per test process: a migrated SQLite database with an Operator and a session."""
    folder = Path(tempfile.mkdtemp(prefix="eventhub-fault-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "template.sqlite3"
    made = run_worker("setup_db.py", env=django_env(path), timeout_s=300)
    return path, made["session_key"], made["user_id"]


@pytest.fixture
def app_db(tmp_path) -> AppDb:
    path, session_key, user_id = _template()
    target = tmp_path / "eventhub.sqlite3"
    shutil.copyfile(path, target)
    return AppDb(target, session_key, user_id)


def rows(db: AppDb | Path, sql: str, *params: Any) -> list[tuple]:
    """Run a read-only query on the app's SQLite file (waits for a writer's lock up to 20 s)."""
    path = db.path if isinstance(db, AppDb) else db
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=20)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def scalar(db: AppDb | Path, sql: str, *params: Any) -> Any:
    found = rows(db, sql, *params)
    return found[0][0] if found else None


def sample_series(db: AppDb, bus: str, topic: str) -> list[tuple[datetime, int]]:
    """The raw history of one topic, (at, end_offset) in time order: one row per collector tick."""
    found = rows(
        db,
        "SELECT at, end_offset FROM monitor_sample"
        " WHERE bus = ? AND topic = ? AND \"group\" = '' AND resolution = 'raw' ORDER BY at",
        bus,
        topic,
    )
    return [(datetime.fromisoformat(at), end) for at, end in found]


def assert_one_sample_per_tick(series: list[tuple[datetime, int]], tick_s: float) -> None:
    """One collector's samples, no more than one a tick: n of them span at least n - 2 ticks.

    A sample is stamped when its tick reads, after the lease call, so one slow lease call
    brings the next sample closer than a tick (0.49 s apart at a 1 s tick, once on a busy
    machine): a gap alone says little. Two collectors at once would write about two a tick.
    """
    times = [at for at, _ in series]
    ticks = (times[-1] - times[0]).total_seconds() / tick_s
    assert len(times) - 1 <= ticks + 1, f"{len(times)} samples in {ticks:.2f} ticks: {times}"


# --------------------------------------------------------------------------- Daphne
@dataclass
class Daphne:
    url: str
    proc: Proc

    def get(self, path: str, session_key: str | None = None, timeout_s: float = 10) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path)
        if session_key:
            request.add_header("Cookie", f"sessionid={session_key}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")

    def socket_url(self, path: str = "/ws/monitor/") -> str:
        return self.url.replace("http://", "ws://") + path


def start_daphne(
    procs: Procs, env: dict[str, str], name: str = "daphne", timeout_s: float = 60, options: str = ""
) -> Daphne:
    """Daphne (HTTP + websockets) on a free port, ready once /healthz answers 200.

    It is started as `make run` starts it (eventhub/webserver.py), with Daphne's
    `options` (none: its defaults)."""
    port = free_port()
    env = dict(env, EVENTHUB_WORKERS="inprocess")  # no loops: EVENTHUB_RUN_LOOPS is unset
    argv = web_command("127.0.0.1", port, options)
    proc = procs.start(name, argv, env=env)
    daphne = Daphne(f"http://127.0.0.1:{port}", proc)

    def healthy() -> bool:
        if not proc.alive():
            raise AssertionError(f"daphne exited {proc.process.returncode}:\n{proc.log()[-3000:]}")
        try:
            return daphne.get("/healthz", timeout_s=2)[0] == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    wait_until(healthy, timeout_s, f"daphne on port {port} to answer /healthz", every_s=0.1)
    return daphne


# --------------------------------------------------------------------------- Celery
def celery_worker(procs: Procs, env: dict[str, str], queues: str, name: str, *extra: str) -> Proc:
    """A Celery worker as eventhub/launcher.py starts one, on `queues` only; one process (solo pool).

    Ready once its log says so (the worker is subscribed to its queues then).
    """
    proc = procs.start(
        name,
        [PYTHON, "-m", "celery", "-A", "eventhub.celery", "worker", "-Q", queues, "-P", "solo", "-c", "1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
         "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", *extra],
        env=env,
    )  # fmt: skip

    def ready() -> bool:
        if not proc.alive():
            raise AssertionError(f"celery worker {name} exited {proc.process.returncode}:\n{proc.log()[-3000:]}")
        return " ready." in proc.log()

    wait_until(ready, 60, f"celery worker {name} to be ready", every_s=0.1)
    return proc


def worker_healthy(proc: Proc) -> bool:
    """True while the worker can run what it is sent; fails the test at once when it cannot.

    A worker started as in production (`celery -A eventhub.celery worker`) knows
    the tasks of the modules Celery autodiscovers (`<app>/tasks.py`; the redrive
    tasks are in deadletters/tasks.py).
    A task it calls unregistered is dropped and never runs, so the job it belongs
    to would stay pending: rather than wait out the deadline, the test fails with
    the worker's own line. Call it in the condition of the `wait_until` that waits
    on the worker's work.
    """
    log = proc.log()
    if "Received unregistered task" not in log:
        return True
    line = next(line for line in log.splitlines() if "unregistered task" in line).strip()
    raise AssertionError(
        f"celery worker {proc.name} cannot run a task it was sent, so its job never runs: {line}\n"
        "Every task module must be imported by an autodiscovered <app>/tasks.py."
    )


# --------------------------------------------------------------------------- the websocket client
class SocketClient:
    """A /ws/monitor/ client in a thread of its own, reconnecting like static/monitor/dashboard/socket.js.

    socket.js: on close, wait min(15 s, 0.5 s x 2^(attempt-1)) with +-25 % jitter
    and connect again; a successful open resets the attempt count. Same here, with
    websocket-client (a test dependency). Frames are kept in `frames`; `opens`
    counts successful handshakes, `closes` the sockets that went away.
    """

    BACKOFF_MIN_S = 0.5
    BACKOFF_MAX_S = 15.0

    def __init__(self, url: str, session_key: str, origin: str) -> None:
        self.url = url
        self.session_key = session_key
        self.origin = origin
        self.frames: list[dict] = []
        self.opens = 0
        self.closes = 0
        self.state = "connecting"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket = None
        self._thread = threading.Thread(target=self._run, name="socket-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import websocket

        attempt = 0
        while not self._stop.is_set():
            try:
                ws = websocket.create_connection(
                    self.url, timeout=5, origin=self.origin, cookie=f"sessionid={self.session_key}"
                )
            except (OSError, websocket.WebSocketException):
                ws = None
            if ws is not None:
                attempt = 0
                self._socket = ws
                self.opens += 1
                self.state = "live"
                self._read(ws)
                self.closes += 1
                self._socket = None
            if self._stop.is_set():
                break
            attempt += 1
            self.state = "reconnecting"
            backoff = min(self.BACKOFF_MAX_S, self.BACKOFF_MIN_S * 2 ** (attempt - 1))
            self._stop.wait(backoff * random.uniform(0.75, 1.25))
        self.state = "closed"

    def _read(self, ws) -> None:
        import websocket

        ws.settimeout(0.5)  # wake up regularly to notice close()
        try:
            while not self._stop.is_set():
                try:
                    text = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if not text:  # a close frame
                    return
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                with self._lock:
                    self.frames.append(message)
        except (OSError, websocket.WebSocketException):
            return
        finally:
            try:
                ws.close(timeout=1)
            except (OSError, websocket.WebSocketException):
                pass

    def frames_matching(self, predicate: Callable[[dict], bool]) -> list[dict]:
        with self._lock:
            return [frame for frame in self.frames if predicate(frame)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def group_send(redis_url: str, group: str, message: dict) -> None:
    """One channel-layer group_send on Redis, through the layer settings.CHANNEL_LAYERS uses there."""
    from django.utils.module_loading import import_string

    from eventhub.settings import redis_channel_layer

    async def send() -> None:
        config = redis_channel_layer(redis_url)
        layer = import_string(config["BACKEND"])(**config["CONFIG"])
        try:
            await layer.group_send(group, message)
        finally:
            await layer.close_pools()

    # On a thread of its own: when this process also drives Playwright's sync API,
    # an event loop is already running on this one and asyncio.run() refuses.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result()


def marker_frame(marker: str) -> dict:
    """A monitor.snapshot message whose frame carries `marker` (what the collector's broadcast sends)."""
    frame = json.dumps({"type": "snapshot", "snapshot": {"fault_marker": marker}}, separators=(",", ":"))
    return {"type": "monitor.snapshot", "frame": frame}


def has_marker(marker: str) -> Callable[[dict], bool]:
    return lambda frame: (frame.get("snapshot") or {}).get("fault_marker") == marker


# --------------------------------------------------------------------------- topics
def read_topic(bus: Bus, topic: str, timeout_s: float = 60) -> list[Record]:
    """Every record of `topic` up to its end offsets now, through a new consumer group."""
    try:
        expected = sum(bus.end_offsets(topic).values())
    except UnknownTopic:
        return []
    records: list[Record] = []
    group = f"fault-reader-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout_s
    with bus.consumer(group, [topic]) as consumer:
        while len(records) < expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} of {expected} records of {topic} in {timeout_s:g}s")
            records += consumer.poll(0.5, 2000)
    return records


def send_dead_letters(bus: Bus, dlq_topic: str, source_topic: str, numbers: range, group: str = "billing") -> list[str]:
    """Write dead letters as the SDK consumer writes them (eventhub/sdk/consumer.py), in one flush.

    The SDK publishes each dead letter on its own with a wait for the ack, which is
    too slow to make thousands; the records are the same. Returns their ce_ids.
    """
    from eventhub.sdk import headers as h

    ids = []
    for n in numbers:
        event_id = str(uuid.uuid4())
        headers = [
            (h.CE_ID, event_id),
            (h.CE_TYPE, "order.placed"),
            (h.CE_SOURCE, "/services/shop"),
            (h.CE_SPECVERSION, "1.0"),
            (h.CONTENT_TYPE, h.JSON_CONTENT_TYPE),
            (h.ORIGINAL_TOPIC, source_topic),
            (h.ORIGINAL_PARTITION, "0"),
            (h.ORIGINAL_OFFSET, str(n)),
            (h.GROUP, group),
            (h.ATTEMPTS, "3"),
            (h.ERROR_CLASS, "RuntimeError"),
            (h.ERROR_MESSAGE, f"order o-{n} failed"),
            (h.FAILED_AT, h.utc_now_iso()),
            (h.SERVICE, group),
        ]
        value = json.dumps({"order_id": f"o-{n}", "amount": n}).encode()
        bus.send(dlq_topic, value, key=f"o-{n}".encode(), headers=[(k, v.encode()) for k, v in headers])
        ids.append(event_id)
    bus.flush(60)
    return ids


def header_text(record: Record, name: str) -> str | None:
    value = record.header(name)
    return None if value is None else value.decode("utf-8", "replace")


class ScratchTopics:
    """Topics a test made on the run's shared broker or Redis, deleted at teardown.

    Other apps of the session (the browser tests' live apps run the dead-letter
    ingester with the default patterns) would otherwise find our `*.dlq` topics
    and ingest thousands of our dead letters into their own databases.
    """

    def __init__(self) -> None:
        self.names: list[tuple[str, str]] = []

    def add(self, kind: str, *names: str) -> None:
        self.names += [(kind, name) for name in names]

    def delete_all(self) -> None:
        from eventhub.bus import BusError, open_bus

        for kind in {kind for kind, _ in self.names}:
            options = (
                {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]}
                if kind == "kafka"
                else {"url": os.environ["REDIS_URL"]}
            )
            with open_bus(kind, **options) as bus:
                for name in [n for k, n in self.names if k == kind]:
                    try:
                        bus.delete_topic(name)
                    except BusError:  # never made (the test failed first) or already gone
                        pass


@pytest.fixture
def scratch_topics() -> Iterator[ScratchTopics]:
    made = ScratchTopics()
    try:
        yield made
    finally:
        made.delete_all()


@dataclass
class Observed:
    """Numbers a test measured, reported with record_property and printed."""

    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = round(value, 3) if isinstance(value, float) else value


@pytest.fixture
def observed(record_property, request) -> Iterator[Observed]:
    found = Observed()
    yield found
    for key, value in found.values.items():
        record_property(key, value)
    print(f"\n[{request.node.name}] " + ", ".join(f"{k}={v}" for k, v in found.values.items()))
