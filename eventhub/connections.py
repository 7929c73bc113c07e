"""The process's clients for Redis and the bus, built lazily from settings.

One place decides which backend a feature talks to: swap EVENTHUB_BUS and the
SDK producers, the collector and the ingester follow.
"""

from __future__ import annotations

import threading

from django.conf import settings

from eventhub.bus import Bus, open_bus

_lock = threading.Lock()
_buses: dict[str, Bus] = {}
_redis = None


def redis():
    """A redis-py client (connection pool; connects on first command)."""
    global _redis
    if _redis is None:
        import redis as redis_lib

        _redis = redis_lib.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis


def bus(kind: str | None = None) -> Bus:
    """The shared adapter for `kind` ("kafka" or "redis"; default EVENTHUB_BUS)."""
    kind = kind or settings.EVENTHUB_BUS
    with _lock:
        if kind not in _buses:
            _buses[kind] = open_bus(kind, **bus_options(kind))
        return _buses[kind]


def bus_options(kind: str) -> dict:
    if kind == "kafka":
        return {"bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS}
    return {"url": settings.REDIS_URL}


def reset() -> None:
    """Close and forget every client (tests; after a fork)."""
    global _redis
    with _lock:
        for adapter in _buses.values():
            adapter.close()
        _buses.clear()
        _redis = None
