"""/ws/monitor/ through the real ASGI app: refused when anonymous, snapshots when logged in."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from eventhub.asgi import application
from tests.monitor.support import group_row, make_collector, monitor_store, produce_and_consume  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("monitor_store")]

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _headers(session_key: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if session_key:
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode()))
    return headers


def _session_of(client, user) -> str:
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


async def _frame_where(communicator, predicate, timeout_s: float = 10.0) -> dict:
    """The first snapshot frame for which predicate(snapshot) is true (frames of others are skipped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no matching snapshot frame before the deadline")
        frame = json.loads(await communicator.receive_from(timeout=remaining))
        assert frame["type"] == "snapshot"
        if predicate(frame["snapshot"]):
            return frame["snapshot"]


@pytest.fixture
def viewer(django_user_model):
    """A logged-in user with no role (roles come from a data migration a transactional test flushes)."""
    return django_user_model.objects.create_user("wendy-watcher", password="pw-wendy")


def test_anonymous_socket_is_refused(settings):
    settings.CHANNEL_LAYERS = MEMORY_LAYER

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers())
        connected, code = await communicator.connect(timeout=5)
        assert connected is False
        assert code == 4401
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_logged_in_socket_gets_the_latest_snapshot_at_once(settings, client, viewer):
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    from monitor import snapshots

    snapshots.save({**snapshots.empty_snapshot(), "tick": 41, "at": "2026-01-01T00:00:00+00:00"})
    session = _session_of(client, viewer)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        frame = json.loads(await communicator.receive_from(timeout=5))
        assert frame == {
            "type": "snapshot",
            "snapshot": {**snapshots.empty_snapshot(), "tick": 41, "at": "2026-01-01T00:00:00+00:00"},
        }
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("layer", ["memory", "redis"])
def test_lag_reaches_the_socket_within_two_ticks(settings, client, viewer, unique, bus, layer):
    if layer == "memory":
        settings.CHANNEL_LAYERS = MEMORY_LAYER
        settings.EVENTHUB_CHANNEL_LAYER = "memory"
    else:
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [settings.REDIS_URL]}}
        }
        settings.EVENTHUB_CHANNEL_LAYER = "redis"
    topic, group = unique("orders"), unique("billing")
    session = _session_of(client, viewer)
    collector = make_collector(bus.kind, unique)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_from(timeout=5)  # the snapshot sent on connect
        await sync_to_async(produce_and_consume)(bus, topic, group, 12, 5)
        for _ in range(2):
            await sync_to_async(collector.tick)()
        snapshot = await _frame_where(communicator, lambda s: group_row(s, group, topic) is not None)
        assert group_row(snapshot, group, topic)["lag"] == 7
        await communicator.disconnect()

    try:
        async_to_sync(scenario)()
    finally:
        collector.close()


def test_many_sockets_cost_one_encode_per_tick(settings, client, viewer, unique):
    """Every socket receives the same frame text; the collector sends once per tick."""
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    from monitor import snapshots

    session = _session_of(client, viewer)

    async def scenario():
        sockets = [WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session)) for _ in range(5)]
        for socket in sockets:
            assert (await socket.connect(timeout=5))[0]
            await socket.receive_from(timeout=5)
        text = await sync_to_async(snapshots.save)({**snapshots.empty_snapshot(), "tick": 7})
        await sync_to_async(snapshots.broadcast)(text)
        frames = await asyncio.gather(*(socket.receive_from(timeout=5) for socket in sockets))
        assert set(frames) == {snapshots.frame(text)}
        for socket in sockets:
            await socket.disconnect()

    async_to_sync(scenario)()
