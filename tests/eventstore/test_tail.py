"""The topic browser's live tail over a websocket (/ws/browse/), on the real buses.

Sockets talk to the ASGI application in process (channels' WebsocketCommunicator, as
tests/deadletters/test_live_updates.py does) with the in-memory channel layer; the topic's
reader is the real thread of eventstore/tail.py reading the real bus.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from eventhub import connections
from eventhub.bus import UnknownTopic
from eventstore import tail
from tests.waiting import wait_until

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _memory_layer(settings):
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    yield
    connections.reset()


@pytest.fixture
def topic(bus, unique):
    name = unique("tail")
    bus.create_topic(name)
    yield name
    wait_until(lambda: (bus.kind, name) not in tail.readers(), 10, "the reader to stop")
    try:
        bus.delete_topic(name)
    except UnknownTopic:
        pass


@pytest.fixture
def cookie(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("tara", password="pw"))
    return f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"


def socket(cookie: str | None) -> WebsocketCommunicator:
    from eventhub.asgi import application

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/browse/", headers=headers)


async def subscribe(ws, bus, topic, **filters) -> None:
    connected, _ = await ws.connect(timeout=5)
    assert connected
    await ws.send_json_to({"type": "subscribe", "bus": bus.kind, "topic": topic, "filters": filters})
    assert await ws.receive_json_from(timeout=15) == {"type": "tail.state", "state": "live", "skipped": 0}


async def collect(ws, count: int) -> tuple[list[dict], int]:
    """Frames until `count` records were shown or skipped: (messages, skipped)."""
    messages, skipped = [], 0
    while len(messages) + skipped < count:
        frame = await ws.receive_json_from(timeout=20)
        if frame["type"] == "tail.messages":
            messages += frame["messages"]
            skipped = frame["skipped"]
    return messages, skipped


def test_two_sockets_share_one_reader_each_with_its_filters(bus, topic, cookie):
    async def scenario():
        everything, only_k1 = socket(cookie), socket(cookie)
        await subscribe(everything, bus, topic)
        await subscribe(only_k1, bus, topic, key="k-1")
        assert tail.readers() == {(bus.kind, topic): 2}
        for n in range(3):
            bus.publish(topic, b'{"n": %d}' % n, key=f"k-{n}".encode(), headers=[("ce_type", b"tail.test")])
        all_messages, _ = await collect(everything, 3)
        filtered, _ = await collect(only_k1, 1)
        # Changing the filters while tailing: applied to this socket only.
        await only_k1.send_json_to({"type": "filters", "filters": {"field": ["n=2"]}})
        await only_k1.send_json_to({"type": "pause"})  # a frame after: the filters were applied before it
        assert (await only_k1.receive_json_from(timeout=5))["state"] == "paused"
        await only_k1.send_json_to({"type": "resume"})
        assert (await only_k1.receive_json_from(timeout=5))["state"] == "live"
        bus.publish(topic, b'{"n": 1}', key=b"k-1")
        bus.publish(topic, b'{"n": 2}', key=b"k-2")
        later, _ = await collect(only_k1, 1)
        await everything.disconnect()
        assert tail.readers() == {(bus.kind, topic): 1}
        await only_k1.disconnect()
        return all_messages, filtered, later

    all_messages, filtered, later = async_to_sync(scenario)()
    assert [m["key"] for m in all_messages] == ["k-0", "k-1", "k-2"]
    assert all_messages[0]["type"] == "tail.test" and all_messages[0]["payload"] == {"n": 0}
    assert [m["key"] for m in filtered] == ["k-1"]
    assert [m["key"] for m in later] == ["k-2"]
    assert (bus.kind, topic) not in tail.readers()


def test_at_most_n_per_second_to_a_socket_the_rest_skipped(bus, topic, cookie, settings):
    settings.EVENTHUB_TAIL_MAX_PER_S = 2

    async def scenario():
        ws = socket(cookie)
        await subscribe(ws, bus, topic)
        for n in range(12):
            bus.send(topic, b"{}", key=f"k-{n}".encode())
        bus.flush()
        result = await collect(ws, 12)
        await ws.disconnect()
        return result

    messages, skipped = async_to_sync(scenario)()
    assert skipped > 0 and len(messages) + skipped == 12
    assert len(messages) < 12


def test_a_paused_socket_gets_nothing_and_counts_it(bus, topic, cookie):
    async def scenario():
        ws = socket(cookie)
        await subscribe(ws, bus, topic)
        await ws.send_json_to({"type": "pause"})
        assert (await ws.receive_json_from(timeout=5))["state"] == "paused"
        bus.publish(topic, b"while paused 1")
        bus.publish(topic, b"while paused 2")
        paused_messages, skipped = await collect(ws, 2)
        await ws.send_json_to({"type": "resume"})
        assert (await ws.receive_json_from(timeout=5)) == {"type": "tail.state", "state": "live", "skipped": 2}
        bus.publish(topic, b"after")
        after, _ = await collect(ws, 1)
        await ws.disconnect()
        return paused_messages, skipped, after

    paused_messages, skipped, after = async_to_sync(scenario)()
    assert paused_messages == [] and skipped == 2
    assert [m["payload"] for m in after] == ["after"]


def test_anonymous_sockets_and_unknown_topics_are_refused(bus, topic, cookie, unique):
    async def scenario():
        anonymous = socket(None)
        connected, code = await anonymous.connect(timeout=5)
        ws = socket(cookie)
        await ws.connect(timeout=5)
        await ws.send_json_to({"type": "subscribe", "bus": bus.kind, "topic": unique("missing")})
        missing = await ws.receive_json_from(timeout=10)
        await ws.send_json_to({"type": "subscribe", "bus": bus.kind, "topic": topic, "filters": {"key": "hex:z"}})
        bad_filter = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return connected, code, missing, bad_filter

    connected, code, missing, bad_filter = async_to_sync(scenario)()
    assert connected is False and code == 4401
    assert missing["type"] == "tail.error" and "no topic" in missing["detail"]
    assert bad_filter["type"] == "tail.error" and bad_filter["detail"].startswith("key:")
    assert (bus.kind, topic) not in tail.readers()
