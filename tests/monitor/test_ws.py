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
from eventhub.settings import redis_channel_layer
from monitor import deltas
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


class View:
    """What a dashboard holds: the whole snapshot, then each delta applied, as delta.js does."""

    def __init__(self, communicator) -> None:
        self.communicator = communicator
        self.snapshot: dict | None = None
        self.kinds: list[str] = []  # "snapshot" / "delta" per frame received
        self.sizes: list[int] = []
        self.refreshes = 0
        self.last_text = ""

    async def next(self, timeout_s: float) -> dict | None:
        text = self.last_text = await self.communicator.receive_from(timeout=timeout_s)
        frame = json.loads(text)
        self.kinds.append(frame["type"])
        self.sizes.append(len(text.encode()))
        if frame["type"] == "snapshot":
            self.snapshot = frame["snapshot"]
        elif self.snapshot is not None and frame["tick"] > self.snapshot["tick"]:
            patched = deltas.patch(self.snapshot, frame)
            if patched is None:
                self.refreshes += 1
                await self.communicator.send_json_to({"type": "refresh"})
            else:
                self.snapshot = patched
        return self.snapshot


async def _frame_where(view: View, predicate, timeout_s: float = 10.0) -> dict:
    """The first snapshot shown for which predicate(snapshot) is true."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no matching snapshot before the deadline")
        snapshot = await view.next(remaining)
        if snapshot is not None and predicate(snapshot):
            return snapshot


def _use_layer(settings, layer: str) -> None:
    """The channel layer and snapshot store a test runs on: in memory, or Redis as in production."""
    if layer == "memory":
        settings.CHANNEL_LAYERS = MEMORY_LAYER
    else:
        settings.CHANNEL_LAYERS = {"default": redis_channel_layer(settings.REDIS_URL)}
    settings.EVENTHUB_CHANNEL_LAYER = layer


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
    _use_layer(settings, layer)
    topic, group = unique("orders"), unique("billing")
    session = _session_of(client, viewer)
    collector = make_collector(bus.kind, unique)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        view = View(communicator)
        await view.next(5)  # the snapshot sent on connect
        await sync_to_async(produce_and_consume)(bus, topic, group, 12, 5)
        for _ in range(2):
            await sync_to_async(collector.tick)()
        snapshot = await _frame_where(view, lambda s: group_row(s, group, topic) is not None)
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


def test_a_socket_quiet_for_longer_than_redis_read_timeout_stays_open(settings, client, viewer):
    """A socket told nothing for longer than the layer's Redis read timeout stays open and
    gets the next frame (with channels_redis' own 5 s blocking pop, its consumer died at 5 s
    with redis' TimeoutError and the socket closed)."""
    _use_layer(settings, "redis")
    from monitor import snapshots

    quiet_s = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] + 2
    session = _session_of(client, viewer)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_from(timeout=5)
        await asyncio.sleep(quiet_s)  # the quiet spell is what is tested
        text = await sync_to_async(snapshots.save)({**snapshots.empty_snapshot(), "tick": 8})
        await sync_to_async(snapshots.broadcast)(text, 8)
        frame = json.loads(await communicator.receive_from(timeout=5))
        assert frame["type"] == "snapshot" and frame["snapshot"]["tick"] == 8
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("layer", ["memory", "redis"])
def test_a_socket_open_for_longer_than_a_group_membership_lasts_still_gets_frames(settings, client, viewer, layer):
    """Channel layers drop a group membership group_expiry seconds after it was made (a day by
    default): a socket open for longer still gets every frame, and signing out still closes it."""
    _use_layer(settings, layer)
    settings.CHANNEL_LAYERS = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    settings.CHANNEL_LAYERS["default"]["CONFIG"] = {
        **settings.CHANNEL_LAYERS["default"].get("CONFIG", {}),
        "group_expiry": 2,
    }
    from eventhub.sockets import close_sockets_of
    from monitor import snapshots

    session = _session_of(client, viewer)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_from(timeout=5)
        await asyncio.sleep(4)  # twice as long as a membership lasts here
        text = await sync_to_async(snapshots.save)({**snapshots.empty_snapshot(), "tick": 9})
        await sync_to_async(snapshots.broadcast)(text, 9)
        frame = json.loads(await communicator.receive_from(timeout=5))
        assert frame["type"] == "snapshot" and frame["snapshot"]["tick"] == 9
        await sync_to_async(close_sockets_of)(viewer.pk)
        assert (await communicator.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


@pytest.mark.parametrize("layer", ["memory", "redis"])
def test_after_the_first_frame_a_socket_gets_deltas_that_rebuild_the_snapshot(
    settings, client, viewer, unique, bus, layer
):
    """The whole snapshot on connect, then per tick only what changed; applied in order,
    the deltas give exactly what the collector stored."""
    _use_layer(settings, layer)
    from monitor import snapshots

    topic, group = unique("orders"), unique("billing")
    session = _session_of(client, viewer)
    collector = make_collector(bus.kind, unique)

    async def scenario():
        await sync_to_async(collector.tick)()
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        assert (await communicator.connect(timeout=5))[0]
        view = View(communicator)
        await view.next(5)
        await sync_to_async(produce_and_consume)(bus, topic, group, 12, 5)
        for _ in range(3):
            await sync_to_async(collector.tick)()
        stored = await sync_to_async(snapshots.load)()
        shown = await _frame_where(view, lambda s: s["tick"] == stored["tick"])
        assert group_row(shown, group, topic)["lag"] == 7
        assert view.kinds[0] == "snapshot" and view.kinds[1:] == ["delta"] * 3
        assert view.refreshes == 0
        for field in deltas.KEYS:
            assert rows(shown, field) == rows(stored, field), field
        assert {k: v for k, v in shown.items() if k not in deltas.KEYS} == {
            k: v for k, v in stored.items() if k not in deltas.KEYS
        }
        # The last tick changed nothing but the clock: a frame far smaller than the whole view.
        assert view.sizes[-1] * 4 < len(snapshots.frame(json.dumps(stored, separators=(",", ":"))))
        await communicator.disconnect()

    try:
        async_to_sync(scenario)()
    finally:
        collector.close()


def test_a_socket_scoped_to_a_domain_gets_only_that_domains_rows(settings, client, viewer, unique):
    """?domain= on the handshake, or a "subscribe" frame: that domain's topics, their groups
    and its services, in the whole view and in every delta; "subscribe" without one is everything."""
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    from designer.models import Domain, Service, Topic
    from monitor import snapshots

    payments = Domain.objects.create(name="Payments", slug="payments")
    mine, other = unique("charges"), unique("audit")
    Topic.objects.create(name=mine, bus="kafka", address=mine, domain=payments)
    Service.objects.create(name="charger", domain=payments)

    def snap(tick: int, end: int) -> dict:
        at = 1_800_000_000 + tick
        topics = [{"bus": "kafka", "name": n, "end_offset": end, "moved_at": at} for n in (mine, other)]
        groups = [{"bus": "kafka", "group": "g", "topic": n, "lag": end, "moved_at": at} for n in (mine, other)]
        services = [{"service": n, "up": True, "moved_at": at} for n in ("charger", "auditor")]
        snapshot = {**snapshots.empty_snapshot(), "tick": tick, "at": deltas_iso(at)}
        snapshot.update(topics=topics, groups=groups, services=services)
        deltas.derive(snapshot)
        return snapshot

    session = _session_of(client, viewer)

    async def scenario():
        await sync_to_async(snapshots.publish)(snap(1, 5))
        communicator = WebsocketCommunicator(application, "/ws/monitor/?domain=payments", headers=_headers(session))
        assert (await communicator.connect(timeout=5))[0]
        view = View(communicator)
        first = await view.next(5)
        assert [t["name"] for t in first["topics"]] == [mine]
        assert [g["topic"] for g in first["groups"]] == [mine]
        assert [s["service"] for s in first["services"]] == ["charger"]

        await sync_to_async(snapshots.publish)(snap(2, 6))
        raw = json.loads(await communicator.receive_from(timeout=5))
        assert raw["type"] == "delta"
        assert [t["name"] for t in raw["rows"]["topics"]["upsert"]] == [mine]
        assert [g["topic"] for g in raw["rows"]["groups"]["upsert"]] == [mine]

        await communicator.send_json_to({"type": "subscribe"})
        everything = await view.next(5)
        assert sorted(t["name"] for t in everything["topics"]) == sorted([mine, other])

        await communicator.send_json_to({"type": "subscribe", "topics": [f"kafka:{other}"]})
        one = await view.next(5)
        assert [t["name"] for t in one["topics"]] == [other]
        assert one["services"] == []
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_deltas_follow_the_last_snapshot_sent_whichever_process_sent_it(settings, client, viewer):
    """Two monitor processes (one bus each) take turns: each delta applies to the snapshot
    the sockets got last, not to the one its own process sent last."""
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    from monitor import snapshots

    def snap(tick: int) -> dict:
        at = 1_800_000_000 + tick
        snapshot = {**snapshots.empty_snapshot(), "tick": tick, "at": deltas_iso(at)}
        snapshot["topics"] = [
            {"bus": "kafka", "name": f"t{n}", "end_offset": n * tick, "moved_at": at} for n in range(50)
        ]
        deltas.derive(snapshot)
        return snapshot

    session = _session_of(client, viewer)

    async def scenario():
        mine: dict = {}
        await sync_to_async(snapshots.publish)(snap(1))
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        assert (await communicator.connect(timeout=5))[0]
        view = View(communicator)
        await view.next(5)
        mine.update(snapshots._last_sent)  # this process's memory; the other process has its own
        snapshots._last_sent.clear()
        await sync_to_async(snapshots.publish)(snap(2))  # the other process
        await view.next(5)
        snapshots._last_sent.clear()
        snapshots._last_sent.update(mine)
        await sync_to_async(snapshots.publish)(snap(3))  # this one again
        shown = await view.next(5)
        assert view.kinds == ["snapshot", "delta", "delta"]
        assert view.refreshes == 0
        assert shown == snap(3)
        await communicator.disconnect()

    async_to_sync(scenario)()


def rows(snapshot: dict, field: str) -> list[str]:
    """A list's rows in a comparable form: the order of rows and of their fields is not part of the contract."""
    return sorted(json.dumps(row, sort_keys=True) for row in snapshot[field])


def deltas_iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_a_socket_on_a_page_of_the_groups_table_gets_that_page_only(settings, client, viewer):
    """?groups_page= on the handshake, or "groups" in a "subscribe": of the group rows, the
    socket gets one page of the table (worst first) and how many match. Tick after tick, as
    rows move on and off the page, come and go, what the socket holds is that page of the
    stored snapshot; sockets on the same page share each frame's text."""
    import random

    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    from monitor import consumers, pages, snapshots

    rng = random.Random(5)
    rows = {
        (f"g{n:03d}", f"t{n % 7}"): {"status": rng.choice(["OK", "OK", "WARN", "STOP"]), "lag": rng.randrange(50)}
        for n in range(700)
    }

    def snap(tick: int) -> dict:
        at = 1_800_000_000 + tick
        snapshot = {**snapshots.empty_snapshot(), "tick": tick, "at": deltas_iso(at)}
        snapshot["topics"] = [{"bus": "kafka", "name": f"t{n}", "end_offset": tick, "moved_at": at} for n in range(7)]
        snapshot["groups"] = [
            {"bus": "kafka", "group": g, "topic": t, **fields, "moved_at": at - 5} for (g, t), fields in rows.items()
        ]
        deltas.derive(snapshot)
        return snapshot

    def change() -> None:
        for key in rng.sample(sorted(rows), 60):
            rows[key] = {"status": rng.choice(["OK", "WARN", "ERR", "STOP"]), "lag": rng.randrange(80)}
        for key in rng.sample(sorted(rows), 10):
            del rows[key]
        for n in range(10):
            rows[(f"new{rng.randrange(10**6)}", "t1")] = {"status": "STALL", "lag": n}

    def rows_of(snapshot: dict) -> dict:
        return {(g["group"], g["topic"]): g for g in snapshot["groups"]}

    session = _session_of(client, viewer)
    first, second, filtered = pages.GroupsPage(0), pages.GroupsPage(0), pages.GroupsPage(1, "G1")

    async def scenario():
        await sync_to_async(snapshots.publish)(snap(1))
        urls = [
            "/ws/monitor/?groups_page=0",
            "/ws/monitor/?groups_page=0",
            "/ws/monitor/?groups_page=1&groups_filter=G1",
        ]
        sockets = [WebsocketCommunicator(application, url, headers=_headers(session)) for url in urls]
        views = []
        for socket in sockets:
            assert (await socket.connect(timeout=5))[0]
            views.append(View(socket))
            await views[-1].next(5)
        whole = views[0].snapshot
        assert len(whole["groups"]) == pages.PAGE_SIZE
        assert whole["groups_page"] == {"page": 0, "pages": 3, "size": pages.PAGE_SIZE, "total": 700, "filter": ""}
        assert views[2].snapshot["groups_page"]["total"] == sum(1 for g, _ in rows if "g1" in g)

        for tick in range(2, 7):
            change()
            if tick == 4:
                consumers.pager().snapshot = None  # this process missed a frame: it reads the stored one
            stored = snap(tick)
            await sync_to_async(snapshots.publish)(stored)
            for view, page in zip(views, (first, second, filtered), strict=True):
                shown = await view.next(5)
                expected = pages.paged(stored, page)
                assert view.kinds[-1] == "delta", tick
                assert rows_of(shown) == rows_of(expected), (tick, page)
                assert shown["groups_page"] == expected["groups_page"]
                assert [t["end_offset"] for t in shown["topics"]] == [tick] * 7
            assert views[0].last_text == views[1].last_text
            assert views[0].sizes[-1] * 2 < len(json.dumps(stored))
        assert all(view.refreshes == 0 for view in views)

        # Another page, then a malformed one (ignored: no answer, the next tick is a delta).
        await sockets[0].send_json_to({"type": "subscribe", "groups": {"page": 2, "filter": ""}})
        last = await views[0].next(5)
        assert views[0].kinds[-1] == "snapshot"
        assert rows_of(last) == rows_of(pages.paged(stored, pages.GroupsPage(2)))
        assert len(last["groups"]) == len(rows) - 2 * pages.PAGE_SIZE
        await sockets[0].send_json_to({"type": "subscribe", "groups": {"page": -1}})
        await sync_to_async(snapshots.publish)(snap(7))
        await views[0].next(5)
        assert views[0].kinds[-1] == "delta"
        # "subscribe" without "groups": every row again.
        await sockets[0].send_json_to({"type": "subscribe"})
        assert len((await views[0].next(5))["groups"]) == len(rows)
        for socket in sockets:
            await socket.disconnect()

    async_to_sync(scenario)()


def test_on_a_bus_with_many_groups_a_tick_sends_its_topics_ahead_of_its_groups(settings, client, viewer, unique, bus):
    """From EARLY_TOPICS_ROWS group rows (0 here) a tick's topic rows go out as a tick of
    their own before the groups are judged: a new record's end offset first, the group's
    lag in the next frame; applied in order, the frames give what the collector stored."""
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    from monitor import snapshots

    topic, group = unique("orders"), unique("billing")
    session = _session_of(client, viewer)
    collector = make_collector(bus.kind, unique)
    collector.early_topics_rows = 0

    def rows_of(frame: dict, field: str) -> list[dict]:
        return frame.get("rows", {}).get(field, {}).get("upsert", [])

    async def scenario():
        await sync_to_async(produce_and_consume)(bus, topic, group, 12, 5)
        await sync_to_async(collector.tick)()
        communicator = WebsocketCommunicator(application, "/ws/monitor/", headers=_headers(session))
        assert (await communicator.connect(timeout=5))[0]
        view = View(communicator)
        assert group_row(await view.next(5), group, topic)["lag"] == 7

        for n in range(3):
            await sync_to_async(bus.publish)(topic, b'{"n": %d}' % n)
        published = await sync_to_async(collector.tick)()
        raw = []
        while not raw or raw[-1]["tick"] < published["tick"]:
            await view.next(5)
            raw.append(json.loads(view.last_text))
        early, full = raw[-2], raw[-1]
        assert [t["end_offset"] for t in rows_of(early, "topics") if t["name"] == topic] == [15]
        assert not [g for g in rows_of(early, "groups") if g["group"] == group]
        assert [g["lag"] for g in rows_of(full, "groups") if g["group"] == group] == [10]
        # The topic's row already went: at most its groups' worst status comes after them.
        assert all(set(t) <= {"bus", "name", "groups_status"} for t in rows_of(full, "topics") if t["name"] == topic)
        assert full["base"] == early["tick"] and view.refreshes == 0

        stored = await sync_to_async(snapshots.load)()
        for field in deltas.KEYS:
            assert rows(view.snapshot, field) == rows(stored, field), field
        await communicator.disconnect()

    try:
        async_to_sync(scenario)()
    finally:
        collector.close()
