"""A real HTTP server on a free local port that counts the connections made to it.

    with CountingServer() as remote:
        schema = {"properties": {"a": {"$ref": remote.url("a.json")}}}
        ...  # register it, check it, validate against it
        assert remote.connections == 0

Every GET is answered with `{}`, a schema that accepts anything: what a validator
that fetches would take as permission. A test that finds 0 connections therefore
shows nothing was fetched, and tests/sdk/test_schemas.py shows, as a control, that
a validator which does fetch is counted.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        pass


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.connections = 0
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="counting-server", daemon=True)

    def verify_request(self, request, client_address) -> bool:
        with self._count_lock:
            self.connections += 1
        return True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)
