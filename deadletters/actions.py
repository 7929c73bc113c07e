"""What operators do to dead letters: the one door for retry, edit, discard and redrive jobs.

Every change goes through a function here. Each writes inside
`transaction.atomic` and sends its websocket message (channel-layer group
`deadletters`) and Celery task with `transaction.on_commit`. Views, the REST
API and the job runner call these; nothing else changes a dead letter's status.

Retry, in order:
1. claim: a conditional UPDATE (status new|retried -> retrying) whose row count
   says whether this call won; two concurrent retries publish once. The winner
   then stores the source topic's end offsets (claim_marks), so that after a
   crash the replay can be looked for (`deadletters.redrive.settle`);
2. loop guard: a record already replayed MAX_REPLAYS times is parked instead;
3. publish the original key, value and headers to the source topic on the same
   bus, failure headers dropped, replay headers added, and wait for the ack;
4. mark it retried with where the replay landed (the ingester later marks it
   resolved once the group handled it, see `deadletters.ingest.check_resolved`).
A failed publish puts the status back and raises ReplayFailed.

Replay headers (read by the SDK consumer, eventhub/sdk/headers.py):
`x-eventhub-replay-of` (this dead letter's id), `x-eventhub-replay-count` (n,
this replay included) and, for a targeted replay, `x-eventhub-replay-group`
(consumers of other groups skip the record).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from binascii import a2b_base64
from collections import defaultdict
from collections.abc import Iterable
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from jsonschema.exceptions import best_match

from deadletters import filters, sensitive
from deadletters import headers as dead_letter_headers
from deadletters.models import MAX_RATE, AuditEntry, DeadLetter, RedriveJob
from designer.models import Consumer as DesignedConsumer
from designer.models import SchemaVersion
from designer.models import Topic as DesignedTopic
from eventhub import background, connections, sockets
from eventhub.bulk import insert_rows
from eventhub.bus import BusError, Headers, OutgoingRecord, Published, UnknownTopic
from eventhub.sdk import headers as h
from eventhub.sdk import pii
from eventhub.sdk.cloudevents import STRUCTURED, content_mode, decode_cloudevent
from eventhub.sdk.payload import MAX_BYTES, PayloadDecodeError
from eventhub.sdk.schemas import check_schema_is_safe, python_validator

log = logging.getLogger(__name__)

GROUP = "deadletters"  # channel-layer group of the dead-letter pages
# Loop guard: a record replayed this many times is parked instead of sent again.
MAX_REPLAYS = int(getattr(settings, "EVENTHUB_DLQ_MAX_REPLAYS", 5))

RETRYABLE, EDITABLE, DISCARDABLE = DeadLetter.RETRYABLE, DeadLetter.EDITABLE, DeadLetter.DISCARDABLE
MAX_JOB_ITEMS = 100_000
MAX_IDS = 10_000

# Headers that describe the failure, not the event: never replayed.
_FAILURE_HEADERS = frozenset(
    name.lower()
    for name in (*h.DEAD_LETTER_HEADERS, *h.SPRING_DEAD_LETTER_HEADERS, h.REPLAY_OF, h.REPLAY_GROUP, h.REPLAY_COUNT)
)
_FAILURE_PREFIXES = (
    "kafka_dlt-",
    "kafka_original-",
    "kafka_exception-",
    "kafka_key-exception-",
    "retry_topic-",
    "__connect.errors.",
    "__streams.errors.",
)


class ActionError(Exception):
    """An action that cannot be done; `status_code` is what the REST API answers."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ActionError):
    """Missing or bad input (no reason, empty selection, bad rate...)."""


class Conflict(ActionError):
    """The dead letter or job is not in a state that allows it (someone else was first)."""

    status_code = 409


class TargetUnconfirmed(Conflict):
    """The target topic was named only by the record; the Operator has not confirmed it."""


class ReplayFailed(ActionError):
    """The bus refused or did not answer; nothing changed."""

    status_code = 502


class InvalidPayload(ActionError):
    """An edited payload does not match the event's schema; nothing was sent or saved."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path

    def to_dict(self) -> dict[str, Any]:
        return {"payload": [self.message], "path": self.path}


# --------------------------------------------------------------------------- broadcasts
def broadcast(message: dict[str, Any]) -> None:
    """Send to the dead-letter pages, from whichever thread changed something."""
    sockets.send_to_group(GROUP, message)


def broadcast_new(ids: list[int]) -> None:
    broadcast({"type": "deadletters.new", "ids": list(ids), "count": len(ids)})


def broadcast_changed(ids: Iterable[int], status: str) -> None:
    ids = list(ids)
    broadcast({"type": "deadletters.changed", "ids": ids, "status": status, "count": len(ids)})


def broadcast_progress(job: RedriveJob) -> None:
    broadcast(
        {
            "type": "redrive.progress",
            "job": job.pk,
            "action": job.action,
            "state": job.state,
            "done": job.done,
            "failed": job.failed,
            "skipped": job.skipped,
            "total": job.total,
        }
    )


def _actor(actor):
    return actor if actor is not None and actor.is_authenticated else None


def _audit(
    actor,
    action: str,
    *,
    dead_letter: DeadLetter | None = None,
    dead_letter_id: int | None = None,
    job: RedriveJob | None = None,
    result: str = "",
    **detail: Any,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=_actor(actor),
        action=action,
        dead_letter_id=dead_letter.pk if dead_letter is not None else dead_letter_id,
        job=job,
        result=result[:500],
        detail=detail,
    )


# --------------------------------------------------------------------------- replaying
def replay_headers(
    dead_letter: DeadLetter,
    replay_count: int,
    target_group: str = "",
    *,
    replay_of: int | None = None,
    replace: dict[str, bytes] | None = None,
) -> Headers:
    """The original headers minus the failure ones, plus the replay headers."""
    replace = replace or {}
    headers: Headers = []
    for name, value in dead_letter.raw_headers or ():
        if _is_failure_header(name) or name in replace:
            continue
        headers.append((name, a2b_base64(value) if value is not None else b""))
    headers += list(replace.items())
    headers.append((h.REPLAY_OF, str(replay_of or dead_letter.pk).encode()))
    headers.append((h.REPLAY_COUNT, str(replay_count).encode()))
    if target_group:
        headers.append((h.REPLAY_GROUP, target_group.encode("utf-8")))
    return headers


@lru_cache(maxsize=1024)
def _is_failure_header(name: str) -> bool:
    """Whether a replay leaves header `name` out. Asked per header of every replayed record, of
    a few names that repeat: remembered."""
    lowered = name.lower()
    return lowered in _FAILURE_HEADERS or lowered.startswith(_FAILURE_PREFIXES)


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _check_replayable(dead_letter: DeadLetter) -> None:
    if not dead_letter.source_topic:
        raise Conflict("The source topic is unknown (no header names it and the DLQ name does not tell).")
    if dead_letter.truncated:
        raise Conflict(
            f"The payload was cut at {len(dead_letter.payload or b'')} of {dead_letter.payload_size} bytes; "
            "replaying it would send a broken record. Use edit and retry."
        )


def _trusted_sources(triples: Iterable[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which (bus, dead-letter topic, source topic) have a source the record did not name alone.

    A source is trusted when the design says so (a designed topic at that address
    dead-letters to that topic) or the dead-letter topic's own name does (`orders.DLT`
    serves `orders`). Otherwise it came from the record's headers, which whoever wrote
    the record chose: sending there needs an Operator to confirm it.
    """
    triples = set(triples)
    trusted = {t for t in triples if _named_by(t[1], t[2])}
    rest = triples - trusted
    if rest:
        designed = set(
            DesignedTopic.objects.filter(
                address__in={source for _, _, source in rest}, dead_letter_topic__in={dlq for _, dlq, _ in rest}
            ).values_list("bus", "dead_letter_topic", "address")
        )
        trusted |= rest & designed
    return trusted


def _named_by(dead_letter_topic: str, source: str) -> bool:
    """Whether the dead-letter topic's name says it serves `source`: a known convention
    (`orders.DLT`), or a configured pattern's fixed suffix (`*.dead`: `orders.dead`)."""
    if h.dead_letter_source(dead_letter_topic) == source:
        return True
    for pattern in settings.EVENTHUB_DLQ_PATTERNS:
        head, star, suffix = pattern.rpartition("*")
        if star and suffix and not any(c in suffix for c in "*?[") and dead_letter_topic == source + suffix:
            if fnmatchcase(dead_letter_topic, pattern):
                return True
    return False


def unconfirmed_targets(dead_letters) -> list[dict[str, str]]:
    """The source topics of these dead letters (a queryset) that only their headers name."""
    triples = set(dead_letters.exclude(source_topic="").values_list("bus", "dlq_topic", "source_topic").distinct())
    untrusted = triples - _trusted_sources(triples)
    return [{"bus": bus, "topic": source, "dead_letter_topic": dlq} for bus, dlq, source in sorted(untrusted, key=str)]


def _check_target(dead_letter: DeadLetter, confirm_target: bool) -> None:
    if confirm_target:
        return
    triple = (dead_letter.bus, dead_letter.dlq_topic, dead_letter.source_topic)
    if triple not in _trusted_sources([triple]):
        raise TargetUnconfirmed(
            f"The source topic {dead_letter.source_topic} comes from the record's headers alone: no designed "
            f"topic dead-letters to {dead_letter.dlq_topic}, and its name does not say so. Confirm the target "
            "to send it there."
        )


def _claim(pk: int, allowed: tuple[str, ...], seen_replay_count: int | None = None) -> str:
    """Take the dead letter (status -> retrying) if it is in an allowed state; returns the state it had.

    `seen_replay_count` is what the caller saw: two operators who click Retry on the same
    page must send once, even when the first retry finishes before the second click lands
    (a retried dead letter may be retried again, so status alone cannot tell).
    """
    row = DeadLetter.objects.filter(pk=pk).values_list("status", "replay_count").first()
    if row is None:
        raise DeadLetter.DoesNotExist(f"No dead letter #{pk}.")
    current, replay_count = row
    if seen_replay_count is not None and replay_count != seen_replay_count:
        raise Conflict(f"Dead letter #{pk} was replayed by someone else meanwhile ({replay_count} replays now).")
    if current not in allowed:
        raise Conflict(f"Dead letter #{pk} is {current}; this needs it {' or '.join(allowed)}.")
    conditions = {"pk": pk, "status": current}
    if seen_replay_count is not None:
        conditions["replay_count"] = seen_replay_count
    claimed = DeadLetter.objects.filter(**conditions).update(
        status=DeadLetter.RETRYING, job=None, claim_marks={}, updated_at=timezone.now()
    )
    if not claimed:
        raise Conflict(f"Dead letter #{pk} is being handled by someone else.")
    return current


def claim_for_job(job: RedriveJob, items: list[DeadLetter], marks: dict[int, dict]) -> set[int]:
    """Take `items` for `job` (status -> retrying) where nobody changed them since they were read.

    `marks` holds, per pk, where its target topic ended before the send (see
    `deadletters.redrive.settle`); items without marks are left alone. One conditional
    UPDATE per (status seen, job seen, topic), usually one for the batch, committed
    before anything is sent: a crash after a send must find the item claimed. Returns
    the pks this job now holds.
    """
    groups: dict[tuple[str, int | None, str], list[int]] = defaultdict(list)
    for dl in items:
        if dl.pk in marks:
            groups[(dl.status, dl.job_id, f"{dl.bus}:{dl.source_topic}")].append(dl.pk)
    with transaction.atomic():
        for (status, job_id, _topic), pks in groups.items():
            DeadLetter.objects.filter(pk__in=pks, status=status, job_id=job_id).update(
                status=DeadLetter.RETRYING, job=job, claim_marks=marks[pks[0]], updated_at=timezone.now()
            )
        return set(
            DeadLetter.objects.filter(pk__in=list(marks), status=DeadLetter.RETRYING, job=job).values_list(
                "id", flat=True
            )
        )


# The three ways a claim ends. Each takes a list (a redrive job records a batch in one
# transaction, and one commit) and nests in the caller's transaction when there is one.
def record_released(
    items: list[tuple[int, str, Exception | str]], *, actor, job: RedriveJob | None, action: str = "retry"
) -> None:
    """Claims given back: status as before, job cleared (a job meeting the item again tries it afresh).

    Each item is (pk, status before the claim, why): an error is audited as "failed: ...",
    a text as it is.
    """
    if not items:
        return
    now = timezone.now()
    with transaction.atomic():
        for pk, previous, _error in items:
            DeadLetter.objects.filter(pk=pk, status=DeadLetter.RETRYING).update(
                status=previous, job=None, claim_marks={}, updated_at=now
            )
        AuditEntry.objects.bulk_create(
            AuditEntry(
                actor=_actor(actor),
                action=action,
                dead_letter_id=pk,
                job=job,
                result=(why if isinstance(why, str) else f"failed: {type(why).__name__}: {why}")[:500],
            )
            for pk, _previous, why in items
        )
        if job is None:  # a job broadcasts its progress instead of each item
            for pk, previous, _error in items:
                transaction.on_commit(lambda pk=pk, previous=previous: broadcast_changed([pk], previous))


def record_parked(items: list[DeadLetter], *, actor, job: RedriveJob | None) -> None:
    """Claims that hit the loop guard: parked, not sent."""
    if not items:
        return
    with transaction.atomic():
        DeadLetter.objects.filter(pk__in=[dl.pk for dl in items], status=DeadLetter.RETRYING).update(
            status=DeadLetter.PARKED, updated_at=timezone.now()
        )
        AuditEntry.objects.bulk_create(
            AuditEntry(
                actor=_actor(actor),
                action="park",
                dead_letter_id=dl.pk,
                job=job,
                result=f"parked: already replayed {dl.replay_count} times (limit {MAX_REPLAYS})",
                detail={"replay_count": dl.replay_count},
            )
            for dl in items
        )
        if job is None:
            transaction.on_commit(lambda: broadcast_changed([dl.pk for dl in items], DeadLetter.PARKED))
    for dl in items:
        dl.status = DeadLetter.PARKED


def record_sent(
    items: list[tuple[DeadLetter, Published, int]],
    *,
    actor,
    job: RedriveJob | None,
    target_group: str,
    action: str = "retry",
    note: str = "",
    sent_at: dict[int, Any] | None = None,
) -> None:
    """Claims whose replay the broker acknowledged: retried, with where the replay landed.

    `sent_at` (id -> when the ack came) goes into the audit detail: a job records a
    batch after its last ack, and its rate is measured from these.
    """
    if not items:
        return
    now = timezone.now()
    with transaction.atomic():
        # One statement run for the whole list: the ORM's per-row UPDATE (or bulk_update's CASE
        # chains) cost milliseconds of query building per row, more than the send itself.
        table = DeadLetter._meta.db_table
        stamp = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, replay_count = %s, replay_topic = %s, replay_partition = %s, "
                "replay_offset = %s, replay_group = %s, replayed_at = %s, updated_at = %s "
                "WHERE id = %s AND status = %s",
                [
                    (
                        DeadLetter.RETRIED,
                        count,
                        published.topic,
                        published.partition,
                        str(published.offset),
                        target_group,
                        stamp,
                        stamp,
                        dl.pk,
                        DeadLetter.RETRYING,
                    )
                    for dl, published, count in items
                ],
            )
        for dl, published, count in items:
            dl.status, dl.replay_count, dl.replayed_at, dl.updated_at = DeadLetter.RETRIED, count, now, now
            dl.replay_topic, dl.replay_partition = published.topic, published.partition
            dl.replay_offset, dl.replay_group = str(published.offset), target_group
        actor_id = getattr(_actor(actor), "pk", None)
        # One statement for the batch: bulk_create's per-value compiling was a third of a job's time.
        insert_rows(
            AuditEntry,
            [
                {
                    "actor_id": actor_id,
                    "action": action,
                    "dead_letter_id": dl.pk,
                    "job_id": job.pk if job is not None else None,
                    "result": f"sent to {published.topic} [{published.partition}] @ {published.offset}{note}"[:500],
                    "detail": {
                        "topic": published.topic,
                        "partition": published.partition,
                        "offset": str(published.offset),
                        "replay_count": count,
                        "target_group": target_group,
                        "sent_at": (sent_at or {}).get(dl.pk, now).isoformat(),
                    },
                }
                for dl, published, count in items
            ],
        )
        if job is None:
            transaction.on_commit(lambda: broadcast_changed([dl.pk for dl, _p, _c in items], DeadLetter.RETRIED))


def replay_record(dead_letter: DeadLetter, target_group: str = "") -> OutgoingRecord:
    """Replay number replay_count + 1 as the bus takes it: (topic, value, key, headers)."""
    return (
        dead_letter.source_topic,
        _bytes(dead_letter.payload) or b"",
        _bytes(dead_letter.key),
        replay_headers(dead_letter, dead_letter.replay_count + 1, target_group),
    )


def publish_replay(dead_letter: DeadLetter, target_group: str = "") -> Published:
    """Send replay number replay_count + 1 and wait for the ack; no database. Raises BusError."""
    return connections.bus(dead_letter.bus).publish(*replay_record(dead_letter, target_group))


def _send_claimed(dead_letter: DeadLetter, previous: str, *, actor, target_group: str) -> DeadLetter:
    """Steps 2-4 of a single retry, for a dead letter this caller has claimed."""
    if dead_letter.replay_count >= MAX_REPLAYS:
        record_parked([dead_letter], actor=actor, job=None)
        return dead_letter
    try:
        published = publish_replay(dead_letter, target_group)
    except (BusError, ValueError) as error:
        record_released([(dead_letter.pk, previous, error)], actor=actor, job=None)
        raise ReplayFailed(f"Could not publish to {dead_letter.source_topic}: {error}") from error
    record_sent(
        [(dead_letter, published, dead_letter.replay_count + 1)], actor=actor, job=None, target_group=target_group
    )
    return dead_letter


def retry(
    dead_letter: DeadLetter, *, actor, target_group: str | None = None, confirm_target: bool = False
) -> DeadLetter:
    """Re-publish the record to its source topic, once however many ask at the same time.

    A source topic that only the record's headers name needs `confirm_target`.
    """
    target_group = (target_group or "").strip()
    seen_replay_count = dead_letter.replay_count
    dead_letter.refresh_from_db()
    _check_replayable(dead_letter)
    _check_target(dead_letter, confirm_target)
    previous = _claim(dead_letter.pk, RETRYABLE, seen_replay_count)
    _remember_marks(dead_letter, previous, actor, "retry")
    dead_letter.refresh_from_db()
    return _send_claimed(dead_letter, previous, actor=actor, target_group=target_group)


def _remember_marks(dead_letter: DeadLetter, previous: str, actor, action: str) -> dict:
    """Store the source topic's end before sending, so a crash after the send can be told
    from one before it (`deadletters.redrive.settle`). Only the claim's winner asks the bus."""
    try:
        marks = connections.bus(dead_letter.bus).watermark(dead_letter.source_topic)
    except BusError as error:
        record_released([(dead_letter.pk, previous, error)], actor=actor, job=None, action=action)
        if isinstance(error, UnknownTopic):
            raise ReplayFailed(
                f"The source topic {dead_letter.source_topic} does not exist on {dead_letter.bus}."
            ) from error
        raise ReplayFailed(f"The {dead_letter.bus} bus did not answer: {error}") from error
    DeadLetter.objects.filter(pk=dead_letter.pk, status=DeadLetter.RETRYING).update(claim_marks=marks)
    return marks


# --------------------------------------------------------------------------- edit and retry
def schema_for(dead_letter: DeadLetter) -> SchemaVersion | None:
    """The schema an edited payload must match: the record's version, else the latest registered."""
    if dead_letter.schema_version_id:
        return dead_letter.schema_version
    if dead_letter.event_type_id:
        return dead_letter.event_type.latest_version()
    return None


def validate_payload(payload: Any, version: SchemaVersion | None) -> bytes:
    """The payload as compact JSON, checked against the schema; raises InvalidPayload."""
    try:
        encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise InvalidPayload(f"Not JSON: {error}") from error
    if len(encoded) > settings.EVENTHUB_DLQ_PAYLOAD_CAP:
        raise InvalidPayload(f"The payload is {len(encoded)} bytes; the limit is {settings.EVENTHUB_DLQ_PAYLOAD_CAP}.")
    if version is not None:
        # A version stored before registration refused remote $refs and non-RE2 patterns
        # cannot be checked: refuse the edit rather than fetch, or fail while validating.
        unsafe = check_schema_is_safe(version.schema)
        if unsafe:
            where, problem = unsafe[0]
            raise InvalidPayload(f"{version.event_type.name} v{version.version} cannot be checked: {where}: {problem}")
        error = best_match(python_validator(version.schema).iter_errors(payload))
        if error is not None:
            raise InvalidPayload(
                f"Does not match {version.event_type.name} v{version.version}: {error.message}", error.json_path
            )
    return encoded


def edit_and_retry(
    dead_letter: DeadLetter,
    payload: Any,
    *,
    actor,
    target_group: str | None = None,
    confirm_target: bool = False,
) -> DeadLetter:
    """Send a corrected payload as a new event; returns the new dead letter that tracks it.

    1. Keep the stored value where "•••" came back for a sensitive field, then
       validate against the schema (nothing happens when invalid).
    2. Claim the original (status new|retried|parked -> retrying).
    3. Create the copy: a DeadLetter with edited_from = original, a new event id
       (ce_id; in structured mode the envelope's id, the payload its data) and a
       synthetic DLQ position `edit-<uuid>`.
    4. Publish it; on failure delete the copy and put the original back.
    5. Copy -> retried, original -> resolved, both audited with a link.
    """
    target_group = (target_group or "").strip()
    dead_letter.refresh_from_db()
    version = schema_for(dead_letter)
    payload, encoded = _checked_edit(dead_letter, payload, version, actor)
    if not dead_letter.source_topic:
        raise Conflict("The source topic is unknown (no header names it and the DLQ name does not tell).")
    envelope = _structured_envelope(dead_letter)
    _check_target(dead_letter, confirm_target)
    previous = _claim(dead_letter.pk, EDITABLE)
    marks = _remember_marks(dead_letter, previous, actor, "edit_and_retry")
    event_id = str(uuid.uuid4())
    replace = {h.CE_ID: event_id.encode(), h.CONTENT_TYPE: h.JSON_CONTENT_TYPE.encode()}
    if envelope is not None:
        # Structured mode: the attributes stay in the value, the content-type header as it was.
        encoded = _compact_json({**envelope, "id": event_id, "data": payload})
        replace = {}
    if version is not None:
        replace[h.SCHEMA_VERSION] = str(version.version).encode()
    with transaction.atomic():
        copy = _edited_copy(dead_letter, encoded, payload, event_id, version, marks)
        copy.save()
        headers = replay_headers(dead_letter, 1, target_group, replay_of=copy.pk, replace=replace)
        meta = dead_letter_headers.decode(headers)
        copy.headers = [[name, value] for name, value in meta.headers_decoded]
        copy.raw_headers = [[name, base64.b64encode(value).decode("ascii")] for name, value in headers]
        copy.save(update_fields=["headers", "raw_headers"])
    try:
        published = connections.bus(dead_letter.bus).publish(
            dead_letter.source_topic, encoded, key=_bytes(dead_letter.key), headers=headers
        )
    except BusError as error:
        copy.delete()
        record_released([(dead_letter.pk, previous, error)], actor=actor, job=None, action="edit_and_retry")
        raise ReplayFailed(f"Could not publish to {dead_letter.source_topic}: {error}") from error
    with transaction.atomic():
        record_sent(
            [(copy, published, 1)],
            actor=actor,
            job=None,
            target_group=target_group,
            action="edit_and_retry",
            note=f" (edit of #{dead_letter.pk})",
        )
        DeadLetter.objects.filter(pk=dead_letter.pk, status=DeadLetter.RETRYING).update(
            status=DeadLetter.RESOLVED, claim_marks={}, updated_at=timezone.now()
        )
        _audit(
            actor,
            "edited",
            dead_letter=dead_letter,
            result=f"resolved by an edited copy: dead letter #{copy.pk}, event {event_id}",
            edited_copy=copy.pk,
            event_id=event_id,
            schema_version=version.version if version else None,
        )
        transaction.on_commit(lambda: broadcast_changed([dead_letter.pk], DeadLetter.RESOLVED))
    return copy


def _structured_envelope(dead_letter: DeadLetter) -> dict[str, Any] | None:
    """The attributes of a structured CloudEvent, which an edit goes back into; None in binary mode."""
    headers = [(name, base64.b64decode(value) if value else b"") for name, value in dead_letter.raw_headers or ()]
    if content_mode(headers) != STRUCTURED:
        return None
    if dead_letter.truncated:
        raise Conflict("The CloudEvent was cut when stored: its envelope cannot be rebuilt around the edit.")
    try:
        event = decode_cloudevent(
            headers, _bytes(dead_letter.payload), max_bytes=max(MAX_BYTES, len(dead_letter.payload or b""))
        )
    except PayloadDecodeError as error:
        raise Conflict(f"The structured CloudEvent cannot be read ({error}): there is no envelope to edit.") from None
    return event.attributes


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _checked_edit(dead_letter: DeadLetter, payload: Any, version: SchemaVersion | None, actor) -> tuple[Any, bytes]:
    """Step 1: "•••" sent back for a sensitive field keeps the stored value (it was shown
    masked); then the schema check, whose message is scrubbed of values the actor may not see."""
    try:
        payload = sensitive.kept_hidden(dead_letter, payload)
    except pii.HiddenValueMissing as missing:
        raise InvalidPayload(str(missing), pii.json_path(missing.locations[0])) from None
    try:
        return payload, validate_payload(payload, version)
    except InvalidPayload as refused:
        message = sensitive.scrub_for(actor, dead_letter.event_type_id, payload, refused.message)
        raise InvalidPayload(message, refused.path) from None


def _edited_copy(
    original: DeadLetter, encoded: bytes, payload: Any, event_id: str, version: SchemaVersion | None, marks: dict
) -> DeadLetter:
    now = timezone.now()
    return DeadLetter(
        bus=original.bus,
        dlq_topic=original.dlq_topic,
        dlq_partition=original.dlq_partition,
        dlq_offset=f"edit-{uuid.uuid4().hex}",
        source_topic=original.source_topic,
        source_partition=original.source_partition,
        source_offset=original.source_offset,
        key=original.key,
        payload=encoded,
        payload_size=len(encoded),
        truncated=False,
        payload_json=payload,
        payload_text=encoded.decode("utf-8")[:65536],
        convention=original.convention,
        group=original.group,
        service=original.service,
        attempts=original.attempts,
        error_class=original.error_class,
        error_cause=original.error_cause,
        error_message=original.error_message,
        stacktrace=original.stacktrace,
        event_id=event_id,
        event_type_id=original.event_type_id,
        schema_version=version if version is not None else original.schema_version,
        first_failed_at=original.first_failed_at,
        last_failed_at=original.last_failed_at or now,
        status=DeadLetter.RETRYING,
        edited_from=original,
        claim_marks=marks,
    )


# --------------------------------------------------------------------------- discard, resolve
def discard(dead_letter: DeadLetter, *, actor, reason: str, job: RedriveJob | None = None) -> DeadLetter:
    """Give up on the record, saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("Say why it is discarded (reason).")
    with transaction.atomic():
        changed = DeadLetter.objects.filter(pk=dead_letter.pk, status__in=DISCARDABLE).update(
            status=DeadLetter.DISCARDED, job=job, updated_at=timezone.now()
        )
        if not changed:
            status = DeadLetter.objects.filter(pk=dead_letter.pk).values_list("status", flat=True).first()
            raise Conflict(
                f"Dead letter #{dead_letter.pk} is {status}; only {', '.join(DISCARDABLE)} can be discarded."
            )
        _audit(actor, "discard", dead_letter=dead_letter, job=job, result="discarded", reason=reason[:500])
        if job is None:
            transaction.on_commit(lambda: broadcast_changed([dead_letter.pk], DeadLetter.DISCARDED))
    dead_letter.refresh_from_db()
    return dead_letter


def discard_many(pks: list[int], *, actor, reason: str, job: RedriveJob) -> set[int]:
    """A redrive job's discard of a batch, in one transaction; returns the ids discarded."""
    with transaction.atomic():
        discardable = DeadLetter.objects.select_for_update().filter(pk__in=pks, status__in=DISCARDABLE)
        done = set(discardable.values_list("id", flat=True))
        DeadLetter.objects.filter(pk__in=done).update(status=DeadLetter.DISCARDED, job=job, updated_at=timezone.now())
        AuditEntry.objects.bulk_create(
            AuditEntry(
                actor=_actor(actor),
                action="discard",
                dead_letter_id=pk,
                job=job,
                result="discarded",
                detail={"reason": reason[:500]},
            )
            for pk in pks
            if pk in done
        )
    return done


def mark_resolved(pk: int, replay_count: int) -> bool:
    """Retried -> resolved, unless a failure of replay `replay_count` came back meanwhile."""
    came_back = DeadLetter.objects.filter(replay_of=OuterRef("pk"), replay_count=OuterRef("replay_count"))
    with transaction.atomic():
        changed = (
            DeadLetter.objects.filter(pk=pk, status=DeadLetter.RETRIED, replay_count=replay_count)
            .exclude(Exists(came_back))
            .update(status=DeadLetter.RESOLVED, updated_at=timezone.now())
        )
        if changed:
            _audit(None, "resolve", dead_letter_id=pk, result=f"replay {replay_count} handled by the group")
            transaction.on_commit(lambda: broadcast_changed([pk], DeadLetter.RESOLVED))
    return bool(changed)


# --------------------------------------------------------------------------- redrive jobs
def selection_queryset(selection: dict[str, Any]):
    """The dead letters a selection ({'ids': [...]} or {'filter': {...}}) names; raises InvalidRequest."""
    if not isinstance(selection, dict) or len({"ids", "filter"} & set(selection)) != 1:
        raise InvalidRequest("Select by 'ids' or by 'filter', not both and not neither.")
    if "ids" in selection:
        ids = selection["ids"]
        if not isinstance(ids, list) or not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in ids):
            raise InvalidRequest("'ids' must be a list of dead-letter ids.")
        if not ids or len(ids) > MAX_IDS:
            raise InvalidRequest(f"Give between 1 and {MAX_IDS} ids.")
        return DeadLetter.objects.filter(pk__in=ids)
    form = filters.form_from(selection["filter"] if isinstance(selection["filter"], dict) else {})
    if not isinstance(selection["filter"], dict) or not form.is_valid():
        errors = form.errors.get_json_data() if isinstance(selection["filter"], dict) else {}
        raise InvalidRequest(f"Bad filter: {json.dumps(errors) if errors else 'expected an object'}")
    return filters.apply(DeadLetter.objects.all(), form.cleaned_data)


def _stored_selection(selection: dict[str, Any]) -> dict[str, Any]:
    if "ids" in selection:
        return {"ids": list(dict.fromkeys(selection["ids"]))}
    form = filters.form_from(selection["filter"])
    form.is_valid()
    return {"filter": filters.to_selection(form.cleaned_data)}


def dry_run(selection: dict[str, Any], action: str, target_group: str | None = None) -> dict[str, Any]:
    """What a job would do: how many, to which topics, and who would receive the replays."""
    _check_action(action)
    target_group = (target_group or "").strip()
    selected = selection_queryset(selection)
    allowed = RETRYABLE if action == RedriveJob.RETRY else DISCARDABLE
    actionable = selected.filter(status__in=allowed)
    count = actionable.count()
    total = selected.count()
    result: dict[str, Any] = {
        "action": action,
        "selected": total,
        "count": count,
        "skipped": total - count,
        "target_topics": [],
        "receivers": [],
        "would_park": 0,
        "not_replayable": 0,
        "unconfirmed_targets": [],
    }
    if action != RedriveJob.RETRY:
        return result
    sendable = actionable.exclude(source_topic="").filter(truncated=False)
    result["not_replayable"] = count - sendable.count()
    result["would_park"] = sendable.filter(replay_count__gte=MAX_REPLAYS).count()
    result["target_topics"] = [
        {"bus": row["bus"], "topic": row["source_topic"], "count": row["count"]}
        for row in sendable.values("bus", "source_topic").annotate(count=Count("id")).order_by("bus", "source_topic")
    ]
    result["unconfirmed_targets"] = unconfirmed_targets(sendable)
    if target_group:
        service = (
            DesignedConsumer.objects.filter(group=target_group).values_list("service__name", flat=True).first() or ""
        )
        result["receivers"] = [{"service": service, "group": target_group}]
    else:
        designed = (
            DesignedConsumer.objects.filter(event_type__in=sendable.values("event_type"))
            .values_list("service__name", "group")
            .distinct()
            .order_by("service__name", "group")
        )
        result["receivers"] = [{"service": service, "group": group} for service, group in designed]
    return result


def _check_action(action: str) -> None:
    if action not in (RedriveJob.RETRY, RedriveJob.DISCARD):
        raise InvalidRequest(f"Unknown action {action!r}: use retry or discard.")


def start_job(
    *,
    actor,
    action: str,
    selection: dict[str, Any],
    rate_per_s: float,
    target_group: str | None = None,
    reason: str = "",
    confirm_targets: bool = False,
) -> RedriveJob:
    """Create a rate-capped job over the selection (resolved to ids now) and start it after commit.

    A retry job whose items include source topics named only by their headers needs `confirm_targets`.
    """
    from deadletters.tasks import redrive_run

    _check_action(action)
    reason = (reason or "").strip()
    if action == RedriveJob.DISCARD and not reason:
        raise InvalidRequest("Say why they are discarded (reason).")
    try:
        rate = float(rate_per_s)
    except (TypeError, ValueError):
        raise InvalidRequest("rate_per_s must be a number.") from None
    if not 0.1 <= rate <= MAX_RATE:
        raise InvalidRequest(f"rate_per_s must be between 0.1 and {MAX_RATE:g}.")
    queryset = selection_queryset(selection)
    if "ids" in selection:
        found = set(queryset.values_list("id", flat=True))
        ids = [pk for pk in dict.fromkeys(selection["ids"]) if pk in found]
    else:
        ids = list(queryset.order_by("id").values_list("id", flat=True)[: MAX_JOB_ITEMS + 1])
    if not ids:
        raise InvalidRequest("The selection matches no dead letters.")
    if len(ids) > MAX_JOB_ITEMS:
        raise InvalidRequest(f"The selection matches more than {MAX_JOB_ITEMS} dead letters; narrow it.")
    if action == RedriveJob.RETRY and not confirm_targets:
        unconfirmed = unconfirmed_targets(DeadLetter.objects.filter(pk__in=ids))
        if unconfirmed:
            topics = ", ".join(f"{t['bus']}:{t['topic']}" for t in unconfirmed)
            raise TargetUnconfirmed(
                f"Only the records' headers name these target topics: {topics}. Confirm the targets to send there."
            )
    with transaction.atomic():
        job = RedriveJob.objects.create(
            action=action,
            selection=_stored_selection(selection),
            rate_per_s=rate,
            target_group=(target_group or "").strip()[:255],
            reason=reason[:500],
            total=len(ids),
            item_ids=ids,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        _audit(actor, "job_start", job=job, result=f"{action} {len(ids)} dead letters at {rate:g}/s", reason=reason)
        transaction.on_commit(lambda: broadcast_progress(job))
        background.submit(redrive_run, job.pk)
    return job


def cancel_job(job: RedriveJob, *, actor) -> RedriveJob:
    """Pending -> cancelled at once; running -> cancelling (the runner stops within a second)."""
    with transaction.atomic():
        now = timezone.now()
        if RedriveJob.objects.filter(pk=job.pk, state=RedriveJob.PENDING).update(
            state=RedriveJob.CANCELLED, finished_at=now
        ):
            result = "cancelled before it started"
        elif RedriveJob.objects.filter(pk=job.pk, state=RedriveJob.RUNNING).update(state=RedriveJob.CANCELLING):
            result = "cancel requested"
        else:
            job.refresh_from_db(fields=["state"])
            raise Conflict(f"Job #{job.pk} is {job.state}; it cannot be cancelled.")
        _audit(actor, "job_cancel", job=job, result=result)
        job.refresh_from_db()
        transaction.on_commit(lambda: broadcast_progress(job))
    return job


def resume_job(job: RedriveJob, *, actor) -> RedriveJob:
    """Continue a cancelled or failed job where it stopped; what it sent is not sent again."""
    from deadletters.tasks import redrive_run

    with transaction.atomic():
        if not RedriveJob.objects.filter(pk=job.pk, state__in=[RedriveJob.CANCELLED, RedriveJob.FAILED]).update(
            state=RedriveJob.PENDING, finished_at=None, last_error=""
        ):
            job.refresh_from_db(fields=["state"])
            raise Conflict(f"Job #{job.pk} is {job.state}; only cancelled or failed jobs can be resumed.")
        _audit(actor, "job_resume", job=job, result="resumed")
        job.refresh_from_db()
        transaction.on_commit(lambda: broadcast_progress(job))
        background.submit(redrive_run, job.pk)
    return job
