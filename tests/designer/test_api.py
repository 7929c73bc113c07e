"""The designer's REST API under /api/v1/: the contract the canvas and CI pipelines rely on."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from designer import registry
from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, SchemaVersion, Service, Topic
from tests.listening import CountingServer
from tests.waiting import returns_within

SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "total": {"type": "number"}, "note": {"type": "string"}},
    "required": ["id"],
}


@pytest.fixture
def design(db) -> dict:
    """sales: checkout --order.placed (on topic orders)--> billing; plus a service in another domain."""
    sales = Domain.objects.create(name="Sales")
    ops = Domain.objects.create(name="Ops")
    checkout = Service.objects.create(name="checkout", domain=sales, x=10, y=20)
    billing = Service.objects.create(name="billing")
    pager = Service.objects.create(name="pager", domain=ops)
    topic = Topic.objects.create(name="orders", domain=sales)
    event = EventType.objects.create(name="order.placed", domain=sales, owner=checkout, topic=topic)
    producer = Producer.objects.create(service=checkout, event_type=event)
    consumer = Consumer.objects.create(service=billing, event_type=event, fields_used=["total"])
    return {
        "sales": sales,
        "ops": ops,
        "checkout": checkout,
        "billing": billing,
        "pager": pager,
        "topic": topic,
        "event": event,
        "producer": producer,
        "consumer": consumer,
    }


def send(client: Client, method: str, url: str, data=None, **extra):
    if method == "get":
        return client.get(url, **extra)
    body = None if data is None else json.dumps(data)
    return getattr(client, method)(url, body, content_type="application/json", **extra)


def logged_in(user) -> Client:
    """A client of its own (the shared `client` fixture holds one login at a time)."""
    client = Client()
    client.force_login(user)
    return client


def token_client(user) -> Client:
    token, _ = Token.objects.get_or_create(user=user)
    return Client(headers={"Authorization": f"Token {token.key}"})


LISTS = [
    "/api/v1/domains/",
    "/api/v1/services/",
    "/api/v1/topics/",
    "/api/v1/events/",
    "/api/v1/producers/",
    "/api/v1/consumers/",
    "/api/v1/flows/",
]


# --------------------------------------------------------------------------- access, for every list
@pytest.mark.parametrize("url", [*LISTS, "/api/v1/graph/", "/api/v1/lints/"])
def test_lists_need_a_login_and_serve_viewers(design, client, client_as, viewer, url):
    assert client.get(url).status_code in (401, 403)
    bad_token = Client(headers={"Authorization": "Token not-a-token"}).get(url)
    assert bad_token.status_code in (401, 403) and bad_token.json() == {"detail": "Invalid token."}
    response = client_as(viewer).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("url", LISTS)
def test_wrong_method_on_a_list(design, client_as, designer, url):
    assert send(client_as(designer), "delete", url).status_code == 405


@pytest.mark.parametrize("url", ["/api/v1/graph/", "/api/v1/lints/"])
def test_graph_and_lints_are_read_only(design, client_as, designer, url):
    assert send(client_as(designer), "post", url, {}).status_code == 405


# (url, payload, model, how to find the row) for each resource
def _creations(d: dict) -> list[tuple[str, dict, type, dict]]:
    return [
        ("/api/v1/domains/", {"name": "Fulfilment"}, Domain, {"slug": "fulfilment"}),
        (
            "/api/v1/services/",
            {"name": "Stock Keeper", "domain": d["sales"].pk, "tags": ["go", "go", "core"]},
            Service,
            {"slug": "stock-keeper"},
        ),
        ("/api/v1/topics/", {"name": "stock", "bus": "redis"}, Topic, {"address": "stock"}),
        (
            "/api/v1/events/",
            {"name": "stock.reserved", "topic": d["topic"].pk, "owner": d["checkout"].pk},
            EventType,
            {"slug": "stock-reserved"},
        ),
        (
            "/api/v1/producers/",
            {"service": d["billing"].pk, "event_type": d["event"].pk},
            Producer,
            {"service": d["billing"]},
        ),
        (
            "/api/v1/consumers/",
            {"service": d["pager"].pk, "event_type": d["event"].pk},
            Consumer,
            {"service": d["pager"]},
        ),
        ("/api/v1/flows/", {"name": "Checkout", "trigger": "Customer clicks Pay"}, Flow, {"slug": "checkout"}),
    ]


@pytest.mark.parametrize("index", range(7))
def test_designer_creates_and_viewer_cannot(design, client_as, viewer, designer, index):
    url, payload, model, lookup = _creations(design)[index]
    refused = send(client_as(viewer), "post", url, payload)
    assert refused.status_code == 403
    assert not model.objects.filter(**lookup).exists()

    created = send(client_as(designer), "post", url, payload)
    assert created.status_code == 201, created.json()
    row = model.objects.get(**lookup)
    assert created.json()["id"] == row.pk
    assert isinstance(created.json()["id"], int)


def test_created_rows_get_their_defaults(design, client_as, designer):
    client = client_as(designer)
    service = send(client, "post", "/api/v1/services/", {"name": "Stock Keeper", "tags": [" go", "go", "core"]}).json()
    assert (service["slug"], service["tags"], service["domain"], service["x"]) == (
        "stock-keeper",
        ["go", "core"],
        None,
        None,
    )

    kafka = send(client, "post", "/api/v1/topics/", {"name": "payments"}).json()
    assert (kafka["bus"], kafka["address"], kafka["dead_letter_topic"], kafka["partitions"]) == (
        "kafka",
        "payments",
        "payments.dlq",
        1,
    )
    redis = send(
        client, "post", "/api/v1/topics/", {"name": "Stock stream", "bus": "redis", "address": "stock:events"}
    ).json()
    assert redis["dead_letter_topic"] == "stock:events:dlq"

    event = send(client, "post", "/api/v1/events/", {"name": "payment.captured"}).json()
    assert (event["slug"], event["kind"], event["compatibility_mode"], event["compatibility_policy"]) == (
        "payment-captured",
        "event",
        "BACKWARD",
        "STRICT",
    )
    assert event["latest_version"] is None

    consumer = send(
        client, "post", "/api/v1/consumers/", {"service": design["pager"].pk, "event_type": event["id"]}
    ).json()
    assert consumer == {
        "id": consumer["id"],
        "service": design["pager"].pk,
        "event_type": event["id"],
        "group": "pager",
        "fields_used": [],
        "max_attempts": 3,
        "backoff_ms": 200,
        "dead_letter": True,
    }


def test_details_read_change_and_delete(design, client, client_as, viewer, designer):
    url = f"/api/v1/services/{design['checkout'].pk}/"
    assert client.get(url).status_code in (401, 403)
    assert client_as(viewer).get(url).json() == {
        "id": design["checkout"].pk,
        "name": "checkout",
        "slug": "checkout",
        "domain": design["sales"].pk,
        "owner_team": "",
        "description": "",
        "repository_url": "",
        "tags": [],
        "x": 10.0,
        "y": 20.0,
    }
    assert send(client_as(viewer), "patch", url, {"x": 1}).status_code == 403
    assert send(client_as(viewer), "delete", url).status_code == 403

    moved = send(client_as(designer), "patch", url, {"x": 150.5, "y": -3, "slug": "ignored"})
    assert moved.status_code == 200
    design["checkout"].refresh_from_db()
    assert (design["checkout"].x, design["checkout"].y, design["checkout"].slug) == (150.5, -3.0, "checkout")

    assert send(client_as(designer), "delete", url).status_code == 204
    assert not Service.objects.filter(pk=design["checkout"].pk).exists()
    assert not Producer.objects.exists()  # its edges went with it
    assert client_as(designer).get(url).status_code == 404


def test_patching_an_events_topic_moves_the_on_topic_edge(design, client_as, designer):
    other = Topic.objects.create(name="orders-v2")
    url = f"/api/v1/events/{design['event'].pk}/"
    assert send(client_as(designer), "patch", url, {"topic": other.pk}).json()["topic"] == other.pk
    edges = client_as(designer).get("/api/v1/graph/").json()["edges"]
    assert [e["target"] for e in edges if e["kind"] == "on-topic"] == [f"topic:{other.pk}"]
    assert send(client_as(designer), "patch", url, {"topic": None}).json()["topic"] is None


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("url", "payload", "field", "words"),
    [
        ("/api/v1/events/", {"name": "OrderPlaced"}, "name", "dotted lower-case name"),
        ("/api/v1/events/", {"name": "order"}, "name", "dotted lower-case name"),
        ("/api/v1/events/", {"name": "order.placed"}, "name", "already exists"),
        (
            "/api/v1/events/",
            {"name": "a.b", "compatibility_mode": "SOMETIMES"},
            "compatibility_mode",
            "not a valid choice",
        ),
        ("/api/v1/domains/", {"name": "Sales"}, "name", "already exists"),
        ("/api/v1/domains/", {"name": "sales!"}, "name", "slug 'sales'"),
        ("/api/v1/services/", {"name": "checkout"}, "name", "already exists"),
        ("/api/v1/services/", {"name": "!!!"}, "name", "at least one letter"),
        ("/api/v1/services/", {"name": "x", "domain": 999999}, "domain", "Invalid pk"),
        ("/api/v1/services/", {"name": "x", "tags": "go"}, "tags", "list"),
        ("/api/v1/topics/", {"name": "has spaces"}, "address", "not a valid Kafka topic name"),
        ("/api/v1/topics/", {"name": "other", "address": "orders"}, "address", "already uses the address 'orders'"),
        ("/api/v1/topics/", {"name": "p", "partitions": 0}, "partitions", "greater than or equal to 1"),
        ("/api/v1/consumers/", {"service": 999999, "event_type": 1}, "service", "Invalid pk"),
    ],
)
def test_bad_input_gets_a_field_error(design, client_as, designer, url, payload, field, words):
    response = send(client_as(designer), "post", url, payload)
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


@pytest.mark.parametrize(
    ("url", "payload", "message"),
    [
        (
            "/api/v1/producers/",
            lambda d: {"service": d["checkout"].pk, "event_type": d["event"].pk},
            "This service already produces this event.",
        ),
        (
            "/api/v1/consumers/",
            lambda d: {"service": d["billing"].pk, "event_type": d["event"].pk},
            "This service already consumes this event.",
        ),
    ],
)
def test_duplicate_edges_are_refused(design, client_as, designer, url, payload, message):
    response = send(client_as(designer), "post", url, payload(design))
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [message]}


def test_a_topic_may_reuse_an_address_on_the_other_bus(design, client_as, designer):
    response = send(
        client_as(designer), "post", "/api/v1/topics/", {"name": "orders (redis)", "bus": "redis", "address": "orders"}
    )
    assert response.status_code == 201


# --------------------------------------------------------------------------- filters and lists
def test_services_filter_by_domain_and_text(design, client_as, viewer):
    Service.objects.filter(pk=design["billing"].pk).update(description="Turns orders into invoices", tags=["finance"])
    client = client_as(viewer)

    def names(query: str) -> list[str]:
        return [s["name"] for s in client.get(f"/api/v1/services/{query}").json()["results"]]

    assert names("") == ["billing", "checkout", "pager"]
    assert names("?domain=sales") == ["checkout"]
    assert names("?q=INVOICE") == ["billing"]
    assert names("?q=finance") == ["billing"]
    assert names("?domain=sales&q=invoice") == []
    assert names("?domain=nowhere") == []


def test_events_carry_their_latest_registered_version(design, client_as, viewer):
    event = design["event"]
    registry.register_version(event, SCHEMA)
    registry.register_version(event, {**SCHEMA, "description": "v2"})
    registry.register_version(event, {"type": "string"}, as_draft=True)
    EventType.objects.create(name="order.cancelled")
    rows = {e["name"]: e for e in client_as(viewer).get("/api/v1/events/").json()["results"]}
    assert rows["order.placed"]["latest_version"] == 2
    assert rows["order.cancelled"]["latest_version"] is None
    detail = client_as(viewer).get(f"/api/v1/events/{event.pk}/").json()
    assert detail["latest_version"] == 2
    assert (detail["owner"], detail["topic"], detail["domain"]) == (
        design["checkout"].pk,
        design["topic"].pk,
        design["sales"].pk,
    )


def test_lists_are_paginated(design, client_as, viewer):
    body = client_as(viewer).get("/api/v1/domains/?limit=1").json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]


# --------------------------------------------------------------------------- deleting events
def test_an_event_with_registered_schemas_is_kept_unless_an_admin_deletes_it(design, client_as, designer, admin):
    event = design["event"]
    registry.register_version(event, SCHEMA)
    url = f"/api/v1/events/{event.pk}/"
    refused = send(client_as(designer), "delete", url)
    assert refused.status_code == 409
    assert refused.json() == {"detail": "order.placed has 1 registered schema version; only an admin can delete it."}
    assert SchemaVersion.objects.filter(event_type=event).exists()
    assert send(client_as(admin), "delete", url).status_code == 204
    assert not EventType.objects.filter(pk=event.pk).exists()


def test_an_event_without_schemas_can_be_deleted_by_a_designer(design, client_as, designer):
    assert send(client_as(designer), "delete", f"/api/v1/events/{design['event'].pk}/").status_code == 204


# --------------------------------------------------------------------------- flows
def test_flows_with_steps(design, viewer, designer):
    client, reader = logged_in(designer), logged_in(viewer)
    flow = send(client, "post", "/api/v1/flows/", {"name": "Checkout", "trigger": "Customer clicks Pay"}).json()
    steps_url = f"/api/v1/flows/{flow['id']}/steps/"
    first = send(
        client,
        "post",
        steps_url,
        {
            "event_type": design["event"].pk,
            "producer": design["checkout"].pk,
            "consumer": design["billing"].pk,
            "logic": "Invoice",
        },
    )
    assert first.status_code == 201
    second = send(
        client, "post", steps_url, {"event_type": design["event"].pk, "order": 1, "after": first.json()["id"]}
    )
    assert second.status_code == 201

    assert send(reader, "post", steps_url, {"event_type": design["event"].pk}).status_code == 403
    assert send(client, "put", steps_url, {}).status_code == 405

    read = reader.get(f"/api/v1/flows/{flow['id']}/").json()
    assert [s["logic"] for s in read["steps"]] == ["Invoice", ""]
    assert read["steps"][1]["after"] == first.json()["id"]
    assert reader.get(steps_url).json() == read["steps"]

    other = Flow.objects.create(name="Refund", trigger="Support agent")
    foreign = FlowStep.objects.create(flow=other, event_type=design["event"])
    wrong = send(client, "post", steps_url, {"event_type": design["event"].pk, "after": foreign.pk})
    assert wrong.status_code == 400 and wrong.json() == {"after": ["Pick a step of the same flow."]}

    step_url = f"{steps_url}{second.json()['id']}/"
    first_url = f"{steps_url}{first.json()['id']}/"
    for after in (first.json()["id"], second.json()["id"]):  # itself, or its own follower
        loop = send(client, "patch", first_url, {"after": after})
        assert loop.status_code == 400 and "loop" in loop.json()["after"][0]
    assert send(client, "patch", step_url, {"store": "invoices"}).json()["store"] == "invoices"
    assert send(reader, "delete", step_url).status_code == 403
    assert send(client, "get", f"{steps_url}{foreign.pk}/").status_code == 404  # not this flow's step
    assert send(client, "delete", step_url).status_code == 204
    assert list(FlowStep.objects.filter(flow_id=flow["id"]).values_list("logic", flat=True)) == ["Invoice"]


# --------------------------------------------------------------------------- graph
def test_graph_nodes_and_edges(design, client_as, viewer):
    d = design
    body = client_as(viewer).get("/api/v1/graph/").json()
    nodes = {n["id"]: n for n in body["nodes"]}
    assert set(nodes) == {
        f"service:{d['checkout'].pk}",
        f"service:{d['billing'].pk}",
        f"service:{d['pager'].pk}",
        f"event:{d['event'].pk}",
        f"topic:{d['topic'].pk}",
    }
    checkout = nodes[f"service:{d['checkout'].pk}"]
    assert {k: checkout[k] for k in ("kind", "pk", "label", "domain", "x", "y", "lints")} == {
        "kind": "service",
        "pk": d["checkout"].pk,
        "label": "checkout",
        "domain": "sales",
        "x": 10.0,
        "y": 20.0,
        "lints": [],
    }
    topic = nodes[f"topic:{d['topic'].pk}"]
    assert (topic["kind"], topic["bus"], topic["label"], topic["x"]) == ("topic", "kafka", "orders", None)
    event = nodes[f"event:{d['event'].pk}"]
    assert event["lints"] == ["order.placed has no registered schema."]
    assert nodes[f"service:{d['billing'].pk}"]["domain"] is None

    assert sorted(body["edges"], key=lambda e: e["id"]) == [
        {"id": f"consumer:{d['consumer'].pk}", "kind": "consumes", "pk": d["consumer"].pk, "source": f"event:{d['event'].pk}", "target": f"service:{d['billing'].pk}"},
        {"id": f"on-topic:{d['event'].pk}", "kind": "on-topic", "pk": None, "source": f"event:{d['event'].pk}", "target": f"topic:{d['topic'].pk}"},
        {"id": f"producer:{d['producer'].pk}", "kind": "produces", "pk": d["producer"].pk, "source": f"service:{d['checkout'].pk}", "target": f"event:{d['event'].pk}"},
    ]  # fmt: skip
    assert [lint["code"] for lint in body["lints"]] == ["event-without-schema"]


def test_graph_domain_filter_keeps_direct_neighbours(design, client_as, viewer):
    d = design
    far = Service.objects.create(name="far-away")
    refund = EventType.objects.create(name="refund.issued")  # billing -> refund.issued -> far-away: two hops out
    Producer.objects.create(service=d["billing"], event_type=refund)
    Consumer.objects.create(service=far, event_type=refund)
    body = client_as(viewer).get("/api/v1/graph/?domain=sales").json()
    assert {n["label"] for n in body["nodes"]} == {"checkout", "order.placed", "orders", "billing"}
    assert len(body["edges"]) == 3
    ops = client_as(viewer).get("/api/v1/graph/?domain=ops").json()
    assert [n["label"] for n in ops["nodes"]] == ["pager"] and ops["edges"] == []
    missing = client_as(viewer).get("/api/v1/graph/?domain=nowhere")
    assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]


def _grow(design: dict, times: int) -> None:
    for i in range(times):
        service = Service.objects.create(name=f"svc-{i}", domain=design["sales"])
        topic = Topic.objects.create(name=f"topic-{i}")
        event = EventType.objects.create(name=f"thing.n{i}", topic=topic, domain=design["sales"])
        registry.register_version(event, SCHEMA)
        registry.register_version(event, {"type": "integer"}, as_draft=True)
        Producer.objects.create(service=service, event_type=event)
        Consumer.objects.create(service=design["billing"], event_type=event)
        Consumer.objects.create(service=design["checkout"], event_type=event)


def test_graph_query_count_is_constant(design, client_as, viewer, django_assert_max_num_queries):
    client = client_as(viewer)
    registry.register_version(design["event"], {"type": "integer"}, as_draft=True)  # every lint branch runs

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = count("/api/v1/graph/"), count("/api/v1/graph/?domain=sales")
    _grow(design, 12)
    assert (count("/api/v1/graph/"), count("/api/v1/graph/?domain=sales")) == small
    with django_assert_max_num_queries(20):
        assert len(client.get("/api/v1/graph/").json()["nodes"]) > 30


def test_lints_endpoint(design, client_as, viewer):
    Topic.objects.create(name="idle")
    body = client_as(viewer).get("/api/v1/lints/").json()
    assert {(lint["code"], lint["severity"]) for lint in body} == {
        ("event-without-schema", "warning"),
        ("topic-without-events", "info"),
    }
    assert set(body[0]) == {"code", "severity", "message", "node_ids"}


# --------------------------------------------------------------------------- registry
REGISTRY = "/api/v1/registry/events/order.placed"


def test_latest_with_a_token_has_exactly_the_sdk_keys(design, viewer):
    registry.register_version(design["event"], SCHEMA, examples=[{"id": "o-1"}])
    response = token_client(viewer).get(f"{REGISTRY}/versions/latest")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"event_type", "version", "schema", "topic", "bus", "examples", "created_at"}
    assert {k: body[k] for k in ("event_type", "version", "schema", "topic", "bus", "examples")} == {
        "event_type": "order.placed",
        "version": 1,
        "schema": SCHEMA,
        "topic": "orders",
        "bus": "kafka",
        "examples": [{"id": "o-1"}],
    }


def test_latest_without_topic_and_versions_by_number(design, viewer):
    EventType.objects.filter(pk=design["event"].pk).update(topic=None)
    registry.register_version(design["event"], SCHEMA, changelog="first")
    registry.register_version(design["event"], {**SCHEMA, "description": "second"}, changelog="second")
    registry.register_version(design["event"], {"type": "string"}, as_draft=True)
    client = token_client(viewer)
    latest = client.get(f"{REGISTRY}/versions/latest").json()
    assert (latest["version"], latest["topic"], latest["bus"]) == (2, None, None)
    assert client.get(f"{REGISTRY}/versions/1").json()["schema"] == SCHEMA
    assert client.get(f"{REGISTRY}/versions/3").status_code == 404  # a draft is never served
    assert client.get(f"{REGISTRY}/versions/9").status_code == 404
    listing = client.get(f"{REGISTRY}/versions/").json()
    assert [(v["version"], v["state"], v["changelog"]) for v in listing] == [
        (1, "registered", "first"),
        (2, "registered", "second"),
    ]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/registry/events/no.such/versions/latest",
        "/api/v1/registry/events/no.such/versions/",
        "/api/v1/registry/events/no.such/versions/1",
        "/api/v1/registry/events/order.placed/versions/latest",  # exists, nothing registered
    ],
)
def test_registry_404s_are_json(design, viewer, url):
    response = token_client(viewer).get(url)
    assert response.status_code == 404
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("put", f"{REGISTRY}/versions/"),
        ("delete", f"{REGISTRY}/versions/"),
        ("post", f"{REGISTRY}/versions/latest"),
        ("patch", f"{REGISTRY}/versions/1"),
        ("delete", f"{REGISTRY}/versions/1"),
        ("get", f"{REGISTRY}/compatibility"),
    ],
)
def test_registry_wrong_methods(design, designer, method, url):
    registry.register_version(design["event"], SCHEMA)
    assert send(token_client(designer), method, url, {}).status_code == 405


@pytest.mark.parametrize(
    "url",
    [f"{REGISTRY}/versions/", f"{REGISTRY}/versions/latest", f"{REGISTRY}/versions/1", f"{REGISTRY}/compatibility"],
)
def test_registry_needs_a_login(design, client, url):
    registry.register_version(design["event"], SCHEMA)
    assert client.get(url).status_code in (401, 403)
    assert send(client, "post", url, {"schema": SCHEMA}).status_code in (401, 403, 405)
    assert Client(headers={"Authorization": "Token wrong"}).get(url).json() == {"detail": "Invalid token."}


def test_register_with_a_designer_token(design, designer):
    response = send(
        token_client(designer),
        "post",
        f"{REGISTRY}/versions/",
        {"schema": SCHEMA, "changelog": "First.", "examples": [{"id": "a"}]},
    )
    assert response.status_code == 201
    body = response.json()
    assert {
        k: body[k]
        for k in ("event_type", "version", "schema", "topic", "bus", "examples", "state", "changelog", "author")
    } == {
        "event_type": "order.placed",
        "version": 1,
        "schema": SCHEMA,
        "topic": "orders",
        "bus": "kafka",
        "examples": [{"id": "a"}],
        "state": "registered",
        "changelog": "First.",
        "author": "dana-designer",
    }
    assert SchemaVersion.objects.get().author == designer


def test_a_viewer_token_cannot_register(design, viewer):
    response = send(token_client(viewer), "post", f"{REGISTRY}/versions/", {"schema": SCHEMA})
    assert response.status_code == 403
    assert not SchemaVersion.objects.exists()


def test_session_writes_need_the_csrf_token(design, designer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(designer)
    response = send(browser, "post", f"{REGISTRY}/versions/", {"schema": SCHEMA})
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not SchemaVersion.objects.exists()


def test_identical_re_register_returns_the_same_version(design, designer):
    client = token_client(designer)
    first = send(client, "post", f"{REGISTRY}/versions/", {"schema": SCHEMA})
    again = send(client, "post", f"{REGISTRY}/versions/", {"schema": json.loads(json.dumps(SCHEMA, sort_keys=True))})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["version"] == first.json()["version"] == 1
    assert SchemaVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ({"schema": {"type": "object", "properties": {"id": {"type": "strin"}}}}, {"path": "#/properties/id/type"}),
        ({"schema": {"properties": {"a": {"$ref": "#/$defs/nope"}}}}, {"path": "#/properties/a/$ref"}),
        ({"schema": "not a schema"}, {"path": "#"}),
        ({"schema": SCHEMA, "examples": [{"id": 5}]}, {"path": "#/id"}),
    ],
)
def test_invalid_schemas_get_400_with_a_path(design, designer, payload, body):
    response = send(token_client(designer), "post", f"{REGISTRY}/versions/", payload)
    assert response.status_code == 400
    got = response.json()
    assert got["path"] == body["path"]
    field = "examples" if "examples" in payload else "schema"
    assert len(got[field]) == 1 and got[field][0]
    assert not SchemaVersion.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "schema"),
        ({"schema": SCHEMA, "examples": "x"}, "examples"),
        ({"schema": SCHEMA, "draft": "perhaps"}, "draft"),
    ],
)
def test_malformed_registration_requests(design, designer, payload, field):
    response = send(token_client(designer), "post", f"{REGISTRY}/versions/", payload)
    assert response.status_code == 400 and field in response.json()


def test_oversized_schema_gets_400(design, designer, settings):
    settings.EVENTHUB_MAX_SCHEMA_BYTES = 4096
    huge = {"type": "object", "description": "x" * 5000}
    response = send(token_client(designer), "post", f"{REGISTRY}/versions/", {"schema": huge})
    assert response.status_code == 400
    assert response.json()["path"] == "#"
    assert "limit is 4096 bytes" in response.json()["schema"][0]


@pytest.mark.parametrize("endpoint", ["versions/", "compatibility"])
def test_a_body_over_the_upload_limit_gets_json(design, designer, settings, endpoint):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    huge = json.dumps({"schema": {"type": "object", "description": "x" * 3000}})
    response = token_client(designer).post(f"{REGISTRY}/{endpoint}", huge, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"schema": ["The request is over 2048 bytes (EVENTHUB_MAX_UPLOAD_BYTES)."], "path": "#"}
    assert not SchemaVersion.objects.exists()


def test_incompatible_schema_gets_409_with_changes_and_breaking_consumers(design, designer):
    registry.register_version(design["event"], SCHEMA)
    Consumer.objects.create(service=design["pager"], event_type=design["event"], fields_used=["id"])
    breaking = {**SCHEMA, "properties": {**SCHEMA["properties"], "total": {"type": "string"}}}
    response = send(token_client(designer), "post", f"{REGISTRY}/versions/", {"schema": breaking})
    assert response.status_code == 409
    body = response.json()
    assert body["compatible"] is False
    assert (body["mode"], body["policy"]) == ("BACKWARD", "STRICT")
    assert [(c["type"], c["path"], c["version"]) for c in body["changes"]] == [
        ("TYPE_CHANGED", "#/properties/total", 1)
    ]
    assert body["reason"].startswith("Not BACKWARD compatible with version 1")
    assert body["breaking_consumers"] == [{"service": "billing", "group": "billing", "fields_used": ["total"]}]
    assert SchemaVersion.objects.count() == 1

    draft = send(token_client(designer), "post", f"{REGISTRY}/versions/", {"schema": breaking, "draft": True})
    assert draft.status_code == 201 and draft.json()["state"] == "draft"
    assert token_client(designer).get(f"{REGISTRY}/versions/latest").json()["version"] == 1


def test_compatibility_check_registers_nothing(design, viewer):
    registry.register_version(design["event"], SCHEMA)
    client = token_client(viewer)  # a read-only CI token may ask
    without_total = {**SCHEMA, "properties": {"id": {"type": "string"}, "note": {"type": "string"}}}
    body = send(client, "post", f"{REGISTRY}/compatibility", {"schema": without_total}).json()
    assert body["compatible"] is True
    assert body["breaking_consumers"] == [{"service": "billing", "group": "billing", "fields_used": ["total"]}]
    assert [c["type"] for c in body["changes"]] == ["PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL"]

    closed = {**SCHEMA, "additionalProperties": False}
    strict = send(client, "post", f"{REGISTRY}/compatibility", {"schema": closed}).json()
    assert strict["compatible"] is False
    assert strict["changes"][0]["compatible"] is False
    lenient = send(client, "post", f"{REGISTRY}/compatibility", {"schema": closed, "policy": "LENIENT"}).json()
    assert (lenient["compatible"], lenient["policy"]) == (True, "LENIENT")
    anything = send(client, "post", f"{REGISTRY}/compatibility", {"schema": {"type": "string"}, "mode": "NONE"}).json()
    assert anything["compatible"] is True

    bad_mode = send(client, "post", f"{REGISTRY}/compatibility", {"schema": SCHEMA, "mode": "SOMETIMES"})
    assert bad_mode.status_code == 400 and "mode" in bad_mode.json()
    invalid = send(client, "post", f"{REGISTRY}/compatibility", {"schema": {"type": 12}})
    assert invalid.status_code == 400 and invalid.json()["path"] == "#/type"
    assert SchemaVersion.objects.count() == 1


# --------------------------------------------------------------------------- hostile schemas
@pytest.mark.django_db(transaction=True)  # the request runs in a hang guard's thread: it must see the rows
def test_compatibility_answers_on_a_backtracking_pattern(design, viewer):
    """The issue's case: a registered 28-character name, a candidate whose patternProperties
    backtrack on it (~2^28 steps on Python's re). The answer; its time is bench/compat.py's."""
    name = "a" * 28
    registry.register_version(design["event"], {"type": "object", "properties": {name: {"type": "string"}}})
    candidate = {"type": "object", "patternProperties": {"^(a|a)*b$": {"type": "string"}}}
    client = token_client(viewer)
    response = returns_within(
        lambda: send(client, "post", f"{REGISTRY}/compatibility", {"schema": candidate}), 10, "the compatibility check"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["compatible"] is False
    assert [(c["type"], c["path"]) for c in body["changes"]] == [
        ("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", f"#/properties/{name}")
    ]


@pytest.mark.parametrize("endpoint", ["versions/", "compatibility"])
@pytest.mark.parametrize(
    ("schema", "path", "words"),
    [
        ({"properties": {"name": {"type": "string", "pattern": "^(?!admin)"}}}, "#/properties/name/pattern", "(?!"),
        ({"patternProperties": {"^(a)\\1$": {}}}, "#/patternProperties/^(a)\\1$", "invalid escape sequence: \\1"),
    ],
    ids=["lookahead", "backreference"],
)
def test_patterns_re2_cannot_run_get_400_with_their_path(design, designer, endpoint, schema, path, words):
    response = send(token_client(designer), "post", f"{REGISTRY}/{endpoint}", {"schema": schema})
    assert response.status_code == 400
    body = response.json()
    assert body["path"] == path
    [message] = body["schema"]
    assert "cannot run on RE2" in message and words in message
    assert not SchemaVersion.objects.exists()


@pytest.mark.parametrize("endpoint", ["versions/", "compatibility"])
def test_a_remote_ref_gets_400_with_its_path_and_is_never_fetched(design, designer, endpoint):
    registry.register_version(design["event"], SCHEMA)
    with CountingServer() as remote:
        url = remote.url("customer.json")
        schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "customer": {"$ref": url}}}
        response = send(token_client(designer), "post", f"{REGISTRY}/{endpoint}", {"schema": schema})
        assert remote.connections == 0
    assert response.status_code == 400
    assert response.json() == {
        "schema": [
            f"$ref '{url}' points outside the document; only references inside it (starting with '#') "
            "are allowed, nothing is fetched."
        ],
        "path": "#/properties/customer/$ref",
    }
    assert SchemaVersion.objects.count() == 1


# --------------------------------------------------------------------------- OpenAPI
def test_openapi_document_lists_the_designer_api(client_as, viewer):
    response = client_as(viewer).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in [
        "/api/v1/domains/",
        "/api/v1/services/{id}/",
        "/api/v1/topics/",
        "/api/v1/events/{id}/",
        "/api/v1/producers/",
        "/api/v1/consumers/{id}/",
        "/api/v1/flows/{id}/steps/",
        "/api/v1/graph/",
        "/api/v1/lints/",
        "/api/v1/registry/events/{name}/versions/",
        "/api/v1/registry/events/{name}/versions/latest",
        "/api/v1/registry/events/{name}/versions/{version}",
        "/api/v1/registry/events/{name}/compatibility",
    ]:
        assert path in paths, path
