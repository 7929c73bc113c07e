"""`manage.py seed_demo`: the demo shop's design (designer/demo.py) and the alert rules that watch it."""

from django.core.management.base import BaseCommand

from designer import demo
from monitor.models import AlertRule

# A few alert rules so the demo's slow consumer, failing payments and silent service show up.
DEMO_RULES = [
    ("Analytics falls behind", AlertRule.LAG_MESSAGES, "analytics", 200, 20),
    ("Consumer stalled or stopped", AlertRule.GROUP_STATUS, "*", 0, 10),
    ("Payments dead-lettering", AlertRule.DLQ_INFLOW, "*", 0, 0),
    ("Service heartbeat lost", AlertRule.HEARTBEAT, "*", 0, 0),
    ("Designed connection silent", AlertRule.FRESHNESS, "*", 300, 0),
    ("Flow check failing", AlertRule.FLOW_CHECK, "*", 0, 0),
]


class Command(BaseCommand):
    help = "Load the demo shop (services, topics, events with schemas, flows). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing unless the catalog is empty.")

    def handle(self, *args, if_empty, **options):
        if if_empty and not demo.is_empty():
            return
        counts = demo.seed()
        for name, kind, target, threshold, for_seconds in DEMO_RULES:
            AlertRule.objects.get_or_create(
                name=name, defaults={"kind": kind, "target": target, "threshold": threshold, "for_seconds": for_seconds}
            )
        self.stdout.write(
            "eventhub: demo world ready: " + ", ".join(f"{count} {kind}" for kind, count in counts.items())
        )
