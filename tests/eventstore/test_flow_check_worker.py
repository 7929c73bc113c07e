"""Flow checks through a real Celery worker: the trigger is published by the task sent after
commit, exactly once even when the task is delivered twice, and the beat task judges the check.

The worker is a subprocess on a SQLite file (file_db) that the test process also writes to
(the indexer steps here); the services are SDK consumers in threads (tests/eventstore/test_flow_checks.py).
"""

from __future__ import annotations

import subprocess

import pytest

from eventhub.sdk import headers as h
from eventstore import flow_checks, tasks
from eventstore.models import FlowCheck, FlowCheckStep
from tests.deadletters.support import (
    _file_db_template,  # noqa: F401 - fixture
    celery_worker,
    file_db,  # noqa: F401 - fixture
    read_all,
    wait_until,
)
from tests.eventstore.test_flow_checks import World


@pytest.fixture
def worker(file_db):  # noqa: F811
    process = celery_worker(file_db, "eventhub", "eventstore.tasks")
    yield process
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_the_worker_publishes_the_trigger_once_and_the_beat_task_judges_the_check(bus, unique, settings, worker):
    settings.EVENTHUB_WORKERS = "celery"
    world = World(bus, unique)
    try:
        world.warm_up()
        check = flow_checks.start(world.flow)  # the publish task goes to the worker after commit
        tasks.publish_flow_check_trigger.delay(check.pk)  # delivered twice: the claim lets one through
        published = wait_until(
            lambda: FlowCheck.objects.filter(pk=check.pk).exclude(published_at=None).first(),
            60,
            "the worker to publish the trigger",
            pause=world.step,
        )

        def judged():
            tasks.evaluate_flow_checks.delay()  # what beat sends every 3 s
            world.step()

        done = wait_until(
            lambda: FlowCheck.objects.filter(pk=check.pk).exclude(status="running").first(),
            60,
            "the worker to judge the check",
            pause=judged,
        )
        assert done.status == "passed", done.error
        assert list(FlowCheckStep.objects.filter(flow_check=check).values_list("status", flat=True)) == [
            "passed",
            "passed",
        ]
        triggers = [
            r
            for r in read_all(bus, world.topic_name)
            if r.header(h.CE_ID) == published.trigger_event_id.encode() or r.header(h.CE_TYPE) == b"shop.ordered"
        ]
        assert [r.header(h.CORRELATION_ID) for r in triggers].count(check.correlation_id.encode()) == 1
    finally:
        world.close()
