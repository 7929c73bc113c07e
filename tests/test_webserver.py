"""The web server (eventhub/webserver.py): Daphne whose websockets speak permessage-deflate.

A real Daphne started as `make run` starts it (the launcher's options), and real clients:
one that offers permessage-deflate (as every browser does) and one that does not. Both
get the same frames; the first gets them in a fraction of the bytes on the wire.
"""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from eventhub.launcher import DAPHNE_OPTIONS
from eventhub.webserver import MAX_INFLATED_BYTES
from tests.fault import app_db, django_env, group_send, procs, start_daphne  # noqa: F401 (fixtures)


class _CountingSocket(socket.socket):
    """A TCP socket that counts the bytes it receives: what came over the wire."""

    received = 0

    def recv(self, size: int, *flags) -> bytes:
        data = super().recv(size, *flags)
        self.received += len(data)
        return data


def _daphne(procs, app_db):  # noqa: F811
    redis = procs.redis()
    env = django_env(app_db.path, redis_url=redis.url)
    return start_daphne(procs, env, options=DAPHNE_OPTIONS), redis


def _open(stack: ExitStack, daphne, session_key: str, compression: str | None):
    where = urlsplit(daphne.url)
    sock = _CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect((where.hostname, where.port))
    ws = stack.enter_context(
        connect(
            daphne.socket_url(),
            sock=sock,
            compression=compression,
            origin=daphne.url,
            additional_headers={"Cookie": f"sessionid={session_key}"},
            max_size=None,
        )
    )
    return ws, sock


def test_a_client_offering_deflate_gets_the_same_frames_in_fewer_bytes(procs, app_db):  # noqa: F811
    daphne, redis = _daphne(procs, app_db)
    with ExitStack() as stack:
        deflating, deflating_sock = _open(stack, daphne, app_db.session_key, "deflate")
        plain, plain_sock = _open(stack, daphne, app_db.session_key, None)
        assert "permessage-deflate" in deflating.response.headers.get("Sec-WebSocket-Extensions", "")
        assert plain.response.headers.get("Sec-WebSocket-Extensions") is None
        first = [json.loads(ws.recv(timeout=20)) for ws in (deflating, plain)]
        assert first[0] == first[1] and first[0]["type"] == "snapshot"

        # A frame like the monitor's: rows that repeat their keys.
        rows = [{"bus": "kafka", "group": f"group-{i:04d}", "topic": f"orders-{i % 50}", "lag": i} for i in range(3000)]
        text = json.dumps({"type": "snapshot", "snapshot": {"groups": rows}}, separators=(",", ":"))
        sockets = {deflating: deflating_sock, plain: plain_sock}
        before = {ws: sock.received for ws, sock in sockets.items()}
        group_send(redis.url, "monitor", {"type": "monitor.snapshot", "frame": text})
        assert deflating.recv(timeout=20) == plain.recv(timeout=20) == text
        wire = {ws: sock.received - before[ws] for ws, sock in sockets.items()}
        assert wire[plain] >= len(text)
        assert wire[deflating] < len(text) / 5, (wire, len(text))


def test_a_compressed_frame_that_inflates_past_the_cap_closes_only_that_socket(procs, app_db):  # noqa: F811
    """4 MiB of spaces deflate to a few KiB. Daphne runs with a 16 MiB message cap (large
    snapshots), so without the inflate cap the server would inflate all of it and only
    then close the socket, with a close frame. With it,
    the server drops the connection while inflating, before the app gets the message:
    no close frame comes back."""
    daphne, _ = _daphne(procs, app_db)
    with ExitStack() as stack:
        bomb, _ = _open(stack, daphne, app_db.session_key, "deflate")
        bomb.recv(timeout=20)
        bomb.send(" " * (4 * MAX_INFLATED_BYTES))
        try:
            bomb.recv(timeout=20)
        except ConnectionClosed as error:
            closed = error
        assert closed.rcvd is None, closed
        other, _ = _open(stack, daphne, app_db.session_key, "deflate")
        assert json.loads(other.recv(timeout=20))["type"] == "snapshot"
        assert daphne.get("/healthz")[0] == 200
