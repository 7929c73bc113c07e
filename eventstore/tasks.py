"""Celery tasks of the event store (thin: the work is in eventstore/models.py)."""

from __future__ import annotations

from celery import shared_task

from eventstore import models


@shared_task(name="eventstore.purge_expired", ignore_result=True)
def purge_expired() -> int:
    """Beat, every 10 minutes: delete indexed events past their topic's retention."""
    return models.purge_expired()
