"""`manage.py run_monitor`: the collector and the dead-letter ingester until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand

from eventhub import background

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the monitor's collector (one loop per bus) and dead-letter ingester until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--no-ingester", action="store_true", help="Only collect; do not ingest dead letters.")

    def handle(self, *args, **options):
        stop = threading.Event()

        def _stop(signum, _frame):
            log.info("run_monitor: %s received, stopping", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        names = ["collector"] if options["no_ingester"] else ["collector", "ingester"]
        targets = [(name, background.loop(name)) for name in names]
        threads = [threading.Thread(target=fn, args=(stop,), name=name, daemon=True) for name, fn in targets]
        for thread in threads:
            thread.start()
        self.stdout.write(f"run_monitor: running {', '.join(name for name, _ in targets)}; Ctrl-C stops")
        # Wake up regularly so the signal handlers run promptly in the main thread.
        while not stop.wait(0.5):
            if not any(thread.is_alive() for thread in threads):
                break
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        self.stdout.write("run_monitor: stopped")
