"""Catalog pages at 1k services / 10k events / 30k versions on SQLite, and the whole-system flowchart.

The design is built with bulk_create into the bench's SQLite file: 20 domains,
1,000 services, 2,000 topics, 10,000 event types with 3 registered versions
each (a 12-field schema growing by a field per version), one producer and two
consumers per event. The search index (`EventType.search_text`) is built as
`designer.registry` would have built it, so searches see the steady state.

Each page is fetched through Django's test client (URL routing, middleware,
session, template), as a logged-in Operator:
- list: /catalog/ (events tab, page 1, 50 rows with counts) and later pages;
- search: /catalog/?q=... with names, field names and two-word queries;
- event: /catalog/events/<name>/ (field tree, versions, producers/consumers).
catalog_p95_ms is the worst of the three p95s.

flowchart_ms: the Mermaid text of the whole system (`designer.flowchart.chart_for`)
for that big design, and for the demo shop (detail) for scale.
"""

from __future__ import annotations

import random
import statistics
import time

from bench.app import App
from bench.common import Results, median_ms, p95_ms

DOMAINS = 20
SERVICES = 1000
TOPICS = 2000
EVENTS = 10_000
VERSIONS = 3
REQUESTS = 40

WORDS = ["order", "payment", "invoice", "parcel", "stock", "customer", "refund", "coupon", "cart", "review"]
VERBS = ["placed", "paid", "cancelled", "shipped", "updated", "created", "failed", "confirmed"]
FIELDS = ["customer_id", "order_id", "amount", "currency", "sku", "quantity", "address", "email", "status", "reason"]


def _schema(i: int, version: int) -> dict:
    properties = {
        "id": {"type": "string", "description": "Identifier (UUID)."},
        "at": {"type": "string", "format": "date-time"},
        "total": {
            "type": "object",
            "properties": {"amount": {"type": "integer", "minimum": 0}, "currency": {"type": "string"}},
            "required": ["amount", "currency"],
        },
        "lines": {
            "type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}}},
        },
    }
    for k in range(8 + version):
        properties[f"{FIELDS[(i + k) % len(FIELDS)]}_{k}"] = {"type": ("string", "integer", "boolean")[k % 3]}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties,
        "required": ["id", "at"],
        "additionalProperties": False,
    }


def build() -> list[str]:
    """The big design; returns the event names."""
    from django.db import transaction

    from designer import search
    from designer.models import Consumer, Domain, EventType, Producer, SchemaVersion, Service, Topic

    rng = random.Random(42)
    with transaction.atomic():
        domains = Domain.objects.bulk_create(
            Domain(name=f"Domain {d}", slug=f"domain-{d}", description=f"Business area {d}.") for d in range(DOMAINS)
        )
        services = Service.objects.bulk_create(
            Service(
                name=f"{WORDS[s % len(WORDS)]}-service-{s}",
                slug=f"{WORDS[s % len(WORDS)]}-service-{s}",
                domain=domains[s % DOMAINS],
                owner_team=f"team-{s % 50}",
                description=f"Handles {WORDS[s % len(WORDS)]} things, part {s}.",
                tags=[WORDS[s % len(WORDS)], f"tier-{s % 3}"],
            )
            for s in range(SERVICES)
        )
        topics = Topic.objects.bulk_create(
            Topic(
                name=f"{WORDS[t % len(WORDS)]}-events-{t}",
                address=f"{WORDS[t % len(WORDS)]}-events-{t}",
                dead_letter_topic=f"{WORDS[t % len(WORDS)]}-events-{t}.dlq",
                bus="kafka" if t % 5 else "redis",
                partitions=3,
                domain=domains[t % DOMAINS],
            )
            for t in range(TOPICS)
        )
        names = [f"{WORDS[e % len(WORDS)]}.{VERBS[e % len(VERBS)]}_{e}" for e in range(EVENTS)]
        events = EventType.objects.bulk_create(
            EventType(
                name=name,
                slug=name.replace(".", "-").replace("_", "-"),
                owner=services[e % SERVICES],
                topic=topics[e % TOPICS],
                domain=domains[e % DOMAINS],
                key_field="id",
                description=f"Emitted when a {WORDS[e % len(WORDS)]} is {VERBS[e % len(VERBS)]} (case {e}).",
            )
            for e, name in enumerate(names)
        )
        versions = SchemaVersion.objects.bulk_create(
            SchemaVersion(event_type=event, version=v, schema=_schema(e, v), changelog=f"v{v}")
            for e, event in enumerate(events)
            for v in range(1, VERSIONS + 1)
        )
        Producer.objects.bulk_create(
            Producer(service=services[e % SERVICES], event_type=ev) for e, ev in enumerate(events)
        )
        Consumer.objects.bulk_create(
            Consumer(
                service=services[(e * 7 + k * 13 + 1) % SERVICES],
                event_type=ev,
                group=f"{services[(e * 7 + k * 13 + 1) % SERVICES].slug}",
                fields_used=["id", "total.amount"],
            )
            for e, ev in enumerate(events)
            for k in range(2)
        )
        # The search index as register_version leaves it: the latest version's field paths.
        latest = {v.event_type_id: v for v in versions if v.version == VERSIONS}
        for event in events:
            event.search_text = search.index_text(latest[event.pk].schema)
            event.search_version_pk = latest[event.pk].pk
        EventType.objects.bulk_update(events, ["search_text", "search_version_pk"], batch_size=1000)
    rng.shuffle(names)
    return names


def _timed(client, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
    return samples


def run(results: Results, app: App) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from designer import flowchart

    started = time.perf_counter()
    names = build()
    built = time.perf_counter() - started
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=app.user_id))
    rng = random.Random(7)

    _timed(client, ["/catalog/", "/catalog/?q=order", f"/catalog/events/{names[0]}/"])  # warm-up
    pages = EVENTS // 50
    lists = _timed(
        client,
        [
            rng.choice(["/catalog/", f"/catalog/?page={rng.randrange(1, pages)}", "/catalog/?tab=services"])
            for _ in range(REQUESTS)
        ],
    )
    queries = [
        rng.choice(WORDS),
        f"{rng.choice(FIELDS)}_3",
        f"{rng.choice(WORDS)} {rng.choice(VERBS)}",
        f"{rng.choice(WORDS)}.{rng.choice(VERBS)}_{rng.randrange(EVENTS)}",
        "currency",
        "nothing-matches-this",
    ]
    searches = _timed(client, [f"/catalog/?q={rng.choice(queries).replace(' ', '+')}" for _ in range(REQUESTS)])
    events = _timed(client, [f"/catalog/events/{rng.choice(names)}/" for _ in range(REQUESTS)])
    figures = {"list": p95_ms(lists), "search": p95_ms(searches), "event": p95_ms(events)}
    detail = f"{SERVICES} services, {EVENTS} events, {EVENTS * VERSIONS} versions, SQLite; built in {built:.0f} s"
    results.add("catalog_p95_ms", max(figures.values()), "ms", detail)
    for page, samples in (("list", lists), ("search", searches), ("event", events)):
        results.add(
            f"catalog_{page}_p95_ms",
            figures[page],
            "ms",
            f"{REQUESTS} requests, median {median_ms(samples):.0f} ms",
        )

    scope = flowchart.resolve_scope("all")
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        text = flowchart.chart_for(scope)
        samples.append(time.perf_counter() - started)
    results.add(
        "flowchart_ms",
        statistics.median(samples) * 1000,
        "ms",
        f"whole system at that size (median of 5): {len(text.splitlines()):,} Mermaid lines, {len(text) / 1024:.0f} KiB",
    )
