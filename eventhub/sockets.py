"""What every EventHub websocket does besides its own job.

- Inbound frames are capped: over MAX_INBOUND_BYTES closes with 1009 (message too big), a
  binary frame with 1003 (unsupported data), text that is not JSON with 1007 (invalid
  payload), more than INBOUND_BUDGET frames with 1008 (policy violation). Daphne accepts
  large frames because it sends large snapshots; the cap on what clients send is here.
- Each socket joins its user's group (`user_group`) in connect(). Logging out, being
  deactivated or deleted sends `user.signed_out` there after commit, and the socket closes
  with 4401, the code an anonymous handshake is refused with. What no signal reports (the
  session expired or deleted, the password changed elsewhere) a periodic check catches.
- `send_to_group` is the one way anything sends to sockets: from a request, the collector,
  the dead-letter ingester or a redrive job, whatever the thread and the channel layer.
- `RedisChannelLayer` is the channel layer on Redis (settings.redis_channel_layer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.auth import get_user
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis import core as channels_redis
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

log = logging.getLogger(__name__)

MAX_INBOUND_BYTES = 4096
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SIGNED_OUT = 4401


class Budget:
    """A token bucket: `burst` at once, then `per_second` on average. One per socket."""

    def __init__(self, burst: float, per_second: float, clock: Callable[[], float] = time.monotonic):
        self.burst, self.per_second, self.clock = burst, per_second, clock
        self.tokens, self.at = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


# --- sending to sockets -------------------------------------------------------------


class RedisChannelLayer(channels_redis.RedisChannelLayer):
    """channels_redis' layer, waiting for a socket's next message in shorter blocking pops.

    A socket waits with a blocking pop of `brpop_timeout` seconds, 5 upstream, and redis-py
    gives up on any reply after the connection's read timeout, 5 s by default. On a socket
    with nothing to say for 5 s both ran out together; when the client's ran out first, the
    consumer died with redis' TimeoutError and the browser's socket closed (every 5 s on a
    quiet dead-letter list). Here a pop waits 2 s: the server answers an idle one 3 s
    before the client would give up, and every other command keeps its 5 s bound (a frozen
    Redis holds a request that broadcasts no longer than that).
    """

    brpop_timeout = 2


# The loop of the ASGI server, for the in-memory channel layer (see `send_to_group`).
_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop() -> None:
    """Called by every socket as it connects, inside the ASGI server's event loop."""
    global _server_loop
    _server_loop = asyncio.get_running_loop()


def send_to_group(group: str, message: dict[str, Any]) -> None:
    """`group_send` from any thread (a request, the collector, the ingester, a job), whatever the layer.

    The in-memory channel layer is a set of asyncio queues owned by the server's loop;
    feeding them from another thread's loop would not wake the consumers. So with that
    layer the send is scheduled on the server loop, which the first socket to connect
    made known (`remember_server_loop`); before that nobody is listening. The Redis
    layer works from any thread. A layer that is down or slow must not fail the caller:
    live updates are best effort, and the pages can always be reloaded.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if not isinstance(layer, InMemoryChannelLayer):
            async_to_sync(layer.group_send)(group, message)
            return
        loop = _server_loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # called from inside the server loop: do not wait on ourselves
            loop.create_task(layer.group_send(group, message))
            return
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=5)
    except Exception as error:  # noqa: BLE001 - see the docstring
        log.warning("sending to socket group %s failed: %s", group, type(error).__name__)


class EventHubSocket(AsyncJsonWebsocketConsumer):
    """Base of the socket consumers. A subclass's connect() checks the user, then calls
    `join_user_group()` before accept(), and joins its channel-layer groups with `join`;
    its disconnect() calls super().disconnect(), which leaves them.

    While a socket is open, `_keep` checks its session every SESSION_CHECK_S and makes its
    group memberships again before the channel layer drops them.
    """

    # Frames per socket: 30 at once, 10 per second after that. Pages send a handful at most.
    INBOUND_BUDGET = (30, 10.0)
    # Signing out, deactivating or deleting a user closes their sockets at once (signals, below).
    # What no signal reports is caught about this often (within a quarter either way): the
    # session expired, or deleted with the session table, or its password changed elsewhere
    # (Django then refuses the session).
    SESSION_CHECK_S = 300.0
    closing = False
    _memberships: set[str] | None = None
    _keeper: asyncio.Task | None = None

    async def join_user_group(self) -> None:
        remember_server_loop()
        await self.join(user_group(self.scope["user"].pk))

    async def join(self, group: str) -> None:
        """Join a channel-layer group for as long as this socket lives.

        Both channel layers drop a membership `group_expiry` seconds after it was made (a
        day by default), to forget the sockets of a server that died without leaving. A
        dashboard open for longer (a wall screen) then got no more frames while it still
        said "live", and signing out no longer closed it: `_keep` makes the memberships
        again every quarter of that.
        """
        await self.channel_layer.group_add(group, self.channel_name)
        if self._memberships is None:
            self._memberships = set()
        self._memberships.add(group)
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def leave(self, group: str) -> None:
        if self._memberships is not None:
            self._memberships.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every_s = getattr(self.channel_layer, "group_expiry", 86400) / 4
        check_at = loop.time() + self._check_interval_s()
        renew_at = loop.time() + renew_every_s
        while True:
            await asyncio.sleep(max(0.0, min(check_at, renew_at) - loop.time()))
            try:
                if loop.time() >= check_at:
                    check_at = loop.time() + self._check_interval_s()
                    if not await self._session_is_current():
                        await self.close(code=CLOSE_SIGNED_OUT)
                        return
                if loop.time() >= renew_at:
                    renew_at = loop.time() + renew_every_s
                    for group in list(self._memberships or ()):
                        await self.channel_layer.group_add(group, self.channel_name)
            except Exception as error:  # noqa: BLE001 - the database or Redis away: the next round tries again
                log.warning("socket upkeep failed: %s", type(error).__name__)

    def _check_interval_s(self) -> float:
        # Spread: the tabs that all reconnected after a restart must not all query at once
        # (the checks share the one thread that Channels gives database work).
        return self.SESSION_CHECK_S * random.uniform(0.75, 1.25)

    async def _session_is_current(self) -> bool:
        """Whether the session this socket was opened with still signs in the same user."""
        key = self.scope["session"].session_key
        if key is None:
            return False
        fresh = import_module(settings.SESSION_ENGINE).SessionStore(key)  # not the one cached at connect
        user = await get_user({"session": fresh})
        return user.is_authenticated and user.pk == self.scope["user"].pk

    async def disconnect(self, code):
        for group in list(self._memberships or ()):
            await self.leave(group)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:  # however the consumer ends (a layer error skips disconnect)
            if self._keeper is not None:
                self._keeper.cancel()

    async def close(self, code=None, reason=None):
        self.closing = True  # frames already queued behind the close are not read
        await super().close(code=code, reason=reason)

    async def dispatch(self, message):
        # Inbound frames skip Channels' close_old_connections hop to the one sync thread
        # (see MonitorConsumer.dispatch): a flood of frames must not queue work there.
        # Handlers reach the database through database_sync_to_async, which does it itself.
        if message.get("type") == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def websocket_receive(self, message):
        if self.closing:
            return
        text = message.get("text")
        if text is None:
            await self.close(code=CLOSE_UNSUPPORTED_DATA if message.get("bytes") is not None else CLOSE_INVALID_PAYLOAD)
            return
        if len(text) > MAX_INBOUND_BYTES or len(text.encode("utf-8")) > MAX_INBOUND_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if not self._inbound_budget().take():
            await self.close(code=CLOSE_POLICY_VIOLATION)
            return
        try:
            content = json.loads(text)
        except ValueError:
            await self.close(code=CLOSE_INVALID_PAYLOAD)
            return
        await self.receive_json(content)

    def _inbound_budget(self) -> Budget:
        if not hasattr(self, "_inbound"):
            self._inbound = Budget(*self.INBOUND_BUDGET)
        return self._inbound

    async def user_signed_out(self, message):
        await self.close(code=CLOSE_SIGNED_OUT)


# --- closing a user's sockets --------------------------------------------------------


def close_sockets_of(user_id: int) -> None:
    """After the current transaction commits, close every socket of this user, in every process."""
    transaction.on_commit(lambda: _send_signed_out(user_id))


def _send_signed_out(user_id: int) -> None:
    send_to_group(user_group(user_id), {"type": "user.signed_out"})


def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        close_sockets_of(user.pk)


def _user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    close_sockets_of(instance.pk)


def _user_deleted(sender, instance, **kwargs) -> None:
    close_sockets_of(instance.pk)


def connect_signals(user_model) -> None:
    """Called once from EventHubConfig.ready(): these reach every way a session can end."""
    user_logged_out.connect(_logged_out, dispatch_uid="eventhub-sockets-logout")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="eventhub-sockets-user-saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="eventhub-sockets-user-deleted")
