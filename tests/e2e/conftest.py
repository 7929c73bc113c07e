"""Fixtures of the end-to-end journeys: the browser harness, plus a demo world with its loops.

The harness is tests/browser/conftest.py (read its docstring); its fixtures are
imported here because pytest shows a conftest's fixtures only to the tests
below it. Imported fixtures are instances of their own (the harness's Browser
is shared: one per process), so with tests/browser in the same run these
journeys get their own template database and "shared" app: one no other test
wrote to.

`world` is the app of journeys 2 to 4: the seeded demo shop, and the background
loops inside Daphne (collector every second, dead-letter ingester) with the
in-memory channel layer, like a single-process `make run`.

Isolation of the dead-letter ingester: every EventHub that runs its loops tails
the dead-letter topics matching its patterns with the same consumer group
(`eventhub-dlq-ingester`), and the SDK always names a Redis dead-letter stream
`<stream>:dlq`, which the default patterns match. Another app of the session
with the default patterns (tests/browser/test_monitor.py's) would then take
some of this journey's dead letters into its own database. So the world gets a
redis-server of its own (every test Redis database may be held by concurrent
runs, see tests/services.py), and patterns that match only this run's streams,
so it leaves the Kafka dead-letter topics of other apps alone too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.browser.conftest import (  # noqa: F401 - fixtures and hooks, re-exported for tests/e2e
    LiveApp,
    _browser_slot,
    _template_db,
    browser,
    live_app,
    make_live_app,
    page_as,
    pytest_runtest_makereport,
)
from tests.e2e import STREAM_PREFIX
from tests.services import start_redis_server


@pytest.fixture(scope="module")
def world_redis_url() -> Iterator[str]:
    """A private redis-server for the world app; the run's own Redis when none is installed."""
    # Requested before make_live_app by `world`, so it stops after the app.
    if not shutil.which("redis-server"):
        yield os.environ["REDIS_URL"]  # then another app running its loops may race for dead letters
        return
    process, url = start_redis_server()
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def world(world_redis_url, make_live_app) -> Iterator[LiveApp]:  # noqa: F811 - the harness fixture
    app = make_live_app(
        env={
            "EVENTHUB_RUN_LOOPS": "1",
            "EVENTHUB_WORKERS": "inprocess",
            "EVENTHUB_CHANNEL_LAYER": "memory",
            "EVENTHUB_TICK_SECONDS": "1",
            "EVENTHUB_DLQ_PATTERNS": f"{STREAM_PREFIX}-*:dlq",
            "REDIS_URL": world_redis_url,
        },
        name="e2e-world",
    )
    app.manage("seed_demo")
    yield app
