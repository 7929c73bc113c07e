"""Django for the benchmarks: a throwaway SQLite file, migrated, with one logged-in Operator.

`setup(folder)` must run before anything imports Django models: it points
DATABASE_URL at `folder/bench.sqlite3` (the developer's var/eventhub.sqlite3 is
never touched), turns DEBUG off as in production (with DEBUG on, Django keeps
every query's SQL in memory), migrates and returns the session key that
subprocesses (Daphne) accept as the `sessionid` cookie.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class App:
    db_path: Path
    session_key: str
    user_id: int


def configure(folder: Path, database_url: str | None = None) -> Path:
    """The bench's environment; `database_url` (the event-store part's PostgreSQL) instead of the SQLite file."""
    db_path = folder / "bench.sqlite3"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{db_path}"
    os.environ["EVENTHUB_VAR_DIR"] = str(folder / "var")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ["EVENTHUB_CHANNEL_LAYER"] = "redis"
    os.environ["EVENTHUB_WORKERS"] = "inprocess"
    os.environ.pop("EVENTHUB_RUN_LOOPS", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
    return db_path


def setup(folder: Path, database_url: str | None = None) -> App:
    db_path = configure(folder, database_url)
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    user = get_user_model().objects.create_user("bench-operator", "bench@example.com", "bench-operator-pw")
    user.groups.add(Group.objects.get(name="Operator"))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.set_expiry(24 * 3600)
    session.save()
    return App(db_path, session.session_key, user.pk)
