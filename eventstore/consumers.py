"""The topic browser's websocket (/ws/browse/): the live tail of one topic, filtered for this socket.

The socket subscribes to (bus, topic, filters); eventstore/tail.py runs one reader per
topic in this process and sends its records to the topic's group; here each socket keeps
what its own filters let through, at most EVENTHUB_TAIL_MAX_PER_S messages per second
(the excess is counted and reported as `skipped`), nothing while paused (counted too),
and shows them as the API does (masked, validated: eventstore/browse.py).

Client frames: {"type": "subscribe", "bus", "topic", "filters": {key, type, q, header: [],
field: []}}, {"type": "filters", "filters": {...}}, {"type": "pause"}, {"type": "resume"}.
Server frames: {"type": "tail.state", "state", "skipped"}, {"type": "tail.messages",
"messages", "skipped"}, {"type": "tail.error", "detail"}.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.http import QueryDict

from eventhub import connections
from eventhub.bus import BusError
from eventhub.bus.filters import Filters
from eventhub.sockets import Budget, EventHubSocket
from eventstore import browse, tail


def _filters(kind: str, data) -> Filters:
    """The tail's filters from a frame, through the API's own parsing (FilterProblem names a bad one)."""
    params = QueryDict(mutable=True)
    if isinstance(data, dict):
        for name in ("key", "type", "q"):
            if isinstance(data.get(name), str) and data[name]:
                params[name] = data[name]
        for name in ("header", "field"):
            values = data.get(name)
            if isinstance(values, list):
                params.setlist(name, [v for v in values if isinstance(v, str) and v])
    return browse.parse_query(kind, params).filters


class BrowseTailConsumer(EventHubSocket):
    """One socket, one tailed topic at a time. Logged-in users only (every role reads)."""

    subscribed: tuple[str, str] | None = None
    group: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        self.filters = Filters()
        self.paused = False
        self.skipped = 0
        per_second = settings.EVENTHUB_TAIL_MAX_PER_S
        self.budget = Budget(per_second, per_second)
        await self.join_user_group()
        await self.accept()

    async def disconnect(self, code):
        await self._unsubscribe()
        await super().disconnect(code)

    async def _unsubscribe(self) -> None:
        if self.subscribed is not None:
            tail.leave(*self.subscribed)
            await self.leave(self.group)
            self.subscribed = self.group = None

    async def _error(self, detail: str) -> None:
        await self.send_json({"type": "tail.error", "detail": detail})

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "subscribe":
            await self._subscribe(content)
        elif kind == "filters" and self.subscribed is not None:
            try:
                self.filters = _filters(self.subscribed[0], content.get("filters"))
            except browse.FilterProblem as problem:
                await self._error(f"{problem.parameter}: {problem}")
        elif kind in ("pause", "resume"):
            self.paused = kind == "pause"
            await self._state("paused" if self.paused else "live")

    async def _subscribe(self, content: dict) -> None:
        bus, topic = content.get("bus"), content.get("topic")
        if bus not in browse.BUSES or not isinstance(topic, str) or not browse.valid_topic_name(bus, topic):
            await self._error("no such bus or topic")
            return
        try:
            filters = _filters(bus, content.get("filters"))
        except browse.FilterProblem as problem:
            await self._error(f"{problem.parameter}: {problem}")
            return
        try:
            exists = await database_sync_to_async(connections.bus(bus).topic_exists)(topic)
        except BusError as error:
            await self._error(f"the {bus} bus does not answer ({type(error).__name__})")
            return
        if not exists:
            await self._error(f"the {bus} bus has no topic {topic[:200]!r}")
            return
        await self._unsubscribe()
        self.filters, self.paused, self.skipped = filters, False, 0
        self.group = tail.join(bus, topic)
        self.subscribed = (bus, topic)
        await self.join(self.group)
        # "live" once the reader knows where the topic ends: every record written later reaches us.
        ready = await sync_to_async(tail.wait_ready, thread_sensitive=False)(bus, topic)
        await self._state("live" if ready else f"waiting for the {bus} bus")

    async def _state(self, state: str) -> None:
        await self.send_json({"type": "tail.state", "state": state, "skipped": self.skipped})

    async def browse_tail_state(self, message):
        if not self.paused:
            await self._state(message["state"])

    async def browse_tail(self, message):
        """A batch of records from the topic's reader: filter, limit, shape, send."""
        if self.subscribed is None:
            return
        kind, topic = self.subscribed
        keep, skipped_before = [], self.skipped
        for data in message["records"]:
            record = tail.message_to_record(topic, data)
            if not self.filters.matches(record):
                continue
            if self.paused or not self.budget.take():
                self.skipped += 1
                continue
            keep.append((record, data["size"]))
        if not keep:
            if self.skipped != skipped_before:
                await self.send_json({"type": "tail.messages", "messages": [], "skipped": self.skipped})
            return
        messages = await database_sync_to_async(browse.tail_messages)(
            kind, topic, keep, self.scope["user"], self.filters
        )
        await self.send_json({"type": "tail.messages", "messages": messages, "skipped": self.skipped})
