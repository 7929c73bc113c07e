"""Take over redrive jobs whose worker died, as the `deadletters.redrive_resume` beat task does.

    python tests/fault/workers/redrive_resume.py JOB_ID STALE_AFTER_S

`redrive.resume_stale` runs every 30 s from Celery beat with STALE_AFTER_S=30;
here it is called once the killed worker's heartbeat is STALE_AFTER_S old (the
test knows the worker is dead: it killed it), so the test need not wait 30 s.
It gives the job a new runner token and sends `deadletters.redrive_run(job, token)`
to Celery. Retries for up to 30 s until JOB_ID was taken over; prints the ids.
"""

from __future__ import annotations

import json
import sys

import django

django.setup()

from bench.common import wait_until  # noqa: E402
from deadletters import redrive  # noqa: E402


def main() -> None:
    job_id, stale_after_s = int(sys.argv[1]), float(sys.argv[2])
    taken: list[int] = []

    def taken_over() -> bool:
        taken.extend(redrive.resume_stale(stale_after_s=stale_after_s))
        return job_id in taken

    # Polled: the worker's heartbeat goes stale only after stale_after_s.
    wait_until(taken_over, 30, f"job {job_id} to be taken over", every_s=0.2)
    print(json.dumps({"taken": taken}))


if __name__ == "__main__":
    main()
