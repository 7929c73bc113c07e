from django.core.management.base import BaseCommand

from monitor import demo_control


class Command(BaseCommand):
    help = (
        "Stop or start a demo service's consumers in the running simulator (`manage.py simulate`), "
        "e.g. to watch the Checkout flow check turn red: demo_service stop shipping."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["stop", "start", "status"])
        parser.add_argument("service", nargs="?", choices=demo_control.SERVICES)

    def handle(self, *args, action: str, service: str | None, **options):
        stopped = demo_control.stopped()
        if action != "status":
            if service is None:
                self.stderr.write("name the service: demo_service stop shipping")
                return
            stopped = stopped | {service} if action == "stop" else stopped - {service}
            demo_control.set_stopped(stopped)
        self.stdout.write(f"stopped: {', '.join(sorted(stopped)) or 'none'} (the simulator follows within a second)")
