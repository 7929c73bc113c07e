"""Simulated demo services: the shop from designer.demo, publishing and consuming through the SDK.

What a newcomer should see within a minute of `make run`:
- mixed traffic on every designed topic (a few orders a second, their payments,
  stock, parcels and notifications — the last on a Redis stream);
- analytics is slower than its producers in bursts: its lag grows, then drains;
- orders sometimes rejects payment.authorized (InvalidAmount): dead letters appear;
- shipping stops heartbeating for a while every few minutes: it shows as down.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
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
            if random.random() < 0.08:
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
            if random.random() < 0.04:
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
                payment["amount"]["amount"] >= 35000
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
            phase = (time.monotonic() - self.started) % (ANALYTICS_BUSY_S + ANALYTICS_CALM_S)
            time.sleep(0.15 if phase < ANALYTICS_BUSY_S else 0.002)  # the slow consumer, on purpose

        if notifications is not None:

            @notifications.handler("notification.requested")
            def send(event: Event) -> None:
                pass

    # --- running -----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.wire()
        threads = [
            threading.Thread(target=c.run, args=(stop,), daemon=True, name=f"sim-{c.service}") for c in self.consumers
        ]
        threads.append(threading.Thread(target=self._silence_shipping, args=(stop,), daemon=True))
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
