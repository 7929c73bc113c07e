"""Two Daphne processes on one Redis channel layer: one group_send reaches the sockets of both.

This is what lets EventHub run several web processes behind a load balancer:
the collector broadcasts each snapshot once, to the channel-layer group
"monitor", and every dashboard socket, whichever process holds it, gets it.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fault import (  # noqa: F401 - app_db, observed, procs: fixtures
    SocketClient,
    app_db,
    django_env,
    group_send,
    has_marker,
    marker_frame,
    observed,
    procs,
    start_daphne,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.scaleout]


def test_one_group_send_reaches_sockets_on_both_daphnes(procs, app_db, observed):  # noqa: F811
    redis = procs.redis()
    env = django_env(app_db.path, redis_url=redis.url)
    first = start_daphne(procs, env, name="daphne-a")
    second = start_daphne(procs, env, name="daphne-b")
    clients = [SocketClient(d.socket_url(), app_db.session_key, origin=d.url) for d in (first, second)]
    try:
        # The consumer joins the group before accepting and then sends the latest
        # snapshot: a first frame means this socket is in the group.
        for client in clients:
            wait_until(lambda c=client: c.frames_matching(lambda f: f.get("type") == "snapshot"), 20, "the first frame")
        assert redis.client().zcard("asgi:group:monitor") == 2  # one channel per Daphne socket

        marker = uuid.uuid4().hex
        sent = time.monotonic()
        group_send(redis.url, "monitor", marker_frame(marker))  # once
        for client in clients:
            wait_until(lambda c=client: c.frames_matching(has_marker(marker)), 10, "the broadcast frame on each socket")
        observed["fanout_s"] = time.monotonic() - sent
        assert [len(c.frames_matching(has_marker(marker))) for c in clients] == [1, 1]  # once each, not twice
    finally:
        for client in clients:
            client.close()
