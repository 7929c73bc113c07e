"""Fixtures the dead-letter test files share: the Redis bus and a fresh source stream.

A test file that defines its own `redis` or `topic` fixture keeps it (pytest prefers the nearer one).
"""

from __future__ import annotations

import os

import pytest

from eventhub.bus import open_bus


@pytest.fixture
def redis():
    """The Redis bus, for the dead-letter tests that send replays to a stream."""
    bus = open_bus("redis", url=os.environ["REDIS_URL"])
    yield bus
    bus.close()


@pytest.fixture
def topic(redis, unique):
    """A fresh source stream of this test."""
    name = unique("orders")
    redis.create_topic(name)
    return name
