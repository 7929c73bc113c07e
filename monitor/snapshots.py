"""Where the latest monitor snapshot lives, and how it reaches open browser tabs.

The collector computes a snapshot once per tick; the snapshot API, a newly
connected websocket and `/metrics` read the stored copy, and every open tab gets
the same pre-encoded frame through the channel layer. Nothing here talks to the
bus, so the cost of a tick does not grow with the number of tabs.

Two stores, picked by ``EVENTHUB_CHANNEL_LAYER`` like the channel layer itself:

* ``redis``: plain keys under ``EVENTHUB_MONITOR_NAMESPACE`` (default
  ``eventhub:monitor``), so several Daphne processes and the ``run_monitor``
  process share one snapshot. Keys expire after an hour, so a stopped collector
  does not leave numbers behind forever.
* ``memory``: a dict in this process. Without Redis the loops run inside the web
  process (``eventhub.background``), which is then the only reader.

Each bus has its own collector loop; each stores its *part* (``save_part``) and
the merged snapshot is rebuilt from all parts (``monitor.collector.merge``).
A socket gets the whole snapshot when it connects or asks ("refresh"), and after
that only what changed, tick by tick (``publish``, monitor/deltas.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import msgspec
from django.conf import settings

from eventhub import sockets
from monitor import deltas

log = logging.getLogger(__name__)

MONITOR_GROUP = "monitor"  # the channel-layer group every dashboard socket joins
TTL_S = 3600


def namespace() -> str:
    return getattr(settings, "EVENTHUB_MONITOR_NAMESPACE", "eventhub:monitor")


def empty_snapshot() -> dict[str, Any]:
    """What the API answers before any collector has reported."""
    return {
        "at": None,
        "tick": 0,
        "tick_ms": 0.0,
        "buses": [],
        "topics": [],
        "groups": [],
        "services": [],
        "alerts": [],
        "dead_letters": {"inflow_per_min": 0.0, "by_topic": {}},
        "drift": {"undesigned_topics": [], "undesigned_groups": [], "silent_edges": []},
        "edges": [],
        # What traffic shows, designed or not (monitor/lineage.py).
        "observed": {"edges": []},
        # Per event type: events checked against a registered schema in 5 minutes, and how many failed.
        "validity": [],
    }


# --- stores --------------------------------------------------------------------


class _LocalStore:
    """In-process store: the web process runs the loops when there is no Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, str]] = {}
        self._counters: dict[str, int] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._values.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def get_many(self, keys: list[str]) -> list[str | None]:
        return [self.get(key) for key in keys]

    def set(self, key: str, value: str, ttl_s: float = TTL_S) -> None:
        with self._lock:
            self._values[key] = (time.monotonic() + ttl_s, value)

    def incr(self, key: str) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key]


class _RedisStore:
    def get(self, key: str) -> str | None:
        from eventhub import connections

        value = connections.redis().get(key)
        return None if value is None else value.decode("utf-8")

    def get_many(self, keys: list[str]) -> list[str | None]:
        from eventhub import connections

        return [None if v is None else v.decode("utf-8") for v in connections.redis().mget(keys)]

    def set(self, key: str, value: str, ttl_s: float = TTL_S) -> None:
        from eventhub import connections

        connections.redis().set(key, value, ex=int(ttl_s))

    def incr(self, key: str) -> int:
        from eventhub import connections

        return int(connections.redis().incr(key))


_local = _LocalStore()
_redis_store = _RedisStore()


def uses_redis() -> bool:
    return settings.EVENTHUB_CHANNEL_LAYER == "redis"


def store() -> _LocalStore | _RedisStore:
    return _redis_store if uses_redis() else _local


# --- the JSON ----------------------------------------------------------------------

# At 5,000 group rows a tick writes its part and the snapshot (megabytes each, twice when
# the topics go out first) and reads the parts back: the standard library's dumps and loads
# took about 0.1 s of it, msgspec a fifth of that (docs/performance.md). Both are safe to
# share between threads: each call keeps its state to itself.
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def dumps(value: Any) -> str:
    """Compact JSON text, as the store and the sockets carry it: text beyond ASCII as it is
    (not \\u-escaped), a NaN or an infinity as null (which any JSON reader takes)."""
    return _encode(value).decode("utf-8")


def loads(text: str | bytes) -> Any:
    return _decode(text)


# --- parts and snapshot ----------------------------------------------------------

KINDS = ("kafka", "redis")


def save_part(kind: str, part: dict[str, Any]) -> None:
    store().set(f"{namespace()}:part:{kind}", dumps(part))


def load_parts() -> dict[str, dict[str, Any]]:
    keys = [f"{namespace()}:part:{kind}" for kind in KINDS]
    return {kind: loads(raw) for kind, raw in zip(KINDS, store().get_many(keys), strict=True) if raw}


def next_tick() -> int:
    """A counter shared by every collector: strictly increasing snapshot numbers."""
    return store().incr(f"{namespace()}:tick")


def save(snapshot: dict[str, Any]) -> str:
    """Store the snapshot; returns its JSON text (reused for the websocket frame)."""
    text = dumps(snapshot)
    store().set(f"{namespace()}:snapshot", text)
    return text


def stored_tick() -> int | None:
    """The tick of the stored snapshot, without reading the snapshot."""
    text = store().get(f"{namespace()}:snapshot-tick")
    return int(text) if text is not None else None


def load_json() -> str:
    """The latest snapshot as JSON text (an empty snapshot before the first tick)."""
    text = store().get(f"{namespace()}:snapshot")
    return text if text is not None else dumps(empty_snapshot())


def load() -> dict[str, Any]:
    return loads(load_json())


def frame(snapshot_json: str) -> str:
    """The websocket frame for a snapshot, built without decoding it again."""
    return '{"type":"snapshot","snapshot":' + snapshot_json + "}"


# --- fan-out ---------------------------------------------------------------------

# Held while a snapshot is merged, numbered and sent (collector._publish): the
# collectors of both buses run in one process and take turns.
publishing = threading.Lock()
# Per store: the snapshot this process sent last, the base of its next delta.
_last_sent: dict[str, dict[str, Any]] = {}


def where() -> str:
    """Which store and channel layer this process publishes to: what its state is kept by."""
    return f"{settings.EVENTHUB_CHANNEL_LAYER}:{namespace()}"


def _sent_last() -> dict[str, Any] | None:
    """The snapshot the sockets hold: the last one this process sent, unless another process
    sent one since (two monitor processes, one bus each): then the stored one."""
    base = _last_sent.get(where())
    stored = stored_tick()
    if stored is not None and (base is None or base["tick"] != stored):
        base = load()
    return base


def publish_rows(kind: str, field: str, rows: list[dict[str, Any]], at: str) -> bool:
    """Send one bus's new rows of `field` (its topics) ahead of the rest of its tick.

    The snapshot the sockets hold, with that bus's rows of `field` replaced and the
    new `at`, goes out as the next tick, like any other. Nothing is sent when there is
    no snapshot yet or when none of those rows changed; returns whether it was sent.
    """
    base = _sent_last()
    if base is None or not base.get("at"):
        return False
    kept, before = [], []
    for row in base.get(field) or []:
        (before if row.get("bus") == kind else kept).append(row)
    if deltas.same_rows(before, rows, deltas.KEYS[field]):
        return False
    # Copies: the collector goes on filling its rows (a topic's groups_status) after this.
    publish({**base, field: kept + [dict(row) for row in rows], "at": at, "tick": next_tick()}, base)
    return True


def publish(snapshot: dict[str, Any], base: dict[str, Any] | None = None) -> None:
    """Store the snapshot and send it to every dashboard socket.

    Sockets get what changed since the snapshot sent before (monitor/deltas.py),
    or the whole snapshot when there is none or when the delta would not be
    smaller. The base is the last snapshot this process sent, unless another
    process sent one since (`base`, when the caller has just read it). A socket that
    missed the base asks for a full one.
    """
    base = base if base is not None else _sent_last()
    text = save(snapshot)
    store().set(f"{namespace()}:snapshot-tick", str(snapshot["tick"]))
    _last_sent[where()] = snapshot
    if base is not None and base.get("at") and snapshot.get("at") and base["tick"] < snapshot["tick"]:
        delta = dumps(deltas.diff(base, snapshot))
        if len(delta) < len(text):
            message = {"type": "monitor.snapshot", "frame": delta, "delta": True, "tick": snapshot["tick"]}
            sockets.send_to_group(MONITOR_GROUP, message)
            return
    broadcast(text, snapshot["tick"])


def broadcast(snapshot_json: str, tick: int | None = None) -> None:
    """Send one full snapshot frame to every dashboard socket (from the collector's thread).

    The tick beside the frame lets a socket's process tell whether it has seen this
    snapshot without decoding it (monitor/consumers.py, pages of the groups table)."""
    sockets.send_to_group(MONITOR_GROUP, {"type": "monitor.snapshot", "frame": frame(snapshot_json), "tick": tick})


# --- leases ----------------------------------------------------------------------


class Lease:
    """A named lock that one process holds while it does a job; others wait to take over.

    With Redis it is a redis-py ``Lock`` with a TTL, renewed by the holder on
    every tick (``hold``): when the holder dies, the key expires and the next
    ``hold`` of a waiting process gets it. Without Redis it is a lock of this
    process. ``hold`` never blocks.
    """

    _local_owners: dict[str, object] = {}
    _local_guard = threading.Lock()

    def __init__(self, name: str, ttl_s: float) -> None:
        self.name = f"{namespace()}:lease:{name}"
        self.ttl_s = max(1.0, ttl_s)
        self._redis_lock = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def hold(self) -> bool:
        """Take the lease or renew it; True while this object holds it."""
        if not uses_redis():
            with Lease._local_guard:
                owner = Lease._local_owners.setdefault(self.name, self)
            self._held = owner is self
            return self._held
        import redis as redis_lib

        from eventhub import connections

        try:
            if self._held and self._redis_lock is not None:
                self._redis_lock.extend(self.ttl_s, replace_ttl=True)
                return True
            lock = connections.redis().lock(self.name, timeout=self.ttl_s, blocking=False)
            self._held = bool(lock.acquire(blocking=False))
            self._redis_lock = lock if self._held else None
        except redis_lib.exceptions.LockError:
            log.warning("lease %s was lost (expired while held); waiting to take it again", self.name)
            self._held, self._redis_lock = False, None
        except redis_lib.RedisError as error:
            log.warning("lease %s: Redis does not answer (%s)", self.name, error)
            self._held, self._redis_lock = False, None
        return self._held

    def release(self) -> None:
        if not uses_redis():
            with Lease._local_guard:
                if Lease._local_owners.get(self.name) is self:
                    del Lease._local_owners[self.name]
        elif self._redis_lock is not None:
            import redis as redis_lib

            try:
                self._redis_lock.release()
            except redis_lib.RedisError:
                pass
        self._held, self._redis_lock = False, None
