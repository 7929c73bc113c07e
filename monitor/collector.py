"""The collector: once per tick, read a bus, compute the dashboard's numbers, fan them out.

One ``Collector`` per bus kind, each in its own loop (``run``), so a broker that
hangs does not stall the other bus. Only one process collects a bus at a time: the
loop renews a lease (``snapshots.Lease``: a Redis lock with a TTL of a few ticks,
or a lock of this process without Redis) before every tick; a second collector
waits and takes over when the holder dies.

A tick (``Collector.tick``, which tests call directly) does, in order:

1. Read the bus in a handful of batched calls: topics, end offsets of all topics,
   groups with their state, committed offsets of every group (Kafka: end offsets,
   committed offsets, DescribeGroups; Redis: XINFO STREAM/GROUPS/CONSUMERS and
   XPENDING, through the adapter). Any failure marks the bus down (``up`` false and
   the error) and the next tick simply tries again; a topic deleted between two
   calls is skipped.
2. Read new heartbeats from the SDK's heartbeat topic and upsert ``Heartbeat`` rows.
3. Keep the offsets in memory (``rates.History``; Burrow samples) and compute per
   topic the produce rate, per group×topic the consume rate, lag in messages, lag
   in seconds, time to drain and Burrow status; dead-letter inflow; per designed
   edge its live numbers and how long it has been silent; drift from the design.
   Topics first: on a bus with many groups (``EARLY_TOPICS_ROWS``), the topic rows
   are sent ahead of the groups, as a tick of their own.
4. Evaluate alert rules (``monitor.alerts``) and open/resolve alerts.
5. Store this bus's *part*, merge all parts into the snapshot, store it and send it
   once to the channel-layer group every dashboard socket is in.
6. Write history samples; every ``MAINTAIN_EVERY_TICKS`` ticks roll up and apply
   retention (under the ``rollup`` lease). The loop (``history_thread``) hands the
   samples to a writer thread and goes on (``history.Writer``): at 6,000 rows a tick
   the write is a fifth of a second the tick no longer waits for (the writer's thread is
   niced: it comes after the tick).

Lag in seconds is explained in ``monitor/rates.py`` and ``docs/monitor.md``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection

from eventhub import background
from eventhub.bus import Bus, BusError, GroupInfo, UnknownTopic, open_bus
from eventhub.sdk.headers import is_dead_letter_topic
from eventhub.sdk.payload import PayloadDecodeError, decode_json
from monitor import alerts, history, rates, snapshots
from monitor.burrow import Judge, Status

log = logging.getLogger(__name__)

RATE_WINDOW_S = 30.0
"""Rates are averaged over this many seconds of offsets. Committed offsets are kept in
memory for this long only: nothing else reads them."""

HISTORY_S = 300.0
"""How far back end offsets are kept in memory to date the oldest unconsumed message."""

BURROW_WINDOW_S = 120.0
"""Burrow's sliding window: a group is judged on how its offsets moved in this time."""

# What the collector holds in memory is bounded by these windows, not by uptime: per
# partition one end-offset point per tick for HISTORY_S; per group x partition one
# committed-offset point per tick for RATE_WINDOW_S and one Burrow sample per tick for
# BURROW_WINDOW_S. A series with no point inside its window is forgotten, so deleted
# topics and groups do not pile up. At 500 topics x 100 groups (1,000 group x partition
# pairs) and a 1 s tick that is about 20 MB once the windows are full, reached after
# HISTORY_S (docs/performance.md); tests/monitor/test_collector_memory.py pins the bounds.

SILENT_EDGE_S = 300.0
"""A designed edge (a producer or a consumer of an event) with no traffic for longer
than this is listed in ``drift.silent_edges``: the design says messages flow there,
the bus says nothing moved. A producer edge is silent while its topic's end offset
stands still; a consumer edge while its group's committed offset on the topic
stands still. Silence is counted from when this collector started when it has seen
no movement since (history before a restart is not consulted)."""

EARLY_TOPICS_ROWS = 2_000
"""From this many group x topic rows (last tick's), the topic rows go out first, as a frame
of their own: judging the groups takes about 60 us a row, so a new record's end offset
then reaches the dashboards that much sooner (a few tenths of a second at 5,000 rows).
Below it, one frame a tick."""

DESIGN_TTL_S = 5.0
"""The design (topics, groups, edges, rules) is read from the database at most this often."""

LEASE_TICKS = 5
MAINTAIN_EVERY_TICKS = 30
HEARTBEAT_MISSES = 3
"""A service instance is down after this many heartbeat intervals without one."""

HEARTBEAT_GROUP = "eventhub-monitor-heartbeats"
HEARTBEAT_MAX_BYTES = 256 * 1024
HEARTBEAT_MAX_DEPTH = 8
"""A heartbeat is a flat object (a list of topics at most); anything bigger or deeper is skipped."""
INTERNAL_TOPIC_PREFIXES = ("__",)
"""Broker-internal topics (``__consumer_offsets``, ``__transaction_state``...)."""
INTERNAL_GROUP_PREFIXES = ("eventhub-", "eventhub.", "eventhub:")
"""EventHub's own consumer groups (heartbeat reader, dead-letter ingester...)."""

REPLACE_BUS_AFTER_FAILURES = 3


class _HeartbeatReader:
    """Reads the heartbeat topic in a thread of its own and keeps what it read for the next tick.

    A group member must keep polling to join and stay in its group: polled only for a
    moment once per tick, a Kafka consumer never completes the join (Tansu gives a joining
    member about half its session timeout) and no heartbeat is ever read. Heartbeats are
    committed as soon as they are buffered: losing a few on a crash costs one interval.
    """

    def __init__(self, bus: Callable[[], Bus], group: str, topic: str) -> None:
        self.error: BaseException | None = None
        self._records: deque = deque(maxlen=20_000)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(bus, group, topic), name=f"heartbeats-{topic}", daemon=True
        )
        self._thread.start()

    def _run(self, bus: Callable[[], Bus], group: str, topic: str) -> None:
        try:
            consumer = bus().consumer(group, [topic], client_id="eventhub-monitor")
        except BusError as error:
            self.error = error
            return
        try:
            while not self._stop.is_set():
                batch = consumer.poll(0.5, 1000)
                if batch:
                    self._records.extend(batch)
                    consumer.commit(batch)
        except BusError as error:
            self.error = error
        finally:
            consumer.close()

    def drain(self) -> list:
        records = []
        while self._records:
            records.append(self._records.popleft())
        return records

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def default_heartbeat_group() -> str:
    """One heartbeat reader group per EventHub installation (its monitor namespace).

    Two installations watching one Kafka cluster (staging and production EventHub, or
    test apps sharing a broker) would otherwise split the heartbeats between them.
    """
    namespace = settings.EVENTHUB_MONITOR_NAMESPACE
    if namespace == "eventhub:monitor":
        return HEARTBEAT_GROUP
    return f"{HEARTBEAT_GROUP}.{re.sub(r'[^A-Za-z0-9._-]', '.', namespace)}"


def heartbeat_topic(kind: str) -> str:
    from eventhub.sdk.headers import heartbeat_topic as sdk_heartbeat_topic

    return sdk_heartbeat_topic(kind)


def is_internal_topic(kind: str, name: str) -> bool:
    return name.startswith(INTERNAL_TOPIC_PREFIXES) or name == heartbeat_topic(kind)


def is_internal_group(name: str) -> bool:
    return name.startswith(INTERNAL_GROUP_PREFIXES)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- the design ------------------------------------------------------------------


@dataclass
class Design:
    """What the designer says lives on one bus, in the shapes a tick needs."""

    topics: dict[str, str] = field(default_factory=dict)  # address -> display name
    dead_letter_topics: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    pairs: set[tuple[str, str]] = field(default_factory=set)  # (group, topic address)
    producers: list[dict] = field(default_factory=list)  # edge_id, topic, service, event
    consumers: list[dict] = field(default_factory=list)  # edge_id, topic, group, service, event
    rules: list[alerts.Rule] = field(default_factory=list)


def load_design(kind: str) -> Design:
    from designer.models import Consumer, Producer, Topic

    design = Design()
    for address, name, dead_letter in Topic.objects.filter(bus=kind).values_list(
        "address", "name", "dead_letter_topic"
    ):
        design.topics[address] = name
        if dead_letter:
            design.dead_letter_topics.add(dead_letter)
    for pk, topic, service, event in Producer.objects.filter(event_type__topic__bus=kind).values_list(
        "pk", "event_type__topic__address", "service__name", "event_type__name"
    ):
        design.producers.append({"edge_id": f"producer:{pk}", "topic": topic, "service": service, "event": event})
    for pk, topic, group, service, event in Consumer.objects.filter(event_type__topic__bus=kind).values_list(
        "pk", "event_type__topic__address", "group", "service__name", "event_type__name"
    ):
        design.consumers.append(
            {"edge_id": f"consumer:{pk}", "topic": topic, "group": group, "service": service, "event": event}
        )
        design.groups.add(group)
        design.pairs.add((group, topic))
    design.rules = alerts.load_rules()
    return design


# --- reading the bus -------------------------------------------------------------


@dataclass
class Reading:
    """One tick's raw view of a bus."""

    ends: dict[str, dict[int, int]]
    groups: dict[str, GroupInfo]
    committed: dict[str, dict[str, dict[int, int | None]]]  # group -> topic -> partition -> offset


def _end_offsets(bus: Bus, names: list[str]) -> dict[str, dict[int, int]]:
    """End offsets of all topics in one batch; a topic deleted meanwhile is skipped."""
    try:
        return bus.end_offsets_many(names)
    except UnknownTopic:
        pass
    # Something vanished between list_topics and now: list again, then go one by one.
    names = [t.name for t in bus.list_topics()]
    try:
        return bus.end_offsets_many(names)
    except UnknownTopic:
        ends = {}
        for name in names:
            try:
                ends[name] = bus.end_offsets(name)
            except UnknownTopic:
                continue
        return ends


def _committed(bus: Bus, groups: dict[str, GroupInfo], ends: dict[str, dict[int, int]]) -> dict:
    """Committed offsets of every group on every topic it has committed on or is assigned.

    The offsets the group listing read already (Kafka), else one batched
    ``committed_offsets_many`` (Redis: two pipelines); when a topic vanishes in the middle of it, one
    ``committed_offsets`` per group and topic, skipping what is gone.
    """
    if not groups:
        return {}
    if all(info.committed is not None for info in groups.values()):  # read with the listing
        return {g: {t: dict(p) for t, p in info.committed.items() if t in ends} for g, info in groups.items()}
    try:
        found = bus.committed_offsets_many(sorted(groups))
        return {g: {t: dict(p) for t, p in topics.items() if t in ends} for g, topics in found.items()}
    except UnknownTopic:
        pass
    committed: dict[str, dict[str, dict[int, int | None]]] = {}
    for name, info in groups.items():
        per_topic = committed.setdefault(name, {})
        for topic in info.topics:
            if topic not in ends:
                continue
            try:
                per_topic[topic] = bus.committed_offsets(name, topic)
            except UnknownTopic:
                continue
    return committed


def read_bus(bus: Bus, kind: str) -> Reading:
    names = [t.name for t in bus.list_topics()]
    # The groups first (on Kafka the listing reads their committed offsets, the longest
    # read at a large cluster), the end offsets last: what a dashboard shows of a new
    # record is as fresh as the tick can make it, and on Kafka a lag is never understated.
    groups = {g.group: g for g in bus.list_groups() if not is_internal_group(g.group)}
    ends = _end_offsets(bus, names)
    return Reading(ends, groups, _committed(bus, groups, ends))


# --- merging parts ---------------------------------------------------------------


def merge(parts: dict[str, dict[str, Any]], now: float, stale_after_s: float) -> dict[str, Any]:
    """One snapshot from the latest part of each bus (plain function).

    A part older than `stale_after_s` means that bus's collector stopped: the
    bus is shown down with that reason and its numbers are left out.
    """
    snapshot = snapshots.empty_snapshot()
    services: dict[str, dict[str, Any]] = {}
    for kind in snapshots.KINDS:
        part = parts.get(kind)
        if not part:
            continue
        age = now - part["updated"]
        if age > stale_after_s:
            snapshot["buses"].append(
                {
                    "kind": kind,
                    "up": False,
                    "error": f"No collector has reported on this bus for {age:.0f} s.",
                    "tick_ms": None,
                    "at": part["bus"].get("at"),
                }
            )
            continue
        snapshot["buses"].append(part["bus"])
        snapshot["topics"] += part["topics"]
        snapshot["groups"] += part["groups"]
        snapshot["edges"] += part["edges"]
        snapshot["observed"]["edges"] += part.get("observed", {}).get("edges", [])
        snapshot["validity"] += [dict(row, bus=kind) for row in part.get("validity", [])]
        dead = snapshot["dead_letters"]
        dead["inflow_per_min"] = round(dead["inflow_per_min"] + part["dead_letters"]["inflow_per_min"], 3)
        for topic, per_min in part["dead_letters"]["by_topic"].items():
            dead["by_topic"][topic] = round(dead["by_topic"].get(topic, 0.0) + per_min, 3)
        for key in ("undesigned_topics", "undesigned_groups", "silent_edges"):
            snapshot["drift"][key] += part["drift"][key]
        for service in part["services"]:
            seen = services.get(service["service"])
            if seen is None:
                services[service["service"]] = dict(service, buses=[kind])
                continue
            seen["up"] = seen["up"] or service["up"]
            seen["instances"] += service["instances"]
            seen["buses"].append(kind)
            if (service["last_seen"] or "") > (seen["last_seen"] or ""):
                seen["last_seen"] = service["last_seen"]
                seen["silent_s"], seen["moved_at"] = service["silent_s"], service["moved_at"]
                seen["last_error"] = service["last_error"] or seen["last_error"]
    snapshot["services"] = sorted(services.values(), key=lambda s: s["service"])
    return snapshot


# --- the collector ----------------------------------------------------------------


class Collector:
    """Collects one bus. ``tick()`` is one step; ``run(stop)`` loops it under the lease."""

    def __init__(
        self,
        kind: str,
        *,
        bus_factory: Callable[[], Bus] | None = None,
        tick_s: float | None = None,
        rate_window_s: float = RATE_WINDOW_S,
        history_s: float = HISTORY_S,
        burrow_window_s: float = BURROW_WINDOW_S,
        heartbeat_group: str | None = None,
        write_history: bool = True,
        history_thread: bool = False,
        publish: bool = True,
        lease_ttl_s: float | None = None,
    ) -> None:
        from eventhub import connections

        self.kind = kind
        self._bus_factory = bus_factory or (lambda: open_bus(kind, **connections.bus_options(kind)))
        self.tick_s = tick_s if tick_s is not None else settings.EVENTHUB_TICK_SECONDS
        self.rate_window_s = rate_window_s
        self.burrow_window_s = burrow_window_s
        self.heartbeat_group = heartbeat_group or default_heartbeat_group()
        self.write_history = write_history
        # A bare tick() (tests, the shell) writes its samples before it returns.
        self._history_writer = history.Writer(f"history-{kind}") if history_thread else None
        self.publish = publish
        self.lease_ttl_s = lease_ttl_s or max(LEASE_TICKS * self.tick_s, 5.0)
        # End offsets: rates (RATE_WINDOW_S) and lag in seconds (HISTORY_S) read them.
        self.end_history = rates.History(max_age_s=history_s, max_points=max(16, int(history_s / self.tick_s) + 8))
        # Committed offsets: only the consume rate reads them, over rate_window_s.
        self.commit_history = rates.History(
            max_age_s=rate_window_s, max_points=max(16, int(rate_window_s / self.tick_s) + 8)
        )
        self.ticks = 0
        self.up = False
        self.error: str | None = None
        self.last_part: dict[str, Any] | None = None
        self.phases: dict[str, float] = {}
        self._bus: Bus | None = None
        self._failures = 0
        self._ever_up = False
        self._started = time.time()
        # Burrow's samples as plain tuples of burrow.Sample's fields (see there why).
        self._samples: dict[tuple[str, str, int], deque[tuple]] = {}
        self._judge = Judge(burrow_window_s)
        self._commit_seen: dict[tuple[str, str, int], tuple[int, float]] = {}
        self._moved: dict[tuple, tuple[int, float]] = {}  # what -> (total offset, when it last changed)
        self._heartbeats: _HeartbeatReader | None = None
        self._design: Design | None = None
        self._design_at = 0.0
        self._pending: dict[tuple[int, str], float] = {}
        self._observed: dict[str, list] = {"edges": []}  # monitor/lineage.py, refreshed every lineage.EVERY_S
        self._validity: list[dict[str, Any]] = []
        self._observed_at = 0.0
        self._groups_status: dict[str, str] = {}  # per topic, its worst group's status last tick
        self.early_topics_rows = EARLY_TOPICS_ROWS

    # -- lifecycle ---------------------------------------------------------------

    def bus(self) -> Bus:
        if self._bus is None:
            self._bus = self._bus_factory()
        return self._bus

    def close(self) -> None:
        if self._history_writer is not None:
            self._history_writer.close()
        self._drop_heartbeat_reader()
        if self._bus is not None:
            bus, self._bus = self._bus, None
            bus.close()

    def run(self, stop: threading.Event) -> None:
        """Tick every ``tick_s`` while holding this bus's lease, until `stop` is set."""
        lease = snapshots.Lease(f"collector:{self.kind}", self.lease_ttl_s)
        holding = False
        try:
            while not stop.is_set():
                started = time.monotonic()
                if lease.hold():
                    if not holding:
                        log.info("collecting %s", self.kind)
                    holding = True
                    try:
                        self.tick()
                    except Exception:  # noqa: BLE001 - the loop must outlive any one tick
                        log.exception("monitor tick on %s failed", self.kind)
                    finally:
                        background.between_steps()
                elif holding:
                    holding = False
                    log.warning("another process now collects %s; waiting", self.kind)
                stop.wait(max(0.05, self.tick_s - (time.monotonic() - started)))
        finally:
            lease.release()
            self.close()
            connection.close()  # this thread's; close_old_connections keeps a healthy one open

    # -- one tick -----------------------------------------------------------------

    def design(self, now: float) -> Design:
        if self._design is None or now - self._design_at > DESIGN_TTL_S:
            self._design = load_design(self.kind)
            self._design_at = now
        return self._design

    def tick(self, now: float | None = None) -> dict[str, Any]:
        """One collection step (module docstring); returns the merged snapshot."""
        started = time.perf_counter()
        now = time.time() if now is None else now
        self.ticks += 1
        design = self.design(now)
        reading = self._read()
        beats = self._read_heartbeats(reading) if reading is not None else []
        if beats:
            self._store_heartbeats(beats, now)
        read = time.perf_counter()
        part, topic_rows, end_series = self._topics_part(reading, design, now)
        last_groups = len(self.last_part["groups"]) if self.last_part else 0
        if reading is not None and last_groups >= self.early_topics_rows:
            self._publish_topics(part, now)
        topics = time.perf_counter()
        self._rest_of_part(part, topic_rows, end_series, reading, design, now)
        if reading is not None:
            self._alerts(design, part, now)
        part["bus"]["tick_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self.last_part = part
        judged = time.perf_counter()
        snapshot = self._publish(part, now, started)
        published = time.perf_counter()
        if reading is not None and self.write_history:
            samples = history.samples(self.kind, datetime.fromtimestamp(now, UTC), part["topics"], part["groups"])
            if self._history_writer is not None:
                self._history_writer.put(samples)  # waits only while the last tick's are still being written
            else:
                history.insert(samples)
            if self.ticks % MAINTAIN_EVERY_TICKS == 0:
                self._maintain()
        done = time.perf_counter()
        # Seconds of the last tick by phase, for the benchmarks and the logs.
        self.phases = {
            "read": read - started,
            "topics": topics - read,
            "rows": judged - topics,
            "publish": published - judged,
            "history": done - published,
        }
        if self._history_writer is not None:
            self.phases["history_behind"] = self._history_writer.last_s  # the last write, on its thread
        return snapshot

    def _read(self) -> Reading | None:
        try:
            reading = read_bus(self.bus(), self.kind)
        except Exception as error:  # noqa: BLE001 - any failure means "down", never a dead loop
            self._down(error)
            return None
        if not self.up:
            log.info("%s answers again", self.kind)
        self.up, self.error, self._failures, self._ever_up = True, None, 0, True
        return reading

    def _down(self, error: Exception) -> None:
        if self.up or self.error is None:
            log.warning("%s does not answer: %s", self.kind, error)
        self.up = False
        self.error = f"{type(error).__name__}: {error}"[:500] if not isinstance(error, BusError) else str(error)[:500]
        self._failures += 1
        self._drop_heartbeat_reader()
        if self._failures >= REPLACE_BUS_AFTER_FAILURES and self._bus is not None:
            # A client wedged by the outage must not keep us down once the broker is back.
            old, self._bus = self._bus, None
            threading.Thread(target=old.close, daemon=True).start()
            self._failures = 0

    # -- heartbeats ---------------------------------------------------------------

    def _drop_heartbeat_reader(self) -> None:
        if self._heartbeats is not None:
            reader, self._heartbeats = self._heartbeats, None
            # Closing talks to the broker; never let it hold up a tick.
            threading.Thread(target=reader.close, daemon=True).start()

    def _read_heartbeats(self, reading: Reading) -> list[dict]:
        topic = heartbeat_topic(self.kind)
        if topic not in reading.ends:
            return []
        if self._heartbeats is None:
            self._heartbeats = _HeartbeatReader(self.bus, self.heartbeat_group, topic)
        records = self._heartbeats.drain()
        if self._heartbeats.error is not None:
            log.warning("reading heartbeats on %s failed: %s", self.kind, self._heartbeats.error)
            self._drop_heartbeat_reader()
        beats = []
        for record in records:
            try:
                beat = decode_json(record.value, max_bytes=HEARTBEAT_MAX_BYTES, max_depth=HEARTBEAT_MAX_DEPTH)
            except PayloadDecodeError:
                continue
            if isinstance(beat, dict) and isinstance(beat.get("service"), str) and beat.get("instance"):
                beat["_ts"] = record.timestamp_ms
                beats.append(beat)
        return beats

    def _store_heartbeats(self, beats: list[dict], now: float) -> None:
        from monitor.models import Heartbeat

        latest: dict[tuple[str, str], Heartbeat] = {}
        for beat in beats:
            seen = _beat_time(beat, now)
            try:
                interval = float(beat.get("interval_s") or 10)
            except (TypeError, ValueError):
                interval = 10.0
            key = (beat["service"][:100], str(beat["instance"])[:200])
            payload = {k: v for k, v in beat.items() if k != "_ts"}
            row = Heartbeat(
                service=key[0],
                instance=key[1],
                role=str(beat.get("role") or "")[:20],
                group=str(beat.get("group") or "")[:255],
                bus=self.kind,
                last_seen=datetime.fromtimestamp(seen, UTC),
                interval_s=max(0.1, interval),
                payload=payload,
            )
            if key not in latest or latest[key].last_seen <= row.last_seen:
                latest[key] = row
        Heartbeat.objects.bulk_create(
            list(latest.values()),
            update_conflicts=True,
            unique_fields=["service", "instance"],
            update_fields=["role", "group", "bus", "last_seen", "interval_s", "payload"],
        )

    def _services(self, now: float) -> list[dict[str, Any]]:
        from monitor.models import Heartbeat

        services: dict[str, dict[str, Any]] = {}
        rows = Heartbeat.objects.filter(bus=self.kind).order_by("last_seen")
        for beat in rows.values("service", "role", "last_seen", "interval_s", "payload"):
            seen = beat["last_seen"].timestamp()
            up = now - seen <= HEARTBEAT_MISSES * beat["interval_s"]
            entry = services.setdefault(
                beat["service"],
                {
                    "service": beat["service"],
                    "up": False,
                    "instances": 0,
                    "last_seen": None,
                    "last_error": None,
                    "silent_s": None,
                    "moved_at": None,
                    "roles": [],
                    "counters": {"published": 0, "handled": 0, "failed": 0, "dead_lettered": 0},
                },
            )
            entry["up"] = entry["up"] or up
            entry["last_seen"] = beat["last_seen"].isoformat()  # rows come oldest first
            # moved_at: what silent_s counts from (a delta frame leaves silent_s to the client).
            entry["moved_at"] = round(min(now, seen), 3)
            entry["silent_s"] = round(now - entry["moved_at"], 1)
            entry["last_error"] = beat["payload"].get("last_error") or entry["last_error"]
            if beat["role"] and beat["role"] not in entry["roles"]:
                entry["roles"].append(beat["role"])
            if up:
                entry["instances"] += 1
                for counter in entry["counters"]:
                    value = beat["payload"].get(counter)
                    if isinstance(value, int | float):
                        entry["counters"][counter] += value
        return sorted(services.values(), key=lambda s: s["service"])

    # -- computing ----------------------------------------------------------------

    def _moved_at(self, key: tuple, total: int, now: float) -> float:
        """When the total offset of `key` last changed (first sighting counts), to the millisecond."""
        seen = self._moved.get(key)
        if seen is None or seen[0] != total:
            self._moved[key] = (total, round(now, 3))
            return round(now, 3)
        return seen[1]

    def _lag_since(self, group: str, topic: str, committed: int, lag_seconds: float | None, now: float) -> float | None:
        """When the oldest message `group` has not consumed on `topic` was written, as best known.

        While the committed offsets stay put, that message is the same one, so the
        earliest estimate so far holds: estimates from a window that has slid past the
        write only say "at least this old", and must not make the age shrink.
        """
        key = ("lag", group, topic)
        if lag_seconds is None:
            self._moved.pop(key, None)
            return None
        since = round(now - lag_seconds, 3)
        seen = self._moved.get(key)
        if seen is not None and seen[0] == committed:
            since = min(since, seen[1])
        self._moved[key] = (committed, since)
        return since

    def _record_ends(self, reading: Reading, now: float) -> None:
        add_end = self.end_history.add
        for topic, partitions in reading.ends.items():
            for partition, end in partitions.items():
                add_end(rates.end_key(topic, partition), now, end)
        self.end_history.prune(now)

    def _record_commits(self, reading: Reading, now: float) -> None:
        add_committed = self.commit_history.add
        horizon = now - self.burrow_window_s
        for group, topics in reading.committed.items():
            for topic, partitions in topics.items():
                ends = reading.ends.get(topic, {})
                for partition, offset in partitions.items():
                    if partition not in ends:
                        continue
                    key = (group, topic, partition)
                    committed_at = None
                    if offset is not None:
                        add_committed(rates.committed_key(group, topic, partition), now, offset)
                        seen = self._commit_seen.get(key)
                        if seen is None or seen[0] != offset:
                            seen = self._commit_seen[key] = (offset, now)
                        committed_at = seen[1]
                    samples = self._samples.get(key)
                    if samples is None:
                        samples = self._samples[key] = deque()
                    samples.append((now, offset, ends[partition], committed_at))
                    while samples and samples[0][0] < horizon:
                        samples.popleft()
        self.commit_history.prune(now)
        # Forget partitions that went away with their topic or group.
        gone = [k for k, s in self._samples.items() if not s or s[-1][0] < horizon]
        for key in gone:
            del self._samples[key]
            self._commit_seen.pop(key, None)
        if gone:
            pairs = {(group, topic) for group, topic, _ in self._samples}
            self._judge.forget(self._samples.__contains__, pairs.__contains__)

    def _part(self, reading: Reading | None, design: Design, now: float) -> dict[str, Any]:
        """This bus's part of the snapshot: its topics, then the rest (two steps: see tick)."""
        part, topic_rows, end_series = self._topics_part(reading, design, now)
        self._rest_of_part(part, topic_rows, end_series, reading, design, now)
        return part

    def _topics_part(self, reading: Reading | None, design: Design, now: float) -> tuple[dict, dict, dict]:
        """The part with its topic rows (and dead-letter inflow, undesigned topics) only; the
        rows by topic and each partition's end-offset series, which the groups' rows read."""
        kind = self.kind
        part: dict[str, Any] = {
            "kind": kind,
            "updated": now,
            "bus": {"kind": kind, "up": reading is not None, "error": self.error, "at": _iso(now)},
            "topics": [],
            "groups": [],
            "services": self._services(now),
            "dead_letters": {"inflow_per_min": 0.0, "by_topic": {}},
            "drift": {"undesigned_topics": [], "undesigned_groups": [], "silent_edges": []},
            "edges": [],
            "ever_up": self._ever_up,
        }
        if reading is None:
            return part, {}, {}
        self._record_ends(reading, now)
        patterns = list(settings.EVENTHUB_DLQ_PATTERNS)
        window = self.rate_window_s
        topic_rows: dict[str, dict[str, Any]] = {}
        end_series: dict[str, dict[int, rates.EndSeries]] = {}  # per topic and partition, for its groups too
        for name in sorted(reading.ends):
            if is_internal_topic(kind, name):
                continue
            partitions = reading.ends[name]
            end_total = sum(partitions.values())
            series = end_series[name] = {
                p: rates.EndSeries(self.end_history.points(rates.end_key(name, p)), now, window) for p in partitions
            }
            produce = rates.total(s.rate for s in series.values())
            dead = name in design.dead_letter_topics or is_dead_letter_topic(name, patterns)
            designed = name in design.topics or name in design.dead_letter_topics
            row = {
                "bus": kind,
                "name": name,
                "partitions": len(partitions),
                "end_offset": end_total,
                "rate": _round(produce),
                "dead_letter": dead,
                "designed": designed,
                "design_name": design.topics.get(name),
                "groups_status": self._groups_status.get(name),  # the worst of its groups' (last tick's, until below)
                "silent_s": None,
                "moved_at": self._moved_at(("topic", name), end_total, now),
            }
            row["silent_s"] = round(now - row["moved_at"], 1)
            topic_rows[name] = row
            part["topics"].append(row)
            if dead:
                per_min = round((produce or 0.0) * 60, 3)
                part["dead_letters"]["by_topic"][name] = per_min
                part["dead_letters"]["inflow_per_min"] += per_min
            if not designed:
                part["drift"]["undesigned_topics"].append({"bus": kind, "name": name})
        part["dead_letters"]["inflow_per_min"] = round(part["dead_letters"]["inflow_per_min"], 3)
        return part, topic_rows, end_series

    def _rest_of_part(
        self,
        part: dict[str, Any],
        topic_rows: dict[str, dict[str, Any]],
        end_series: dict[str, dict[int, rates.EndSeries]],
        reading: Reading | None,
        design: Design,
        now: float,
    ) -> None:
        """Groups (Burrow's verdicts), edges, drift and traffic, after _topics_part."""
        if reading is None:
            return
        kind = self.kind
        self._record_commits(reading, now)
        rows_by_pair: dict[tuple[str, str], dict[str, Any]] = {}
        worst: dict[str, Status] = defaultdict(lambda: Status.NOTFOUND)  # per group
        worst_on_topic: dict[str, Status] = defaultdict(lambda: Status.NOTFOUND)
        for group in sorted(reading.committed):
            info = reading.groups.get(group)
            for topic in sorted(reading.committed[group]):
                if topic not in topic_rows:
                    continue
                row = self._group_row(group, info, topic, reading, design, topic_rows[topic], end_series[topic], now)
                rows_by_pair[(group, topic)] = row
                part["groups"].append(row)
                status = Status(row["status"])
                if status.rank > worst[group].rank:
                    worst[group] = status
                if status.rank >= worst_on_topic[topic].rank:
                    worst_on_topic[topic] = status
        for row in part["groups"]:
            row["group_status"] = worst[row["group"]].value
        # The graph colours a topic by its worst group, which a dashboard on one page of
        # the groups table may not have (monitor/pages.py).
        self._groups_status = {name: status.value for name, status in worst_on_topic.items()}
        for name, row in topic_rows.items():
            row["groups_status"] = self._groups_status.get(name)
        for group in sorted(reading.committed):
            if group not in design.groups and reading.committed[group]:
                part["drift"]["undesigned_groups"].append({"bus": kind, "group": group})

        for edge in design.producers:
            topic = topic_rows.get(edge["topic"])
            moved_at = topic["moved_at"] if topic else round(self._started, 3)
            part["edges"].append(
                {
                    "edge_id": edge["edge_id"],
                    "rate": topic["rate"] if topic else None,
                    "lag": None,
                    "status": None,
                    "topic": edge["topic"],
                    "service": edge["service"],
                    "event": edge["event"],
                    "silent_s": round(now - moved_at, 1),
                    "moved_at": moved_at,
                }
            )
        for edge in design.consumers:
            row = rows_by_pair.get((edge["group"], edge["topic"]))
            moved_at = row["moved_at"] if row else round(self._started, 3)
            part["edges"].append(
                {
                    "edge_id": edge["edge_id"],
                    "rate": row["consume_rate"] if row else None,
                    "lag": row["lag"] if row else None,
                    "status": row["status"] if row else None,
                    "topic": edge["topic"],
                    "group": edge["group"],
                    "service": edge["service"],
                    "event": edge["event"],
                    "silent_s": round(now - moved_at, 1),
                    "moved_at": moved_at,
                }
            )
        part["observed"], part["validity"] = self._traffic(design, part["groups"], now)
        # Forget topics and groups that are gone (test suites and tenants churn through names).
        current = {("topic", name) for name in topic_rows} | {
            (what, g, t) for g, t in rows_by_pair for what in ("group", "lag")
        }
        for key in self._moved.keys() - current:
            del self._moved[key]
        for edge in part["edges"]:
            if edge["silent_s"] > SILENT_EDGE_S:
                part["drift"]["silent_edges"].append(
                    {
                        "edge_id": edge["edge_id"],
                        "event": edge["event"],
                        "service": edge["service"],
                        "silent_s": edge["silent_s"],
                        "moved_at": edge["moved_at"],
                    }
                )

    def _traffic(self, design: Design, groups: list[dict[str, Any]], now: float) -> tuple[dict, list]:
        """Observed lineage and validity per event type (monitor/lineage.py), from the event store.

        Recomputed every lineage.EVERY_S, not every tick: they are database aggregates over
        minutes of events, and change slowly; the last ones are given meanwhile.
        """
        from monitor import lineage  # reads models: imported once the apps are ready, as load_design does

        if now - self._observed_at >= lineage.EVERY_S:
            self._observed_at = now
            try:
                self._observed = lineage.observed(self.kind, design, groups)
                self._validity = lineage.validity(self.kind)
            except Exception:  # noqa: BLE001 - these are views on top; the numbers must go on
                log.exception("collector %s: observed lineage and validity not computed", self.kind)
        return self._observed, self._validity

    def _group_row(
        self,
        group: str,
        info: GroupInfo | None,
        topic: str,
        reading: Reading,
        design: Design,
        topic_row: dict[str, Any],
        end_series: dict[int, rates.EndSeries],
        now: float,
    ) -> dict[str, Any]:
        ends = reading.ends[topic]
        committed = reading.committed[group][topic]
        lag_total = 0
        committed_total = 0
        ages: list[float] = []
        verdicts = {}
        for partition, end in sorted(ends.items()):
            offset = committed.get(partition)
            # Never committed: the group starts at the beginning of the log.
            start = offset if offset is not None else 0
            committed_total += start
            lag_total += max(0, end - start)
            age = end_series[partition].lag_seconds(start, now)
            if age is not None:
                ages.append(age)
            key = (group, topic, partition)
            if key in self._samples:
                verdicts[(topic, partition)] = self._judge.partition(key, self._samples[key], now)
        verdict = self._judge.group((group, topic), verdicts)
        consume = self._consume_rate(group, topic, ends, now)
        lag_since = self._lag_since(group, topic, committed_total, max(ages) if ages else None, now)
        moved_at = self._moved_at(("group", group, topic), committed_total, now)
        return {
            "bus": self.kind,
            "group": group,
            "topic": topic,
            "lag": lag_total,
            "lag_seconds": None if lag_since is None else round(now - lag_since, 1),
            "lag_since": lag_since,
            "consume_rate": _round(consume),
            "time_to_drain_s": _round(rates.time_to_drain(lag_total, consume, topic_row["rate"]), 1),
            "status": verdict.status.value,
            "reason": verdict.reason,
            "state": info.state if info else "Unknown",
            "members": info.members if info else 0,
            "designed": (group, topic) in design.pairs,
            "end_offset": topic_row["end_offset"],
            "committed": committed_total,
            "silent_s": round(now - moved_at, 1),
            "moved_at": moved_at,
        }

    def _consume_rate(self, group: str, topic: str, partitions: Iterable[int], now: float) -> float | None:
        """``rates.group_consume_rate`` over the commit history, without walking the points of
        a partition whose committed offset has not moved since before the rate window: every
        point in the window holds that offset, so its rate is 0 (None below two points). Most
        partitions of a large cluster, where many groups have stopped for good."""
        window = self.rate_window_s
        quiet_since = now - window
        history, seen = self.commit_history, self._commit_seen
        found = []
        for partition in partitions:
            key = rates.committed_key(group, topic, partition)
            offset_seen = seen.get((group, topic, partition))
            if offset_seen is not None and offset_seen[1] <= quiet_since:
                found.append(0.0 if history.count(key) >= 2 else None)
            else:
                found.append(rates.rate(history.points(key), now, window))
        return rates.total(found)

    # -- alerts, publishing, upkeep -------------------------------------------------

    def _alerts(self, design: Design, part: dict[str, Any], now: float) -> None:
        try:
            if any(rule.kind == "flow_check" for rule in design.rules):
                from eventstore import flow_checks

                # Read only for the rules, not broadcast: the flow-check page shows the checks.
                part = {**part, "flow_checks": [f for f in flow_checks.latest_by_flow() if f["bus"] == self.kind]}
            decision = alerts.decide(design.rules, part, self._pending, alerts.firing_keys(self.kind), now)
            alerts.apply(decision, now)
        except Exception:  # noqa: BLE001 - a broken rule must not stop the numbers
            log.exception("alert evaluation on %s failed", self.kind)

    def _visible(self, part: dict[str, Any]) -> bool:
        """A bus that never answered, is not the default bus and is not in the design
        (Redis in a Redis-less setup) is left out instead of shown as down."""
        return part["ever_up"] or self.kind == settings.EVENTHUB_BUS or bool(self._design and self._design.topics)

    def _publish_topics(self, part: dict[str, Any], now: float) -> None:
        """This tick's topic rows ahead of the rest (EARLY_TOPICS_ROWS), when any changed."""
        if not self.publish or not self._visible(part):
            return
        try:
            with snapshots.publishing:
                snapshots.publish_rows(self.kind, "topics", part["topics"], _iso(now))
        except Exception:  # noqa: BLE001 - the full frame follows; collecting goes on
            log.exception("publishing the %s topics ahead failed", self.kind)

    def _publish(self, part: dict[str, Any], now: float, started: float) -> dict[str, Any]:
        # Twice the lease: long enough for a waiting collector to take over first.
        stale_after = 2 * self.lease_ttl_s + self.tick_s
        visible = self._visible(part)
        if not self.publish or not visible:
            # Nothing to show (or a benchmark): no store, no broadcast.
            snapshot = merge({self.kind: part} if visible else {}, now, stale_after)
            snapshot.update(at=_iso(now), tick=self.ticks, tick_ms=round((time.perf_counter() - started) * 1000, 1))
            return snapshot
        try:
            # Each bus's tick republishes the merged snapshot, so a dashboard sees
            # either bus's news within one of its ticks.
            snapshots.save_part(self.kind, part)
            # One bus at a time from here: ticks are numbered and sent in order, so each
            # delta frame applies to the one before it.
            with snapshots.publishing:
                snapshot = merge(snapshots.load_parts(), now, stale_after)
                snapshot["alerts"] = alerts.recent_alerts(datetime.fromtimestamp(now, UTC))
                snapshot.update(
                    at=_iso(now),
                    tick=snapshots.next_tick(),
                    tick_ms=round((time.perf_counter() - started) * 1000, 1),
                )
                snapshots.publish(snapshot)
        except Exception:  # noqa: BLE001 - the store (Redis) may be away; collecting goes on
            log.exception("publishing the %s snapshot failed", self.kind)
            snapshot = merge({self.kind: part}, now, stale_after)
        return snapshot

    def _maintain(self) -> None:
        lease = snapshots.Lease("rollup", 300.0)
        if not lease.hold():
            return
        try:
            history.maintain()
        except Exception:  # noqa: BLE001
            log.exception("history upkeep failed")
        finally:
            lease.release()


def _beat_time(beat: dict, now: float) -> float:
    """When a heartbeat was sent: its "at", else the record's timestamp; never in the future."""
    at = beat.get("at")
    if isinstance(at, str):
        try:
            return min(now, datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    ts = beat.get("_ts")
    if isinstance(ts, int | float):
        return min(now, ts / 1000)
    return now
