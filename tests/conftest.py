"""Shared fixtures: the real buses, unique names, personas."""

from __future__ import annotations

import os
import uuid

import pytest

from eventhub.bus import open_bus


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
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
