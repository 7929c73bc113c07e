"""The demo world: a small shop, designed, with schemas and two flows.

`python manage.py seed_demo` loads it (idempotent); `make run` does so when the
catalog is empty. The simulated services (`manage.py simulate`) run against it.
It is the first thing a new user sees, so it is seeded laid out (`layout()`) and
its schemas go through the registry like anyone else's.
"""

from __future__ import annotations

from django.db import transaction

from designer import registry
from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, Service, Topic

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

# Catalog examples of the flows' trigger events: a flow check (eventstore.flow_checks)
# publishes the first example of the trigger's latest version. Valid under every version.
EXAMPLES = {
    "order.placed": {
        "order_id": "3f0c5a8e-0d4b-4bb1-9a53-5d2f0c7e2a10",
        "customer_id": "8d1e6b9a-7f3c-4c2e-b1a4-0e9f5d6c3b21",
        "total": {"amount": 4999, "currency": "EUR"},
        "lines": [{"sku": "SKU-204", "quantity": 1}],
        "placed_at": "2026-01-05T10:00:00Z",
    },
    "refund.requested": {
        "order_id": "3f0c5a8e-0d4b-4bb1-9a53-5d2f0c7e2a10",
        "amount": {"amount": 4999, "currency": "EUR"},
        "requested_by": "support",
    },
}

FLOWS = [
    {
        "name": "Checkout",
        "domain": "sales",
        "trigger": "Customer clicks Pay",
        # The saga: orders asks payments and inventory, both answer orders. Declaring it
        # here is what tells the cycle lint that the loop is meant.
        "steps": [
            ("orders", "order.placed", "payments", "Authorise the card", "payments DB", None),
            ("orders", "order.placed", "inventory", "Reserve the stock", "stock DB", None),
            ("payments", "payment.authorized", "orders", "Mark paid; confirm once reserved", "orders DB", 0),
            ("inventory", "inventory.reserved", "orders", "Mark reserved; confirm once paid", "orders DB", 1),
            ("orders", "order.confirmed", "shipping", "Book a carrier", "shipments DB", 2),
            ("orders", "notification.requested", "notifications", "E-mail the receipt", "outbox", 2),
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
            _register(event, schema, "Initial version." if number == 1 else "Added an optional field.")
    for service, event in EXTRA_PRODUCERS:
        Producer.objects.get_or_create(service=services[service], event_type=events[event])
    _register(
        events["order.placed"],
        ORDER_PLACED_DRAFT,
        "Draft: flatten total to a number (incompatible: readers of total.amount break).",
        as_draft=True,
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
    # Only nodes nobody has placed yet: a re-seed never undoes a user's arrangement.
    points = layout()
    for kind, rows in (("service", services), ("event", events), ("topic", topics)):
        for key, node in rows.items():
            if node.x is None or node.y is None:
                node.x, node.y = points[(kind, key)]
                node.save(update_fields=["x", "y"])
    return {"services": len(services), "topics": len(topics), "events": len(events), "flows": len(FLOWS)}


def _register(event: EventType, schema: dict, changelog: str, *, as_draft: bool = False) -> None:
    """Register `schema` through the registry unless the event already has it (any version, any state)."""
    known = {registry.canonical_json(s) for s in event.versions.values_list("schema", flat=True)}
    examples = [EXAMPLES[event.name]] if event.name in EXAMPLES and not as_draft else []
    if registry.canonical_json(schema) not in known:
        registry.register_version(event, schema, changelog=changelog, examples=examples, as_draft=as_draft)
    elif examples:
        # A demo seeded before the examples existed gets them (examples document a version,
        # they are not part of its compatibility); a user's own examples are left alone.
        for version in event.versions.filter(examples=[]):
            if registry.canonical_json(version.schema) == registry.canonical_json(schema):
                version.examples = examples
                version.save(update_fields=["examples"])


# --------------------------------------------------------------------------- layout
# Node sizes as the designer canvas draws them (static/designer/canvas.js: nodeData() for the
# width, the node style for the height): as wide as the longest label line at about 7.6 px a
# character plus padding, 110 to 300 px; 50 px high, topics 58. Room is kept for the
# "⚠ N lints" line a lint adds.
CHAR_PX = 7.6
MAX_LABEL = 60
MIN_WIDTH, MAX_WIDTH = 110, 300
HEIGHT, TOPIC_HEIGHT = 50, 58
BADGE_LINE = "⚠ 99 lints"
COLUMN_GAP = 100  # room for an arrow between two columns
ROW = 74  # centre to centre within a column: the tallest node (58) and a gap
BAND_GAP = 50  # extra space between two domains' bands

Node = tuple[str, str]  # ("service", slug), ("event", name) or ("topic", name)


def node_size(kind: str, label: str, bus: str = "kafka") -> tuple[float, float]:
    """Width and height of a node on the canvas, lint badge included."""
    lines = [label[:MAX_LABEL], BADGE_LINE]
    if kind == "topic":
        lines.append("Redis stream" if bus == "redis" else "Kafka")
    pad = 48 if kind == "event" else 24  # an ellipse has less room at its sides
    width = min(MAX_WIDTH, max(MIN_WIDTH, pad + max(len(line) for line in lines) * CHAR_PX))
    return width, TOPIC_HEIGHT if kind == "topic" else HEIGHT


def layout() -> dict[Node, tuple[float, float]]:
    """Where each demo node sits: left to right by flow, each domain a band, no overlaps.

    The canvas lays out unplaced nodes itself (dagre), but with a saga's cycles
    that puts the demo's nodes anywhere and knows nothing of domains. There is no
    graph layout library on the Python side (the canvas's dagre runs in the
    browser), and the world is fixed and small, so this is a plain layered layout:

    1. The graph: producer -> event -> consumer, event -> its topic.
    2. Break the cycles (the sagas): walk depth first from the services in the
       order the flows name them, dropping each edge back onto the walk's path.
    3. Column: the longest path to the node, so producers come before their
       events, events before their topics and consumers; services that only
       consume (where flows end) in a last column of their own.
    4. Rows: per domain band and column, nodes in the order of the mean row of
       their neighbours to the left (fewer crossings), centred in the band.
    5. Coordinates from the canvas's node sizes: each column as wide as its
       widest node plus COLUMN_GAP, rows ROW apart, bands BAND_GAP apart.
    """
    domain_of: dict[Node, str] = {("service", slug): domain for slug, domain, _team, _text in SERVICES}
    domain_of |= {("topic", name): domain for name, _bus, _partitions, domain in TOPICS}
    domain_of |= {("event", spec[0]): domain_of[("service", spec[2])] for spec in EVENTS}
    nodes = list(domain_of)
    edges: dict[Node, list[Node]] = {node: [] for node in nodes}
    for name, _kind, owner, topic, _key, consumers, _schemas, _text in EVENTS:
        edges[("service", owner)].append(("event", name))
        edges[("event", name)] += [("service", c) for c in consumers] + [("topic", topic)]
    for service, event in EXTRA_PRODUCERS:
        edges[("service", service)].append(("event", event))

    starts = [("service", slug) for spec in FLOWS for step in spec["steps"] for slug in (step[0], step[2])]
    kept = _without_cycles(nodes, edges, [*starts, *nodes])
    before: dict[Node, list[Node]] = {node: [] for node in nodes}
    for node in nodes:
        for target in kept[node]:
            before[target].append(node)
    column: dict[Node, int] = {}
    for node in _topological(nodes, kept):
        column[node] = max((column[p] + 1 for p in before[node]), default=0)
    last = max(column.values()) + 1
    for node in nodes:
        if node[0] == "service" and not edges[node]:
            column[node] = last  # where the flows end: services that only consume

    bands = list(DOMAINS)
    cells: dict[tuple[str, int], list[Node]] = {}
    for node in nodes:
        cells.setdefault((domain_of[node], column[node]), []).append(node)
    rows = {band: max(len(c) for (b, _), c in cells.items() if b == band) for band in bands}
    band_top, top = {}, 0.0
    for band in bands:
        band_top[band] = top
        top += rows[band] * ROW + BAND_GAP

    row: dict[Node, float] = {}
    for col in range(max(column.values()) + 1):
        for band in bands:
            cell = cells.get((band, col), [])
            ranked = sorted(cell, key=lambda n: (_mean([row[p] for p in before[n]]), nodes.index(n)))
            for i, node in enumerate(ranked):
                row[node] = band_top[band] + ((rows[band] - len(cell)) / 2 + i) * ROW

    sizes = {node: node_size(node[0], node[1], _bus(node)) for node in nodes}
    left, centre = 0.0, {}
    for col in range(max(column.values()) + 1):
        width = max(sizes[n][0] for n in nodes if column[n] == col)
        centre[col] = left + width / 2
        left += width + COLUMN_GAP
    return {node: (round(centre[column[node]], 1), round(row[node], 1)) for node in nodes}


def _without_cycles(nodes: list[Node], edges: dict[Node, list[Node]], starts: list[Node]) -> dict[Node, list[Node]]:
    """The edges minus those that close a cycle on a depth-first walk from `starts` in order."""
    kept: dict[Node, list[Node]] = {node: [] for node in nodes}
    on_path: set[Node] = set()
    seen: set[Node] = set()

    def walk(node: Node) -> None:
        seen.add(node)
        on_path.add(node)
        for target in edges[node]:
            if target in on_path:
                continue
            kept[node].append(target)
            if target not in seen:
                walk(target)
        on_path.discard(node)

    for node in starts:
        if node not in seen:
            walk(node)
    return kept


def _topological(nodes: list[Node], edges: dict[Node, list[Node]]) -> list[Node]:
    """Nodes of an acyclic graph, each after every node with an edge to it."""
    order: list[Node] = []
    done: set[Node] = set()

    def finish(node: Node) -> None:
        done.add(node)
        for target in edges[node]:
            if target not in done:
                finish(target)
        order.append(node)

    for node in nodes:
        if node not in done:
            finish(node)
    return order[::-1]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _bus(node: Node) -> str:
    return next((bus for name, bus, _p, _d in TOPICS if node == ("topic", name)), "kafka")
