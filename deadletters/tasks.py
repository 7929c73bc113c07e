"""Celery tasks of the dead-letter redrive (thin: the work is in deadletters/redrive.py).

Long jobs run on their own queue, "redrive" (CELERY_TASK_ROUTES in eventhub/settings.py),
so they never hold up the collector's short tasks.
"""

from __future__ import annotations

from celery import shared_task

from deadletters import redrive


@shared_task(name="deadletters.redrive_run", acks_late=True, ignore_result=True)
def redrive_run(job_id: int, runner: str | None = None) -> str | None:
    """Run a pending job; with `runner`, continue one taken over by `redrive_resume`."""
    return redrive.run_job(job_id, runner)


@shared_task(name="deadletters.redrive_resume", ignore_result=True)
def redrive_resume() -> list[int]:
    """Beat, every 30 s: continue jobs whose worker died (stale heartbeat) or whose task was lost."""
    return redrive.resume_stale()
