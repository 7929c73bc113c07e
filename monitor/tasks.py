"""Celery tasks of the monitor: history upkeep and alert webhooks. Thin; the work is elsewhere.

Beat runs `maintain_history` (eventhub/settings.py, CELERY_BEAT_SCHEDULE); the
collector also runs the same upkeep every few ticks, so history stays bounded
without beat.
"""

from __future__ import annotations

from celery import shared_task

ROLLUP_LEASE_S = 300.0


@shared_task(ignore_result=True)
def maintain_history() -> dict | None:
    """Roll raw samples up to one-minute points and apply retention (idempotent)."""
    from monitor import history
    from monitor.snapshots import Lease

    lease = Lease("rollup", ROLLUP_LEASE_S)
    if not lease.hold():
        return None  # another process is at it
    try:
        return history.maintain()
    finally:
        lease.release()


@shared_task(bind=True, ignore_result=True, max_retries=None)
def deliver_alert_webhook(self, alert_id: int, event: str) -> bool:
    """POST an alert to EVENTHUB_ALERT_WEBHOOK_URL, retrying with exponential backoff.

    In a Celery worker each attempt is one run and the next is a `retry` with a
    countdown, so no worker sits sleeping. Run directly (a thread, without
    Celery: `eventhub.background.submit` calls `run`) the retries loop in place.
    """
    from django.conf import settings

    from monitor import alerts

    if self.request.called_directly:
        return alerts.deliver_webhook(alert_id, event)
    if alerts.attempt_webhook(alert_id, event):
        return True
    attempt = self.request.retries + 1
    if attempt < alerts.WEBHOOK_ATTEMPTS:
        base = getattr(settings, "EVENTHUB_ALERT_WEBHOOK_BACKOFF_S", 2.0)
        raise self.retry(countdown=alerts.webhook_backoff(attempt, base))
    return False
