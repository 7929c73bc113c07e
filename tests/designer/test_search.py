"""designer.search: names, descriptions and schema field names; at 10k events, in three queries.

How fast a search is at that size is a bench figure (`make bench`: catalog_search_p95_ms), not a test.
"""

import pytest
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.test.utils import CaptureQueriesContext

from designer import search
from designer.models import Domain, EventType, SchemaVersion, Service, Topic

pytestmark = pytest.mark.django_db


def schema(*fields: str, nested: dict | None = None) -> dict:
    properties = {name: {"type": "string"} for name in fields}
    for name, inner in (nested or {}).items():
        properties[name] = {"type": "object", "properties": {f: {"type": "string"} for f in inner}}
    return {"type": "object", "properties": properties}


@pytest.fixture
def shop():
    sales = Domain.objects.create(name="Sales", slug="sales")
    ops = Domain.objects.create(name="Ops", slug="ops")
    orders = Service.objects.create(name="orders", slug="orders", domain=sales, owner_team="checkout", tags=["pci"])
    Service.objects.create(name="shipping", slug="shipping", domain=ops, description="Books **carriers**.")
    Topic.objects.create(name="orders", address="shop.orders.v1", domain=sales)
    placed = EventType.objects.create(
        name="order.placed", owner=orders, domain=sales, description="An order was placed."
    )
    SchemaVersion.objects.create(event_type=placed, version=1, schema=schema("order_id"))
    SchemaVersion.objects.create(
        event_type=placed, version=2, schema=schema("order_id", "customer_id", nested={"address": ["postcode"]})
    )
    shipped = EventType.objects.create(name="parcel.shipped", domain=ops, description="Mentions customer_id in prose.")
    SchemaVersion.objects.create(event_type=shipped, version=1, schema=schema("parcel_id"))
    draft_only = EventType.objects.create(name="refund.issued", domain=sales)
    SchemaVersion.objects.create(event_type=draft_only, version=1, schema=schema("secret_draft_field"), state="draft")
    return {"placed": placed, "shipped": shipped, "draft_only": draft_only}


def names(queryset) -> list[str]:
    return list(queryset.values_list("name", flat=True))


def test_field_names_of_the_latest_schema_are_found_and_explained(shop):
    # Versions were stored without the registry: the search heals the index itself.
    assert names(search.events("customer_id")) == ["order.placed", "parcel.shipped"]
    placed = EventType.objects.get(name="order.placed")
    match = search.explain(placed, "customer_id")
    assert match.fields == ["customer_id"] and not match.in_name and not match.in_description
    prose = search.explain(EventType.objects.get(name="parcel.shipped"), "customer_id")
    assert prose.in_description and prose.fields == []


def test_nested_fields_match_by_name_and_by_path(shop):
    assert names(search.events("postcode")) == ["order.placed"]
    assert names(search.events("address.postcode")) == ["order.placed"]
    assert search.explain(EventType.objects.get(name="order.placed"), "postcode").fields == ["address.postcode"]


def test_only_the_latest_registered_version_counts(shop):
    assert names(search.events("secret_draft_field")) == []
    SchemaVersion.objects.create(event_type=shop["placed"], version=3, schema=schema("order_id", "coupon"))
    assert names(search.events("coupon")) == ["order.placed"]
    assert names(search.events("customer_id")) == ["parcel.shipped"]  # v3 dropped it; prose still matches


def test_reindex_event_is_what_the_registry_calls(shop):
    search.refresh_stale()
    placed = shop["placed"]
    new = SchemaVersion.objects.create(event_type=placed, version=3, schema=schema("loyalty_tier"))
    search.reindex_event(placed)
    placed.refresh_from_db()
    assert placed.search_version_pk == new.pk and placed.search_text == "loyalty_tier"
    assert not search.stale_events().exists()
    assert names(search.events("loyalty_tier", refresh=False)) == ["order.placed"]


def test_deleting_every_version_empties_the_index(shop):
    search.refresh_stale()
    shop["shipped"].versions.all().delete()
    assert names(search.stale_events()) == ["parcel.shipped"]
    assert names(search.events("parcel_id")) == []


def test_terms_all_match_and_names_rank_first(shop):
    assert names(search.events("order customer_id")) == ["order.placed"]
    assert names(search.events("ORDER_ID")) == ["order.placed"]
    assert names(search.events("placed")) == ["order.placed"]
    assert names(search.events("nothing-like-this")) == []
    # Name hits, then a field of exactly that name, then description hits.
    EventType.objects.create(name="customer_id.changed")
    only = EventType.objects.create(name="z.only")
    SchemaVersion.objects.create(event_type=only, version=1, schema=schema("customer_id"))
    assert names(search.events("customer_id")) == ["customer_id.changed", "order.placed", "z.only", "parcel.shipped"]


def test_wildcards_are_literal(shop):
    assert names(search.events("%")) == []
    assert names(search.events("order_placed")) == []  # "_" is not a one-character wildcard


def test_domain_filter(shop):
    assert names(search.events("", domain="ops")) == ["parcel.shipped"]
    assert names(search.events("customer_id", domain="sales")) == ["order.placed"]


def test_services_and_topics(shop):
    assert names(search.services("checkout")) == ["orders"]  # owner team
    assert names(search.services("pci")) == ["orders"]  # tag
    assert names(search.services("carriers")) == ["shipping"]  # description
    assert names(search.topics("shop.orders")) == ["orders"]  # address
    assert names(search.services("", domain="ops")) == ["shipping"]


def test_terms_are_bounded():
    assert search.terms("  A  b a ") == ["a", "b"]
    assert len(search.terms(" ".join(f"w{i}" for i in range(50)))) == search.MAX_TERMS
    assert search.terms("x" * 500) == ["x" * search.MAX_TERM_LENGTH]


@pytest.mark.slow
def test_ten_thousand_events_search_right_with_few_queries():
    """Among 10,000 events the 100 with a customer_id field are found, explained, in three queries.

    Its time is measured by `make bench` (catalog_search_p95_ms: /catalog/?q= at 10,000 events).
    """
    services = Service.objects.bulk_create(Service(name=f"svc-{i}", slug=f"svc-{i}") for i in range(1000))
    schemas = [schema("id", f"field_{i}", "customer_id" if i % 100 == 0 else "x") for i in range(10_000)]
    # Indexed as register_version leaves them: search text built, pointing at the latest version.
    events = EventType.objects.bulk_create(
        EventType(
            name=f"e{i}.happened", slug=f"e{i}-happened", owner=services[i % 1000], search_text=search.index_text(s)
        )
        for i, s in enumerate(schemas)
    )
    SchemaVersion.objects.bulk_create(
        SchemaVersion(event_type=e, version=1, schema=s) for e, s in zip(events, schemas, strict=True)
    )
    EventType.objects.update(
        search_version_pk=Subquery(SchemaVersion.objects.filter(event_type=OuterRef("pk")).values("pk")[:1])
    )
    with CaptureQueriesContext(connection) as queries:
        found = search.events("customer_id")
        total = found.count()
        page = list(found[:50])
        matches = [search.explain(e, "customer_id") for e in page]
    assert total == 100 and len(page) == 50 and all(m.fields == ["customer_id"] for m in matches)
    assert {e.name for e in page} <= {f"e{i}.happened" for i in range(0, 10_000, 100)}
    assert len(queries) == 3  # the staleness probe, the count, the page


def test_the_first_search_after_a_bulk_import_heals_a_bounded_batch(shop):
    EventType.objects.bulk_create(EventType(name=f"bulk{i}.done", slug=f"bulk{i}-done") for i in range(30))
    for event in EventType.objects.filter(name__startswith="bulk"):
        SchemaVersion.objects.create(event_type=event, version=1, schema=schema("imported_field"))
    assert search.refresh_stale(limit=10) == 10
    assert search.stale_events().count() == 22  # 20 bulk rows + the two shop events with schemas
    assert len(names(search.events("imported_field"))) == 30  # this search heals the rest first
