"""The monitor's websocket: live snapshots for dashboards.

It is an `EventHubSocket` (eventhub/sockets.py): inbound frames are capped at 4 KiB,
and a socket closes when its user logs out or is deactivated.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from eventhub.sockets import Budget, EventHubSocket
from monitor import deltas, pages, snapshots

MONITOR_GROUP = snapshots.MONITOR_GROUP
MAX_TOPICS = 200  # in one "subscribe" to topics (the frame itself is capped at 4 KiB)
# This process's sockets on pages of the groups table share one (monitor/pages.py), per
# snapshot store (tests switch namespaces; tick numbers of two stores mean nothing together).
_pagers: dict[str, pages.Pager] = {}


def pager() -> pages.Pager:
    return _pagers.setdefault(snapshots.where(), pages.Pager())


@database_sync_to_async
def _latest_snapshot_json() -> str:
    return snapshots.load_json()


@database_sync_to_async
def _latest_snapshot(unless_tick: int | None = None) -> dict | None:
    """The stored snapshot; None when it is still the one of `unless_tick` (no need to decode it)."""
    if unless_tick is not None and snapshots.stored_tick() == unless_tick:
        return None
    return snapshots.load()


async def _catch_up(shared: pages.Pager) -> None:
    """Bring this process's pager to the stored snapshot."""
    latest = await _latest_snapshot(shared.tick)
    if latest is not None:
        shared.hold(latest)


@database_sync_to_async
def _domain_scope(domain: str) -> deltas.Scope:
    from designer.graph import build_graph

    return deltas.scope_of_graph(build_graph(domain))


def _topics_scope(topics: list) -> deltas.Scope | None:
    """ "bus:address" strings -> a scope of those topics; None when the list is malformed."""
    if not isinstance(topics, list) or len(topics) > MAX_TOPICS:
        return None
    pairs = set()
    for topic in topics:
        if not isinstance(topic, str) or ":" not in topic:
            return None
        bus, address = topic.split(":", 1)
        pairs.add((bus, address))
    return deltas.Scope(frozenset(pairs), frozenset())


class MonitorConsumer(EventHubSocket):
    """Live snapshots for dashboards. Logged-in users only.

    Frames sent:
    - ``{"type": "snapshot", "snapshot": {...}}``: the whole view, on connect, after
      a "refresh" or a "subscribe", and whenever a delta would not be smaller;
    - ``{"type": "delta", "tick", "base", ...}``: what changed since tick `base`
      (monitor/deltas.py). The collector encodes it once and every socket that shows
      the whole cluster sends the same text.

    Frames received:
    - ``{"type": "refresh"}``: send the whole view again (a client that missed a delta);
    - ``{"type": "subscribe", "domain": slug}`` or ``{"type": "subscribe", "topics":
      ["kafka:orders", ...]}``: from now on only those topics, their groups and the
      domain's services; ``{"type": "subscribe"}`` is the whole cluster again. The
      domain also comes with the handshake: ``/ws/monitor/?domain=slug``;
    - ``"groups": {"page": n, "filter": text}`` in a "subscribe" (or ``?groups_page=n&
      groups_filter=text`` on the handshake): of the groups, only that page of the table
      (monitor/pages.py).
      The dashboard asks for one; a client that does not gets every row.
    """

    # "refresh" requests per socket: 2 at once, then one every 2 seconds (a tick); more are ignored.
    REFRESH_BUDGET = (2, 0.5)
    SUBSCRIBE_BUDGET = (4, 1.0)

    @classmethod
    async def encode_json(cls, content):
        return snapshots.dumps(content)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        self.refreshes = Budget(*self.REFRESH_BUDGET)
        self.subscribes = Budget(*self.SUBSCRIBE_BUDGET)
        self.view: deltas.Scope | None = None
        self.page: pages.GroupsPage | None = None
        self.shown: dict | None = None  # on a page: the view sent last, the base of the next frame
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        domain = query.get("domain", [""])[0]
        if domain:
            self.view = await _domain_scope(domain[:100])
        if query.get("groups_page", [""])[0].isdigit():
            asked = {"page": int(query["groups_page"][0][:6]), "filter": query.get("groups_filter", [""])[0]}
            self.page = pages.GroupsPage.parse(asked)
        await self.join_user_group()
        await self.join(MONITOR_GROUP)
        await self.accept()
        await self.send_whole_view()

    async def send_whole_view(self):
        if self.page is not None:
            await _catch_up(pager())
            self.shown = None
            await self.send_page()
            return
        text = await _latest_snapshot_json()
        if self.view is None:
            await self.send(text_data=snapshots.frame(text))
        else:
            await self.send_json({"type": "snapshot", "snapshot": self.view.snapshot(snapshots.loads(text))})

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if content.get("type") == "refresh" and self.refreshes.take():
            await self.send_whole_view()
        elif content.get("type") == "subscribe" and self.subscribes.take():
            page = None
            if content.get("groups") is not None:
                page = pages.GroupsPage.parse(content["groups"])
                if page is None:
                    return
            if content.get("domain"):
                if not isinstance(content["domain"], str):
                    return
                self.view = await _domain_scope(content["domain"][:100])
            elif "topics" in content:
                view = _topics_scope(content["topics"])
                if view is None:
                    return
                self.view = view
            else:
                self.view = None
            self.page = page
            await self.send_whole_view()

    async def dispatch(self, message):
        # Channels runs close_old_connections before every handler, through the one
        # thread that runs all sync code of the process. Per socket and per tick, that
        # hop, not the send, was what limited the fan-out: at 200 sockets the frames
        # fell seconds behind (bench: push_latency_p95_ms). Snapshots never touch the
        # database, so they skip it; everything else goes the usual way.
        if message.get("type") == "monitor.snapshot":
            await self.monitor_snapshot(message)
        else:
            await super().dispatch(message)

    async def monitor_snapshot(self, message):
        if self.page is not None and "frame" in message:
            await self.follow(message)
            return
        if "frame" not in message:
            await self.send_json({"type": "snapshot", "snapshot": message["snapshot"]})
        elif self.view is None:
            await self.send(text_data=message["frame"])
        elif message.get("delta"):
            await self.send_json(self.view.delta(snapshots.loads(message["frame"])))
        else:
            whole = snapshots.loads(message["frame"])
            await self.send_json({"type": "snapshot", "snapshot": self.view.snapshot(whole["snapshot"])})

    async def follow(self, message):
        """A socket on a page: bring this process's snapshot to the message's tick (the first
        socket to see it does), then send this socket what changed in its view."""
        shared = pager()
        tick = message.get("tick")
        if tick is None or tick != shared.tick:
            frame = snapshots.loads(message["frame"])
            if not message.get("delta"):
                shared.hold(frame["snapshot"])
            elif not shared.advance(frame):
                await _catch_up(shared)
        await self.send_page()

    async def send_page(self):
        shared = pager()
        if shared.snapshot is None or not shared.snapshot.get("at"):
            await self.send_json({"type": "snapshot", "snapshot": shared.snapshot or snapshots.empty_snapshot()})
            return
        if self.shown is not None and self.shown.get("tick") == shared.tick:
            return  # this socket already has this tick (its whole view came after the snapshot)
        text, self.shown = shared.frame(self.shown, self.page, self.view)
        await self.send(text_data=text)
