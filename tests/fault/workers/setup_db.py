"""Migrate a fresh SQLite database, add one Operator and a logged-in session for it.

    DATABASE_URL=sqlite:///path python tests/fault/workers/setup_db.py

Prints {"session_key": ..., "user_id": ...}: the tests send the key as the
`sessionid` cookie (what the login form would have set) to the Daphne they start.
"""

from __future__ import annotations

import json

import django

django.setup()

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402


def main() -> None:
    call_command("migrate", interactive=False, verbosity=0)
    user = get_user_model().objects.create_user("otto-fault", "otto-fault@example.com", "fault-operator-pw")
    user.groups.add(Group.objects.get(name="Operator"))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.set_expiry(24 * 3600)
    session.save()
    print(json.dumps({"session_key": session.session_key, "user_id": user.pk}))


if __name__ == "__main__":
    main()
