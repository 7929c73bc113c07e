"""The catalog pages as a user sees them: browse and search, event, compare, register, service, topic.

Each page: the happy path, the wrong method (405), the anonymous visitor (login
redirect) and the read-only Viewer (reads, never sees or uses a change form).
"""

from __future__ import annotations

import json

import pytest

from designer import search
from designer.models import Consumer, Domain, EventType, Producer, SchemaVersion, Service, Topic
from tests.listening import CountingServer

pytestmark = pytest.mark.django_db

V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["order_id", "total"],
    "properties": {
        "order_id": {"type": "string", "description": "Identifier (UUID)."},
        "customer_id": {"type": "string"},
        "status": {"type": "string", "enum": ["placed", "paid"]},
        "total": {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 0, "description": "Minor units."}},
        },
    },
}
V2 = {**V1, "properties": {**V1["properties"], "coupon": {"type": "string"}}}  # optional field on a closed model
BREAKING = {**V2, "properties": {**V2["properties"], "total": {"type": "number"}}}


@pytest.fixture
def shop(db):
    sales = Domain.objects.create(name="Sales", slug="sales")
    ops = Domain.objects.create(name="Ops", slug="ops")
    orders = Service.objects.create(
        name="orders", slug="orders", domain=sales, owner_team="checkout-team", tags=["core"],
        description="Owns the **order lifecycle**.", repository_url="https://git.example/orders",
    )  # fmt: skip
    payments = Service.objects.create(name="payments", slug="payments", domain=sales, owner_team="payments-team")
    shipping = Service.objects.create(name="shipping", slug="shipping", domain=ops)
    topic = Topic.objects.create(
        name="orders", address="shop.orders", partitions=3, retention_ms=604_800_000, domain=sales
    )
    placed = EventType.objects.create(
        name="order.placed", owner=orders, topic=topic, domain=sales, key_field="order_id",
        description="A customer **placed** an order.\n\nSee [the runbook](https://wiki.example/orders).",
        compatibility_mode="BACKWARD", compatibility_policy="STRICT",
    )  # fmt: skip
    SchemaVersion.objects.create(event_type=placed, version=1, schema=V1, changelog="Initial version.")
    SchemaVersion.objects.create(
        event_type=placed, version=2, schema=V2, changelog="Added coupon.",
        examples=[{"order_id": "o-1", "total": {"amount": 100}}, {"order_id": "o-2", "total": {"amount": -5}}],
    )  # fmt: skip
    SchemaVersion.objects.create(
        event_type=placed, version=3, schema=BREAKING, state="draft", changelog="Flatten total."
    )
    Producer.objects.create(service=orders, event_type=placed)
    Consumer.objects.create(service=payments, event_type=placed, group="payments-v2", fields_used=["total.amount"])
    Consumer.objects.create(service=shipping, event_type=placed, fields_used=["order_id"])
    shipped = EventType.objects.create(name="parcel.shipped", owner=shipping, domain=ops)
    return {"placed": placed, "shipped": shipped, "orders": orders, "payments": payments, "topic": topic}


def text(response) -> str:
    return response.content.decode()


# --------------------------------------------------------------------------- browse and search
def test_catalog_lists_events_with_counts_for_a_viewer(client_as, viewer, shop):
    response = client_as(viewer).get("/catalog/")
    assert response.status_code == 200
    body = text(response)
    assert 'href="/catalog/events/order.placed/"' in body and "parcel.shipped" in body
    assert 'Events <span class="count">2</span>' in body
    assert 'Services <span class="count">3</span>' in body
    assert 'Topics <span class="count">1</span>' in body
    assert "Import AsyncAPI" not in body  # a Viewer gets no way to change the catalog


def test_catalog_offers_import_to_designers(client_as, designer, shop):
    assert 'href="/catalog/import/"' in text(client_as(designer).get("/catalog/"))


def test_catalog_tabs_and_domain_filter(client_as, viewer, shop):
    client = client_as(viewer)
    services = text(client.get("/catalog/?tab=services"))
    assert 'href="/catalog/services/payments/"' in services and "checkout-team" in services
    topics = text(client.get("/catalog/?tab=topics"))
    assert f'href="/catalog/topics/{shop["topic"].pk}/"' in topics and "shop.orders" in topics
    ops = text(client.get("/catalog/?domain=ops"))
    assert "parcel.shipped" in ops and "order.placed" not in ops


def test_search_finds_schema_fields_and_says_which_matched(client_as, viewer, shop):
    body = text(client_as(viewer).get("/catalog/?q=customer_id"))
    assert "order.placed" in body and "parcel.shipped" not in body
    assert "Matched field <code>customer_id</code>" in body


def test_search_opens_the_tab_that_has_results(client_as, viewer, shop):
    body = text(client_as(viewer).get("/catalog/?q=checkout-team"))
    assert 'aria-current="page">Services' in body and 'href="/catalog/services/orders/"' in body


def test_search_with_no_result_says_so(client_as, viewer, shop):
    body = text(client_as(viewer).get("/catalog/?q=zzzz-nothing"))
    assert "Nothing in events matches “zzzz-nothing”" in body


def test_htmx_search_returns_only_the_results_fragment(client_as, viewer, shop):
    response = client_as(viewer).get("/catalog/?q=customer_id", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in text(response) and "order.placed" in text(response)


def test_empty_catalog_explains_how_to_start(client_as, viewer):
    body = text(client_as(viewer).get("/catalog/"))
    assert "The catalog is empty" in body
    assert 'href="/designer/"' in body and 'href="/catalog/import/"' in body
    assert "python manage.py seed_demo" in body


def test_catalog_needs_login_and_get(client, client_as, viewer):
    response = client.get("/catalog/?q=x")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/catalog/")
    assert client_as(viewer).post("/catalog/").status_code == 405


def test_catalog_pages_are_bounded_in_queries(client_as, viewer, django_assert_max_num_queries):
    domain = Domain.objects.create(name="Big", slug="big")
    services = Service.objects.bulk_create(Service(name=f"svc{i}", slug=f"svc{i}", domain=domain) for i in range(120))
    topics = Topic.objects.bulk_create(
        Topic(name=f"t{i}", address=f"t{i}", dead_letter_topic=f"t{i}.dlq", domain=domain) for i in range(60)
    )
    events = EventType.objects.bulk_create(
        EventType(name=f"e{i}.done", slug=f"e{i}-done", owner=services[i], topic=topics[i % 60], domain=domain)
        for i in range(120)
    )
    SchemaVersion.objects.bulk_create(SchemaVersion(event_type=e, version=1, schema=V1) for e in events)
    Producer.objects.bulk_create(Producer(service=services[i], event_type=events[i]) for i in range(120))
    Consumer.objects.bulk_create(
        Consumer(service=services[(i + 1) % 120], event_type=events[i], group="g") for i in range(120)
    )
    search.refresh_stale()
    client = client_as(viewer)
    client.get("/catalog/")  # warm the session
    for url in ("/catalog/", "/catalog/?page=2", "/catalog/?tab=services", "/catalog/?tab=topics",
                "/catalog/?q=customer_id", "/catalog/?q=svc1&tab=services&domain=big"):  # fmt: skip
        # session, user, roles, 3 tab counts, page count, page rows, domains (+1 search staleness probe)
        with django_assert_max_num_queries(10):
            response = client.get(url)
        assert response.status_code == 200
    body = text(client.get("/catalog/?q=customer_id"))
    assert "Page 1 of 3" in body and "Matched field <code>customer_id</code>" in body


# --------------------------------------------------------------------------- the event page
def test_event_page_shows_the_contract(client_as, viewer, shop):
    response = client_as(viewer).get("/catalog/events/order.placed/")
    assert response.status_code == 200
    body = text(response)
    # Header: kind, owner, topic and bus, key, compatibility.
    assert 'href="/catalog/services/orders/"' in body and "checkout-team" in body
    assert f'href="/catalog/topics/{shop["topic"].pk}/"' in body and "Kafka" in body and "shop.orders" in body
    assert "<code>order_id</code>" in body and "BACKWARD · STRICT" in body
    # Description as sanitised Markdown, links with rel.
    assert "<strong>placed</strong>" in body
    assert 'href="https://wiki.example/orders" rel="noopener noreferrer nofollow"' in body
    # The latest registered version (v2, not the v3 draft) as a field tree.
    assert "Schema v2" in body
    assert "amount" in body and "Minor units." in body and "minimum: 0" in body
    assert "<code>&quot;placed&quot;</code><code>&quot;paid&quot;</code>" in body
    assert 'title="required"' in body
    assert "coupon" in body
    # Consumers that declared the field are shown against it.
    assert body.index("Minor units.") < body.index('href="/catalog/services/payments/"')
    # Raw JSON, pretty.
    assert "&quot;additionalProperties&quot;: false" in body
    # Examples checked against the schema.
    assert "✓ valid" in body and "✗ invalid at <code>/total/amount</code>" in body
    # History with the draft badge, producers and consumers with groups and fields.
    assert "Added coupon." in body and "Flatten total." in body and "badge-draft" in body
    assert "payments-v2" in body and "<code>total.amount</code>" in body
    # A Viewer gets no way to change it.
    assert "Register a new version" not in body and "/versions/new/" not in body


def test_event_page_shows_a_chosen_version_and_designers_get_the_button(client_as, designer, shop):
    body = text(client_as(designer).get("/catalog/events/order.placed/?version=3"))
    assert "Schema v3" in body and "badge-draft" in body and "the latest registered is" in body
    assert 'href="/catalog/events/order.placed/versions/new/"' in body


@pytest.mark.parametrize("url", [
    "/catalog/events/no.such/", "/catalog/events/order.placed/?version=99", "/catalog/events/order.placed/?version=x",
])  # fmt: skip
def test_event_page_unknowns_are_404(client_as, viewer, shop, url):
    assert client_as(viewer).get(url).status_code == 404


def test_event_without_versions_says_so(client_as, designer, shop):
    body = text(client_as(designer).get("/catalog/events/parcel.shipped/"))
    assert "No schema registered yet" in body and "Register the first version" in body


def test_a_stored_schema_with_a_remote_ref_is_never_fetched(client_as, viewer, shop):
    """A version stored before registration refused remote $refs: the page says its examples
    cannot be checked, and the field tree and the compare view follow nothing outside it."""
    with CountingServer() as remote:
        schema = {**V2, "properties": {**V2["properties"], "total": {"$ref": remote.url("total.json")}}}
        SchemaVersion.objects.create(event_type=shop["placed"], version=4, schema=schema, examples=[{"order_id": "o"}])
        client = client_as(viewer)
        body = text(client.get("/catalog/events/order.placed/?version=4"))
        assert "The schema cannot be checked here: #/properties/total/$ref: $ref &#x27;http://127.0.0.1:" in body
        assert client.get("/catalog/events/order.placed/compare?a=2&b=4").status_code == 200
        assert remote.connections == 0


def test_event_page_needs_login_and_get(client, client_as, viewer, shop):
    assert client.get("/catalog/events/order.placed/").status_code == 302
    assert client_as(viewer).post("/catalog/events/order.placed/").status_code == 405


# --------------------------------------------------------------------------- compare
def test_compare_shows_the_structured_diff(client_as, viewer, shop):
    response = client_as(viewer).get("/catalog/events/order.placed/compare?a=2&b=3")
    assert response.status_code == 200
    body = text(response)
    assert "TYPE_CHANGED" in body and "#/properties/total" in body
    assert "The type of &#x27;#/properties/total&#x27; changed" in body
    assert 'badge-bad">breaking' in body
    assert "v3 could not follow v2" in body


def test_compare_compatible_versions(client_as, viewer, shop):
    body = text(client_as(viewer).get("/catalog/events/order.placed/compare?a=1&b=2"))
    assert "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" in body and 'badge-ok">compatible' in body
    assert "v2 can follow v1" in body


def test_compare_bad_input(client_as, viewer, shop):
    client = client_as(viewer)
    assert client.get("/catalog/events/order.placed/compare?a=1&b=9").status_code == 404
    assert client.get("/catalog/events/order.placed/compare?a=x&b=1").status_code == 400
    # Past the database's integer: the form says so (it was a server error).
    response = client.get(f"/catalog/events/order.placed/compare?a=1&b={2**31}")
    assert response.status_code == 400 and "less than or equal to" in response.content.decode()
    assert client.get("/catalog/events/order.placed/compare").status_code == 200  # just the picker


def test_compare_needs_login_and_get(client, client_as, viewer, shop):
    assert client.get("/catalog/events/order.placed/compare?a=1&b=2").status_code == 302
    assert client_as(viewer).post("/catalog/events/order.placed/compare?a=1&b=2").status_code == 405


# --------------------------------------------------------------------------- register a version
REGISTER = "/catalog/events/order.placed/versions/new/"


def post(client, schema, action="register", examples="", changelog="Why it changed."):
    body = schema if isinstance(schema, str) else json.dumps(schema, indent=2)
    return client.post(REGISTER, {"schema": body, "examples": examples, "changelog": changelog, "action": action})


def count() -> int:
    return SchemaVersion.objects.filter(event_type__name="order.placed").count()


def test_register_form_is_prefilled_with_the_latest_version(client_as, designer, shop):
    response = client_as(designer).get(REGISTER)
    assert response.status_code == 200
    body = text(response)
    assert "&quot;coupon&quot;" in body and 'name="action" value="check"' in body
    assert "BACKWARD" in body


def test_register_a_compatible_version(client_as, designer, shop):
    v4 = {**V2, "properties": {**V2["properties"], "gift": {"type": "boolean"}}}
    client = client_as(designer)
    response = post(client, v4, examples='[{"order_id": "o-9", "total": {"amount": 5}, "gift": true}]')
    assert response.status_code == 302 and response["Location"] == "/catalog/events/order.placed/?version=4"
    version = SchemaVersion.objects.get(event_type__name="order.placed", version=4)
    assert version.state == "registered" and version.author == designer and version.changelog == "Why it changed."
    assert version.examples == [{"order_id": "o-9", "total": {"amount": 5}, "gift": True}]
    page = client.get(response["Location"])
    assert "Registered version 4 of order.placed." in text(page) and "Schema v4" in text(page)


def test_incompatible_version_shows_why_and_who_breaks_and_saves_nothing(client_as, designer, shop):
    before = count()
    response = post(client_as(designer), BREAKING)
    assert response.status_code == 409
    body = text(response)
    assert "Not registered." in body
    assert "Not BACKWARD compatible with version 2" in body
    assert "TYPE_CHANGED" in body and "#/properties/total" in body and 'badge-bad">breaking' in body
    # payments reads total.amount and breaks; shipping reads only order_id and does not.
    breaking = body[body.index("Consumers that would break") :]
    assert 'href="/catalog/services/payments/"' in breaking and "payments-v2" in breaking
    assert 'href="/catalog/services/shipping/"' not in breaking
    assert count() == before


def test_check_only_reports_without_saving(client_as, designer, shop):
    client = client_as(designer)
    before = count()
    bad = post(client, BREAKING, action="check")
    assert bad.status_code == 200
    assert "Check only, nothing saved." in text(bad) and "TYPE_CHANGED" in text(bad) and "payments-v2" in text(bad)
    good = post(client, {**V2, "description": "Clarified."}, action="check")
    assert "Compatible under BACKWARD with version 2." in text(good)
    assert count() == before


def test_save_as_draft_keeps_an_incompatible_candidate(client_as, designer, shop):
    response = post(client_as(designer), {**BREAKING, "description": "another draft"}, action="draft")
    assert response.status_code == 302
    assert SchemaVersion.objects.get(event_type__name="order.placed", version=4).state == "draft"


def test_identical_schema_registers_nothing_new(client_as, designer, shop):
    client = client_as(designer)
    response = post(client, V2)
    assert response.status_code == 302 and response["Location"].endswith("?version=2")
    assert "identical to version 2" in text(client.get(response["Location"]))
    assert count() == 3


@pytest.mark.parametrize(
    ("schema", "examples", "field", "message"),
    [
        ('{\n  "type": "object",\n  "properties": {,}\n}', "", "schema", "Invalid JSON at line 3, column 18"),
        ({"type": "object", "properties": {"x": {"type": "strin"}}}, "", "schema", "#/properties/x/type"),
        (V2, '{"not": "an array"}', "examples", "Examples must be a JSON array"),
        (V2, "[1, 2", "examples", "Invalid JSON at line 1"),
        (V2, '[{"order_id": "o-1", "total": {"amount": "lots"}}]', "examples", "#/total/amount"),
        ({"properties": {"x": {"$ref": "https://x.example/x.json"}}}, "", "schema", "#/properties/x/$ref"),
        ({"properties": {"x": {"pattern": "(?=a)"}}}, "", "schema", "#/properties/x/pattern"),
    ],
)
def test_bad_input_gets_a_field_error_and_nothing_is_saved(client_as, designer, shop, schema, examples, field, message):
    before = count()
    response = post(client_as(designer), schema, examples=examples)
    assert response.status_code == 400
    body = text(response)
    errors = body[body.index(f'id="id_{field}-errors"') :]
    assert message in errors[: errors.index("</ul>")]
    assert count() == before
    # What the user typed comes back so nothing is lost.
    assert "Why it changed." in body


def test_schema_size_limit(client_as, designer, shop, settings):
    settings.EVENTHUB_MAX_SCHEMA_BYTES = 1024
    big = {"type": "object", "description": "x" * 2000}
    response = post(client_as(designer), big)
    assert response.status_code == 400 and "the limit is 1024 bytes" in text(response)


def test_viewers_cannot_register(client_as, viewer, shop):
    client = client_as(viewer)
    before = count()
    assert client.get(REGISTER).status_code == 403
    assert post(client, V2 | {"description": "sneaky"}).status_code == 403
    assert count() == before


def test_register_needs_login_and_allowed_methods(client, client_as, designer, shop):
    response = client.post(REGISTER, {"schema": "{}"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client_as(designer).put(REGISTER).status_code == 405
    assert client_as(designer).get("/catalog/events/no.such/versions/new/").status_code == 404


# --------------------------------------------------------------------------- service and topic pages
def test_service_page(client_as, viewer, shop):
    response = client_as(viewer).get("/catalog/services/orders/")
    assert response.status_code == 200
    body = text(response)
    assert "<strong>order lifecycle</strong>" in body and "checkout-team" in body
    assert 'href="https://git.example/orders"' in body and "core" in body and "Sales" in body
    assert 'href="/catalog/events/order.placed/"' in body
    consumer_page = text(client_as(viewer).get("/catalog/services/payments/"))
    consumes = consumer_page[consumer_page.index("Consumes") :]
    assert "order.placed" in consumes and "payments-v2" in consumes and "<code>total.amount</code>" in consumes


def test_service_page_never_links_a_javascript_url(client_as, viewer, shop):
    Service.objects.filter(slug="orders").update(repository_url="javascript:alert(1)")
    body = text(client_as(viewer).get("/catalog/services/orders/"))
    assert 'href="javascript:' not in body and "<code>javascript:alert(1)</code>" in body


def test_service_page_access(client, client_as, viewer, shop):
    assert client.get("/catalog/services/orders/").status_code == 302
    assert client_as(viewer).post("/catalog/services/orders/").status_code == 405
    assert client_as(viewer).get("/catalog/services/nope/").status_code == 404


def test_topic_page(client_as, viewer, shop):
    topic = shop["topic"]
    response = client_as(viewer).get(f"/catalog/topics/{topic.pk}/")
    assert response.status_code == 200
    body = text(response)
    assert "Kafka" in body and "<code>shop.orders</code>" in body and "7 days" in body
    assert "<code>shop.orders.dlq</code>" in body
    assert 'href="/catalog/events/order.placed/"' in body
    assert 'href="/catalog/services/orders/"' in body and "payments-v2" in body


def test_topic_page_access(client, client_as, viewer, shop):
    url = f"/catalog/topics/{shop['topic'].pk}/"
    assert client.get(url).status_code == 302
    assert client_as(viewer).post(url).status_code == 405
    assert client_as(viewer).get("/catalog/topics/999999/").status_code == 404


# --------------------------------------------------------------------------- hostile text
def test_markup_in_names_and_descriptions_is_inert(client_as, viewer, shop):
    Service.objects.filter(slug="orders").update(name='<img src=x onerror="window.__xss=3">orders')
    EventType.objects.filter(name="order.placed").update(
        description='<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
    )
    client = client_as(viewer)
    for url in ("/catalog/", "/catalog/events/order.placed/", "/catalog/services/orders/", "/catalog/?tab=services"):
        body = text(client.get(url))
        assert "<script>window.__xss" not in body and "onerror=" not in body.replace("onerror=&quot;", "")
        assert "<img src=x" not in body
    event_page = text(client.get("/catalog/events/order.placed/"))
    assert "&lt;img src=x onerror=&quot;window.__xss=3&quot;&gt;orders" in event_page  # the name, shown as text


def test_register_the_first_version_of_an_event(client_as, designer, shop):
    client = client_as(designer)
    form = text(client.get("/catalog/events/parcel.shipped/versions/new/"))
    assert "draft-07/schema#" in form  # a starter document, not an empty box
    response = client.post(
        "/catalog/events/parcel.shipped/versions/new/",
        {
            "schema": json.dumps({"type": "object", "properties": {"parcel_id": {"type": "string"}}}),
            "action": "register",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("?version=1")
    assert names_in_search("parcel_id") == ["parcel.shipped"]


def names_in_search(query: str) -> list[str]:
    return list(search.events(query).values_list("name", flat=True))
