"""The monitor's websocket: live snapshots for dashboards.

It is an `EventHubSocket` (eventhub/sockets.py): inbound frames are capped at 4 KiB,
and a socket closes when its user logs out or is deactivated.
"""

from channels.db import database_sync_to_async

from eventhub.sockets import Budget, EventHubSocket
from monitor import snapshots

MONITOR_GROUP = snapshots.MONITOR_GROUP


@database_sync_to_async
def _latest_snapshot_json() -> str:
    return snapshots.load_json()


class MonitorConsumer(EventHubSocket):
    """Live snapshots for dashboards. Logged-in users only.

    Frames are ``{"type": "snapshot", "snapshot": {...}}``: the latest one at once
    on connect, then one per collector tick. The collector encodes each frame once
    and every socket sends the same text.
    """

    # "refresh" requests per socket: 2 at once, then one every 2 seconds (a tick); more are ignored.
    REFRESH_BUDGET = (2, 0.5)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        self.refreshes = Budget(*self.REFRESH_BUDGET)
        await self.join_user_group()
        await self.channel_layer.group_add(MONITOR_GROUP, self.channel_name)
        await self.accept()
        await self.send(text_data=snapshots.frame(await _latest_snapshot_json()))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(MONITOR_GROUP, self.channel_name)
        await super().disconnect(code)

    async def receive_json(self, content, **kwargs):
        """Clients have nothing to say; a "refresh" asks for the latest snapshot again."""
        if isinstance(content, dict) and content.get("type") == "refresh" and self.refreshes.take():
            await self.send(text_data=snapshots.frame(await _latest_snapshot_json()))

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
        if "frame" in message:
            await self.send(text_data=message["frame"])
        else:
            await self.send_json({"type": "snapshot", "snapshot": message["snapshot"]})
