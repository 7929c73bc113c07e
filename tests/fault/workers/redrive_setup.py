"""Make COUNT dead letters on Kafka, ingest them, and start a redrive job over them.

    python tests/fault/workers/redrive_setup.py SOURCE_TOPIC COUNT RATE_PER_S

With DATABASE_URL (the test's SQLite file), KAFKA_BOOTSTRAP_SERVERS and
EVENTHUB_WORKERS=celery in the environment. Steps, as in production:
1. create SOURCE_TOPIC and SOURCE_TOPIC.dlq; write COUNT dead letters to the DLQ
   (SDK format);
2. ingest them with the real Ingester (its own group) until COUNT rows exist;
3. `actions.start_job(...)` as the Operator: the job row is written and, on
   commit, the Celery task `deadletters.redrive_run` is sent to the "redrive" queue.
Prints {"job": id, "ids": [dead letter ids]}.
"""

from __future__ import annotations

import json
import sys
import time

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from deadletters import actions  # noqa: E402
from deadletters.ingest import Ingester  # noqa: E402
from deadletters.models import DeadLetter  # noqa: E402
from eventhub import connections  # noqa: E402
from tests.fault import send_dead_letters  # noqa: E402


def main() -> None:
    source, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    dlq = f"{source}.dlq"
    bus = connections.bus("kafka")
    bus.create_topic(source, partitions=3)
    bus.create_topic(dlq, partitions=1)
    send_dead_letters(bus, dlq, source, range(count))

    ingester = Ingester(kinds=("kafka",), patterns=[dlq], group=f"{source}-ingester")
    deadline = time.monotonic() + 60
    while DeadLetter.objects.filter(dlq_topic=dlq).count() < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"ingested {DeadLetter.objects.filter(dlq_topic=dlq).count()} of {count} in 60 s")
        ingester.step(0.5)
    ingester.close()

    ids = list(DeadLetter.objects.filter(dlq_topic=dlq).order_by("id").values_list("id", flat=True))
    operator = get_user_model().objects.get(username="otto-fault")
    job = actions.start_job(actor=operator, action="retry", selection={"ids": ids}, rate_per_s=rate)
    print(json.dumps({"job": job.pk, "ids": ids}))


if __name__ == "__main__":
    main()
