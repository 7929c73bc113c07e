"""Redis restarted under a running web process: pages keep serving, live sockets come back.

Daphne uses a PRIVATE redis-server (started here on a free port) as its channel
layer and snapshot store. SIGKILL it, then start it again on the same port
(empty: nothing persisted, as after a crash without persistence):
1. while Redis is down, a logged-in /monitor/ still answers 200 (the page falls
   back to "waiting for the live connection");
2. /healthz says the truth meanwhile (503, Redis required);
3. the websocket client, which reconnects like the dashboard, is connected again
   by itself once Redis is back, and a group_send to "monitor" reaches it: the
   group membership lost with Redis' memory was re-made by the reconnect;
4. it reconnected once: one socket closed, one new one opened, no flapping.

How long each step took is printed and recorded (`observed`), for docs/faults.md;
the only deadlines are the waits', which catch a hang.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fault import (
    SocketClient,
    django_env,
    group_send,
    has_marker,
    marker_frame,
    start_daphne,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.fault

# A page render while Redis is down: the snapshot read gives up after 2 s, so a page still
# waiting after this long hangs.
PAGE_HANG_S = 15.0


def test_pages_serve_and_socket_reconnects_across_a_redis_restart(procs, app_db, observed):
    redis = procs.redis()
    daphne = start_daphne(procs, django_env(app_db.path, redis_url=redis.url))
    client = SocketClient(daphne.socket_url(), app_db.session_key, origin=daphne.url)
    try:
        wait_until(lambda: client.opens == 1 and client.frames, 20, "the socket to open and get its first frame")
        status, _ = daphne.get("/monitor/", app_db.session_key)
        assert status == 200

        redis.kill()
        down_at = time.monotonic()
        started = time.monotonic()
        status, body = daphne.get("/monitor/", app_db.session_key, timeout_s=PAGE_HANG_S)
        observed["page_while_down_s"] = time.monotonic() - started
        assert status == 200
        assert 'id="monitor-connection"' in body  # the real dashboard, not an error page
        assert daphne.get("/healthz")[0] == 503
        # The socket notices: the channel layer under it is gone.
        wait_until(lambda: client.closes >= 1, 15, "the socket to close while Redis is down")
        observed["socket_closed_after_s"] = time.monotonic() - down_at

        redis.start()  # same port, empty
        back_at = time.monotonic()
        status, _ = daphne.get("/monitor/", app_db.session_key)
        assert status == 200
        wait_until(lambda: daphne.get("/healthz")[0] == 200, 15, "/healthz to answer 200 again")
        wait_until(lambda: client.opens >= 2 and client.state == "live", 30, "the client to reconnect by itself")
        observed["reconnected_after_s"] = time.monotonic() - back_at

        # Frames flow again: the reconnect re-joined the group on the new Redis.
        marker = uuid.uuid4().hex
        group_send(redis.url, "monitor", marker_frame(marker))
        wait_until(lambda: client.frames_matching(has_marker(marker)), 10, "a broadcast after the restart")
        # Counted, not timed: a handshake cannot succeed while Redis is down (the consumer joins
        # its group before it accepts), so the opens are the first socket and the reconnect,
        # whatever the backoff; a third would be a socket dropped after Redis came back.
        assert (client.opens, client.closes) == (2, 1), "the socket flapped after Redis came back"
    finally:
        client.close()
