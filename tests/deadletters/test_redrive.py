"""Redrive jobs on the real Kafka-protocol broker: rate cap, cancel, resume, a killed worker.

Rates are measured from the job's own audit timestamps (one per item sent),
never by timing the test.
"""

from __future__ import annotations

import signal
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from deadletters import actions, redrive
from deadletters.models import AuditEntry, DeadLetter, RedriveJob
from deadletters.redrive import TokenBucket
from eventhub.bus import open_bus
from tests.conftest import bus_options
from tests.deadletters.support import (
    Listener,
    _file_db_template,  # noqa: F401 - fixture
    bulk_dead_letters,
    celery_worker,
    end_offset,
    file_db,  # noqa: F401 - fixture
    make_user,
    read_all,
    replays,
    stored_dead_letter,
    wait_until,
)

# Well below what the pipeline does on a loaded 2-CPU box (~200-300/s on the embedded broker),
# so that the cap, not the machine, sets the pace.
RATE = 100.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "steps", "expected_sends"),
    [
        # (binary fractions as steps, so the fake clock adds up exactly)
        (8, [0.0] * 5, 1),  # starts with one token: no opening burst
        (8, [0.125] * 10, 11),  # one per 1/rate
        (8, [5.0], 2),  # after a long pause, at most capacity (1 at 8/s) extra
        (128, [1.0], 13),  # capacity is a tenth of a second's worth (12.8)
        (64, [1 / 128] * 100, 51),  # half a token per step: the average rate holds
    ],
)
def test_token_bucket(rate, steps, expected_sends):
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock)
    sends = 0
    for step in [0.0, *steps]:
        clock.now += step
        while bucket.delay() == 0:
            bucket.take()
            sends += 1
    assert sends == expected_sends
    assert TokenBucket(4, clock=clock).delay() == 0 and 0 < TokenBucket(4, clock=clock).capacity <= 1


def _segments(job: RedriveJob, split_at=None) -> list[list]:
    """When the broker acknowledged each of the job's replays (from its audit trail), split where it
    was resumed."""
    sent = sorted(
        datetime.fromisoformat(detail["sent_at"])
        for detail in AuditEntry.objects.filter(job=job, action="retry", result__startswith="sent").values_list(
            "detail", flat=True
        )
    )
    if split_at is None:
        return [sent]
    return [[at for at in sent if at <= split_at], [at for at in sent if at > split_at]]


def _rate(times: list) -> float:
    return (len(times) - 1) / (times[-1] - times[0]).total_seconds()


@pytest.fixture
def kafka():
    bus = open_bus("kafka", **bus_options("kafka"))
    yield bus
    bus.close()


def test_bulk_redrive_honours_its_rate_and_can_be_cancelled_and_resumed(
    kafka,
    file_db,  # noqa: F811 - the fixture imported above
    unique,
    settings,
    record_property,
):
    """A cancel stops the job after the batch in hand, a resume sends the rest, each event once,
    and neither part goes faster than the cap. How soon a cancel takes effect and how closely the
    cap is met are timing figures, measured by `make bench` (redrive_cancel_s, redrive_cap_error)."""
    settings.EVENTHUB_WORKERS = "inprocess"  # the task runs in a thread of this process
    topic = unique("orders")
    kafka.create_topic(topic, partitions=3)
    user = make_user("otto")
    ids = bulk_dead_letters("kafka", topic, 1000)
    listener = Listener(actions.GROUP)
    try:
        job = actions.start_job(
            actor=user, action="retry", selection={"filter": {"topic": topic}}, rate_per_s=RATE, target_group=""
        )
        assert (job.total, job.item_ids) == (1000, ids)
        wait_until(lambda: RedriveJob.objects.get(pk=job.pk).done >= 450, 30, "450 sent")
        done_when_asked = actions.cancel_job(job, actor=user).done
        job = wait_until(lambda: RedriveJob.objects.filter(pk=job.pk, state="cancelled").first(), 30, "the job to stop")
        progress = listener.receive()
    finally:
        listener.close()
    asked = AuditEntry.objects.get(job=job, action="job_cancel").at
    stopped_after = (job.finished_at - asked).total_seconds()
    # The runner reads the state back with each batch's progress: it finishes the batch in hand
    # (a quarter of a second's worth at the asked rate) and stops. How soon is a bench figure.
    batch = max(1, min(redrive.MAX_BATCH, int(RATE * redrive.BATCH_SECONDS)))
    assert 0 <= job.done - done_when_asked <= batch, (done_when_asked, job.done)
    assert 450 <= job.done < 1000 and job.cursor == job.done
    assert not DeadLetter.objects.filter(status="retrying").exists()
    first = replays(kafka, topic)
    assert set(first.values()) == {1} and len(first) == job.done
    assert progress["type"] == "redrive.progress" and progress["job"] == job.pk and progress["total"] == 1000

    actions.resume_job(job, actor=user)
    job = wait_until(lambda: RedriveJob.objects.filter(pk=job.pk, state="done").first(), 30, "the job to finish")
    assert (job.done, job.failed, job.skipped) == (1000, 0, 0)
    assert replays(kafka, topic) == {pk: 1 for pk in ids}  # each event once, across cancel and resume
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"retried"}

    resumed = AuditEntry.objects.get(job=job, action="job_resume").at
    before, after = _segments(job, split_at=resumed)
    rates = (_rate(before), _rate(after))
    record_property("rates", rates)
    record_property("stopped_after_s", stopped_after)
    # Only the cap's promise, which a loaded machine cannot break: never faster than asked.
    assert all(0 < rate < RATE * 1.2 for rate in rates), rates


@pytest.mark.fault
def test_a_killed_worker_is_resumed_without_resending(kafka, file_db, unique, settings, record_property):  # noqa: F811
    """A real Celery worker runs the job and is SIGKILLed mid-way; the beat task's resume takes
    the job over from its stale heartbeat and sends the rest: every event exactly once."""
    settings.EVENTHUB_WORKERS = "celery"
    topic = unique("orders")
    kafka.create_topic(topic, partitions=3)
    user = make_user("otto")
    ids = bulk_dead_letters("kafka", topic, 400)
    worker = celery_worker(file_db, "redrive", "deadletters.tasks")
    try:
        job = actions.start_job(actor=user, action="retry", selection={"ids": ids}, rate_per_s=2 * RATE)
        # Killed when 120 replays are on the topic: in the middle of a batch (50 at 200/s), so
        # some items are claimed, some of them sent, and none of that recorded.
        wait_until(lambda: end_offset(kafka, topic) >= 120, 40, "the worker to send 120")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    killed = RedriveJob.objects.get(pk=job.pk)
    assert killed.state == "running" and killed.done < 400
    sent_by_the_dead = replays(kafka, topic)
    assert set(sent_by_the_dead.values()) == {1}

    # What celery beat does every 30 s (deadletters.redrive_resume), with a 1 s staleness for the test.
    assert wait_until(lambda: redrive.resume_stale(stale_after_s=1.0, inline=True), 10, "the takeover") == [job.pk]
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == ("done", 400, 0)
    assert replays(kafka, topic) == {pk: 1 for pk in ids}
    assert AuditEntry.objects.filter(job=job, action="job_takeover").count() == 1
    found = AuditEntry.objects.filter(job=job, result__contains="found on the topic after the worker died").count()
    record_property("sent_before_kill", sum(sent_by_the_dead.values()))
    record_property("in_doubt_found_sent", found)
    assert sum(sent_by_the_dead.values()) - killed.done == found  # sent but not recorded: found, not re-sent


@pytest.mark.parametrize("bus", ["kafka", "redis"], indirect=True)
def test_an_item_in_doubt_after_a_crash_is_found_or_sent_once(bus, unique, operator):
    """The worker died between claim and mark: one item was sent (its replay is on the topic),
    the other was not. The resumed run marks the first sent and sends only the second."""
    topic = unique("orders")
    bus.create_topic(topic, partitions=2)
    sent, unsent = stored_dead_letter(bus.kind, topic), stored_dead_letter(bus.kind, topic)
    job = RedriveJob.objects.create(
        action="retry",
        state="running",
        runner="dead-worker",
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        selection={"ids": [sent.pk, unsent.pk]},
        item_ids=[sent.pk, unsent.pk],
        total=2,
        rate_per_s=50,
        created_by=operator,
    )
    marks = bus.watermark(topic)
    DeadLetter.objects.filter(pk__in=[sent.pk, unsent.pk]).update(status="retrying", job=job, claim_marks=marks)
    before = bus.publish(topic, b"someone else's record")  # after the marks: must be looked past
    landed = bus.publish(topic, bytes(sent.payload), key=bytes(sent.key), headers=actions.replay_headers(sent, 1))
    # A single retry of a web request that died, long ago, before it sent anything.
    lonely = stored_dead_letter(bus.kind, topic, status="retrying", claim_marks=marks)
    DeadLetter.objects.filter(pk=lonely.pk).update(updated_at=timezone.now() - timedelta(minutes=5))

    assert redrive.resume_stale(inline=True) == [job.pk]

    job.refresh_from_db()
    assert (job.state, job.done, job.failed, job.cursor) == ("done", 2, 0, 2)
    assert replays(bus, topic) == {sent.pk: 1, unsent.pk: 1}
    sent.refresh_from_db()
    assert (sent.status, sent.replay_offset, sent.replay_partition) == ("retried", str(landed.offset), landed.partition)
    assert "found on the topic" in sent.audit.get(action="retry").result
    assert (before.partition, before.offset) != (landed.partition, landed.offset)
    lonely.refresh_from_db()
    assert lonely.status == "new" and "not sent" in lonely.audit.get().result
    assert len(read_all(bus, topic)) == 3


def test_discard_job_skips_what_it_cannot_discard(db, operator):
    ids = bulk_dead_letters("kafka", "orders", 5)
    DeadLetter.objects.filter(pk=ids[0]).update(status="resolved")
    job = actions.start_job(
        actor=operator, action="discard", selection={"ids": ids}, rate_per_s=1000, reason="bad deploy, refunded"
    )
    assert redrive.run_job(job.pk) == "done"
    job.refresh_from_db()
    assert (job.done, job.skipped, job.failed) == (4, 1, 0)
    assert list(DeadLetter.objects.filter(pk__in=ids).order_by("id").values_list("status", flat=True)) == [
        "resolved",
        *["discarded"] * 4,
    ]
    assert AuditEntry.objects.filter(job=job, action="discard", detail__reason="bad deploy, refunded").count() == 4
    assert redrive.run_job(job.pk) is None  # a finished job is not run twice


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"action": "discard", "reason": ""}, "why"),
        ({"rate_per_s": 0}, "between"),
        ({"rate_per_s": "fast"}, "number"),
        ({"action": "replay"}, "Unknown action"),
        ({"selection": {"ids": []}}, "between 1"),
        ({"selection": {"ids": [1], "filter": {}}}, "not both"),
        ({"selection": {"filter": {"topic": "nothing-here"}}}, "matches no"),
        ({"selection": {"filter": {"status": "lost"}}}, "Bad filter"),
    ],
)
def test_start_job_refuses_bad_requests(db, operator, options, message):
    bulk_dead_letters("kafka", "orders", 1)
    arguments = {"action": "retry", "selection": {"filter": {"topic": "orders"}}, "rate_per_s": 10, **options}
    with pytest.raises(actions.InvalidRequest, match=message):
        actions.start_job(actor=operator, **arguments)
    assert not RedriveJob.objects.exists()


def test_cancel_before_start_and_resume(db, operator):
    ids = bulk_dead_letters("kafka", "orders", 2)
    job = actions.start_job(actor=operator, action="discard", selection={"ids": ids}, rate_per_s=5, reason="x")
    assert actions.cancel_job(job, actor=operator).state == "cancelled"
    assert redrive.run_job(job.pk) is None  # the queued task finds nothing to do
    with pytest.raises(actions.Conflict):
        actions.cancel_job(job, actor=operator)
    assert actions.resume_job(job, actor=operator).state == "pending"
    assert redrive.run_job(job.pk) == "done"
    with pytest.raises(actions.Conflict):
        actions.resume_job(job, actor=operator)
