"""Metric history: raw samples every tick, one-minute rollups, retention, queries.

Raw samples (``Sample.RAW``) are written by the collector on every tick, one per
topic and one per group on a topic, and kept for ``RAW_RETENTION`` (1 h). Every
complete minute is rolled up into one ``Sample.MINUTE`` point per series, kept for
``MINUTE_RETENTION`` (7 days). A one-minute point keeps:

* ``end_offset``, ``committed``: the last value in the minute;
* ``lag``, ``lag_seconds``: the largest value in the minute, so a spike that
  lasted a few seconds is still visible on a week-long chart;
* ``rate``: the mean of the minute's rates;
* ``status``: the worst Burrow status seen in the minute.

``maintain(now)`` does both rollup and retention and is idempotent: the rollup
starts after the newest one-minute point already written. It runs from the
Celery beat task and, every few ticks, from the collector itself, so history
works without Celery; the caller holds the ``rollup`` lease so that two
processes do not roll the same minute.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection as django_connection
from django.db import connections, transaction
from django.db.models import Max, Min

from eventhub import background
from monitor.burrow import Status
from monitor.models import Heartbeat, Sample

log = logging.getLogger(__name__)

RAW_RETENTION = timedelta(hours=1)
MINUTE_RETENTION = timedelta(days=7)
HEARTBEAT_RETENTION = timedelta(days=7)
# A range longer than this is answered with one-minute points unless asked otherwise.
AUTO_MINUTE_ABOVE = timedelta(hours=1)
# A minute is rolled up once it is this far in the past (late samples of slow ticks).
ROLLUP_GRACE = timedelta(seconds=10)
MAX_POINTS = 10_000
WRITER_NICE = 10  # Writer's thread: this much nicer than the process
SERIES_FIELDS = ("at", "end_offset", "committed", "lag", "lag_seconds", "rate", "status")


def write(kind: str, at: datetime, topics: Iterable[dict], groups: Iterable[dict]) -> int:
    """One raw sample per topic and per group×topic row of a bus part; returns how many."""
    return insert(samples(kind, at, topics, groups))


def samples(kind: str, at: datetime, topics: Iterable[dict], groups: Iterable[dict]) -> list[tuple]:
    """The rows `write` inserts, in `_WRITE_COLUMNS` order: strings, numbers and None only.

    Made apart from the insert so that a caller can hand them to a `Writer`: the
    part's row dicts may change after the tick, these tuples do not. A rate or a lag
    in seconds that is not a finite number is stored as none (JSON cannot carry it).
    """
    raw, at = Sample.RAW, _stamp(at)
    rows = [(kind, t["name"], "", raw, at, t["end_offset"], None, None, None, _finite(t["rate"]), "") for t in topics]
    rows += [
        (
            kind,
            g["topic"],
            g["group"],
            raw,
            at,
            g.get("end_offset"),
            g.get("committed"),
            g["lag"],
            _finite(g["lag_seconds"]),
            _finite(g["consume_rate"]),
            g["status"] or "",
        )
        for g in groups
    ]
    return rows


def _stamp(at: datetime) -> str:
    """`at` as the database stores it: SQLite's text (UTC, no zone), else ISO 8601 with its zone."""
    stamp = connections[Sample.objects.db].ops.adapt_datetimefield_value(at)
    return stamp if isinstance(stamp, str) else at.isoformat()


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def insert(rows: list[tuple]) -> int:
    """Insert `samples` rows in one statement (the rows travel as one JSON array); returns how many.

    One statement, not an executemany: SQLite's module hands the GIL back for each
    row it steps, and behind a busy Python thread each row then waits out the switch
    interval (5 ms): one tick's 6,000 rows at the large system took 32 s that way,
    measured. One statement lets the database work through them on the other core,
    which is what `Writer` is for. Every value is a string, a number or None, so the
    JSON is plain; the database converts each column as it stores it.
    """
    if not rows:
        return 0
    connection = connections[Sample.objects.db]
    with transaction.atomic(using=Sample.objects.db), connection.cursor() as cursor:  # one commit
        cursor.execute(_insert_sql(connection), [json.dumps(rows, separators=(",", ":"), allow_nan=False)])
    return len(rows)


def _insert_sql(connection) -> str:
    """INSERT ... SELECT over the elements of a JSON array of arrays, on SQLite or PostgreSQL."""
    ops = connection.ops
    columns = ", ".join(ops.quote_name(c) for c in _WRITE_COLUMNS)
    table = ops.quote_name(Sample._meta.db_table)
    if connection.vendor == "postgresql":
        values = ", ".join(
            f"(row ->> {i}){_PG_CASTS.get(Sample._meta.get_field(c).get_internal_type(), '')}"
            for i, c in enumerate(_WRITE_COLUMNS)
        )
        return f"INSERT INTO {table} ({columns}) SELECT {values} FROM json_array_elements(%s::json) AS rows(row)"
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_WRITE_COLUMNS)))
    return f"INSERT INTO {table} ({columns}) SELECT {values} FROM json_each(%s)"


# Text columns take the text as it is (a value too long for its column is refused, as any insert's).
_PG_CASTS = {
    "BigIntegerField": "::bigint",
    "FloatField": "::double precision",
    "DateTimeField": "::timestamp with time zone",
}
_WRITE_COLUMNS = (
    "bus",
    "topic",
    "group",
    "resolution",
    "at",
    "end_offset",
    "committed",
    "lag",
    "lag_seconds",
    "rate",
    "status",
)


class Writer:
    """Writes history samples on a thread of its own, behind the collector's tick.

    `put(rows)` hands over one tick's `samples` and returns at once, unless the
    previous tick's are still being written: then it waits for them first. So no
    rows are dropped, at most one tick's are held, and a database slower than the
    tick slows the tick instead of piling up. A batch the database refuses is logged
    and dropped, as an in-line write's would be; the next tick's is written anyway.

    >>> writer = Writer("history-kafka")
    >>> writer.put(samples("kafka", at, topics, groups))
    >>> writer.close()   # waits for what was handed over, then stops the thread
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_s = 0.0  # how long the last batch took to write
        self._changed = threading.Condition()
        self._rows: list[tuple] | None = None  # handed over and not yet written
        self._stopping = False
        self._thread: threading.Thread | None = None

    def put(self, rows: list[tuple]) -> None:
        with self._changed:
            while self._rows is not None:
                self._changed.wait()
            self._rows = rows
            self._changed.notify_all()
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Wait until every batch handed over is written."""
        with self._changed:
            while self._rows is not None:
                self._changed.wait()

    def close(self) -> None:
        """Flush, then stop the thread; a later `put` starts another."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        _lower_priority()
        try:
            while True:
                with self._changed:
                    while self._rows is None and not self._stopping:
                        self._changed.wait()
                    rows = self._rows
                if rows is None:
                    return
                started = time.perf_counter()
                try:
                    insert(rows)
                except Exception:  # noqa: BLE001 - the next tick's rows must still be written
                    log.exception("%s: %d history samples not written", self.name, len(rows))
                finally:
                    self.last_s = time.perf_counter() - started
                    background.between_steps()
                    with self._changed:
                        self._rows = None
                        self._changed.notify_all()
        finally:
            django_connection.close()  # this thread's


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _worst(statuses: Iterable[str]) -> str:
    known = [Status(s) for s in statuses if s in Status.__members__]
    return max(known, key=lambda s: s.rank).value if known else ""


def rollup(now: datetime) -> int:
    """Roll every complete minute not yet rolled into one-minute points; returns how many."""
    until = _minute(now - ROLLUP_GRACE)
    raw = Sample.objects.filter(resolution=Sample.RAW)
    done = Sample.objects.filter(resolution=Sample.MINUTE).aggregate(last=Max("at"))["last"]
    if done is not None:
        start = done + timedelta(minutes=1)
    else:
        first = raw.aggregate(first=Min("at"))["first"]
        if first is None:
            return 0
        start = _minute(first)
    start = max(start, _minute(now - RAW_RETENTION))
    if start >= until:
        return 0
    series: dict[tuple, dict[str, Any]] = {}
    fields = ("bus", "topic", "group", "at", "end_offset", "committed", "lag", "lag_seconds", "rate", "status")
    for bus, topic, group, at, end, committed, lag, lag_s, rate, status in (
        raw.filter(at__gte=start, at__lt=until).order_by("at").values_list(*fields).iterator(chunk_size=2000)
    ):
        point = series.setdefault(
            (bus, topic, group, _minute(at)),
            {"end_offset": None, "committed": None, "lag": None, "lag_seconds": None, "rates": [], "statuses": set()},
        )
        point["end_offset"] = end if end is not None else point["end_offset"]
        point["committed"] = committed if committed is not None else point["committed"]
        if lag is not None:
            point["lag"] = lag if point["lag"] is None else max(point["lag"], lag)
        if lag_s is not None:
            point["lag_seconds"] = lag_s if point["lag_seconds"] is None else max(point["lag_seconds"], lag_s)
        if rate is not None:
            point["rates"].append(rate)
        if status:
            point["statuses"].add(status)
    rows = [
        Sample(
            bus=bus,
            topic=topic,
            group=group,
            resolution=Sample.MINUTE,
            at=minute,
            end_offset=p["end_offset"],
            committed=p["committed"],
            lag=p["lag"],
            lag_seconds=p["lag_seconds"],
            rate=sum(p["rates"]) / len(p["rates"]) if p["rates"] else None,
            status=_worst(p["statuses"]),
        )
        for (bus, topic, group, minute), p in series.items()
    ]
    with transaction.atomic():
        Sample.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def retention(now: datetime) -> dict[str, int]:
    """Delete what is past its retention; returns deleted counts by kind."""
    raw, _ = Sample.objects.filter(resolution=Sample.RAW, at__lt=now - RAW_RETENTION).delete()
    minute, _ = Sample.objects.filter(resolution=Sample.MINUTE, at__lt=now - MINUTE_RETENTION).delete()
    beats, _ = Heartbeat.objects.filter(last_seen__lt=now - HEARTBEAT_RETENTION).delete()
    return {"raw": raw, "1m": minute, "heartbeats": beats}


def maintain(now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    return {"rolled": rollup(now), **retention(now)}


def pick_resolution(since: datetime, until: datetime, asked: str | None) -> str:
    if asked in (Sample.RAW, Sample.MINUTE):
        return asked
    return Sample.MINUTE if until - since > AUTO_MINUTE_ABOVE else Sample.RAW


def query(
    bus: str,
    topic: str,
    group: str,
    since: datetime,
    until: datetime,
    resolution: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The series of one topic (group "") or one group on a topic, oldest first."""
    resolution = pick_resolution(since, until, resolution)
    rows = (
        Sample.objects.filter(bus=bus, topic=topic, group=group, resolution=resolution, at__gte=since, at__lte=until)
        .order_by("at")
        .values(*SERIES_FIELDS)[:MAX_POINTS]
    )
    return resolution, [{**row, "at": row["at"].isoformat()} for row in rows]


def busiest(since: datetime, until: datetime, limit: int) -> dict[str, list[dict[str, Any]]]:
    """The raw series that moved most between `since` and `until`, oldest point first.

    The `limit` topics with the highest rate and the `limit` group×topic rows with
    the most lag in the range, those that were at zero throughout left out: what a
    dashboard opened now draws in front of its first live frame. The choice is
    made here because the range knows which series had traffic; the snapshot of
    this moment does not (a burst a minute ago has a rate of 0 now).
    """
    window = Sample.objects.filter(resolution=Sample.RAW, at__gte=since, at__lte=until)
    topics = list(
        window.filter(group="")
        .values("bus", "topic")
        .annotate(peak=Max("rate"))
        .filter(peak__gt=0)
        .order_by("-peak", "bus", "topic")[:limit]
    )
    groups = list(
        window.exclude(group="")
        .values("bus", "topic", "group")
        .annotate(peak=Max("lag"))
        .filter(peak__gt=0)
        .order_by("-peak", "bus", "topic", "group")[:limit]
    )
    return {
        "topics": _points(window, topics, ("rate",)),
        "groups": _points(window, groups, ("lag", "lag_seconds")),
    }


def _points(window, chosen: list[dict], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each chosen series (its keys from `chosen`) with its points as [at, *fields]."""
    keys = [(row["bus"], row["topic"], row.get("group", "")) for row in chosen]
    points: dict[tuple, list] = {key: [] for key in keys}
    rows = (
        window.filter(topic__in={topic for _, topic, _ in keys}, group__in={group for _, _, group in keys})
        .order_by("at")
        .values_list("bus", "topic", "group", "at", *fields)
    )
    for bus, topic, group, at, *values in rows.iterator(chunk_size=2_000):
        series = points.get((bus, topic, group))
        if series is not None and len(series) < MAX_POINTS:
            series.append([at.isoformat(), *values])
    return [{**row, "points": points[key]} for row, key in zip(chosen, keys, strict=True)]


def _lower_priority() -> None:
    """Nice this thread (Linux sets niceness per thread): history is the least urgent work of
    the process, and the tick and a broker on the same host come first. Where the system
    refuses, the thread keeps the process's priority."""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + WRITER_NICE))
    except (AttributeError, OSError):
        pass
