"""The demo world: a small shop, designed, with schemas and two flows.

`python manage.py seed_demo` loads it (idempotent); `make run` does so when the
catalog is empty. The simulated services (`manage.py simulate`) run against it.
"""

from __future__ import annotations

from django.db import transaction

from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, SchemaVersion, Service, Topic

DOMAINS = {
    "sales": ("Sales", "Taking orders and money."),
    "fulfilment": ("Fulfilment", "Stock and parcels."),
    "customer": ("Customer", "Talking to customers and learning from them."),
}

SERVICES = [
    # slug, domain, team, description
    ("orders", "sales", "checkout-team", "Owns the **order lifecycle**: placement, confirmation, cancellation."),
    ("payments", "sales", "payments-team", "Authorises, captures and refunds card payments."),
    ("inventory", "fulfilment", "warehouse-team", "Reserves stock for orders."),
    ("shipping", "fulfilment", "warehouse-team", "Books carriers and tracks parcels."),
    ("notifications", "customer", "crm-team", "Sends e-mails and push messages."),
    ("analytics", "customer", "data-team", "Feeds the warehouse; slow by design (batch inserts)."),
]

TOPICS = [
    # name, bus, partitions, domain
    ("orders", "kafka", 3, "sales"),
    ("payments", "kafka", 3, "sales"),
    ("inventory", "kafka", 1, "fulfilment"),
    ("shipping", "kafka", 1, "fulfilment"),
    ("notifications", "redis", 1, "customer"),
]

MONEY = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0, "description": "Minor units (cents)."},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "required": ["amount", "currency"],
}  # noqa: E501


def _obj(properties: dict, required: list[str], description: str = "") -> dict:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties,
        "required": required,
        # Closed content model: under Confluent's STRICT rules new optional fields are
        # then a compatible change (on an open model they may clash with old extra data).
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


ID = {"type": "string", "description": "Identifier (UUID)."}
WHEN = {"type": "string", "format": "date-time"}

ORDER_PLACED_V1 = _obj(
    {
        "order_id": ID,
        "customer_id": ID,
        "total": MONEY,
        "lines": {
            "type": "array",
            "items": _obj(
                {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}}, ["sku", "quantity"]
            ),
        },
        "placed_at": WHEN,
    },
    ["order_id", "customer_id", "total", "lines"],
    "A customer placed an order and it awaits payment.",
)
ORDER_PLACED_V2 = {
    **ORDER_PLACED_V1,
    "properties": {
        **ORDER_PLACED_V1["properties"],
        "coupon": {"type": "string", "description": "Optional coupon code."},
    },
}
# The incompatible draft: `total` becomes a plain number (breaks every reader of total.amount).
ORDER_PLACED_DRAFT = {**ORDER_PLACED_V2, "properties": {**ORDER_PLACED_V2["properties"], "total": {"type": "number"}}}

PAYMENT_AUTHORIZED_V1 = _obj({"payment_id": ID, "order_id": ID, "amount": MONEY}, ["payment_id", "order_id", "amount"])
PAYMENT_AUTHORIZED_V2 = {
    **PAYMENT_AUTHORIZED_V1,
    "properties": {
        **PAYMENT_AUTHORIZED_V1["properties"],
        "card_brand": {"type": "string", "enum": ["visa", "mastercard", "amex"]},
    },
}

EVENTS = [
    # name, kind, owner, topic, key, consumers, [schemas], description
    (
        "order.placed",
        "event",
        "orders",
        "orders",
        "order_id",
        ["payments", "inventory", "analytics"],
        [ORDER_PLACED_V1, ORDER_PLACED_V2],
        "An order was placed.",
    ),
    (
        "order.confirmed",
        "event",
        "orders",
        "orders",
        "order_id",
        ["shipping", "notifications"],
        [_obj({"order_id": ID, "confirmed_at": WHEN}, ["order_id"])],
        "Paid and reserved: ship it.",
    ),
    (
        "order.cancelled",
        "event",
        "orders",
        "orders",
        "order_id",
        ["payments", "inventory", "notifications"],
        [_obj({"order_id": ID, "reason": {"type": "string"}}, ["order_id", "reason"])],
        "The order will not be fulfilled.",
    ),
    (
        "payment.authorized",
        "event",
        "payments",
        "payments",
        "order_id",
        ["orders", "analytics"],
        [PAYMENT_AUTHORIZED_V1, PAYMENT_AUTHORIZED_V2],
        "The card was authorised for the order total.",
    ),
    (
        "payment.failed",
        "event",
        "payments",
        "payments",
        "order_id",
        ["orders", "notifications"],
        [_obj({"order_id": ID, "code": {"type": "string"}}, ["order_id", "code"])],
        "The card was declined.",
    ),
    (
        "payment.refunded",
        "event",
        "payments",
        "payments",
        "order_id",
        ["orders", "notifications", "analytics"],
        [_obj({"order_id": ID, "amount": MONEY}, ["order_id", "amount"])],
        "Money went back to the customer.",
    ),
    (
        "refund.requested",
        "command",
        "orders",
        "payments",
        "order_id",
        ["payments"],
        [_obj({"order_id": ID, "amount": MONEY, "requested_by": {"type": "string"}}, ["order_id", "amount"])],
        "Support asks payments to refund.",
    ),
    (
        "inventory.reserved",
        "event",
        "inventory",
        "inventory",
        "order_id",
        ["orders"],
        [_obj({"order_id": ID, "skus": {"type": "array", "items": {"type": "string"}}}, ["order_id", "skus"])],
        "Stock is held for the order.",
    ),
    (
        "inventory.out_of_stock",
        "event",
        "inventory",
        "inventory",
        "sku",
        ["orders", "notifications"],
        [_obj({"order_id": ID, "sku": {"type": "string"}}, ["order_id", "sku"])],
        "A line cannot be served.",
    ),
    (
        "shipment.dispatched",
        "event",
        "shipping",
        "shipping",
        "order_id",
        ["notifications", "analytics"],
        [
            _obj(
                {"order_id": ID, "carrier": {"type": "string"}, "tracking_code": {"type": "string"}},
                ["order_id", "carrier"],
            )
        ],
        "The parcel left the warehouse.",
    ),
    (
        "shipment.delivered",
        "event",
        "shipping",
        "shipping",
        "order_id",
        ["notifications", "analytics"],
        [_obj({"order_id": ID, "delivered_at": WHEN}, ["order_id"])],
        "The parcel arrived.",
    ),
    (
        "notification.requested",
        "command",
        "orders",
        "notifications",
        "customer_id",
        ["notifications"],
        [
            _obj(
                {
                    "customer_id": ID,
                    "template": {
                        "type": "string",
                        "enum": ["order-confirmed", "payment-failed", "shipped", "refunded"],
                    },
                    "order_id": ID,
                },
                ["customer_id", "template"],
            )
        ],
        "Send the customer a message (Redis stream).",
    ),  # noqa: E501
]

EXTRA_PRODUCERS = [("shipping", "notification.requested")]

FLOWS = [
    {
        "name": "Checkout",
        "domain": "sales",
        "trigger": "Customer clicks Pay",
        "steps": [
            ("orders", "order.placed", "payments", "Authorise the card", "payments DB", None),
            ("payments", "payment.authorized", "orders", "Confirm the order", "orders DB", 0),
            ("orders", "order.confirmed", "shipping", "Book a carrier", "shipments DB", 1),
            ("orders", "notification.requested", "notifications", "E-mail the receipt", "outbox", 1),
        ],
    },
    {
        "name": "Refund",
        "domain": "sales",
        "trigger": "Support agent approves a refund",
        "steps": [
            ("orders", "refund.requested", "payments", "Refund the card", "payments DB", None),
            ("payments", "payment.refunded", "orders", "Mark the order refunded", "orders DB", 0),
            ("payments", "payment.refunded", "notifications", "E-mail the customer", "outbox", 0),
        ],
    },
]


def is_empty() -> bool:
    return not (Service.objects.exists() or EventType.objects.exists())


@transaction.atomic
def seed() -> dict[str, int]:
    """Create or complete the demo world; running it twice changes nothing."""
    domains = {
        slug: Domain.objects.get_or_create(slug=slug, defaults={"name": name, "description": text})[0]
        for slug, (name, text) in DOMAINS.items()
    }
    services = {}
    for slug, domain, team, text in SERVICES:
        services[slug], _ = Service.objects.get_or_create(
            slug=slug,
            defaults={
                "name": slug,
                "domain": domains[domain],
                "owner_team": team,
                "description": text,
                "tags": ["demo"],
            },
        )
    topics = {}
    for name, bus, partitions, domain in TOPICS:
        topics[name], _ = Topic.objects.get_or_create(
            bus=bus, address=name, defaults={"name": name, "partitions": partitions, "domain": domains[domain]}
        )
    events = {}
    for name, kind, owner, topic, key, consumers, schemas, text in EVENTS:
        event, _ = EventType.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "owner": services[owner],
                "topic": topics[topic],
                "key_field": key,
                "domain": services[owner].domain,
                "description": text,
            },
        )
        events[name] = event
        Producer.objects.get_or_create(service=services[owner], event_type=event)
        for consumer in consumers:
            Consumer.objects.get_or_create(service=services[consumer], event_type=event)
        for number, schema in enumerate(schemas, start=1):
            SchemaVersion.objects.get_or_create(
                event_type=event,
                version=number,
                defaults={
                    "schema": schema,
                    "changelog": "Initial version." if number == 1 else "Added an optional field.",
                },
            )
    for service, event in EXTRA_PRODUCERS:
        Producer.objects.get_or_create(service=services[service], event_type=events[event])
    SchemaVersion.objects.get_or_create(
        event_type=events["order.placed"],
        version=3,
        defaults={
            "schema": ORDER_PLACED_DRAFT,
            "state": SchemaVersion.DRAFT,
            "changelog": "Draft: flatten total to a number (incompatible: readers of total.amount break).",
        },
    )
    for spec in FLOWS:
        flow, created = Flow.objects.get_or_create(
            name=spec["name"], defaults={"domain": domains[spec["domain"]], "trigger": spec["trigger"]}
        )
        if created:
            made: list[FlowStep] = []
            for order, (producer, event, consumer, logic, store, after) in enumerate(spec["steps"]):
                made.append(
                    FlowStep.objects.create(
                        flow=flow,
                        order=order,
                        after=made[after] if after is not None else None,
                        producer=services[producer],
                        event_type=events[event],
                        consumer=services[consumer],
                        logic=logic,
                        store=store,
                    )
                )
    return {"services": len(services), "topics": len(topics), "events": len(events), "flows": len(FLOWS)}
