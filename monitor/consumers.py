"""The monitor's websocket: live snapshots for dashboards.

It is an `EventHubSocket` (eventhub/sockets.py): inbound frames are capped at 4 KiB,
and a socket closes when its user logs out or is deactivated.
"""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from eventhub.sockets import Budget, EventHubSocket
from monitor import deltas, snapshots

MONITOR_GROUP = snapshots.MONITOR_GROUP
MAX_TOPICS = 200  # in one "subscribe" to topics (the frame itself is capped at 4 KiB)


@database_sync_to_async
def _latest_snapshot_json() -> str:
    return snapshots.load_json()


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
      domain also comes with the handshake: ``/ws/monitor/?domain=slug``.
    """

    # "refresh" requests per socket: 2 at once, then one every 2 seconds (a tick); more are ignored.
    REFRESH_BUDGET = (2, 0.5)
    SUBSCRIBE_BUDGET = (4, 1.0)

    @classmethod
    async def encode_json(cls, content):
        return json.dumps(content, separators=(",", ":"))

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        self.refreshes = Budget(*self.REFRESH_BUDGET)
        self.subscribes = Budget(*self.SUBSCRIBE_BUDGET)
        self.view: deltas.Scope | None = None
        domain = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("domain", [""])[0]
        if domain:
            self.view = await _domain_scope(domain[:100])
        await self.join_user_group()
        await self.channel_layer.group_add(MONITOR_GROUP, self.channel_name)
        await self.accept()
        await self.send_whole_view()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(MONITOR_GROUP, self.channel_name)
        await super().disconnect(code)

    async def send_whole_view(self):
        text = await _latest_snapshot_json()
        if self.view is None:
            await self.send(text_data=snapshots.frame(text))
        else:
            await self.send_json({"type": "snapshot", "snapshot": self.view.snapshot(json.loads(text))})

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if content.get("type") == "refresh" and self.refreshes.take():
            await self.send_whole_view()
        elif content.get("type") == "subscribe" and self.subscribes.take():
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
        if "frame" not in message:
            await self.send_json({"type": "snapshot", "snapshot": message["snapshot"]})
        elif self.view is None:
            await self.send(text_data=message["frame"])
        elif message.get("delta"):
            await self.send_json(self.view.delta(json.loads(message["frame"])))
        else:
            whole = json.loads(message["frame"])
            await self.send_json({"type": "snapshot", "snapshot": self.view.snapshot(whole["snapshot"])})
