"""Liveness reports: one small JSON record per interval on the heartbeat topic.

The monitor reads them to show which instances of which service are alive and
what they did since they started. A heartbeat that cannot be sent is logged and
skipped; it never stops the producer or consumer it reports on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable

from eventhub.bus.base import Bus
from eventhub.sdk.headers import (
    CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    heartbeat_topic,
    utc_now_iso,
)

log = logging.getLogger(__name__)

COUNTERS = ("published", "handled", "failed", "dead_lettered")
DEFAULT_INTERVAL_S = 10.0
_LAST_ERROR_MAX = 300


def instance_id() -> str:
    """hostname-pid-shortuuid: unique per process, readable on a dashboard."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """Counters of one producer or consumer, published every `interval_s` from a daemon thread."""

    def __init__(
        self,
        bus: Bus,
        service: str,
        role: str,
        *,
        group: str | None = None,
        topics: Iterable[str] = (),
        interval_s: float = DEFAULT_INTERVAL_S,
        instance: str | None = None,
    ):
        if role not in ("producer", "consumer"):
            raise ValueError(f"role must be 'producer' or 'consumer', not {role!r}")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.bus = bus
        self.service = service
        self.role = role
        self.group = group
        self.topics = list(topics)
        self.interval_s = interval_s
        self.instance = instance or instance_id()
        self.topic = heartbeat_topic(bus.kind)
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._last_error: str | None = None
        self._topic_ready = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._counts[counter] += n

    def error(self, error: BaseException | str) -> None:
        """Remember the last error: its class and the start of its message, not a payload."""
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        with self._lock:
            self._last_error = error[:_LAST_ERROR_MAX]

    def snapshot(self) -> dict:
        with self._lock:
            counts = dict(self._counts)
            last_error = self._last_error
        return {
            "service": self.service,
            "instance": self.instance,
            "role": self.role,
            "group": self.group,
            "topics": self.topics,
            **counts,
            "last_error": last_error,
            "at": utc_now_iso(),
            "interval_s": self.interval_s,
        }

    def beat(self) -> None:
        """Publish one heartbeat now."""
        if not self._topic_ready:
            self.bus.create_topic(self.topic)  # brokers may not auto-create topics
            self._topic_ready = True
        body = json.dumps(self.snapshot(), separators=(",", ":")).encode("utf-8")
        self.bus.publish(
            self.topic,
            body,
            key=self.service.encode("utf-8"),
            headers=[(CONTENT_TYPE, JSON_CONTENT_TYPE.encode())],
        )

    def start(self) -> Heartbeat:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"eventhub-heartbeat-{self.service}", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, then send a last heartbeat so the final counts are seen."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout_s)
        self._thread = None
        self._safe_beat()

    def _run(self) -> None:
        # First beat at once, so a new instance shows up without waiting an interval.
        self._safe_beat()
        while not self._stop.wait(self.interval_s):
            self._safe_beat()

    def _safe_beat(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # noqa: BLE001 - a heartbeat must never take its owner down
            log.warning(
                "heartbeat of %s (%s) not sent: %s",
                self.service,
                self.instance,
                type(exc).__name__,
            )
