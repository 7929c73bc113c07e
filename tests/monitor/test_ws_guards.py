"""What a socket does with hostile input: oversize, binary and non-JSON frames, floods of
"refresh", and a user who logs out or is deactivated while their sockets are open."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from eventhub.asgi import application
from eventhub.routing import websocket_urlpatterns
from eventhub.sockets import Budget, EventHubSocket
from monitor import snapshots
from monitor.consumers import MonitorConsumer
from tests.monitor.support import monitor_store  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("monitor_store")]

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
SOCKETS = ["/" + str(route.pattern) for route in websocket_urlpatterns]  # every one of them


@pytest.fixture(autouse=True)
def _memory_layer(settings):
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"


@pytest.fixture
def wendy(django_user_model):
    return django_user_model.objects.create_user("wendy-watcher", password="pw-wendy")


def _session_of(user) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _socket(path: str, session: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session}".encode()),
    ]
    return WebsocketCommunicator(application, path, headers=headers)


async def _open(path: str, session: str) -> WebsocketCommunicator:
    communicator = _socket(path, session)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    if path == "/ws/monitor/":
        await communicator.receive_from(timeout=5)  # the snapshot sent on connect
    return communicator


async def _closed_with(communicator: WebsocketCommunicator) -> tuple[int, list[str]]:
    """Read until the server closes: (the close code, the text frames sent before it)."""
    frames = []
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output.get("code"), frames
        frames.append(output["text"])


def test_every_socket_is_an_eventhub_socket():
    assert set(SOCKETS) >= {"/ws/monitor/", "/ws/dead-letters/"}
    for route in websocket_urlpatterns:
        assert issubclass(route.callback.consumer_class, EventHubSocket), route.pattern


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize(
    "frame, code",
    [
        ({"text_data": json.dumps({"type": "refresh", "pad": "x" * 4096})}, 1009),  # over 4 KiB
        ({"text_data": "é" * 2049}, 1009),  # 2,049 characters, 4,098 bytes
        ({"bytes_data": b"\x00" * 16}, 1003),
        ({"text_data": "{not json"}, 1007),
    ],
    ids=["oversize", "oversize-utf8", "binary", "not-json"],
)
def test_hostile_frames_close_the_socket_with_a_clear_code(wendy, path, frame, code):
    _, session = _session_of(wendy)

    async def scenario():
        communicator = await _open(path, session)
        await communicator.send_to(**frame)
        assert (await _closed_with(communicator)) == (code, [])
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("path", SOCKETS)
def test_a_frame_of_exactly_4_kib_is_read(wendy, path):
    _, session = _session_of(wendy)
    frame = json.dumps({"type": "noop", "pad": ""})
    frame = json.dumps({"type": "noop", "pad": "x" * (4096 - len(frame))})
    assert len(frame.encode()) == 4096

    async def scenario():
        communicator = await _open(path, session)
        await communicator.send_to(text_data=frame)
        await communicator.send_to(text_data="x" * 4097)  # then one that is not: closed by it, not before
        assert (await _closed_with(communicator)) == (1009, [])
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_refresh_requests_beyond_the_budget_are_ignored(wendy, monkeypatch):
    """A flood of "refresh" gets the burst answered and nothing more (no refill: the budget's
    timing is pinned by test_budget below)."""
    monkeypatch.setattr(MonitorConsumer, "REFRESH_BUDGET", (2, 0.0))
    snapshots.save({**snapshots.empty_snapshot(), "tick": 5})
    _, session = _session_of(wendy)

    async def scenario():
        communicator = await _open("/ws/monitor/", session)
        for _ in range(8):
            await communicator.send_json_to({"type": "refresh"})
        await communicator.send_to(text_data="x" * 5000)  # frames are read in order: this one ends it
        code, frames = await _closed_with(communicator)
        assert code == 1009
        assert [json.loads(frame)["snapshot"]["tick"] for frame in frames] == [5, 5]
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_subscribe_requests_beyond_the_budget_are_ignored(wendy, monkeypatch):
    """Each "subscribe" reads the design (a domain's scope) and answers the whole view: four
    at once are answered, the rest of a flood is not."""
    monkeypatch.setattr(MonitorConsumer, "SUBSCRIBE_BUDGET", (4, 0.0))
    snapshots.save({**snapshots.empty_snapshot(), "tick": 6})
    _, session = _session_of(wendy)

    async def scenario():
        communicator = await _open("/ws/monitor/", session)
        for n in range(8):
            await communicator.send_json_to({"type": "subscribe", "domain": f"d{n}"})
        await communicator.send_to(text_data="x" * 5000)
        code, frames = await _closed_with(communicator)
        assert code == 1009
        assert [json.loads(frame)["snapshot"]["tick"] for frame in frames] == [6, 6, 6, 6]
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_a_flood_of_frames_closes_the_socket(wendy):
    _, session = _session_of(wendy)

    async def scenario():
        communicator = await _open("/ws/dead-letters/", session)
        for _ in range(200):
            await communicator.send_json_to({"type": "noop"})
        assert (await _closed_with(communicator)) == (1008, [])
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    "now, taken",
    [
        ([0.0, 0.0, 0.0, 0.0], [True, True, False, False]),  # burst of 2, then nothing
        ([0.0, 0.0, 0.0, 1.9, 2.0], [True, True, False, False, True]),  # one more after 2 s at 0.5/s
        ([0.0, 100.0, 100.0, 100.0], [True, True, True, False]),  # refills up to the burst, no further
    ],
)
def test_budget(now, taken):
    clock = iter([0.0, *now])
    budget = Budget(2, 0.5, clock=lambda: next(clock))
    assert [budget.take() for _ in now] == taken


def test_logging_out_closes_the_users_sockets_and_no_one_elses(wendy, django_user_model):
    client, session = _session_of(wendy)
    other = django_user_model.objects.create_user("oscar-other", password="pw-oscar")
    _, other_session = _session_of(other)

    async def scenario():
        mine = [await _open(path, session) for path in SOCKETS]
        theirs = await _open("/ws/monitor/", other_session)
        response = await sync_to_async(client.post)("/logout/")
        assert response.status_code == 302
        for communicator in mine:
            assert (await _closed_with(communicator)) == (4401, [])
        # The other user's socket is still open and live.
        text = await sync_to_async(snapshots.save)({**snapshots.empty_snapshot(), "tick": 9})
        await get_channel_layer().group_send(
            snapshots.MONITOR_GROUP, {"type": "monitor.snapshot", "frame": snapshots.frame(text)}
        )
        assert json.loads(await theirs.receive_from(timeout=5))["snapshot"]["tick"] == 9
        # And the logged-out session cannot open a new one.
        again = _socket("/ws/monitor/", session)
        assert (await again.connect(timeout=5)) == (False, 4401)
        for communicator in [*mine, theirs]:
            await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("path", SOCKETS)
def test_deactivating_a_user_closes_their_sockets(wendy, path):
    _, session = _session_of(wendy)

    def deactivate():
        wendy.is_active = False
        wendy.save(update_fields=["is_active"])

    async def scenario():
        communicator = await _open(path, session)
        await sync_to_async(deactivate)()
        assert (await _closed_with(communicator)) == (4401, [])
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("how", ["session deleted", "password changed elsewhere"])
def test_a_socket_whose_session_ends_without_a_signal_closes_at_the_next_check(wendy, monkeypatch, how):
    """An expired or deleted session, or a password changed in another process: no signal
    reaches the socket, so it checks its session every SESSION_CHECK_S."""
    from django.contrib.sessions.models import Session

    monkeypatch.setattr(EventHubSocket, "SESSION_CHECK_S", 0.5)
    _, session = _session_of(wendy)

    def end_it():
        if how == "session deleted":
            Session.objects.filter(session_key=session).delete()
        else:  # a raw UPDATE: no save(), no signal; Django refuses the session's old hash
            type(wendy).objects.filter(pk=wendy.pk).update(password="pbkdf2_sha256$1$new$changed")

    async def scenario():
        sockets = [await _open(path, session) for path in SOCKETS]
        # Open past a check of the current session (0.375-0.625 s), with nothing sent or closed.
        assert await sockets[0].receive_nothing(timeout=1.2, interval=0.05)
        for communicator in sockets[1:]:
            assert await communicator.receive_nothing(timeout=0.05)
        await sync_to_async(end_it)()
        for communicator in sockets:
            assert (await _closed_with(communicator)) == (4401, [])
            await communicator.disconnect()

    async_to_sync(scenario)()
