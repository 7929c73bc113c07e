"""Event store: the indexer against a raw consumer, how far it trails the bus under load, trace lookups.

Each database gets a process of its own (`python -m bench.eventstore <database> <out.json> <log dir>`,
started by `run`): Django reads its database once, and the rest of the bench runs on its
SQLite file. PostgreSQL is a private cluster made with initdb for this part
(`bench.common.start_postgres`, the test harness's), SQLite a throwaway file as elsewhere.
EVENTHUB_BENCH_EVENTSTORE_DATABASES picks them (default `postgres,sqlite`),
EVENTHUB_BENCH_EVENTSTORE_PIECES the figures (default `ingest,lag,traces`); with
EVENTHUB_BENCH_PROFILE=1 the indexer's ingest loop runs under cProfile
(var/bench-logs/eventstore-<database>-profile.txt; its rate is then not comparable).

index_ingest_ratio (PostgreSQL; `_sqlite` on SQLite): `eventstore.indexer.Indexer`, driven
by its `step()`, indexing N SDK-published events (chains of five: correlation, causation
and traceparent headers, a registered schema each payload is validated against; 3
partitions), over the raw kafka-python consumer group of bench/deadletters.py reading the
same topic (best of three). Both clocks start after the first batch and stop at the last
record. The detail adds the indexer thread's CPU time per row.

index_lag_s_under_load (PostgreSQL; `_sqlite`): bench/load.py's publisher sends 2,000
records/s (the SDK's headers, a payload valid against its registered schema) to a
3-partition topic while `manage.py run_indexer` indexes it in a process of its own. Every
0.5 s after a warm-up: now minus the newest indexed broker timestamp of the partition
furthest behind (the topic's newest alone would hide a partition left behind). The
figure is the p95 of those samples, `index_lag_s_under_load_max` their maximum; the detail
adds the indexer group's lag in records converted to seconds (lag / rate), the indexer's
CPU and how long it took to catch up after the load stopped.

trace_p95_ms (PostgreSQL only): EVENTHUB_BENCH_TRACE_ROWS IndexedEvent rows (default
5,000,000: a correlation id per five events, a causation chain, five types and topics,
timestamps over 7 days, a chain's events far apart in the table as arrival interleaves
them) written with one INSERT ... SELECT generate_series, the table's indexes dropped
before and rebuilt after (as pg_indexes defined them), then VACUUM ANALYZE. Then 200
random traces through django.test.Client as a logged-in Viewer: GET
/api/v1/traces/<correlation_id> once eventstore/traces.py has `find_trace` and the route
exists, else a placeholder (the ORM query for the trace's rows; the detail says so).
trace_p95_ms_raw_select: 200 other traces as a bare SELECT through the DB cursor.
"""

from __future__ import annotations

import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bench.common import Figure, Results, median_ms, p95_ms, start_postgres, stop_postgres, stored_rate, wait_until

ROOT = Path(__file__).resolve().parent.parent

N = int(os.environ.get("EVENTHUB_BENCH_INDEX_EVENTS", "20000"))
LOAD_RATE = float(os.environ.get("EVENTHUB_BENCH_INDEX_LOAD_RATE", "2000"))
LOAD_SECONDS = float(os.environ.get("EVENTHUB_BENCH_INDEX_LOAD_SECONDS", "60"))
LOAD_WARMUP_S = 5.0
SAMPLE_EVERY_S = 0.5
TRACE_ROWS = int(os.environ.get("EVENTHUB_BENCH_TRACE_ROWS", "5000000"))
TRACES = 200
PIECES = os.environ.get("EVENTHUB_BENCH_EVENTSTORE_PIECES", "ingest,lag,traces").split(",")
# A production-like PostgreSQL rather than the initdb defaults (128 MB of shared buffers);
# the maintenance memory and WAL size only speed up the bulk load.
POSTGRES_OPTIONS = {"shared_buffers": "1GB", "maintenance_work_mem": "512MB", "max_wal_size": "8GB"}

CHAIN = (  # (event type, topic suffix, source) of the five events of one correlation id
    ("order.placed", "orders", "/services/shop"),
    ("payment.captured", "payments", "/services/billing"),
    ("stock.reserved", "stock", "/services/warehouse"),
    ("parcel.shipped", "shipping", "/services/shipping"),
    ("customer.notified", "notifications", "/services/mail"),
)
SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}},
                "required": ["sku", "quantity"],
            },
        },
    },
    "required": ["order_id", "amount", "currency"],
}


# --------------------------------------------------------------------------- the parent
def run(results: Results, log_dir: Path) -> None:
    """One child process per database; its figures join `results` (the child printed them)."""
    databases = [d for d in os.environ.get("EVENTHUB_BENCH_EVENTSTORE_DATABASES", "postgres,sqlite").split(",") if d]
    postgres = start_postgres(POSTGRES_OPTIONS) if "postgres" in databases else None
    try:
        for database in databases:
            out = log_dir / f"eventstore-{database}.json"
            env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
            if database == "postgres":
                env["EVENTHUB_BENCH_DATABASE_URL"] = postgres[1]
                env["EVENTHUB_BENCH_POSTGRES_PID"] = str(postgres[0].pid)
            log_path = log_dir / f"eventstore-{database}.log"
            with log_path.open("wb") as log:
                done = subprocess.run(
                    [sys.executable, "-m", "bench.eventstore", database, str(out), str(log_dir)],
                    cwd=ROOT,
                    env=env,
                    stderr=log,
                    check=False,
                )
            if done.returncode:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"bench.eventstore {database} exited with {done.returncode}:\n{tail}")
            measured = json.loads(out.read_text())
            results.figures += [Figure(**figure) for figure in measured["figures"]]
            results.labels.update(measured["labels"])
    finally:
        if postgres is not None:
            stop_postgres(postgres[0], postgres[2])


# --------------------------------------------------------------------------- the child
def _register_schemas() -> list[int]:
    """The chain's five event types, each with SCHEMA as registered version 1; their SchemaVersion ids."""
    from designer.models import EventType, SchemaVersion

    return [
        SchemaVersion.objects.create(event_type=EventType.objects.create(name=name), version=1, schema=SCHEMA).pk
        for name, _topic, _source in CHAIN
    ]


def _publish_chains(bus, topic: str, n: int) -> None:
    """`n` events through the SDK: chains of five, each reacting to the one before (causation, trace)."""
    from eventhub.sdk import LocalSchemas, Producer
    from eventhub.sdk import headers as h
    from eventhub.sdk.consumer import Event

    schemas = LocalSchemas({name: {"schema": SCHEMA, "version": 1, "topic": topic} for name, _t, _s in CHAIN})
    producers = {
        source: Producer(bus, source.rsplit("/", 1)[1], schemas, heartbeat_interval_s=None) for *_, source in CHAIN
    }
    for c in range(n // len(CHAIN)):
        payload = {
            "order_id": f"o-{c}",
            "amount": 1000 + c % 5000,
            "currency": "EUR",
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        }
        trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
        cause = None
        for name, _topic, source in CHAIN:
            event_id = producers[source].publish_nowait(
                name,
                payload,
                key=payload["order_id"],
                headers=None if cause else {"traceparent": trace},
                caused_by=cause,
            )
            correlation = cause.correlation_id if cause else event_id
            cause = Event(
                type=name,
                payload=payload,
                key=None,
                headers={h.CE_ID: event_id, h.CORRELATION_ID: correlation, h.TRACEPARENT: trace},
                record=None,
                attempt=1,
            )
    for producer in producers.values():
        producer.flush()


def _index_rate(bus, topic: str, n: int, profile_to: Path | None) -> tuple[float, float]:
    """(rows per second, CPU microseconds of this thread per row) of the indexer after its first batch."""
    from eventhub import background
    from eventstore.indexer import Indexer
    from eventstore.models import IndexedEvent

    indexer = Indexer(("kafka",), buses={"kafka": bus}, group=f"bench-indexer-{uuid.uuid4().hex[:6]}", include=[topic])
    background.settle_heap()  # as eventstore.indexer.run_forever does once the indexer is made
    profiler = cProfile.Profile() if profile_to else None
    timed = False  # after the first batch (joining the group), which is neither timed nor profiled

    def step(timeout_s: float) -> int:
        nonlocal timed
        if profiler and timed:
            return profiler.runcall(indexer.step, timeout_s)
        got = indexer.step(timeout_s)
        timed = timed or bool(got)
        return got

    try:
        rate, cpu_us = stored_rate(step, n)
    finally:
        indexer.close()
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
        profile_to.write_text(text.getvalue())
    assert IndexedEvent.objects.filter(topic=topic).count() == n, "the indexer stored another number of rows"
    return rate, cpu_us


def _ingest(results: Results, bootstrap: str, database: str, suffix: str, log_dir: Path) -> None:
    from bench.deadletters import _raw_consume_rate  # the same reference as dlq_ingest_ratio
    from eventhub.bus import open_bus

    topic = f"bench-index-{uuid.uuid4().hex[:6]}"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(topic, 3)
    _publish_chains(bus, topic, N)
    raw = max(_raw_consume_rate(bootstrap, topic, N) for _ in range(3))
    profile_to = log_dir / f"eventstore-{database}-profile.txt" if os.environ.get("EVENTHUB_BENCH_PROFILE") else None
    rate, cpu_us = _index_rate(bus, topic, N, profile_to)
    results.add(
        f"index_ingest_ratio{suffix}",
        rate / raw,
        "ratio",
        f"indexer {rate:,.0f} rows/s ({cpu_us:.0f} us CPU per row), raw consumer {raw:,.0f}/s ({N:,} SDK events)",
    )
    bus.delete_topic(topic)
    bus.close()


def _load_headers() -> Callable[[int], list[tuple[str, bytes]]]:
    """The headers the SDK writes, for the n-th record of the load: chains of five as in `_publish_chains`."""
    from eventhub.sdk import headers as h

    base = uuid.uuid4().int & ~(2**40 - 1)  # ids of this run: a random prefix, the record number after it
    static = [
        (h.CE_SOURCE, b"/services/shop"),
        (h.CE_SPECVERSION, b"1.0"),
        (h.CONTENT_TYPE, h.JSON_CONTENT_TYPE.encode()),
        (h.SCHEMA_VERSION, b"1"),
    ]

    def event_id(n: int) -> bytes:
        return str(uuid.UUID(int=base + n)).encode()

    def headers(n: int) -> list[tuple[str, bytes]]:
        step = n % len(CHAIN)
        first = n - step
        built = [
            (h.CE_ID, event_id(n)),
            (h.CE_TYPE, CHAIN[step][0].encode()),
            *static,
            (h.CE_TIME, h.utc_now_iso().encode()),
            (h.CORRELATION_ID, event_id(first)),
            (h.TRACEPARENT, f"00-{base + first:032x}-00f067aa0ba902b7-01".encode()),  # a trace per chain
        ]
        if step:
            built.append((h.CAUSATION_ID, event_id(n - 1)))
        return built

    return headers


def _database_cpu_s() -> float:
    """CPU seconds of the private PostgreSQL's server processes (0 on SQLite: it runs in the indexer)."""
    from bench import live

    postmaster = os.environ.get("EVENTHUB_BENCH_POSTGRES_PID")
    if not postmaster:
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == postmaster:
                total += live.cpu_s(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total + live.cpu_s(int(postmaster))


def _lag(results: Results, bootstrap: str, database: str, suffix: str, log_dir: Path) -> None:
    from django.db.models import Max
    from django.utils import timezone

    from bench import live
    from bench.load import _Publisher  # the load scenario's steady publisher
    from eventhub.bus import open_bus
    from eventstore.models import IndexedEvent

    topic = f"bench-index-load-{uuid.uuid4().hex[:6]}"
    group = f"bench-indexer-{uuid.uuid4().hex[:6]}"
    headers = _load_headers()
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(topic, 3)
    bus.publish(topic, b'{"order_id":"o-0","amount":1,"currency":"EUR"}', headers=headers(-1))  # the first row
    rows = IndexedEvent.objects.filter(bus="kafka", topic=topic)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
    # --skip-checks: the indexer needs no URLconf, and the checks would import every view.
    argv = [sys.executable, "manage.py", "run_indexer", "--skip-checks", "--bus", "kafka", "--group", group]
    argv += ["--include", topic]
    indexer = live.spawn(f"indexer-{database}", argv, env, log_dir)
    try:
        wait_until(rows.exists, 90, "the indexer's first row", logs=indexer.log)
        publisher = _Publisher(bootstrap, topic, LOAD_RATE, headers=headers)
        publisher.start()
        began = time.monotonic()
        cpu_before, db_cpu_before = live.cpu_s(indexer.pid), _database_cpu_s()
        behind, group_behind = [], []
        next_sample = began + LOAD_WARMUP_S
        while next_sample < began + LOAD_WARMUP_S + LOAD_SECONDS:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            # The partition furthest behind: its newest indexed broker timestamp.
            newest = min(rows.values("partition").annotate(newest=Max("timestamp")).values_list("newest", flat=True))
            behind.append((timezone.now() - newest).total_seconds())
            group_behind.append(sum(p.lag for p in bus.lag(group, topic)) / LOAD_RATE)
            next_sample += SAMPLE_EVERY_S
        cores = (live.cpu_s(indexer.pid) - cpu_before) / (time.monotonic() - began)
        db_cores = (_database_cpu_s() - db_cpu_before) / (time.monotonic() - began)
        publisher.stop.set()
        publisher.join(30)
        stopped = time.monotonic()
        sent = publisher.sent + 1  # and the first record
        wait_until(lambda: rows.count() >= sent, 300, f"all {sent} records indexed", every_s=0.2, logs=indexer.log)
        caught_up = time.monotonic() - stopped
        assert indexer.alive(), indexer.log()
    finally:
        indexer.stop()
        bus.delete_topic(topic)
        bus.close()
    achieved = publisher.sent / (publisher.finished - publisher.started)
    server = f" + PostgreSQL {db_cores:.2f}" if db_cores else ""
    results.add(
        f"index_lag_s_under_load{suffix}",
        p95_ms(behind) / 1000,
        "s",
        f"p95 of {len(behind)} samples: now - newest indexed broker timestamp (the partition most behind); "
        f"group lag/rate p95 "
        f"{p95_ms(group_behind) / 1000:.2f} s, max {max(group_behind):.2f} s; {achieved:,.0f} ev/s for "
        f"{LOAD_SECONDS:.0f} s, run_indexer {cores:.2f} cores{server}, all {sent:,} indexed {caught_up:.1f} s after the load",
    )
    results.add(f"index_lag_s_under_load_max{suffix}", max(behind), "s", "the largest sample of the above")


def _load_sql(fields: list) -> tuple[str, dict]:
    """The INSERT ... SELECT of the trace rows, and the parameters of columns it has no value for.

    Row i is event j of chain c: j = i / chains, so the five events of a chain lie far apart.
    A column added to IndexedEvent after this was written gets NULL or its field's default.
    """
    from django.db import connection

    types = ", ".join(f"'{name}'" for name, _t, _s in CHAIN)
    topics = ", ".join(f"'bench-{topic}'" for _n, topic, _s in CHAIN)
    sources = ", ".join(f"'{source}'" for *_, source in CHAIN)
    invalid = "c %% 97 = 0 AND j = 1"
    known = {
        "bus": "'kafka'",
        "topic": f"(ARRAY[{topics}])[j + 1]",
        "partition": "c %% 6",
        "offset": "c::text",
        "timestamp": "at",
        "key_hash": "md5('k' || c) || md5('K' || c)",
        "key_text": "'o-' || c",
        "ce_id": "md5(%(seed)s || '-' || c || '-' || j)::uuid::text",
        "ce_type": f"(ARRAY[{types}])[j + 1]",
        "ce_source": f"(ARRAY[{sources}])[j + 1]",
        "correlation_id": "md5(%(seed)s || '-' || c || '-0')::uuid::text",
        "causation_id": "CASE WHEN j = 0 THEN '' ELSE md5(%(seed)s || '-' || c || '-' || (j - 1))::uuid::text END",
        "trace_id": "md5('t' || c)",
        "schema_version_number": "1",
        "schema_version_id": "(%(versions)s::bigint[])[j + 1]",
        "size": "150 + c %% 300",
        "validity": f"CASE WHEN {invalid} THEN 'invalid' ELSE 'valid' END",
        "invalid_path": f"CASE WHEN {invalid} THEN '$.amount' ELSE '' END",
        "invalid_rule": f"CASE WHEN {invalid} THEN 'minimum' ELSE '' END",
        "payload": "NULL",
        "indexed_at": "at + interval '300 milliseconds'",
    }
    values, params = [], {}
    for field in fields:
        if field.column in known:
            values.append(known[field.column])
        elif field.null:
            values.append("NULL")
        else:
            params[f"default_{field.column}"] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%(default_{field.column})s")
    quoted = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    return (
        f"""
        INSERT INTO eventstore_indexedevent ({quoted})
        SELECT {", ".join(values)}
        FROM (SELECT i %% %(chains)s AS c, i / %(chains)s AS j FROM generate_series(0, %(rows)s - 1) AS i) AS n,
             LATERAL (SELECT %(start)s::timestamptz + make_interval(secs => c * %(step)s + j * 0.2) AS at) AS t
        """,
        params,
    )


def _correlation_id(seed: str, chain: int) -> str:
    """The correlation id the load SQL gives chain `chain`: its first event's id."""
    return str(uuid.UUID(hashlib.md5(f"{seed}-{chain}-0".encode()).hexdigest()))


def _fill(rows: int, versions: list[int]) -> tuple[str, str]:
    """Replace the table's rows with `rows` generated ones; returns (seed, what it took)."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from eventstore.models import IndexedEvent

    table = IndexedEvent._meta.db_table
    fields = [field for field in IndexedEvent._meta.concrete_fields if not field.primary_key]
    sql, defaults = _load_sql(fields)
    seed = uuid.uuid4().hex[:8]
    chains = rows // len(CHAIN)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        indexes = cursor.fetchall()
        for name, _definition in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            sql,
            {
                **defaults,
                "seed": seed,
                "chains": chains,
                "rows": chains * len(CHAIN),
                "start": timezone.now() - timedelta(days=7),
                "step": 7 * 86400 / chains,
                "versions": versions,
            },
        )
        inserted = time.perf_counter()
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _name, definition in indexes:
            cursor.execute(definition)
    indexed = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
        size = cursor.fetchone()[0]
    done = time.perf_counter()
    return seed, (
        f"load {done - started:.0f} s (insert {inserted - started:.0f}, {len(constraints) + len(indexes)} indexes/constraints "
        f"{indexed - inserted:.0f}, vacuum analyze {done - indexed:.0f}), {size / 2**30:.1f} GiB"
    )


def _trace_path(correlation_id: str) -> str | None:
    """The trace API's path for this id, or None while eventstore/traces.py has no `find_trace` or no route."""
    from django.urls import Resolver404, resolve

    try:
        from eventstore import traces
    except ImportError:
        return None
    if not hasattr(traces, "find_trace"):
        return None
    for path in (f"/api/v1/traces/{correlation_id}", f"/api/v1/traces/{correlation_id}/"):
        try:
            resolve(path)
            return path
        except Resolver404:
            continue
    return None


def _traces(results: Results, versions: list[int]) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from eventstore.models import IndexedEvent

    # Before the minutes of loading: the URLconf must import (the first request would fail).
    endpoint = _trace_path("probe") is not None
    started = time.perf_counter()
    seed, loaded = _fill(TRACE_ROWS, versions)
    print(f"bench.eventstore: {TRACE_ROWS:,} rows in {time.perf_counter() - started:.0f} s: {loaded}", file=sys.stderr)
    chains = TRACE_ROWS // len(CHAIN)
    picked = [_correlation_id(seed, c) for c in random.Random(seed).sample(range(chains), 2 * TRACES + 20)]
    warm, through_api, raw_ids = picked[:20], picked[20 : 20 + TRACES], picked[20 + TRACES :]

    viewer = get_user_model().objects.create_user("bench-viewer", "viewer@example.com", "bench-viewer-pw")
    viewer.groups.add(Group.objects.get(name="Viewer"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(viewer)

    def fetch(correlation_id: str) -> None:
        if endpoint:
            response = client.get(_trace_path(correlation_id))
            assert response.status_code == 200, (response.status_code, response.content[:300])
        else:  # placeholder until the trace API exists: the trace's rows through the ORM
            found = list(IndexedEvent.objects.filter(correlation_id=correlation_id).order_by("timestamp", "id"))
            assert len(found) == len(CHAIN), (correlation_id, len(found))

    def select(cursor, correlation_id: str) -> None:
        cursor.execute("SELECT * FROM eventstore_indexedevent WHERE correlation_id = %s", [correlation_id])
        assert len(cursor.fetchall()) == len(CHAIN), correlation_id

    def timed(fn, ids: list[str]) -> list[float]:
        samples = []
        for correlation_id in ids:
            started = time.perf_counter()
            fn(correlation_id)
            samples.append(time.perf_counter() - started)
        return samples

    with connection.cursor() as cursor:
        for correlation_id in warm[:10]:
            fetch(correlation_id)
            select(cursor, warm[10 + warm.index(correlation_id)])
        api = timed(fetch, through_api)
        raw = timed(lambda correlation_id: select(cursor, correlation_id), raw_ids)
    what = "GET /api/v1/traces/<id> as a Viewer" if endpoint else "PLACEHOLDER (no trace API yet): the ORM query"
    results.add(
        "trace_p95_ms",
        p95_ms(api),
        "ms",
        f"{what}, {TRACES} random of {chains:,} traces in {chains * len(CHAIN):,} rows; median {median_ms(api):.1f} ms; "
        f"{loaded}",
    )
    results.add(
        "trace_p95_ms_raw_select",
        p95_ms(raw),
        "ms",
        f"SELECT * ... WHERE correlation_id = %s; median {median_ms(raw):.1f} ms",
    )
    results.add("trace_rows", chains * len(CHAIN), "rows", "EVENTHUB_BENCH_TRACE_ROWS")


def main(argv: list[str]) -> None:
    """python -m bench.eventstore DATABASE OUT LOG_DIR: the figures on one database, written to OUT (JSON)."""
    from bench import app as bench_app

    database, out, log_dir = argv[0], Path(argv[1]), Path(argv[2])
    results = Results()
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    suffix = "" if database == "postgres" else f"_{database}"
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-eventstore-") as folder:
        bench_app.setup(Path(folder), os.environ.get("EVENTHUB_BENCH_DATABASE_URL"))
        from django.db import connection

        if database == "postgres":
            assert connection.vendor == "postgresql", connection.vendor
            major, minor = divmod(connection.pg_version, 10000)
            results.label("index_ingest_database", f"postgresql {major}.{minor}")
        versions = _register_schemas()
        if "ingest" in PIECES:
            _ingest(results, bootstrap, database, suffix, log_dir)
        if "lag" in PIECES:
            _lag(results, bootstrap, database, suffix, log_dir)
        if "traces" in PIECES and database == "postgres" and TRACE_ROWS:
            _traces(results, versions)
        connection.close()
    out.write_text(json.dumps({"figures": [asdict(f) for f in results.figures], "labels": results.labels}))


if __name__ == "__main__":
    main(sys.argv[1:])
