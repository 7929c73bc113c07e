"""Take over redrive jobs whose worker died, as the `monitor.redrive_resume` beat task does.

    python tests/fault/workers/redrive_resume.py JOB_ID STALE_AFTER_S

`redrive.resume_stale` runs every 30 s from Celery beat with STALE_AFTER_S=30;
here it is called once the killed worker's heartbeat is STALE_AFTER_S old (the
test knows the worker is dead: it killed it), so the test need not wait 30 s.
It gives the job a new runner token and sends `monitor.redrive_run(job, token)`
to Celery. Retries for up to 30 s until JOB_ID was taken over; prints the ids.
"""

from __future__ import annotations

import json
import sys
import time

import django

django.setup()

from monitor import redrive  # noqa: E402


def main() -> None:
    job_id, stale_after_s = int(sys.argv[1]), float(sys.argv[2])
    deadline = time.monotonic() + 30
    taken: list[int] = []
    while job_id not in taken:
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} was not taken over in 30 s")
        taken += redrive.resume_stale(stale_after_s=stale_after_s)
        if job_id not in taken:
            time.sleep(0.2)  # the heartbeat is not stale yet: poll again
    print(json.dumps({"taken": taken}))


if __name__ == "__main__":
    main()
