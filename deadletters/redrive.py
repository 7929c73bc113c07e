"""The redrive job runner: rate-capped, cancellable, resumable after a worker crash.

A RedriveJob holds its items (`item_ids`, resolved when it was created) and a
cursor: items before the cursor are finished and counted in done/failed/skipped.
The runner owns the job through a token (`runner`); every progress write is
conditional on it, so a worker presumed dead that wakes up stops at its next
write instead of racing its successor.

The items go in small batches, a quarter of a second's worth at the asked rate
(1 to MAX_BATCH items), each batch in three steps:
1. claim: conditional UPDATEs (status new|retried -> retrying, job -> this
   job, the source topic's end offsets -> claim_marks), one commit;
2. publish the claimed items as the token bucket allows, the whole batch in
   flight at once (`Bus.publish_many`: records with the same topic and key stay
   in order), and wait for every ack;
3. record what happened (retried with the replay's position, parked by the
   loop guard, released on a failed send) with the audit entries and the
   job's cursor, counters and heartbeat, one commit; the job's state is read
   back, so a cancel (state cancelling) stops the job after the batch in hand:
   within a second.
Two commits per batch instead of two per item: on SQLite every commit is an
fsync, which would cap a job far below the rates operators ask for.

A crash between 1 and 3 leaves the batch's claimed items in doubt: at most one
batch, max(1, rate/4) items, never more than MAX_BATCH. `resume_stale` (Celery
beat, every STALE_AFTER_S) takes over a job whose heartbeat is older than that
and, before going on from the cursor, settles them: the source topic is read
from their claim_marks for records whose x-eventhub-replay-of / -count name
them; found means sent (recorded so), not found means not sent (sent now).
Only when the topic cannot be read are they counted failed, "outcome unknown",
and left for an operator, never re-sent blindly. Items after the cursor that
this job had already finished (job = this job) are counted, not sent again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import MISSING, dataclass, fields
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from deadletters import actions
from deadletters.models import AuditEntry, DeadLetter, RedriveJob
from eventhub import background, connections
from eventhub.bus import BusError, BusTimeout, BusUnavailable, OutgoingRecord, Published, UnknownTopic

log = logging.getLogger(__name__)

STALE_AFTER_S = 30.0  # no heartbeat for this long: the worker is presumed dead
BATCH_SECONDS = 0.25  # a batch is this long's worth of items at the asked rate
MAX_BATCH = 500  # the window a crash can leave in doubt; at 2,000/s and more, a quarter second's worth
WAIT_CHECK_S = 0.25  # during long rate-limit waits, the job's state is read this often
BROADCAST_EVERY_S = 0.5  # redrive.progress messages at most this often (and at every state change)
MARKS_EVERY_S = 5.0  # how often the source topics' ends are re-read


@dataclass(eq=False)
class _Item:
    """A dead letter as a batch reads it, for the actions that claim, send and record it: the
    claim, the loop guard and the replay record (actions.replay_record). Plain attributes, not
    a model instance: making 500 instances took an eighth of a job's time. The fields without
    a default are the columns read, in this order (REPLAY_FIELDS); record_sent writes the
    replay's fields back, as on a model."""

    pk: int
    bus: str
    source_topic: str
    key: bytes | None
    payload: bytes | None
    truncated: bool
    raw_headers: list
    status: str
    replay_count: int
    job_id: int | None
    replay_topic: str = ""
    replay_partition: int | None = None
    replay_offset: str = ""
    replay_group: str = ""
    replayed_at: object = None
    updated_at: object = None


REPLAY_FIELDS = tuple(f.name for f in fields(_Item) if f.default is MISSING and f.name != "pk")


class TokenBucket:
    """At most `rate` takes per second on average, bursts up to `capacity`.

    Starts with one token, so a job does not open with a burst; the capacity
    (a tenth of a second's worth) lets it catch up after a slow send so that
    the achieved rate stays at the asked one.
    """

    def __init__(self, rate: float, capacity: float | None = None, clock=time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate / 10)
        self.clock = clock
        self.tokens = 1.0
        self.last = clock()

    def delay(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class _LostOwnership(Exception):
    """Another run took the job over (this worker was presumed dead)."""


class _Abort(Exception):
    """The bus is down: stop the job as failed, resumable later."""


def run_job(job_id: int, runner: str | None = None) -> str | None:
    """Run a pending job, or continue one taken over with token `runner`; returns the final state.

    None when there was nothing to do (not pending, or owned by another run).
    """
    now = timezone.now()
    if runner is None:
        runner = uuid.uuid4().hex
        taken = RedriveJob.objects.filter(pk=job_id, state=RedriveJob.PENDING).update(
            state=RedriveJob.RUNNING, runner=runner, heartbeat_at=now, started_at=Coalesce("started_at", now)
        )
        if not taken:
            return None
    elif not RedriveJob.objects.filter(
        pk=job_id, runner=runner, state__in=[RedriveJob.RUNNING, RedriveJob.CANCELLING]
    ).exists():
        return None
    try:
        return _Run(job_id, runner).run()
    except _LostOwnership:
        log.warning("redrive job %s was taken over by another worker; this run stops", job_id)
        return None


def resume_stale(*, stale_after_s: float = STALE_AFTER_S, inline: bool = False) -> list[int]:
    """Take over jobs whose worker died, and settle single retries left in doubt; returns job ids.

    inline=True runs the jobs here, one after the other (tests, the management
    command); otherwise each is submitted as its own task.
    """
    from deadletters.tasks import redrive_run

    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    taken = []
    stale = RedriveJob.objects.filter(state__in=[RedriveJob.RUNNING, RedriveJob.CANCELLING]).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    for job in stale:
        runner = uuid.uuid4().hex
        # Conditional on the heartbeat we saw: two resumers cannot both take it.
        if RedriveJob.objects.filter(pk=job.pk, runner=job.runner, heartbeat_at=job.heartbeat_at).update(
            runner=runner, heartbeat_at=timezone.now()
        ):
            AuditEntry.objects.create(
                action="job_takeover", job=job, result=f"worker silent since {job.heartbeat_at}; resumed"
            )
            taken.append((job.pk, runner))
    # A job still pending long after it was made lost its task (a broker that forgot the
    # message, or a task name from before an upgrade): it is submitted again, and the
    # claim in run_job lets only one run have it.
    forgotten = RedriveJob.objects.filter(state=RedriveJob.PENDING, created_at__lt=cutoff)
    taken += [(pk, None) for pk in forgotten.values_list("pk", flat=True)]
    lonely = DeadLetter.objects.filter(status=DeadLetter.RETRYING, job__isnull=True, updated_at__lt=cutoff)
    settle(list(lonely), job=None)
    for job_id, runner in taken:
        if inline:
            run_job(job_id, runner)
        else:
            background.submit(redrive_run, job_id, runner)
    return [job_id for job_id, _runner in taken]


def run_resumer(stop: threading.Event) -> None:
    """`resume_stale` every STALE_AFTER_S until `stop` is set: Celery beat's job, for the
    in-process mode (EVENTHUB_WORKERS=inprocess), where it is one of eventhub.background.LOOPS."""
    while not stop.wait(STALE_AFTER_S):
        try:
            background.between_steps()
            resume_stale()
        except Exception:
            log.exception("redrive resume check failed; retrying")


def settle(dead_letters: list[DeadLetter], *, job: RedriveJob | None) -> dict[int, str]:
    """Decide the fate of items claimed by a run that died: {id: "sent" | "released" | "unknown"}.

    Found on their topic after their claim marks: recorded as sent. Not found:
    released (status back, job cleared), so a job sends them when it meets
    them again. The topic unreadable: released too, and "unknown".
    """
    outcomes: dict[int, str] = {}
    actor = job.created_by if job is not None else None
    groups: dict[tuple[str, str, str], list[DeadLetter]] = defaultdict(list)
    for dl in dead_letters:
        groups[(dl.bus, dl.source_topic, repr(sorted((dl.claim_marks or {}).items())))].append(dl)
    for (kind, topic, _marks), items in groups.items():
        wanted = {(dl.pk, dl.replay_count + 1) for dl in items}
        try:
            found = connections.bus(kind).find_replays(topic, items[0].claim_marks or {}, wanted)
        except BusError as error:
            actions.record_released(
                [(dl.pk, _previous(dl), BusError(f"outcome unknown: {error}")) for dl in items], actor=actor, job=job
            )
            outcomes.update((dl.pk, "unknown") for dl in items)
            continue
        sent = []
        for dl in items:
            where = found.get((dl.pk, dl.replay_count + 1))
            if where is not None:
                sent.append((dl, Published(topic, where.partition, where.offset), dl.replay_count + 1))
        target_group = job.target_group if job is not None else ""
        actions.record_sent(
            sent,
            actor=actor,
            job=job,
            target_group=target_group,
            note=" (found on the topic after the worker died)",
        )
        outcomes.update((dl.pk, "sent") for dl, _published, _count in sent)
        unsent = [dl for dl in items if dl.pk not in outcomes]
        why = "interrupted before the send: " + ("sending it again" if job else "not sent")
        actions.record_released([(dl.pk, _previous(dl), why) for dl in unsent], actor=actor, job=job)
        outcomes.update((dl.pk, "released") for dl in unsent)
    return outcomes


def _previous(dead_letter: DeadLetter) -> str:
    return DeadLetter.RETRIED if dead_letter.replay_count else DeadLetter.NEW


class _Run:
    def __init__(self, job_id: int, runner: str) -> None:
        self.job = RedriveJob.objects.select_related("created_by").get(pk=job_id)
        self.runner = runner
        self.actor = self.job.created_by
        self.batch_size = max(1, min(MAX_BATCH, int(self.job.rate_per_s * BATCH_SECONDS)))
        # Bursts of up to one batch: the time spent claiming and recording a batch (tens of
        # milliseconds, more on a busy host) is made up in the next, so the average holds.
        self.bucket = TokenBucket(self.job.rate_per_s, capacity=float(self.batch_size))
        self.marks: dict[tuple[str, str], dict] = {}
        self.marks_at = 0.0
        self.state = self.job.state
        self.unknown: set[int] = set()  # in doubt after a crash, topic unreadable: never re-sent
        self.next_broadcast = 0.0
        self.sent_at: dict[int, object] = {}

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> str:
        job = self.job
        log.info(
            "redrive job %s: %s %d items from %d at %g/s", job.pk, job.action, job.total, job.cursor, job.rate_per_s
        )
        in_doubt = list(DeadLetter.objects.filter(job=job, status=DeadLetter.RETRYING))
        if in_doubt:
            outcomes = settle(in_doubt, job=job)
            self.unknown = {pk for pk, outcome in outcomes.items() if outcome == "unknown"}
            log.warning("redrive job %s: %d items in doubt after a crash: %s", job.pk, len(in_doubt), outcomes)
        self._save()
        try:
            while job.cursor < len(job.item_ids) and self.state != RedriveJob.CANCELLING:
                if not self._wait_for_token():
                    break
                batch = job.item_ids[job.cursor : job.cursor + self.batch_size]
                counters = (job.done, job.failed, job.skipped, job.last_error)
                record = self._batch(batch)  # claims committed, sends acknowledged
                with transaction.atomic():
                    abort = record()
                    if abort is None:
                        job.cursor += len(batch)
                    else:
                        # The batch is not finished: cursor and counters stay as before it; a
                        # resumed run counts what this one recorded (job = this job) and sends the rest.
                        job.done, job.failed, job.skipped, job.last_error = counters
                        job.last_error = str(abort)[:500]
                    self._save()
                if abort is not None:
                    raise abort
        except _Abort as error:
            return self._finish(RedriveJob.FAILED, str(error))
        if self.state == RedriveJob.CANCELLING and job.cursor < len(job.item_ids):
            return self._finish(RedriveJob.CANCELLED)
        return self._finish(RedriveJob.DONE)

    def _wait_for_token(self, take: bool = False) -> bool:
        """Wait for the rate limiter (reading the state while it is long); False when cancelled."""
        next_check = time.monotonic() + WAIT_CHECK_S
        while True:
            delay = self.bucket.delay()
            if delay <= 0:
                if take:
                    self.bucket.take()
                return True
            time.sleep(min(delay, WAIT_CHECK_S))
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + WAIT_CHECK_S
                self._save()
                if self.state == RedriveJob.CANCELLING:
                    return False

    def _count(self, outcome: str, n: int = 1) -> None:
        if outcome == "done":
            self.job.done += n
        elif outcome == "failed":
            self.job.failed += n
        elif outcome == "skipped":
            self.job.skipped += n

    # -- one batch ----------------------------------------------------------------------
    def _batch(self, ids: list[int]):
        """Claim and send a batch; returns the function that records it, to be run in the caller's
        transaction with the progress (one commit after the sends), and that says whether to abort."""
        job = self.job
        # Not the columns shown on the pages: decoding their JSON was a tenth of a job's time.
        rows = {row[0]: _Item(*row) for row in DeadLetter.objects.filter(pk__in=ids).values_list("id", *REPLAY_FIELDS)}
        audits: list[AuditEntry] = []
        todo: list[_Item] = []
        for pk in ids:
            dl = rows.get(pk)
            if pk in self.unknown:
                self._count("failed")  # recorded by settle(): outcome unknown, not sent again
            elif dl is None:
                audits.append(self._audit(pk, "skip", f"skipped: dead letter #{pk} no longer exists", dead=True))
                self._count("skipped")
            elif dl.job_id == job.pk:
                # Finished by this job before its worker died (after the saved cursor).
                self._count("skipped" if dl.status == DeadLetter.PARKED else "done")
            else:
                todo.append(dl)
        if job.action == RedriveJob.DISCARD:
            return self._discard(todo, audits)
        return self._retry(todo, audits)

    def _audit(self, pk: int, action: str, result: str, dead: bool = False) -> AuditEntry:
        return AuditEntry(
            actor=self.actor, action=action, dead_letter_id=None if dead else pk, job=self.job, result=result[:500]
        )

    def _discard(self, todo: list[_Item], audits: list[AuditEntry]):
        def record() -> None:  # never aborts: no bus involved
            discarded = actions.discard_many(
                [dl.pk for dl in todo], actor=self.actor, reason=self.job.reason, job=self.job
            )
            for dl in todo:
                if dl.pk not in discarded:
                    audits.append(self._audit(dl.pk, "skip", f"skipped: it is {dl.status}"))
            self._count("done", len(discarded))
            self._count("skipped", len(todo) - len(discarded))
            AuditEntry.objects.bulk_create(audits)

        for _dl in todo:
            self._take_token()
        return record

    def _retry(self, todo: list[_Item], audits: list[AuditEntry]):
        job = self.job
        claimable: list[_Item] = []
        for dl in todo:
            if dl.status not in actions.RETRYABLE:
                audits.append(self._audit(dl.pk, "skip", f"skipped: it is {dl.status}"))
                self._count("skipped")
            elif not dl.source_topic or dl.truncated:
                audits.append(self._audit(dl.pk, "retry", "failed: source unknown or payload truncated; edit it"))
                self._fail("cannot be replayed as is (source unknown or payload truncated): edit it")
            else:
                claimable.append(dl)
        claimed = self._claim(claimable, audits)
        parked = [dl for dl, _previous in claimed if dl.replay_count >= actions.MAX_REPLAYS]
        outcomes = self._publish([(dl, previous) for dl, previous in claimed if dl not in parked])
        sent: list[tuple[_Item, Published, int]] = []
        released: list[tuple[int, str, Exception]] = []
        abort: _Abort | None = None
        for dl, previous, result in outcomes:
            if isinstance(result, Published):
                sent.append((dl, result, dl.replay_count + 1))
                continue
            released.append((dl.pk, previous, result))
            if isinstance(result, (BusUnavailable, BusTimeout)):
                abort = _Abort(f"{dl.bus} bus unavailable: {result}")  # stop the job; resumable
            else:
                self._fail(f"{type(result).__name__}: {result}")

        def record() -> _Abort | None:
            AuditEntry.objects.bulk_create(audits)
            actions.record_sent(sent, actor=self.actor, job=job, target_group=job.target_group, sent_at=self.sent_at)
            self.sent_at.clear()
            actions.record_parked(parked, actor=self.actor, job=job)
            actions.record_released(released, actor=self.actor, job=job)
            self._count("done", len(sent))
            self._count("skipped", len(parked))
            return abort

        return record

    def _claim(self, items: list[_Item], audits: list[AuditEntry]) -> list[tuple[_Item, str]]:
        """Conditionally take the items for this job, in one commit; returns (item, status it had).

        Committed before anything is sent: a crash after a send must find the item claimed.
        """
        if not items:
            return []
        marks = {}
        for dl in items:
            try:
                marks[dl.pk] = self._marks(dl.bus, dl.source_topic)
            except UnknownTopic:
                audits.append(self._audit(dl.pk, "retry", f"failed: source topic {dl.source_topic} does not exist"))
                self._fail(f"source topic {dl.source_topic} does not exist")
            except (BusUnavailable, BusTimeout) as error:
                raise _Abort(f"{dl.bus} bus unavailable: {error}") from error
        mine = actions.claim_for_job(self.job, items, marks)
        claimed = []
        for dl in items:
            if dl.pk in mine:
                claimed.append((dl, dl.status))
            elif dl.pk in marks:
                audits.append(self._audit(dl.pk, "skip", "skipped: someone else changed it first"))
                self._count("skipped")
        return claimed

    def _publish(self, items: list[tuple[_Item, str]]) -> list[tuple[_Item, str, Published | Exception]]:
        """Send the batch as the rate allows, all of it in flight at once (`Bus.publish_many`).

        One record at a time would cap a job at one broker round trip per record. The bus
        keeps the order of records with the same topic and key; the batch is the window
        that a crash can leave in doubt.
        """
        outcomes: dict[int, Published | Exception] = {}
        by_bus: dict[str, list[tuple[_Item, OutgoingRecord]]] = defaultdict(list)
        for dl, _previous in items:
            self._take_token()
            try:
                by_bus[dl.bus].append((dl, actions.replay_record(dl, self.job.target_group)))
            except ValueError as error:
                outcomes[dl.pk] = error
        for kind, records in by_bus.items():
            try:
                sent = connections.bus(kind).publish_many([record for _dl, record in records])
            except BusError as error:  # the adapter itself (a closed bus, no such bus)
                sent = [error] * len(records)
            acknowledged = timezone.now()  # the job's own clock for its rate
            for (dl, _record), outcome in zip(records, sent, strict=True):
                outcomes[dl.pk] = outcome
                if isinstance(outcome, Published):
                    self.sent_at[dl.pk] = acknowledged
        return [(dl, previous, outcomes[dl.pk]) for dl, previous in items]

    def _take_token(self) -> None:
        while (delay := self.bucket.delay()) > 0:
            time.sleep(delay)
        self.bucket.take()

    def _fail(self, why: str) -> None:
        self.job.last_error = why[:500]
        self._count("failed")

    def _marks(self, kind: str, topic: str) -> dict:
        """The topic's end offsets, re-read every MARKS_EVERY_S: taken before the claim, so a
        replay sent after the claim always lies after them."""
        if time.monotonic() - self.marks_at > MARKS_EVERY_S:
            self.marks.clear()
            self.marks_at = time.monotonic()
        key = (kind, topic)
        if key not in self.marks:
            self.marks[key] = connections.bus(kind).watermark(topic)
        return self.marks[key]

    # -- progress -----------------------------------------------------------------------
    def _save(self) -> None:
        """Write cursor, counters and heartbeat (if this run still owns the job); read the state back."""
        job = self.job
        saved = RedriveJob.objects.filter(pk=job.pk, runner=self.runner).update(
            cursor=job.cursor,
            done=job.done,
            failed=job.failed,
            skipped=job.skipped,
            last_error=job.last_error,
            heartbeat_at=timezone.now(),
        )
        if not saved:
            raise _LostOwnership()
        state = RedriveJob.objects.values_list("state", flat=True).get(pk=job.pk)
        # A channel-layer send costs tens of milliseconds: a few a second, or on a state change.
        if state != self.state or time.monotonic() >= self.next_broadcast:
            self.next_broadcast = time.monotonic() + BROADCAST_EVERY_S
            transaction.on_commit(lambda: actions.broadcast_progress(job))
        self.state = job.state = state

    def _finish(self, state: str, error: str = "") -> str:
        job = self.job
        now = timezone.now()
        with transaction.atomic():
            saved = RedriveJob.objects.filter(
                pk=job.pk, runner=self.runner, state__in=[RedriveJob.RUNNING, RedriveJob.CANCELLING]
            ).update(
                state=state,
                cursor=job.cursor,
                done=job.done,
                failed=job.failed,
                skipped=job.skipped,
                last_error=(error or job.last_error)[:500],
                heartbeat_at=now,
                finished_at=now,
            )
            if not saved:
                raise _LostOwnership()
            AuditEntry.objects.create(
                action=f"job_{state}",
                job=job,
                result=(
                    f"{job.done} done, {job.failed} failed, {job.skipped} skipped of {job.total}"
                    + (f": {error}" if error else "")
                )[:500],
                detail={"done": job.done, "failed": job.failed, "skipped": job.skipped, "cursor": job.cursor},
            )
            job.state = state
            transaction.on_commit(lambda: actions.broadcast_progress(job))
        log.info("redrive job %s %s: %d done, %d failed, %d skipped", job.pk, state, job.done, job.failed, job.skipped)
        return state
