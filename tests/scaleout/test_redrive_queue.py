"""A Celery worker that listens on "redrive" only takes the redrive jobs.

Redrive jobs are long, so they have their own queue ("redrive"; the default
queue is "eventhub") and can get their own workers. With a private Redis as
broker:
1. a worker on "eventhub" only is running; a redrive job is started: its task
   waits in the "redrive" queue. Proof that the worker saw its chance and left
   it: a task sent to "eventhub" AFTER the job is run by that worker, and the
   redrive task is still queued, the job still pending;
2. a worker on "redrive" only is started: it takes the task and the job
   completes; the first worker never received it.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.fault import (  # noqa: F401 - app_db, observed, procs, scratch_topics: fixtures
    app_db,
    celery_worker,
    django_env,
    observed,
    procs,
    rows,
    run_worker,
    scratch_topics,
    worker_healthy,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.scaleout]

COUNT = 20


def _state(db, job_id: int) -> str:
    return rows(db, "SELECT state FROM monitor_redrivejob WHERE id = ?", job_id)[0][0]


def test_redrive_jobs_go_to_the_redrive_worker(procs, app_db, observed, scratch_topics):  # noqa: F811
    from celery import Celery

    redis = procs.redis()
    env = django_env(app_db.path, redis_url=redis.url)
    default = celery_worker(procs, env, "eventhub", "default-worker")
    source = f"fault-queue-{os.urandom(4).hex()}"
    scratch_topics.add("kafka", source, f"{source}.dlq")  # made by workers/redrive_setup.py
    made = run_worker("redrive_setup.py", source, str(COUNT), "1000", env=env)
    job_id = made["job"]
    broker = redis.client()
    assert broker.llen("redrive") == 1  # the job's task, waiting

    # A later task on the default queue is run: the default worker was free to take ours.
    # Not the current app: shared tasks (`.delay()`) of later tests in this process would go
    # through it to this private Redis, gone by then.
    with Celery(broker=redis.url, set_as_current=False) as sender:
        sender.send_task("monitor.tasks.maintain_history", queue="eventhub")
    wait_until(lambda: "monitor.tasks.maintain_history" in default.log() and "succeeded" in default.log(), 30,
             "the default worker to run a task sent after the job", logs=procs.tail)  # fmt: skip
    assert broker.llen("redrive") == 1
    assert _state(app_db, job_id) == "pending"

    started = time.monotonic()
    redrive = celery_worker(procs, env, "redrive", "redrive-worker")
    wait_until(lambda: worker_healthy(redrive) and _state(app_db, job_id) == "done", 60, "the job", logs=procs.tail)
    observed["redrive_worker_start_to_done_s"] = time.monotonic() - started
    # Not the bare task name: a worker's start-up banner lists every registered task.
    assert "deadletters.redrive_run[" in redrive.log()
    assert "deadletters.redrive_run[" not in default.log()
    assert broker.llen("redrive") == 0
    assert rows(app_db, "SELECT done, failed FROM monitor_redrivejob WHERE id = ?", job_id) == [(COUNT, 0)]
