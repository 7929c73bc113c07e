"""Celery tasks of the event store (thin: the work is in eventstore/models.py and eventstore/flow_checks.py)."""

from __future__ import annotations

from celery import shared_task

from eventstore import flow_checks, models


@shared_task(name="eventstore.purge_expired", ignore_result=True)
def purge_expired() -> int:
    """Beat, every 10 minutes: delete indexed events past their topic's retention."""
    return models.purge_expired()


# --------------------------------------------------------------------------- flow checks
@shared_task(name="eventstore.publish_flow_check_trigger", ignore_result=True)
def publish_flow_check_trigger(check_id: int) -> bool:
    """After a check's rows are committed: publish its trigger (claimed, so sent once)."""
    return flow_checks.publish_trigger(check_id)


@shared_task(name="eventstore.evaluate_flow_checks", ignore_result=True)
def evaluate_flow_checks() -> dict[int, str]:
    """Beat, every few seconds: judge the running checks' steps; idempotent."""
    return flow_checks.evaluate_running()


@shared_task(name="eventstore.run_scheduled_flow_checks", ignore_result=True)
def run_scheduled_flow_checks() -> list[int]:
    """Beat: start a check of every flow not checked for EVENTHUB_FLOW_CHECK_EVERY_S (0: never)."""
    return flow_checks.start_due()
