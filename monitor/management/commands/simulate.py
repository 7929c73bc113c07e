import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from designer.models import EventType
from eventhub import connections
from monitor import demo_control
from monitor.simulator import Shop, wait_for


def design_schemas() -> dict[str, dict]:
    """Event name -> {schema, version, topic, bus} for every designed event with a schema and a topic."""
    schemas = {}
    for event in EventType.objects.select_related("topic").exclude(topic=None):
        latest = event.latest_version()
        if latest is not None:
            schemas[event.name] = {
                "schema": latest.schema,
                "version": latest.version,
                "topic": event.topic.address,
                "bus": event.topic.bus,
                "partitions": event.topic.partitions,
            }
    return schemas


class Command(BaseCommand):
    help = "Run the demo shop's services (needs `seed_demo`): live traffic, lag, dead letters, a silent service."

    def handle(self, *args, **options):
        schemas = design_schemas()
        if "order.placed" not in schemas:
            raise CommandError("the demo world is not loaded: run `python manage.py seed_demo` first")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        buses = {}
        kafka = connections.bus("kafka")
        if not wait_for(kafka, 60, stop):
            raise CommandError("the Kafka bus did not answer within 60 s")
        buses["kafka"] = kafka
        redis_bus = connections.bus("redis")
        if wait_for(redis_bus, 2, stop):
            buses["redis"] = redis_bus
        else:
            self.stdout.write("simulator: Redis does not answer; the Redis stream stays quiet")
        for bus_kind, address, partitions in {(s["bus"], s["topic"], s["partitions"]) for s in schemas.values()}:
            if bus_kind in buses:
                buses[bus_kind].create_topic(address, partitions=partitions)
        self.stdout.write("simulator: the demo shop is trading")
        shop = Shop(buses, schemas)
        shop.stopped = demo_control.stopped()  # `manage.py demo_service stop shipping` and back
        threading.Thread(target=shop.follow_stopped, args=(demo_control.stopped,), daemon=True).start()
        shop.run(stop)
