"""Flow checks: a designed flow run as a synthetic test against the live system.

A check publishes the flow's trigger event (the first example of the trigger event type's
latest registered schema version) with a new correlation id and `x-eventhub-synthetic: true`,
then watches the event store for each next step's event with that correlation id.

How a step is judged (`evaluate`, run every few seconds by Celery beat, idempotent):

1. Its reference time is when the event of the step it follows was seen (the trigger's own
   broker timestamp for the first steps); while that event has not been seen, the latest
   it could still be on time (its own deadline). The deadline is the reference plus the
   step's `time_budget_s`.
2. It is *passed* when an event of its type with the check's correlation id was taken by
   the broker by the deadline and, when the step names a consumer with a designed consumer
   group for that event, that group has handled it (committed past it) by the deadline;
   *late* when that happened after the deadline but before the check closed; *failed* when
   it had not happened GRACE_S after the deadline (time for the indexer to catch up);
   *pending* before. Handling leaves no timestamp: it is seen when the check looks (every
   few seconds), and seen within the grace after the deadline counts as on time.
3. Steps of the trigger's own event type that follow the trigger directly (the first steps,
   published by the trigger's producer) are observed by the trigger itself.
4. The check is passed when every step passed, failed as soon as one step failed or was
   late, or when the trigger could not be published; `error` names the step that broke.

A consumer group that has never committed anything on the topic cannot say whether it
handled an event (the demo's designed-but-not-simulated consumers): such steps are judged
by the event alone, and `observed["handled"]` is null.

`start` is the one door for a new check: rows in one transaction, then the Celery task
that publishes the trigger, after commit (`eventstore.tasks.publish_flow_check_trigger`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from designer.models import Consumer, EventType, Flow, FlowStep
from eventhub import background, connections
from eventhub.bus import BusError
from eventhub.sdk import LocalSchemas, Producer
from eventhub.sdk.schemas import check_schema_is_safe, python_validator
from eventstore.models import FlowCheck, FlowCheckStep, IndexedEvent

log = logging.getLogger(__name__)

# Seconds past a step's deadline before an unseen event fails it: the indexer's delay.
GRACE_S = 5
# A trigger nobody published this long after the check started (its task was lost) fails it.
PUBLISH_TIMEOUT_S = 60
SOURCE = "/eventhub/flow-checks"


class CheckRefused(ValueError):
    """The flow cannot be checked as it is designed (no steps, no example...): nothing started."""


@dataclass(frozen=True)
class Trigger:
    event_type: EventType
    producer: str
    payload: Any


# --------------------------------------------------------------------------- starting
def ordered_steps(steps: list[FlowStep]) -> list[FlowStep]:
    """The steps with each after the step it follows, in the designer's order otherwise."""
    by_pk = {step.pk: step for step in steps}
    placed: list[FlowStep] = []
    done: set[int] = set()
    remaining = list(steps)
    while remaining:
        ready = [s for s in remaining if s.after_id is None or s.after_id not in by_pk or s.after_id in done]
        if not ready:  # a loop (only the admin could make one): take the rest as they come
            ready = remaining
        for step in ready:
            placed.append(step)
            done.add(step.pk)
        remaining = [s for s in remaining if s.pk not in done]
    return placed


def trigger_of(flow: Flow, steps: list[FlowStep]) -> Trigger:
    """The event that starts `flow` and its payload; CheckRefused says what is missing."""
    first = next((step for step in steps if step.after_id is None), None)
    if first is None:
        raise CheckRefused(f"The flow {flow.name} has no steps to check.")
    event_type = first.event_type
    if event_type.topic is None:
        raise CheckRefused(f"{event_type.name} has no topic: the trigger cannot be published.")
    latest = event_type.latest_version()
    if latest is None:
        raise CheckRefused(f"{event_type.name} has no registered schema: the trigger cannot be validated.")
    if not latest.examples:
        raise CheckRefused(
            f"{event_type.name} v{latest.version} has no example: add one in the catalog, it is the trigger's payload."
        )
    if check_schema_is_safe(latest.schema):
        raise CheckRefused(f"{event_type.name} v{latest.version}: its schema cannot be run safely.")
    payload = latest.examples[0]
    problems = sorted(python_validator(latest.schema).iter_errors(payload), key=lambda e: list(e.absolute_path))
    if problems:
        path = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in problems[0].absolute_path)
        raise CheckRefused(
            f"The first example of {event_type.name} v{latest.version} does not match its schema at {path}."
        )
    producer = first.producer.slug if first.producer else (event_type.owner.slug if event_type.owner else "eventhub")
    return Trigger(event_type, producer, payload)


def start(flow: Flow, *, user=None, scheduled: bool = False) -> FlowCheck:
    """Start a check of `flow`: its rows now, the trigger published by a task after commit.

    Raises CheckRefused (nothing written) when the flow cannot be checked.
    """
    from eventstore.tasks import publish_flow_check_trigger  # the task module imports this one

    steps = ordered_steps(list(flow.steps.select_related("event_type__topic", "event_type__owner", "producer")))
    trigger_of(flow, steps)  # refuse early, with the reason, rather than fail later
    with transaction.atomic():
        check = FlowCheck.objects.create(
            flow=flow,
            correlation_id=f"flow-check-{uuid.uuid4()}",
            started_at=timezone.now(),
            started_by=user if user is not None and user.is_authenticated else None,
            scheduled=scheduled,
        )
        made: dict[int, FlowCheckStep] = {}
        for position, step in enumerate(steps):
            made[step.pk] = FlowCheckStep.objects.create(
                flow_check=check,
                step=step,
                event_type=step.event_type.name,
                position=position,
                after=made.get(step.after_id),
                time_budget_s=step.time_budget_s,
            )
        background.submit(publish_flow_check_trigger, check.pk)
    return check


# --------------------------------------------------------------------------- publishing
def claim_publish(check_id: int) -> bool:
    """Whether this caller won the right to publish the trigger (a conditional UPDATE)."""
    return bool(
        FlowCheck.objects.filter(pk=check_id, status=FlowCheck.RUNNING, publish_claimed=False).update(
            publish_claimed=True
        )
    )


def publish_trigger(check_id: int) -> bool:
    """Publish the check's trigger once; a failure fails the check. Returns whether it was sent."""
    if not claim_publish(check_id):
        return False
    check = FlowCheck.objects.select_related("flow").get(pk=check_id)
    steps = list(check.flow.steps.select_related("event_type__topic", "event_type__owner", "producer"))
    try:
        trigger = trigger_of(check.flow, ordered_steps(steps))
        topic = trigger.event_type.topic
        latest = trigger.event_type.latest_version()
        schemas = LocalSchemas(
            {trigger.event_type.name: {"schema": latest.schema, "version": latest.version, "topic": topic.address}}
        )
        key_field = trigger.event_type.key_field
        key = trigger.payload.get(key_field) if isinstance(trigger.payload, dict) and key_field else None
        producer = Producer(connections.bus(topic.bus), trigger.producer, schemas, SOURCE, heartbeat_interval_s=None)
        # publish_nowait returns the event id (ce_id); flush waits for the broker and raises if it refused.
        event_id = producer.publish_nowait(
            trigger.event_type.name,
            trigger.payload,
            key=str(key) if key is not None else check.correlation_id,
            correlation_id=check.correlation_id,
            synthetic=True,
        )
        producer.flush()
    except (CheckRefused, BusError, ValueError) as error:
        log.warning("flow check %s: the trigger could not be published (%s)", check_id, error)
        _close(check, FlowCheck.FAILED, f"The trigger could not be published: {error}"[:2000])
        return False
    FlowCheck.objects.filter(pk=check_id).update(published_at=timezone.now(), trigger_event_id=event_id)
    return True


# --------------------------------------------------------------------------- evaluating
def evaluate(check_id: int, now: datetime | None = None) -> str:
    """Judge a running check's steps from the event store; close it when decided. Returns its status.

    Idempotent: a finished check is left alone, and a step once judged passed, late or
    failed keeps its verdict.
    """
    now = now or timezone.now()
    check = FlowCheck.objects.filter(pk=check_id).first()
    if check is None or check.status != FlowCheck.RUNNING:
        return check.status if check else ""
    if check.published_at is None:
        if now - check.started_at > timedelta(seconds=PUBLISH_TIMEOUT_S):
            _close(check, FlowCheck.FAILED, f"The trigger was not published within {PUBLISH_TIMEOUT_S} s.")
            return FlowCheck.FAILED
        return FlowCheck.RUNNING
    steps = list(check.steps.order_by("position", "id"))
    events = _events(check.correlation_id)
    trigger_time = next((e.timestamp for e in events if e.ce_id and e.ce_id == check.trigger_event_id), None)
    trigger_time = trigger_time or check.published_at
    # When each step's event was seen (or, unseen, the latest it could still be on time).
    seen_at: dict[int, datetime] = {}
    changed: list[FlowCheckStep] = []
    handled_checks: dict[str, Any] = {}
    for step in steps:
        reference = seen_at.get(step.after_id, trigger_time) if step.after_id else trigger_time
        deadline = reference + timedelta(seconds=step.time_budget_s)
        if step.status != FlowCheckStep.PENDING:
            seen_at[step.pk] = _seen_time(step) or deadline
            continue
        event = next((e for e in events if e.ce_type == step.event_type), None)
        verdict = _judge(step, event, reference, deadline, now, handled_checks)
        if verdict is not None:
            changed.append(step)
        seen_at[step.pk] = event.timestamp if event is not None else deadline
    for step in changed:
        step.save(update_fields=["status", "latency_ms", "observed"])
    broken = next((s for s in steps if s.status in (FlowCheckStep.FAILED, FlowCheckStep.LATE)), None)
    if broken is not None:
        _close(check, FlowCheck.FAILED, describe(broken))
        return FlowCheck.FAILED
    if all(s.status == FlowCheckStep.PASSED for s in steps):
        _close(check, FlowCheck.PASSED, "")
        return FlowCheck.PASSED
    return FlowCheck.RUNNING


def _events(correlation_id: str) -> list[IndexedEvent]:
    return list(
        IndexedEvent.objects.filter(correlation_id=correlation_id)
        .only("bus", "topic", "partition", "offset", "ce_id", "ce_type", "timestamp")
        .order_by("timestamp", "id")
    )


def _seen_time(step: FlowCheckStep) -> datetime | None:
    when = (step.observed or {}).get("time")
    try:
        return datetime.fromisoformat(when) if when else None
    except ValueError:
        return None


def _judge(
    step: FlowCheckStep,
    event: IndexedEvent | None,
    reference: datetime,
    deadline: datetime,
    now: datetime,
    handled_checks: dict[str, Any],
) -> str | None:
    """Set `step`'s verdict from what was seen; returns it, or None while it stays pending."""
    if event is None:
        if now > deadline + timedelta(seconds=GRACE_S):
            step.status = FlowCheckStep.FAILED
            step.observed = {"reason": "not_seen"}
            return step.status
        return None
    step.observed = {
        "topic": event.topic,
        "partition": event.partition,
        "offset": event.offset,
        "ce_id": event.ce_id,
        "time": event.timestamp.isoformat(),
    }
    step.latency_ms = max(0, int((event.timestamp - reference).total_seconds() * 1000))
    handled = _handled(step, event, handled_checks)
    step.observed["handled"] = handled
    if handled is False:
        if now > deadline + timedelta(seconds=GRACE_S):
            step.status = FlowCheckStep.FAILED
            step.observed["reason"] = "not_handled"
            return step.status
        return None  # seen; its consumer may still handle it in time
    on_time = event.timestamp <= deadline and (handled is None or now <= deadline + timedelta(seconds=GRACE_S))
    step.status = FlowCheckStep.PASSED if on_time else FlowCheckStep.LATE
    return step.status


def _handled(step: FlowCheckStep, event: IndexedEvent, cache: dict[str, Any]) -> bool | None:
    """Whether the step's consumer group finished with `event`; None when that cannot be known."""
    designed = _consumer_group(step)
    if designed is None:
        return None
    try:
        bus = connections.bus(event.bus)
        committed = bus.committed_offsets(designed, event.topic)
        if not any(offset is not None for offset in committed.values()):
            return None  # a group that never consumed the topic tells nothing
        if event.bus not in cache:
            cache[event.bus] = bus.handled_check()
        return bool(cache[event.bus](designed, event.topic, event.partition, event.offset))
    except (BusError, ValueError) as error:
        log.info("flow check: cannot tell whether %s handled %s (%s)", designed, event, error)
        return False


def _consumer_group(step: FlowCheckStep) -> str | None:
    if step.step_id is None:
        return None
    flow_step = FlowStep.objects.filter(pk=step.step_id).select_related("consumer", "event_type").first()
    if flow_step is None or flow_step.consumer is None:
        return None
    return (
        Consumer.objects.filter(service=flow_step.consumer, event_type=flow_step.event_type)
        .values_list("group", flat=True)
        .first()
    )


def describe(step: FlowCheckStep) -> str:
    """What broke, for people: the step, its event and what was missing."""
    where = f"step {step.position + 1} ({step.event_type}"
    consumer = _consumer_name(step)
    where += f" → {consumer})" if consumer else ")"
    reason = (step.observed or {}).get("reason")
    if step.status == FlowCheckStep.LATE:
        return f"Late at {where}: after its {step.time_budget_s} s budget ({step.latency_ms} ms)."
    if reason == "not_handled":
        return f"Failed at {where}: {consumer or 'its consumer'} did not handle it within {step.time_budget_s} s."
    return f"Failed at {where}: not seen within {step.time_budget_s} s."


def _consumer_name(step: FlowCheckStep) -> str:
    if step.step_id is None:
        return ""
    name = FlowStep.objects.filter(pk=step.step_id).values_list("consumer__name", flat=True).first()
    return name or ""


def _close(check: FlowCheck, status: str, error: str) -> None:
    """Finish a running check (a conditional UPDATE: a check closes once)."""
    FlowCheck.objects.filter(pk=check.pk, status=FlowCheck.RUNNING).update(
        status=status, finished_at=timezone.now(), error=error
    )


def evaluate_running(now: datetime | None = None) -> dict[int, str]:
    """Evaluate every running check; {check id: status}."""
    return {pk: evaluate(pk, now) for pk in FlowCheck.objects.running().values_list("pk", flat=True)}


# --------------------------------------------------------------------------- schedule and reading
def start_due(now: datetime | None = None) -> list[int]:
    """Start a scheduled check of every flow whose last check is older than EVENTHUB_FLOW_CHECK_EVERY_S.

    Flows that cannot be checked (no example, no steps) are skipped with a log line;
    a flow with a running check is not started again.
    """
    every = settings.EVENTHUB_FLOW_CHECK_EVERY_S
    if not every:
        return []
    now = now or timezone.now()
    started: list[int] = []
    for flow in Flow.objects.all():
        last = FlowCheck.objects.for_flow(flow.pk).order_by("-started_at").first()
        if last is not None and (last.status == FlowCheck.RUNNING or now - last.started_at < timedelta(seconds=every)):
            continue
        try:
            started.append(start(flow, scheduled=True).pk)
        except CheckRefused as error:
            log.info("scheduled flow check of %s skipped: %s", flow.slug, error)
    return started


def latest_by_flow() -> list[dict[str, Any]]:
    """The latest finished check of every flow: slug, status, error, bus (for the alert rules)."""
    rows: list[dict[str, Any]] = []
    for flow in Flow.objects.all():
        last = (
            FlowCheck.objects.for_flow(flow.pk)
            .exclude(status=FlowCheck.RUNNING)
            .order_by("-started_at", "-id")
            .values("id", "status", "error", "finished_at")
            .first()
        )
        if last is None:
            continue
        first = flow.steps.filter(after=None).select_related("event_type__topic").order_by("order", "id").first()
        topic = first.event_type.topic if first is not None else None
        rows.append(
            {
                "flow": flow.slug,
                "check": last["id"],
                "status": last["status"],
                "error": last["error"],
                "bus": topic.bus if topic is not None else settings.EVENTHUB_BUS,
            }
        )
    return rows


def run_forever(stop) -> None:
    """Without Celery (`make run` with no Redis): what beat's two flow-check entries do, in a thread."""
    from django.db import connection

    ticks = 0
    while not stop.wait(3.0):
        try:
            background.between_steps()
            evaluate_running()
            if ticks % 10 == 9:  # every 30 s, the first 30 s after start (as beat's entry)
                start_due()
        except Exception:  # noqa: BLE001 - one bad tick must not end the loop
            log.exception("flow checks: tick failed")
        finally:
            connection.close()
        ticks += 1
