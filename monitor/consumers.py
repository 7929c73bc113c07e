"""Websocket endpoints: one class per socket."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

MONITOR_GROUP = "monitor"


class MonitorConsumer(AsyncJsonWebsocketConsumer):
    """Live snapshots for dashboards. Logged-in users only."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(MONITOR_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(MONITOR_GROUP, self.channel_name)

    async def monitor_snapshot(self, message):
        await self.send_json({"type": "snapshot", "snapshot": message["snapshot"]})
