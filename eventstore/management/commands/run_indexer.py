"""Run the event store's indexer on its own (in-process mode runs it as one of the background loops)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from eventstore import indexer


class Command(BaseCommand):
    help = "Index every event of the selected topics on Kafka and Redis into the event store until SIGTERM/Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--bus", action="append", choices=["kafka", "redis"], help="Only this bus (repeatable); default both."
        )
        parser.add_argument(
            "--group", help="Consumer group of the indexer; default one per EVENTHUB_MONITOR_NAMESPACE."
        )
        parser.add_argument(
            "--include",
            action="append",
            help="Topic pattern to index (fnmatch, repeatable); default EVENTHUB_INDEX_INCLUDE.",
        )
        parser.add_argument(
            "--exclude",
            action="append",
            help="Topic pattern to skip (fnmatch, repeatable); default EVENTHUB_INDEX_EXCLUDE.",
        )

    def handle(self, *args, **options) -> None:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        indexer.run_forever(
            stop,
            kinds=tuple(options["bus"] or ("kafka", "redis")),
            group=options["group"],
            include=options["include"],
            exclude=options["exclude"],
        )
