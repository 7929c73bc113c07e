"""The dead-letter pages' websocket.

An `EventHubSocket` (eventhub/sockets.py): inbound frames are capped at 4 KiB,
and the socket closes when its user logs out or is deactivated.
"""

from eventhub.sockets import EventHubSocket


class DeadLettersConsumer(EventHubSocket):
    """Live dead-letter news for the dead-letter pages. Logged-in users only.

    Forwards what `deadletters.actions` broadcasts on the `deadletters` group:
    ``deadletters.new`` {ids, count} (the ingester stored new ones),
    ``deadletters.changed`` {ids, status, count} (an action changed them) and
    ``redrive.progress`` {job, action, state, done, failed, skipped, total}.
    Only those keys go out; the pages fetch anything else they show.
    """

    GROUP = "deadletters"  # deadletters.actions.GROUP
    FIELDS = {
        "deadletters.new": ("ids", "count"),
        "deadletters.changed": ("ids", "status", "count"),
        "redrive.progress": ("job", "action", "state", "done", "failed", "skipped", "total"),
    }

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        await self.join_user_group()
        await self.join(self.GROUP)
        await self.accept()

    async def receive_json(self, content, **kwargs):
        """Clients have nothing to say."""

    async def _forward(self, message):
        kind = message["type"]
        await self.send_json({"type": kind, **{key: message.get(key) for key in self.FIELDS[kind]}})

    async def deadletters_new(self, message):
        await self._forward(message)

    async def deadletters_changed(self, message):
        await self._forward(message)

    async def redrive_progress(self, message):
        await self._forward(message)
