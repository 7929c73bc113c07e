"""Real services for the test run, loaded early with `-p tests.services`.

Before Django reads its settings this plugin makes sure what the tests talk to
answers, and exports where it is:
- Redis: reuse REDIS_URL (default redis://127.0.0.1:6379) when it answers, on a
  database of its own: the first of 15..8 that no other test run holds (a lock
  key with a TTL), flushed at start, so two runs at once do not clash;
  EVENTHUB_TEST_REDIS_DB forces one. Otherwise start a private redis-server.
- Kafka: reuse KAFKA_BOOTSTRAP_SERVERS when set; otherwise start a private
  broker on free ports: EVENTHUB_BROKER picks the engine, `tansu` (default) or
  `apache-kafka` (`make test-kafka`), see eventhub/broker.py.
- PostgreSQL, with EVENTHUB_TEST_DATABASE=postgres (`make test-postgres`): reuse
  DATABASE_URL when set; otherwise a private cluster made with initdb in a
  temporary directory, on a free port, removed at the end.
Only what this plugin started is stopped at the end. A program that is missing
(redis-server, initdb, java) fails the run with the command that installs it;
`make test` installs them first.

Under pytest-xdist (`make test` runs several workers) the controlling process
starts Redis and PostgreSQL once and every worker is a run of its own: it claims
its own Redis database, gets its own test database from pytest-django and, unless
the broker was given from outside, starts its own broker, so a test that freezes
or floods its broker never slows a neighbour's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import redis_answers as _redis_answers  # noqa: E402
from bench.common import start_postgres, start_redis_server  # noqa: E402
from eventhub import broker  # noqa: E402

_started: list[subprocess.Popen] = []
_cleanup: list[Path] = []


def _with_db(url: str, db: int) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{db}"))


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


def _xdist_controller() -> bool:
    """True in the process that only hands tests to pytest-xdist workers (`-n N`, N > 0)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        value = None
        if arg in ("-n", "--numprocesses") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--numprocesses="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-n") and len(arg) > 2:
            value = arg[2:]
        if value is not None:
            return value not in ("0",)
    return False


def _prepare() -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("EVENTHUB_TEST_OWN_BROKER"):
        # Inherited from the controlling process: that broker is its, not ours.
        del os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["EVENTHUB_TEST_OWN_BROKER"]
    os.environ["EVENTHUB_BROKER"] = broker.kind_from_env()  # subprocesses start the same engine
    controller = _xdist_controller()

    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not _redis_answers(base):
        process, base = start_redis_server()
        _started.append(process)
    os.environ["REDIS_URL"] = base if controller else _claim_database(base)

    if os.environ.get("EVENTHUB_TEST_DATABASE") == "postgres" and not os.environ.get("DATABASE_URL"):
        process, url, home = start_postgres()
        _started.append(process)
        _cleanup.append(home)
        os.environ["DATABASE_URL"] = url

    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and not controller:
        log = ROOT / "var" / f"test-broker-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"
        log.parent.mkdir(exist_ok=True)
        process, bootstrap = broker.start(log_path=log)
        _started.append(process)
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        os.environ["EVENTHUB_TEST_OWN_BROKER"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
    os.environ.setdefault("EVENTHUB_VAR_DIR", str(ROOT / "var" / "test"))
    # DEBUG is off unless set, as in production, and then settings require a SECRET_KEY;
    # the tests, and every EventHub process they start, use this one.
    os.environ.setdefault("SECRET_KEY", "test-only-not-a-secret")


def _stop_all() -> None:
    _release_database()
    # Clients still open in this process (eventhub.connections keeps one per bus) would log
    # the broker stopping under them, into the output pytest has already closed.
    connections = sys.modules.get("eventhub.connections")
    if connections is not None:
        connections.reset()
    for process in reversed(_started):
        if Path(process.args[0]).name == "postgres":
            process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        else:
            broker.stop(process)
    for path in _cleanup:
        shutil.rmtree(path, ignore_errors=True)


def pytest_report_header(config) -> list[str]:
    database = urlparse(os.environ.get("DATABASE_URL", "sqlite:")).scheme or "sqlite"
    return [
        f"eventhub services: broker {os.environ['EVENTHUB_BROKER']} "
        f"({os.environ.get('KAFKA_BOOTSTRAP_SERVERS', 'one per worker')}), "
        f"Redis {os.environ['REDIS_URL']}, database {database}"
    ]


atexit.register(_stop_all)
_prepare()
