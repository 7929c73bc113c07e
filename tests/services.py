"""Real services for the test run, loaded early with `-p tests.services`.

Before Django reads its settings this plugin makes sure a Redis and a
Kafka-protocol broker answer, and exports where they are:
- Redis: reuse REDIS_URL (default redis://127.0.0.1:6379) when it answers, on a
  database of its own: the first of 15..8 that no other test run holds (a lock
  key with a TTL), flushed at start, so two runs at once do not clash;
  EVENTHUB_TEST_REDIS_DB forces one. Otherwise start a private redis-server.
- Kafka: reuse KAFKA_BOOTSTRAP_SERVERS when set; otherwise start a private
  embedded broker (Tansu) on a free port.
Only what this plugin started is stopped at the end.

Under pytest-xdist (`make test` runs several workers) every worker is a run of
its own: it claims its own Redis database and, unless the broker was given
from outside, starts its own broker, so a test that freezes or floods its
broker never slows a neighbour's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventhub import broker  # noqa: E402

_started: list[subprocess.Popen] = []


def _redis_answers(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


def _with_db(url: str, db: int) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{db}"))


def start_redis_server() -> tuple[subprocess.Popen, str]:
    """A private redis-server on a free port, without persistence, once it answers."""
    from bench.common import wait_until

    port = broker.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"private redis-server exited with {process.returncode}")
        return _redis_answers(url)

    try:
        wait_until(answers, 10, f"the private redis-server on port {port} to answer")
    except BaseException:
        process.kill()
        raise
    return process, url


def _start_redis() -> str:
    if not shutil.which("redis-server"):
        raise RuntimeError("no Redis answers and redis-server is not installed")
    process, url = start_redis_server()
    _started.append(process)
    return url


_RUN_LOCK = "eventhub:test-run"
_held: list = []


def _claim_database(base_url: str) -> str:
    """The URL of a Redis database this run holds alone, flushed."""
    import redis

    # One forced database cannot hold several workers: they choose for themselves.
    forced = None if os.environ.get("PYTEST_XDIST_WORKER") else os.environ.get("EVENTHUB_TEST_REDIS_DB")
    token = f"{os.getpid()}-{time.time()}"
    for db in [int(forced)] if forced else range(15, 7, -1):
        url = _with_db(base_url, db)
        client = redis.Redis.from_url(url)
        if forced or client.set(_RUN_LOCK, token, nx=True, ex=3600):
            client.flushdb()
            client.set(_RUN_LOCK, token, ex=3600)
            _held.append(client)
            return url
    raise RuntimeError("every Redis test database 8..15 is held by another test run")


def _release_database() -> None:
    for client in _held:
        try:
            client.delete(_RUN_LOCK)
        except Exception:  # noqa: BLE001 - Redis may be gone at exit
            pass


def _prepare() -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("EVENTHUB_TEST_OWN_BROKER"):
        # Inherited from the controlling process: that broker is its, not ours.
        del os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["EVENTHUB_TEST_OWN_BROKER"]
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not _redis_answers(base):
        base = _start_redis()
    os.environ["REDIS_URL"] = _claim_database(base)

    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        log = ROOT / "var" / "test-broker.log"
        log.parent.mkdir(exist_ok=True)
        process, bootstrap = broker.start(log_path=log)
        _started.append(process)
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        os.environ["EVENTHUB_TEST_OWN_BROKER"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
    os.environ.setdefault("EVENTHUB_VAR_DIR", str(ROOT / "var" / "test"))


def _stop_all() -> None:
    _release_database()
    for process in reversed(_started):
        broker.stop(process)


atexit.register(_stop_all)
_prepare()
