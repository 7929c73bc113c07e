"""An installation made before dead letters had their own app upgrades without losing a row.

fixtures/database_before_the_app.sql is a SQLite database made at main 67906b6 (the last
commit with the dead-letter models in `monitor`), dumped as SQL: 7 dead letters in every
status (one a replay that came back, one with a payload that is not UTF-8), a redrive job
that claimed three of them, 3 audit entries (one by an operator, one by nobody), and a
record the ingester parked.

Two ways up: `manage.py migrate` on a copy of that file, as an operator would upgrade
(SQLite); and the same rows put into the test database (SQLite under `make test`,
PostgreSQL under `make test-postgres`) at the migrations they were made with, then
migrated forward in process.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
from django.core.management.color import no_style
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils.dateparse import parse_datetime

FIXTURE = Path(__file__).parent / "fixtures" / "database_before_the_app.sql"
ROOT = Path(__file__).resolve().parents[2]
TABLES = ["monitor_deadletter", "monitor_redrivejob", "monitor_auditentry", "monitor_unstoreddeadletter"]
MOVED_MODELS = ["deadletter", "unstoreddeadletter", "redrivejob", "auditentry"]


def _fixture() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(FIXTURE.read_text())
    return db


def _rows(db: sqlite3.Connection, table: str) -> list[dict]:
    cursor = db.execute(f'SELECT * FROM "{table}" ORDER BY id')  # noqa: S608 - our own table names
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_the_fixture_holds_what_it_says():
    db = _fixture()
    counts = {table: len(_rows(db, table)) for table in TABLES}
    assert counts == {
        "monitor_deadletter": 7,
        "monitor_redrivejob": 1,
        "monitor_auditentry": 3,
        "monitor_unstoreddeadletter": 1,
    }
    assert {row["status"] for row in _rows(db, "monitor_deadletter")} == {
        "new", "retrying", "retried", "resolved", "discarded", "parked",
    }  # fmt: skip


def test_manage_py_migrate_on_the_old_sqlite_file_keeps_every_row(tmp_path):
    before = _fixture()
    path = tmp_path / "eventhub.sqlite3"
    upgraded = sqlite3.connect(path)
    upgraded.executescript(FIXTURE.read_text())
    upgraded.close()

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "DJANGO_SETTINGS_MODULE": "eventhub.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Applying deadletters.0001_initial... OK" in done.stdout

    after = sqlite3.connect(path)
    for table in TABLES:
        assert _rows(after, table) == _rows(before, table), table
    apps = dict(
        after.execute("SELECT model, app_label FROM django_content_type WHERE model IN (?, ?, ?, ?)", MOVED_MODELS)
    )
    assert apps == dict.fromkeys(MOVED_MODELS, "deadletters")

    # And the app reads them through the new models.
    read = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", _READ_BACK], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout.strip().splitlines()[-1]) == _summary_of(before)


_READ_BACK = """
import json
from deadletters.models import AuditEntry, DeadLetter, RedriveJob, UnstoredDeadLetter
job = RedriveJob.objects.get()
print(json.dumps({
    "statuses": sorted(DeadLetter.objects.values_list("status", flat=True)),
    "job": [job.state, job.total, job.done, job.failed, job.created_by.username, sorted(job.claimed.values_list("id", flat=True))],
    "audit": sorted([e.action, e.actor.username if e.actor else None, e.dead_letter_id, e.job_id] for e in AuditEntry.objects.all()),
    "came_back": [DeadLetter.objects.get(replay_of__isnull=False).replay_of_id],
    "parked": list(UnstoredDeadLetter.objects.values_list("dlq_topic", "dlq_offset").get()),
}))
"""


def _summary_of(db: sqlite3.Connection) -> dict:
    users = dict(db.execute("SELECT id, username FROM auth_user"))
    job = _rows(db, "monitor_redrivejob")[0]
    letters = _rows(db, "monitor_deadletter")
    return {
        "statuses": sorted(row["status"] for row in letters),
        "job": [
            job["state"],
            job["total"],
            job["done"],
            job["failed"],
            users[job["created_by_id"]],
            sorted(row["id"] for row in letters if row["job_id"] == job["id"]),
        ],  # fmt: skip
        "audit": sorted(
            [row["action"], users.get(row["actor_id"]), row["dead_letter_id"], row["job_id"]]
            for row in _rows(db, "monitor_auditentry")
        ),
        "came_back": [row["replay_of_id"] for row in letters if row["replay_of_id"]],
        "parked": [_rows(db, "monitor_unstoreddeadletter")[0][key] for key in ("dlq_topic", "dlq_offset")],
    }


@pytest.mark.django_db(transaction=True)
def test_the_same_rows_in_this_database_migrate_forward_intact():
    """On the test database, whichever it is: back to the fixture's migrations, its rows in, forward."""
    before = _fixture()
    made_at = [(app, name) for app, name in before.execute("SELECT app, name FROM django_migrations")]
    latest = {}
    for app, name in made_at:
        latest[app] = max(latest.get(app, ""), name)
    executor = MigrationExecutor(connection)
    executor.migrate([*latest.items(), ("deadletters", None)])
    assert not MigrationRecorder(connection).migration_qs.filter(app="deadletters").exists()
    old = MigrationExecutor(connection).loader.project_state(list(latest.items())).apps

    _copy_rows(before, old)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    from django.contrib.contenttypes.models import ContentType

    from deadletters.models import AuditEntry, DeadLetter, RedriveJob, UnstoredDeadLetter

    for model, table in zip((DeadLetter, RedriveJob, AuditEntry, UnstoredDeadLetter), TABLES, strict=True):
        mine = {row["id"]: row for row in model.objects.order_by("id").values()}
        theirs = _rows(before, table)
        assert sorted(mine) == [row["id"] for row in theirs], table
        for row in theirs:
            stored = mine[row["id"]]
            for column in ("status", "state", "action", "dlq_topic", "dlq_offset", "error_class", "result"):
                if column in row:
                    assert stored[column] == row[column], (table, row["id"], column)
    replay = DeadLetter.objects.get(replay_of__isnull=False)
    assert bytes(replay.payload) == b"\xff\xfe"
    assert replay.replay_of.status == "retried"
    assert sorted(RedriveJob.objects.get().claimed.values_list("id", flat=True)) == [3]
    assert ContentType.objects.get_for_model(DeadLetter).app_label == "deadletters"


def _copy_rows(db: sqlite3.Connection, apps) -> None:
    """The fixture's users, design rows and dead-letter rows, through the models as they were then."""
    for label, table in [
        ("auth.User", "auth_user"),
        ("designer.Domain", "designer_domain"),
        ("designer.EventType", "designer_eventtype"),
        ("monitor.RedriveJob", "monitor_redrivejob"),
        ("monitor.DeadLetter", "monitor_deadletter"),
        ("monitor.AuditEntry", "monitor_auditentry"),
        ("monitor.UnstoredDeadLetter", "monitor_unstoreddeadletter"),
    ]:
        model = apps.get_model(label)
        fields = {field.column: field for field in model._meta.concrete_fields}
        rows = _rows(db, table)
        model.objects.bulk_create(
            model(**{fields[c].attname: _value(fields[c], v) for c, v in row.items()}) for row in rows
        )
    with connection.cursor() as cursor:  # the ids above were given: move the sequences past them
        for statement in connection.ops.sequence_reset_sql(no_style(), [apps.get_model(m) for m in MODELS_WITH_IDS]):
            cursor.execute(statement)
    content_types = apps.get_model("contenttypes.ContentType")
    for model in MOVED_MODELS:
        content_types.objects.get_or_create(app_label="monitor", model=model)


MODELS_WITH_IDS = ["auth.User", "designer.Domain", "designer.EventType", "monitor.DeadLetter", "monitor.RedriveJob"]


def _value(field, value):
    if value is None:
        return None
    if field.get_internal_type() == "JSONField":
        return json.loads(value)
    if field.get_internal_type() == "DateTimeField":  # SQLite keeps UTC without an offset
        moment = parse_datetime(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return field.to_python(value)
