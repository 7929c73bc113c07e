"""Shared fixtures: the real buses, unique names, personas."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from eventhub.bus import open_bus

# Files whose tests run long, by marker (browser, e2e: live apps and Chromium; fault,
# scaleout: processes killed and restarted) or by name (the schemathesis sweeps).
_LONG_MARKERS = ("browser", "e2e", "fault", "scaleout")
_LONG_FILES = ("test_schemathesis_", "test_load")


def _runs_long(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(m) for m in _LONG_MARKERS) or item.path.name.startswith(_LONG_FILES)


def pytest_collection_modifyitems(config, items):
    """Long files first, so that pytest-xdist (`--dist loadfile`, handing out files in this
    order) ends the run on short ones instead of leaving a worker on a long file while
    the others idle. Among the long files, a browser file comes after every two others:
    one browser module runs at a time (tests/browser/conftest.py `_browser_slot`), and
    the other workers had better have something else to do meanwhile. Otherwise the
    collection order."""
    files: dict[object, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    browser, other_long, short = [], [], []
    for tests in files.values():
        if any(test.get_closest_marker("browser") for test in tests):
            browser.append(tests)
        elif any(_runs_long(test) for test in tests):
            other_long.append(tests)
        else:
            short.append(tests)
    ordered = []
    while browser or other_long:
        if browser:
            ordered.append(browser.pop(0))
        ordered += other_long[:2]
        del other_long[:2]
    items[:] = [test for tests in ordered + short for test in tests]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


def bus_options(kind: str) -> dict:
    if kind == "kafka":
        return {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]}
    return {"url": os.environ["REDIS_URL"]}


@pytest.fixture(params=["kafka", "redis"])
def bus(request):
    """Each test using this runs twice, once per real backend."""
    adapter = open_bus(request.param, **bus_options(request.param))
    yield adapter
    adapter.close()


@pytest.fixture
def unique():
    """unique("orders") -> "orders-3f9a1c2b": names no other test uses."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _celery_app_stays_eventhubs():
    """A test that makes a Celery app of its own must not leave it the current app: every
    `.delay()` of a shared task after it, in this worker, would go to that app's broker
    (once a private Redis, gone by then: a later test failed with "connection refused")."""
    yield
    celery = sys.modules.get("eventhub.celery")
    if celery is not None:
        from celery import current_app

        assert current_app._get_current_object() is celery.app, (
            "this test left its own Celery app current: make it with set_as_current=False"
        )


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Personas ------------------------------------------------------------------
# Each view test covers the happy path, the wrong method, the outsider
# (anonymous) and the read-only user (viewer).


def _persona(django_user_model, username: str, role: str | None, superuser: bool = False):
    from django.contrib.auth.models import Group

    if superuser:
        return django_user_model.objects.create_superuser(username, f"{username}@example.com", "pw-" + username)
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw-" + username)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db, django_user_model):
    return _persona(django_user_model, "vera-viewer", "Viewer")


@pytest.fixture
def designer(db, django_user_model):
    return _persona(django_user_model, "dana-designer", "Designer")


@pytest.fixture
def operator(db, django_user_model):
    return _persona(django_user_model, "otto-operator", "Operator")


@pytest.fixture
def admin(db, django_user_model):
    return _persona(django_user_model, "ada-admin", None, superuser=True)


@pytest.fixture
def client_as(client):
    """client_as(user) -> the test client logged in as that user."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(scope="session")
def broker_kind() -> str:
    """The engine under the Kafka tests: "tansu" (make test) or "apache-kafka" (make test-kafka)."""
    return os.environ["EVENTHUB_BROKER"]
