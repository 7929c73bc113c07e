"""Run the dead-letter ingester on its own (it also runs inside the monitor loops)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from deadletters import ingest


class Command(BaseCommand):
    help = "Tail every dead-letter topic on Kafka and Redis into the DeadLetter table until SIGTERM/Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--bus", action="append", choices=["kafka", "redis"], help="Only this bus (repeatable); default both."
        )
        parser.add_argument(
            "--group", help="Consumer group of the ingester; default one per EVENTHUB_MONITOR_NAMESPACE."
        )
        parser.add_argument(
            "--pattern",
            action="append",
            help="Dead-letter topic pattern (fnmatch, repeatable); default settings.EVENTHUB_DLQ_PATTERNS.",
        )

    def handle(self, *args, **options) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        ingest.run_forever(
            stop,
            kinds=tuple(options["bus"] or ("kafka", "redis")),
            group=options["group"],
            patterns=options["pattern"],
        )
