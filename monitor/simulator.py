"""Simulated demo services: the shop from designer.demo, publishing and consuming through the SDK.

What a newcomer should see within a minute of `make run`:
- mixed traffic on every designed topic (a few orders a second, their payments,
  stock, parcels and notifications — the last on a Redis stream);
- analytics is slower than its producers in bursts: its lag grows, then drains;
- orders sometimes rejects payment.authorized (InvalidAmount): dead letters appear;
- shipping stops heartbeating for a while every few minutes: it shows as down.

Synthetic events (flow checks, `x-eventhub-synthetic: true`) are handled like real orders,
but always down the happy path (no declined card, no missing stock, no refused amount),
so a failing check means a broken service, not the demo's dice; analytics and
notifications drop them (no check traffic in the warehouse or a customer's inbox).
`stop_service("shipping")` stops a service's consumers (they stay in their groups and
handle nothing, as a stuck deployment would) until `start_service`; `manage.py simulate`
does it when the service is named in <EVENTHUB_VAR_DIR>/demo-stopped (`manage.py demo_service`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from eventhub.bus import Bus, BusError
from eventhub.sdk import Consumer, Event, Heartbeat, LocalSchemas, Producer

log = logging.getLogger("eventhub.simulator")

ORDERS_PER_SECOND = 3.0
ANALYTICS_BUSY_S = 60  # analytics is slow for this long...
ANALYTICS_CALM_S = 60  # ...then quick again, so its lag grows and drains
SHIPPING_SILENT_EVERY_S = 240
SHIPPING_SILENT_FOR_S = 60
INVALID_AMOUNT_SHARE = 0.06


class InvalidAmount(ValueError):
    """The demo's recurring failure: orders refuses authorisations above a limit."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _uid() -> str:
    return str(uuid.uuid4())


class Shop:
    """The six demo services wired to the buses. `run(stop)` until stop is set."""

    def __init__(self, buses: dict[str, Bus], schemas: dict[str, dict], heartbeat_s: float = 5.0):
        self.buses = buses
        self.heartbeat_s = heartbeat_s
        self.local = LocalSchemas(schemas)
        self.bus_of_event = {name: spec["bus"] for name, spec in schemas.items()}
        self.producers: dict[tuple[str, str], Producer] = {}
        self.consumers: list[Consumer] = []
        self.started = time.monotonic()
        self.stopped: set[str] = set()  # services whose consumers are stopped (stop_service)
        self._runs: dict[int, threading.Event] = {}  # id(consumer) -> what ends its current run
        self._threads: dict[int, threading.Thread] = {}  # id(consumer) -> the thread of its last run
        self._stop = threading.Event()

    # --- publishing --------------------------------------------------------------

    def publish(self, service: str, event_type: str, payload: dict, key: str, caused_by: Event | None = None) -> None:
        """`caused_by`: the event handled when publishing in reaction to it, so the demo's traces chain."""
        bus_kind = self.bus_of_event[event_type]
        if bus_kind not in self.buses:
            return  # e.g. no Redis: the Redis stream stays quiet
        producer = self.producers.get((service, bus_kind))
        if producer is None:
            producer = Producer(self.buses[bus_kind], service, self.local, heartbeat_interval_s=self.heartbeat_s)
            self.producers[(service, bus_kind)] = producer
        producer.publish(event_type, payload, key=key, caused_by=caused_by)

    def place_order(self) -> None:
        order_id, customer_id = _uid(), _uid()
        amount = random.choice([999, 2450, 4999, 12900, 35000])
        payload = {
            "order_id": order_id,
            "customer_id": customer_id,
            "total": {"amount": amount, "currency": "EUR"},
            "lines": [{"sku": f"SKU-{random.randint(100, 999)}", "quantity": random.randint(1, 3)}],
            "placed_at": _now(),
        }
        self.publish("orders", "order.placed", payload, order_id)
        if random.random() < 0.05:
            self.publish(
                "orders",
                "refund.requested",
                {"order_id": order_id, "amount": {"amount": amount, "currency": "EUR"}, "requested_by": "support"},
                order_id,
            )

    # --- consuming ---------------------------------------------------------------

    def consumer(self, service: str, bus_kind: str, topics: list[str], **options) -> Consumer | None:
        if bus_kind not in self.buses:
            return None
        consumer = Consumer(
            self.buses[bus_kind], service, service, topics, heartbeat_interval_s=self.heartbeat_s, **options
        )
        consumer.default_handler(lambda event: None)  # a topic carries event types this service ignores
        self.consumers.append(consumer)
        return consumer

    def wire(self) -> None:
        payments = self.consumer("payments", "kafka", ["orders", "payments"])
        inventory = self.consumer("inventory", "kafka", ["orders"])
        orders = self.consumer("orders", "kafka", ["payments", "inventory"], max_attempts=3, backoff_s=0.1)
        shipping = self.consumer("shipping", "kafka", ["orders"])
        analytics = self.consumer("analytics", "kafka", ["orders", "payments", "shipping"])
        notifications = self.consumer("notifications", "redis", ["notifications"])

        @payments.handler("order.placed")
        def authorise(event: Event) -> None:
            order = event.payload
            if not event.synthetic and random.random() < 0.08:
                self.publish(
                    "payments",
                    "payment.failed",
                    {"order_id": order["order_id"], "code": "card_declined"},
                    order["order_id"],
                    caused_by=event,
                )
                return
            self.publish(
                "payments",
                "payment.authorized",
                {
                    "payment_id": _uid(),
                    "order_id": order["order_id"],
                    "amount": order["total"],
                    "card_brand": random.choice(["visa", "mastercard", "amex"]),
                },
                order["order_id"],
                caused_by=event,
            )

        @payments.handler("refund.requested")
        def refund(event: Event) -> None:
            self.publish(
                "payments",
                "payment.refunded",
                {"order_id": event.payload["order_id"], "amount": event.payload["amount"]},
                event.payload["order_id"],
                caused_by=event,
            )

        @inventory.handler("order.placed")
        def reserve(event: Event) -> None:
            order = event.payload
            skus = [line["sku"] for line in order["lines"]]
            if not event.synthetic and random.random() < 0.04:
                self.publish(
                    "inventory",
                    "inventory.out_of_stock",
                    {"order_id": order["order_id"], "sku": skus[0]},
                    skus[0],
                    caused_by=event,
                )
            else:
                self.publish(
                    "inventory",
                    "inventory.reserved",
                    {"order_id": order["order_id"], "skus": skus},
                    order["order_id"],
                    caused_by=event,
                )

        @orders.handler("payment.authorized")
        def confirm(event: Event) -> None:
            payment = event.payload
            # The demo's dead letters: a fraction of large payments is refused, every attempt.
            if (
                not event.synthetic
                and payment["amount"]["amount"] >= 35000
                and hash(payment["order_id"]) % 100 < INVALID_AMOUNT_SHARE * 100 * 3
            ):
                raise InvalidAmount(f"amount {payment['amount']['amount']} exceeds the single-order limit")
            self.publish(
                "orders",
                "order.confirmed",
                {"order_id": payment["order_id"], "confirmed_at": _now()},
                payment["order_id"],
                caused_by=event,
            )
            self.publish(
                "orders",
                "notification.requested",
                {"customer_id": _uid(), "template": "order-confirmed", "order_id": payment["order_id"]},
                payment["order_id"],
                caused_by=event,
            )

        @orders.handler("payment.failed")
        def cancel(event: Event) -> None:
            order_id = event.payload["order_id"]
            self.publish(
                "orders",
                "order.cancelled",
                {"order_id": order_id, "reason": "payment failed"},
                order_id,
                caused_by=event,
            )

        @shipping.handler("order.confirmed")
        def dispatch(event: Event) -> None:
            order_id = event.payload["order_id"]
            self.publish(
                "shipping",
                "shipment.dispatched",
                {
                    "order_id": order_id,
                    "carrier": random.choice(["DHL", "UPS", "PostNL"]),
                    "tracking_code": _uid()[:12],
                },
                order_id,
                caused_by=event,
            )
            if random.random() < 0.7:
                self.publish(
                    "shipping",
                    "shipment.delivered",
                    {"order_id": order_id, "delivered_at": _now()},
                    order_id,
                    caused_by=event,
                )

        @analytics.default_handler
        def record(event: Event) -> None:
            if event.synthetic:
                return
            phase = (time.monotonic() - self.started) % (ANALYTICS_BUSY_S + ANALYTICS_CALM_S)
            time.sleep(0.15 if phase < ANALYTICS_BUSY_S else 0.002)  # the slow consumer, on purpose

        if notifications is not None:

            @notifications.handler("notification.requested")
            def send(event: Event) -> None:
                if event.synthetic:
                    return  # check traffic: nobody is e-mailed

    # --- running -----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        self.wire()
        for consumer in self.consumers:
            if consumer.service not in self.stopped:
                self._start_consumer(consumer)
        threads = [threading.Thread(target=self._silence_shipping, args=(stop,), daemon=True)]
        for thread in threads:
            thread.start()
        interval = 1.0 / ORDERS_PER_SECOND
        while not stop.is_set():
            try:
                self.place_order()
            except BusError as error:
                log.warning("simulator: publish failed (%s); retrying", error)
                stop.wait(2)
            stop.wait(random.expovariate(1.0 / interval))
        self.close()

    def _silence_shipping(self, stop: threading.Event) -> None:
        """Shipping's heartbeats stop for a while, as if its pods were evicted."""
        while not stop.wait(SHIPPING_SILENT_EVERY_S):
            beats: list[Heartbeat] = [c.heartbeat for c in self.consumers if c.service == "shipping" and c.heartbeat]
            beats += [
                p.heartbeat for (service, _), p in self.producers.items() if service == "shipping" and p.heartbeat
            ]
            for beat in beats:
                beat.close()
            log.info("simulator: shipping stops heartbeating for %ss", SHIPPING_SILENT_FOR_S)
            if stop.wait(SHIPPING_SILENT_FOR_S):
                return
            for consumer in self.consumers:
                if consumer.service == "shipping" and consumer.heartbeat:
                    consumer.heartbeat = Heartbeat(
                        consumer.bus,
                        "shipping",
                        "consumer",
                        group=consumer.group,
                        topics=consumer.topics,
                        interval_s=self.heartbeat_s,
                    ).start()
            for (service, _), producer in self.producers.items():
                if service == "shipping" and producer.heartbeat:
                    producer.heartbeat = Heartbeat(
                        producer.bus, "shipping", "producer", interval_s=self.heartbeat_s
                    ).start()

    def stop_service(self, service: str) -> None:
        """Stop `service`'s consumers: they finish the batch in hand, then handle nothing."""
        self.stopped.add(service)
        for consumer in self.consumers:
            if consumer.service == service and id(consumer) in self._runs:
                self._runs.pop(id(consumer)).set()
        log.info("simulator: %s stopped consuming", service)

    def start_service(self, service: str) -> None:
        """Let `service`'s consumers handle events again, from where their groups left off."""
        self.stopped.discard(service)
        for consumer in self.consumers:
            if consumer.service == service and id(consumer) not in self._runs:
                self._start_consumer(consumer)
        log.info("simulator: %s consumes again", service)

    def _start_consumer(self, consumer: Consumer) -> None:
        # run() reads its stop event on every loop: the previous run must be over before a new
        # one replaces it, or both would go on.
        previous = self._threads.get(id(consumer))
        if previous is not None:
            previous.join(timeout=30)
        # The run ends when the service is stopped, or when close() closes the consumer (which sets it).
        run = self._runs[id(consumer)] = threading.Event()
        thread = threading.Thread(target=consumer.run, args=(run,), daemon=True, name=f"sim-{consumer.service}")
        self._threads[id(consumer)] = thread
        thread.start()

    def follow_stopped(self, read: Callable[[], set[str]], every_s: float = 1.0) -> None:
        """Keep the stopped services equal to `read()` (e.g. a control file), until the shop stops."""
        while not self._stop.wait(every_s):
            try:
                wanted = read()
            except OSError as error:
                log.warning("simulator: cannot read the stopped services (%s)", error)
                continue
            for service in wanted - self.stopped:
                self.stop_service(service)
            for service in self.stopped - wanted:
                self.start_service(service)

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()
        for producer in self.producers.values():
            producer.close()


def wait_for(bus: Bus, deadline_s: float, stop: threading.Event) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and not stop.is_set():
        try:
            bus.ping()
            return True
        except BusError:
            stop.wait(0.5)
    return False
