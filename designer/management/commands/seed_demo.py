from django.core.management.base import BaseCommand

from designer import demo


class Command(BaseCommand):
    help = "Load the demo shop (services, topics, events with schemas, flows). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing unless the catalog is empty.")

    def handle(self, *args, if_empty, **options):
        if if_empty and not demo.is_empty():
            return
        counts = demo.seed()
        self.stdout.write(
            "eventhub: demo world ready: "
            + ", ".join(f"{count} {kind}" for kind, count in counts.items())
        )
