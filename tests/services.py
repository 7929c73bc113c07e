"""Real services for the test run, loaded early with `-p tests.services`.

Before Django reads its settings this plugin makes sure a Redis and a
Kafka-protocol broker answer, and exports where they are:
- Redis: reuse REDIS_URL (default redis://127.0.0.1:6379) when it answers, on a
  database of its own (EVENTHUB_TEST_REDIS_DB, default 15, flushed at start);
  otherwise start a private redis-server on a free port.
- Kafka: reuse KAFKA_BOOTSTRAP_SERVERS when set; otherwise start a private
  embedded broker (Tansu) on a free port.
Only what this plugin started is stopped at the end.
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


def _start_redis() -> str:
    if not shutil.which("redis-server"):
        raise RuntimeError("no Redis answers and redis-server is not installed")
    port = broker.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    _started.append(process)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _redis_answers(url):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("private redis-server did not start")
        time.sleep(0.05)
    return url


def _prepare() -> None:
    db = int(os.environ.get("EVENTHUB_TEST_REDIS_DB", "15"))
    url = _with_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), db)
    if not _redis_answers(url):
        url = _with_db(_start_redis(), db)
    import redis

    redis.Redis.from_url(url).flushdb()
    os.environ["REDIS_URL"] = url

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
    for process in reversed(_started):
        broker.stop(process)


atexit.register(_stop_all)
_prepare()
