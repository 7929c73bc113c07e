"""Dead letters: ingestion and redrive against the raw Kafka client doing the same I/O.

dlq_ingest_ratio: `deadletters.ingest.Ingester` reading N dead letters (EventHub
headers, as the SDK writes them) from `bench-orders.dlq` into DeadLetter rows,
over a raw kafka-python consumer group reading the same topic (the best of three
groups: the raw read lasts a fraction of a second, and one disturbed run would
flatter the ratio). Both clocks start after the first batch (so neither pays for
its group join) and stop at the last record; the ingester's includes decoding the
headers, the rows and the commit after each transaction, which is where its time
goes (SQLite here). The detail adds the ingester thread's CPU time per row, which
moves less than the wall clock when the machine is busy.

dlq_ingest_ratio_postgres: the same on a private PostgreSQL (bench.common.start_postgres),
in a process of its own (`python -m bench.deadletters postgres OUT`): Django reads its
database once, and the rest of this part runs on the bench's SQLite file.

redrive_ratio: a redrive job (`deadletters.redrive.run_job`, at the highest rate an
operator may ask, deadletters.models.MAX_RATE: no cap in practice) replaying M of them to `bench-orders`, over a raw kafka-python
producer sending the same records (send, then flush). The job sends a batch (up to
500 items, the window a crash can leave in doubt) all at once through
`Bus.publish_many` and waits for every ack, between the batch's two commits (claim,
then record). The raw send-and-wait rate (one record, its ack, the next) is shown
beside it: what the job would be capped at with one record in flight.

redrive_cap_error: |achieved - asked| / asked for a job capped at 200/s.

redrive_cancel_s: from an operator's cancel (its audit entry) to the job's stop
(finished_at), for a job running at 200/s in a thread of this process, as the
in-process worker runs it. The runner reads the job's state back with every
batch's progress, so it stops after the batch in hand (a quarter of a second's
worth of items): the detail says how many it sent after the cancel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from bench.common import Results, start_postgres, stop_postgres, stored_rate, wait_until
from eventhub.bus import open_bus
from eventhub.bus.kafka import KafkaBus
from eventhub.sdk import headers as h

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("EVENTHUB_BENCH_DLQ_N", 5000))
REDRIVE_ITEMS = 1000
CAPPED_ITEMS = 600
CANCELLED_ITEMS = 400
CAP = 200.0


def _records(source: str, n: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    records = []
    for i in range(n):
        headers = [
            (h.CE_ID, str(uuid.uuid4())),
            (h.CE_TYPE, "order.placed"),
            (h.CE_SOURCE, "/services/shop"),
            (h.CE_SPECVERSION, "1.0"),
            (h.CONTENT_TYPE, h.JSON_CONTENT_TYPE),
            (h.ORIGINAL_TOPIC, source),
            (h.ORIGINAL_PARTITION, "0"),
            (h.ORIGINAL_OFFSET, str(i)),
            (h.GROUP, "billing"),
            (h.ATTEMPTS, "3"),
            (h.ERROR_CLASS, "RuntimeError"),
            (h.ERROR_MESSAGE, f"order o-{i} failed"),
            (h.FAILED_AT, h.utc_now_iso()),
            (h.SERVICE, "billing"),
        ]
        value = json.dumps({"order_id": f"o-{i}", "amount": i, "lines": [{"sku": "SKU-1", "quantity": 1}]}).encode()
        records.append((f"o-{i}".encode(), value, [(k, v.encode()) for k, v in headers]))
    return records


def _raw_consume_rate(bootstrap: str, topic: str, n: int) -> float:
    probe = KafkaBus(bootstrap)
    session = probe.consumer_session()  # the same session the ingester's consumer gets
    probe.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **session,
    )
    try:
        seen, started = 0, None
        deadline = time.monotonic() + 120
        while seen < n and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500, max_records=500)
            got = sum(len(records) for records in batches.values())
            if got and started is None:
                started, first = time.perf_counter(), got
            seen += got
            if got:
                consumer.commit()  # the ingester commits each batch too
        return (seen - first) / (time.perf_counter() - started)
    finally:
        consumer.close()


def _ingest_rate(bus, n: int) -> tuple[float, float]:
    """(rows per second, CPU microseconds of this thread per row) after the first batch."""
    from deadletters.ingest import Ingester
    from deadletters.models import DeadLetter
    from eventhub import background

    ingester = Ingester(("kafka",), buses={"kafka": bus}, group=f"bench-ingest-{uuid.uuid4().hex[:6]}")
    background.settle_heap()  # as deadletters.ingest.run_forever does once the ingester is made
    try:
        rate, cpu_us = stored_rate(ingester.step, n)
    finally:
        ingester.close()
    assert DeadLetter.objects.count() >= n, "the ingester stored fewer rows than records"
    return rate, cpu_us


def _job(ids: list[int], rate: float) -> tuple[float, str]:
    """Run a redrive job over `ids` here and now; returns (items per second, final state)."""
    from django.contrib.auth import get_user_model

    from deadletters import redrive
    from deadletters.models import RedriveJob

    job = RedriveJob.objects.create(
        action=RedriveJob.RETRY,
        selection={"ids": ids},
        rate_per_s=rate,
        total=len(ids),
        item_ids=ids,
        created_by=get_user_model().objects.first(),
    )
    started = time.perf_counter()
    state = redrive.run_job(job.pk)
    elapsed = time.perf_counter() - started
    job.refresh_from_db()
    return job.done / elapsed, f"{state}: {job.done} done, {job.failed} failed, {job.skipped} skipped"


def _cancel(ids: list[int], rate: float) -> tuple[float, str]:
    """Run a job over `ids` in a thread, cancel it a quarter of the way; returns (seconds from the
    cancel to the stop, detail)."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connection

    from deadletters import actions, redrive
    from deadletters.models import AuditEntry, RedriveJob

    user = get_user_model().objects.first()
    job = RedriveJob.objects.create(
        action=RedriveJob.RETRY, selection={"ids": ids}, rate_per_s=rate, total=len(ids), item_ids=ids, created_by=user
    )

    def work() -> None:
        try:
            redrive.run_job(job.pk)
        finally:
            connection.close()  # this thread's own

    runner = threading.Thread(target=work, name="bench-redrive-cancel")
    runner.start()
    wait_until(lambda: RedriveJob.objects.get(pk=job.pk).done >= len(ids) // 4, 60, "the job to get under way")
    done_when_asked = actions.cancel_job(job, actor=user).done
    runner.join(60)
    job.refresh_from_db()
    asked = AuditEntry.objects.get(job=job, action="job_cancel").at
    batch = max(1, min(redrive.MAX_BATCH, int(rate * redrive.BATCH_SECONDS)))
    return (job.finished_at - asked).total_seconds(), (
        f"{job.state} at {job.done} of {len(ids)} at {rate:g}/s; {job.done - done_when_asked} sent after the "
        f"cancel (a batch is {batch})"
    )


def _ingest(results: Results, bootstrap: str, suffix: str = "") -> tuple[str, list]:
    """dlq_ingest_ratio<suffix> on the database Django uses; returns (source topic, records)."""
    source = f"bench-orders-{uuid.uuid4().hex[:6]}"
    dlq = f"{source}.dlq"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    bus.create_topic(source)
    bus.create_topic(dlq)
    records = _records(source, N)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for key, value, headers in records:
        producer.send(dlq, value=value, key=key, headers=headers)
    producer.flush()
    producer.close()

    raw = max(_raw_consume_rate(bootstrap, dlq, N) for _ in range(3))
    ingest, cpu_us = _ingest_rate(bus, N)
    bus.close()
    results.add(
        f"dlq_ingest_ratio{suffix}",
        ingest / raw,
        "ratio",
        f"ingester {ingest:,.0f} rows/s ({cpu_us:.0f} us CPU per row), raw consumer {raw:,.0f}/s ({N} records)",
    )
    return source, records


def _ingest_on_postgres(results: Results) -> None:
    """dlq_ingest_ratio_postgres, measured by a child process on a private PostgreSQL."""
    from bench.common import Figure

    process, url, home = start_postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="eventhub-bench-dlq-") as folder:
            out = Path(folder) / "figures.json"
            env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", "EVENTHUB_BENCH_DATABASE_URL": url}
            done = subprocess.run(
                [sys.executable, "-m", "bench.deadletters", "postgres", str(out)],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,  # its figure's line goes to our stdout, as the others'
                text=True,
                check=False,
            )
            if done.returncode:
                raise RuntimeError(f"bench.deadletters postgres exited with {done.returncode}:\n{done.stderr[-3000:]}")
            results.figures += [Figure(**figure) for figure in json.loads(out.read_text())]
    finally:
        stop_postgres(process, home)


def run(results: Results, bootstrap: str) -> None:
    from deadletters.models import MAX_RATE, DeadLetter

    source, records = _ingest(results, bootstrap)
    _ingest_on_postgres(results)
    dlq = f"{source}.dlq"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)

    # Redrive the first REDRIVE_ITEMS, uncapped, then CAPPED_ITEMS more at CAP/s.
    ids = list(DeadLetter.objects.filter(dlq_topic=dlq).order_by("id").values_list("id", flat=True))
    uncapped, state = _job(ids[:REDRIVE_ITEMS], MAX_RATE)
    sample = records[:REDRIVE_ITEMS]

    def raw_async() -> float:
        started = time.perf_counter()
        for key, value, headers in sample:
            producer.send(source, value=value, key=key, headers=headers)
        producer.flush()
        return len(sample) / (time.perf_counter() - started)

    def raw_sync() -> float:
        # What the job does per item: one send, then wait for its ack (no linger).
        waiting = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        waiting.send(source, value=b"{}").get(timeout=10)  # metadata and connection before the clock
        started = time.perf_counter()
        for key, value, headers in sample[:300]:
            waiting.send(source, value=value, key=key, headers=headers).get(timeout=10)
        rate = 300 / (time.perf_counter() - started)
        waiting.close()
        return rate

    raw_rate = max(raw_async() for _ in range(2))
    sync_rate = raw_sync()
    results.add(
        "redrive_ratio",
        uncapped / raw_rate,
        "ratio",
        f"job {uncapped:,.0f}/s ({state}), raw send+flush {raw_rate:,.0f}/s, raw send-and-wait {sync_rate:,.0f}/s",
    )
    capped, state = _job(ids[REDRIVE_ITEMS : REDRIVE_ITEMS + CAPPED_ITEMS], CAP)
    results.add("redrive_cap_error", abs(capped - CAP) / CAP, "ratio", f"asked {CAP:g}/s, got {capped:.1f}/s ({state})")
    first = REDRIVE_ITEMS + CAPPED_ITEMS
    stopped_after, detail = _cancel(ids[first : first + CANCELLED_ITEMS], CAP)
    results.add("redrive_cancel_s", stopped_after, "s", detail)
    producer.close()
    bus.close()


def main(argv: list[str]) -> None:
    """python -m bench.deadletters DATABASE OUT: dlq_ingest_ratio_<database> on EVENTHUB_BENCH_DATABASE_URL."""
    from bench import app as bench_app

    database, out = argv[0], Path(argv[1])
    results = Results()
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-dlq-") as folder:
        bench_app.setup(Path(folder), os.environ["EVENTHUB_BENCH_DATABASE_URL"])
        from django.db import connection

        assert connection.vendor == "postgresql", connection.vendor
        _ingest(results, os.environ["KAFKA_BOOTSTRAP_SERVERS"], f"_{database}")
        connection.close()
    out.write_text(json.dumps([asdict(figure) for figure in results.figures]))


if __name__ == "__main__":
    main(sys.argv[1:])
