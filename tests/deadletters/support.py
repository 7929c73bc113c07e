"""Helpers and fixtures shared by the dead-letter tests (ingest, actions, redrive, API).

Import the fixtures you use into the test module (pytest finds fixtures in the
module namespace): `from tests.deadletters.support import file_db`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from eventhub.bus import Bus, Record, UnknownTopic
from eventhub.sdk import headers as h
from tests.waiting import wait_until  # the dead-letter tests import it from here too

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
}


def step_until(ingester, condition: Callable[[], T], timeout_s: float = 20.0, what: str | None = None) -> T:
    """Step the ingester (instead of sleeping) until `condition()` holds; fail after the deadline."""
    return wait_until(condition, timeout_s, what, pause=lambda: ingester.step(0.2))


def end_offset(bus: Bus, topic: str) -> int:
    """Records ever written to `topic`; 0 when it does not exist."""
    try:
        return sum(bus.end_offsets(topic).values())
    except UnknownTopic:
        return 0


def read_all(bus: Bus, topic: str, timeout_s: float = 20.0) -> list[Record]:
    """Every record of `topic` now, read by a throwaway group from the beginning."""
    count = end_offset(bus, topic)
    records: list[Record] = []
    if not count:
        return records
    with bus.consumer(f"reader-{uuid.uuid4().hex[:8]}", [topic]) as consumer:
        deadline = time.monotonic() + timeout_s
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} of {count} records from {topic} in {timeout_s}s")
            records += consumer.poll(0.5, 1000)
    return records


def replays(bus: Bus, topic: str) -> Counter:
    """How many records of `topic` replay each dead letter: {dead letter id: count}."""
    return Counter(
        int(record.header(h.REPLAY_OF).decode()) for record in read_all(bus, topic) if record.header(h.REPLAY_OF)
    )


def replay_count_header(record: Record) -> int | None:
    raw = record.header(h.REPLAY_COUNT)
    return int(raw) if raw is not None else None


# --------------------------------------------------------------------------- a database other processes see
@pytest.fixture(scope="session")
def _file_db_template(django_db_setup, django_db_blocker, tmp_path_factory) -> Path | None:
    """The migrated in-memory test database copied to a file, once, before any test's transaction."""
    from django.db import connections

    memory = connections["default"]
    if memory.vendor != "sqlite":
        return None
    path = tmp_path_factory.mktemp("file-db") / "template.sqlite3"
    with django_db_blocker.unblock():
        memory.ensure_connection()
        target = sqlite3.connect(path)
        memory.connection.backup(target)
        # WAL, as EventHub should run SQLite with several writing processes: in the default
        # rollback-journal mode every commit costs ~20 ms of fsync on this disk, which caps a
        # redrive (two commits per item) near 40 items/s. The mode is stored in the file.
        target.execute("PRAGMA journal_mode=WAL")
        target.close()
    return path


@pytest.fixture
def file_db(_file_db_template, db, django_db_blocker, tmp_path):
    """The test database as a real SQLite file that every thread and process can open.

    Why: pytest-django's SQLite test database lives in memory with a shared
    cache, where concurrent writers get "database table is locked" at once
    instead of waiting, and other processes cannot see it at all. Threads
    racing on a claim and a worker process killed mid-job need the database
    EventHub really runs on: a file with a busy timeout. A copy of the migrated
    schema (with the data migrations' rows) is made for each test; this thread
    and every new one connect to it; the memory database is put back
    afterwards (`db` then rolls it back as usual). Yields the DATABASE_URL for
    subprocesses. On PostgreSQL these few tests are skipped: the test database
    is inside `db`'s transaction there, invisible to other connections.
    """
    from django.db import connections

    if _file_db_template is None:
        pytest.skip("needs the SQLite file copy of the test database")
    path = tmp_path / "eventhub.sqlite3"
    shutil.copyfile(_file_db_template, path)
    memory = connections["default"]
    original = connections.settings["default"]
    with django_db_blocker.unblock():
        connections.settings["default"] = {**original, "NAME": str(path)}
        connections["default"] = connections.create_connection("default")
        try:
            yield f"sqlite:///{path}"
        finally:
            connections["default"].close()
            connections.settings["default"] = original
            connections["default"] = memory


def subprocess_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "eventhub.settings",
        **extra,
    }


def celery_worker(database_url: str, queue: str, tasks_module: str) -> subprocess.Popen:
    """A real Celery worker (solo pool) on `queue`, importing `tasks_module`, on the file database."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "eventhub.celery", "worker", "--pool", "solo", "-Q", queue,
         "-I", tasks_module, "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "warning"],
        cwd=ROOT,
        env=subprocess_env(database_url),
    )  # fmt: skip


def make_user(username: str, role: str | None = "Operator"):
    """A user with a role, for tests that cannot use the persona fixtures (file_db)."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


# --------------------------------------------------------------------------- dead letters as the ingester stores them
_positions = iter(range(10**9))


def sdk_headers(source_topic: str, kind: str = "kafka", event_type: str = "order.placed") -> list[tuple[str, bytes]]:
    """What the SDK consumer writes on a dead letter: the event's headers, then the failure."""
    event = [
        (h.CE_ID, str(uuid.uuid4()).encode()),
        (h.CE_TYPE, event_type.encode()),
        (h.CE_SOURCE, b"/services/checkout"),
        (h.CE_SPECVERSION, b"1.0"),
        (h.CONTENT_TYPE, b"application/json"),
        (h.SCHEMA_VERSION, b"1"),
        ("traceparent", b"00-abc-def-01"),
    ]
    failure = [
        (h.ORIGINAL_TOPIC, source_topic.encode()),
        (h.GROUP, b"billing"),
        (h.ATTEMPTS, b"3"),
        (h.ERROR_CLASS, b"ValueError"),
        (h.ERROR_MESSAGE, b"card declined"),
        (h.STACKTRACE, b"Traceback ..."),
        (h.FAILED_AT, b"2024-05-01T12:00:00.000Z"),
    ]
    if kind == "kafka":
        failure += [(h.ORIGINAL_PARTITION, b"0"), (h.ORIGINAL_OFFSET, b"7")]
        failure += [
            ("kafka_dlt-original-topic", source_topic.encode()),
            ("kafka_dlt-original-offset", b"\x00" * 7 + b"\x07"),
        ]
    else:
        failure.append((h.ORIGINAL_ENTRY_ID, b"1700000000000-0"))
    return event + failure


def stored_dead_letter(
    kind: str,
    source_topic: str,
    value: bytes | None = b'{"order_id":"o-1","amount":1}',
    key: bytes | None = b"o-1",
    headers: list[tuple[str, bytes]] | None = None,
    cap: int = 1024 * 1024,
    **fields,
):
    """A DeadLetter row exactly as the ingester would store this record (saved)."""
    from deadletters.ingest import build_row
    from eventhub.sdk import dead_letter_topic

    record = Record(
        dead_letter_topic(source_topic, kind),
        0,
        next(_positions),
        key,
        value,
        headers if headers is not None else sdk_headers(source_topic, kind),
        timestamp_ms=int(time.time() * 1000),
    )
    row = build_row(kind, record, cap)
    row.replay_of_id = None
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def bulk_dead_letters(kind: str, source_topic: str, count: int, **fields) -> list[int]:
    """`count` dead letters of distinct orders for `source_topic`, inserted at once; returns ids in order."""
    from deadletters.ingest import build_row
    from deadletters.models import DeadLetter
    from eventhub.sdk import dead_letter_topic

    rows = []
    for n in range(count):
        record = Record(
            dead_letter_topic(source_topic, kind),
            0,
            next(_positions),
            f"o-{n}".encode(),
            f'{{"order_id":"o-{n}","amount":{n}}}'.encode(),
            sdk_headers(source_topic, kind),
            timestamp_ms=int(time.time() * 1000),
        )
        row = build_row(kind, record, 1024 * 1024)
        row.replay_of_id = None
        for name, value in fields.items():
            setattr(row, name, value)
        rows.append(row)
    DeadLetter.objects.bulk_create(rows, batch_size=500)
    return list(DeadLetter.objects.filter(source_topic=source_topic).order_by("id").values_list("id", flat=True))


class Listener:
    """A websocket client's view of a channel-layer group, on a layer instance of its own.

    Its own instance, because channels_redis ties receiving to one event loop and
    each async_to_sync call runs in a new one: sharing the process-wide layer
    between tests leaves it stuck. The broadcasting code keeps the shared one.
    """

    def __init__(self, group: str) -> None:
        from asgiref.sync import async_to_sync
        from channels.layers import channel_layers

        self.group = group
        self.layer = channel_layers.make_backend("default")
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def receive(self, timeout_s: float = 5.0) -> dict:
        """The first message sent to the group since this listener joined (call it once)."""
        import asyncio

        from asgiref.sync import async_to_sync

        async def first() -> dict:
            return await asyncio.wait_for(self.layer.receive(self.channel), timeout_s)

        return async_to_sync(first)()

    def close(self) -> None:
        from asgiref.sync import async_to_sync

        async_to_sync(self.layer.group_discard)(self.group, self.channel)
