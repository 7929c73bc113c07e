"""A redrive worker SIGKILLed midway through 1,000 dead letters, then resumed: each re-sent once.

A real Celery worker (the "redrive" queue, on a private Redis as broker) runs a
retry job over 1,000 dead letters (rate-capped so that it lasts a few seconds).
At about a fifth of the way it is SIGKILLed: no cleanup, the job row still
says running, and the batch in hand (if any) may be claimed and partly sent
without being recorded.
Then, as the beat task `redrive_resume` does (here as soon as the heartbeat is
1 s old instead of 30 s), the job is taken over with a new runner token and
sent to Celery again; a new worker finishes it.

Counted on the bus, not in the database: every one of the 1,000 dead letters
appears exactly once on its source topic as a record with x-eventhub-replay-of
= its id; nothing else was written there. The job says done 1000, failed 0.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from eventhub.bus import open_bus
from tests.fault import (
    celery_worker,
    django_env,
    header_text,
    read_topic,
    rows,
    run_worker,
    worker_healthy,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.fault

COUNT = 1000
# Dead letters per second: the job lasts at least 6.7 s, and the kill has 5 s after KILL_AT to
# land before the job ends, however busy the machine (at 400/s, 1.7 s was once too short).
RATE = 150.0
KILL_AT = COUNT // 5


def _job(app_db, job_id: int) -> dict:
    state, cursor, done, failed, skipped = rows(
        app_db, "SELECT state, cursor, done, failed, skipped FROM monitor_redrivejob WHERE id = ?", job_id
    )[0]
    return {"state": state, "cursor": cursor, "done": done, "failed": failed, "skipped": skipped}


def test_killed_redrive_worker_resumes_and_sends_each_once(procs, app_db, observed, scratch_topics):
    redis = procs.redis()
    env = django_env(app_db.path, redis_url=redis.url)
    source = f"fault-redrive-{os.urandom(4).hex()}"
    scratch_topics.add("kafka", source, f"{source}.dlq")  # made by workers/redrive_setup.py
    worker = celery_worker(procs, env, "redrive", "redrive-a")

    made = run_worker("redrive_setup.py", source, str(COUNT), str(RATE), env=env)
    job_id, ids = made["job"], made["ids"]
    started = time.monotonic()
    wait_until(
        lambda: worker_healthy(worker) and _job(app_db, job_id)["cursor"] >= KILL_AT,
        60,
        f"the job to pass item {KILL_AT}",
        logs=procs.tail,
    )
    worker.kill()
    at_kill = _job(app_db, job_id)
    observed["cursor_at_kill"] = at_kill["cursor"]
    observed["retried_at_kill"] = rows(
        app_db, "SELECT COUNT(*) FROM monitor_deadletter WHERE job_id = ? AND status = 'retried'", job_id
    )[0][0]
    assert at_kill["state"] == "running", (  # nobody told the job: its worker just vanished
        f"the job was {at_kill['state']} at the kill (cursor {at_kill['cursor']}): it ended before the test saw it pass {KILL_AT}"
    )

    killed = time.monotonic()
    run_worker("redrive_resume.py", str(job_id), "1.0", env=env)
    second = celery_worker(procs, env, "redrive", "redrive-b")
    wait_until(
        lambda: worker_healthy(second) and _job(app_db, job_id)["state"] not in ("running", "pending"),
        90,
        "the job to finish",
        logs=procs.tail,
    )
    observed["kill_to_done_s"] = time.monotonic() - killed
    observed["job_total_s"] = time.monotonic() - started

    final = _job(app_db, job_id)
    assert final == {"state": "done", "cursor": COUNT, "done": COUNT, "failed": 0, "skipped": 0}
    statuses = dict(
        rows(app_db, "SELECT status, COUNT(*) FROM monitor_deadletter WHERE job_id = ? GROUP BY status", job_id)
    )
    assert statuses == {"retried": COUNT}
    takeovers = rows(
        app_db, "SELECT COUNT(*) FROM monitor_auditentry WHERE job_id = ? AND action = 'job_takeover'", job_id
    )
    assert takeovers == [(1,)]
    in_doubt = rows(
        app_db,
        "SELECT result FROM monitor_auditentry WHERE job_id = ? AND (result LIKE '%after the worker died%'"
        " OR result LIKE 'interrupted before the send%')",
        job_id,
    )
    observed["item_in_doubt"] = in_doubt[0][0] if in_doubt else "none"

    bus = open_bus("kafka", bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        records = read_topic(bus, source)
    finally:
        bus.close()
    replays = Counter(header_text(record, "x-eventhub-replay-of") for record in records)
    assert len(records) == COUNT  # nothing but the replays
    assert replays == Counter({str(pk): 1 for pk in ids})  # each dead letter re-sent exactly once
