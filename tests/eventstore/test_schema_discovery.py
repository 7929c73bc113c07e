"""Schemas discovered from traffic: the indexer samples events of unregistered types (and untyped topics),
genson infers a draft, a Designer approves it into the registry; registered types show drift.

Events go through the real buses and the indexer's step function.
"""

from __future__ import annotations

import pytest

from designer.models import EventType, SchemaVersion
from eventstore import schema_discovery
from eventstore.indexer import Indexer
from eventstore.models import ObservedSchema
from tests.deadletters.support import ORDER_SCHEMA, step_until

API = "/api/v1/discovered/"


def index(bus, prefix: str, records: list[tuple[bytes, list]], expected: int) -> None:
    """Publish the records to `<prefix>-t`, index them, and flush the observer's samples."""
    topic = f"{prefix}-t"
    bus.create_topic(topic)
    for value, headers in records:
        bus.publish(topic, value, headers=headers)
    indexer = Indexer([bus.kind], buses={bus.kind: bus}, include=[f"{prefix}*"], discover_every_s=0.2)
    try:
        step_until(indexer, lambda: indexer.observer._seen and sum(indexer.observer._seen.values()) >= expected)
    finally:
        indexer.close()  # flushes


def typed(event_type: str, value: bytes) -> tuple[bytes, list]:
    return value, [("ce_type", event_type.encode()), ("ce_id", b"x")]


@pytest.fixture
def prefix(unique):
    return unique("disc")


def test_an_unregistered_type_gets_a_draft_a_designer_registers(bus, prefix, client_as, viewer, designer):
    index(
        bus,
        prefix,
        [
            typed("parcel.shipped", b'{"parcel": "p-1", "weight": 2.5, "to": {"city": "Oslo"}}'),
            typed("parcel.shipped", b'{"parcel": "p-2", "weight": 3, "to": {"city": "Rome"}, "fragile": true}'),
            typed("parcel.shipped", b"not json"),  # counted, not sampled into the schema
        ],
        3,
    )
    row = ObservedSchema.objects.get(subject="type:parcel.shipped")
    assert (row.kind, row.bus, row.topic, row.sample_count) == ("type", bus.kind, f"{prefix}-t", 2)
    assert row.first_seen <= row.last_seen
    assert set(row.schema["properties"]) == {"parcel", "weight", "to", "fragile"}
    assert row.schema["required"] == ["parcel", "to", "weight"]  # in every sample; "fragile" in one

    listed = client_as(viewer).get(API).json()["results"]
    mine = next(item for item in listed if item["name"] == "parcel.shipped")
    assert mine["sample_count"] == 2 and "to.city" in mine["field_tree"]
    assert client_as(viewer).post(f"{API}{row.pk}/approve", {}, content_type="application/json").status_code == 403

    response = client_as(designer).post(f"{API}{row.pk}/approve", {}, content_type="application/json")
    assert response.status_code == 201, response.content
    version = SchemaVersion.objects.get(event_type__name="parcel.shipped")
    assert (version.version, version.state, version.schema) == (1, "registered", row.schema)
    assert "parcel.shipped" not in [item["name"] for item in client_as(viewer).get(API).json()["results"]]
    assert client_as(designer).post(f"{API}{row.pk}/approve", {}, content_type="application/json").status_code == 404


def test_an_untyped_topic_needs_a_valid_name_and_takes_an_edited_draft(bus, prefix, client_as, designer):
    index(bus, prefix, [(b'{"sku": "a", "qty": 1}', []), (b'{"sku": "b", "qty": 2}', [])], 2)
    row = ObservedSchema.objects.get(subject=f"topic:{bus.kind}:{prefix}-t")
    client = client_as(designer)

    no_name = client.post(f"{API}{row.pk}/approve", {}, content_type="application/json")
    bad_name = client.post(f"{API}{row.pk}/approve", {"name": "Stock Moved!"}, content_type="application/json")
    bad_schema = client.post(
        f"{API}{row.pk}/approve", {"name": "stock.moved", "schema": {"type": 12}}, content_type="application/json"
    )
    assert (no_name.status_code, bad_name.status_code, bad_schema.status_code) == (400, 400, 400)
    assert "name" in no_name.json() and "name" in bad_name.json()
    assert not EventType.objects.filter(name="stock.moved").exists()  # nothing half made

    edited = {**row.schema, "properties": {**row.schema["properties"], "qty": {"type": "integer", "minimum": 0}}}
    response = client.post(
        f"{API}{row.pk}/approve", {"name": "stock.moved", "schema": edited}, content_type="application/json"
    )
    assert response.status_code == 201
    assert SchemaVersion.objects.get(event_type__name="stock.moved").schema["properties"]["qty"]["minimum"] == 0


def test_a_registered_type_shows_the_fields_traffic_adds_on_its_catalog_page(bus, prefix, client_as, viewer):
    SchemaVersion.objects.create(
        event_type=EventType.objects.create(name="order.placed"), version=1, schema=ORDER_SCHEMA
    )
    index(bus, prefix, [typed("order.placed", b'{"order_id": "o-1", "amount": 3, "coupon": {"code": "X"}}')], 1)

    page = client_as(viewer).get("/catalog/events/order.placed/").content.decode()
    assert 'hx-get="/events/drift/order.placed"' in page
    fragment = client_as(viewer).get("/events/drift/order.placed").content.decode()
    assert 'id="drift-fields"' in fragment and "<code>coupon</code>" in fragment and "coupon.code" in fragment
    assert "<code>amount</code>" not in fragment
    assert "Last hour: 1 event indexed" in fragment and "<strong>0</strong> invalid" in fragment
    assert "order.placed" not in [item["name"] for item in client_as(viewer).get(API).json()["results"]]
    assert 'id="drift-none"' in client_as(viewer).get("/events/drift/never.seen").content.decode()


def test_the_pages_list_drafts_and_register_one_for_a_designer(bus, prefix, client_as, viewer, designer):
    index(bus, prefix, [typed("refund.asked", b'{"order_id": "o-1", "reason": "late"}')], 1)
    row = ObservedSchema.objects.get(subject="type:refund.asked")
    listing = client_as(viewer).get("/events/discovered/").content.decode()
    assert f'href="/events/discovered/{row.pk}/"' in listing and "refund.asked" in listing
    detail = client_as(viewer).get(f"/events/discovered/{row.pk}/").content.decode()
    assert 'id="discovered-approve"' not in detail and "reason" in detail
    assert client_as(viewer).post(f"/events/discovered/{row.pk}/", {"schema": "{}"}).status_code == 403

    client = client_as(designer)
    assert client.post(f"/events/discovered/{row.pk}/", {"schema": "{not json"}).status_code == 400
    not_a_schema = client.post(f"/events/discovered/{row.pk}/", {"schema": '{"type": 5}'})
    assert not_a_schema.status_code == 400
    assert "Not a valid JSON Schema" in not_a_schema.content.decode()  # said on the page, nothing registered
    assert not SchemaVersion.objects.filter(event_type__name="refund.asked").exists()
    response = client.post(f"/events/discovered/{row.pk}/", {"schema": '{"type": "object"}'})
    assert response.status_code == 302 and response["Location"] == "/catalog/events/refund.asked/"
    assert SchemaVersion.objects.get(event_type__name="refund.asked").schema == {"type": "object"}


@pytest.mark.parametrize(
    ("first", "every", "count", "sampled"),
    [(3, 10, 5, [0, 1, 2]), (2, 5, 12, [0, 1, 5, 10]), (0, 1, 3, [0, 1, 2])],
)
def test_sampling_takes_the_first_events_then_one_in_n(first, every, count, sampled):
    observer = schema_discovery.Observer(sample_first=first, sample_every=every)
    assert [i for i in range(count) if observer.wants("type:x")] == sampled


def test_map_like_payloads_stop_growing_the_schema(db, monkeypatch):
    from datetime import UTC, datetime

    monkeypatch.setattr(schema_discovery, "MAX_SCHEMA_CHARS", 2_000)
    observer = schema_discovery.Observer()
    now = datetime.now(UTC)
    observer.add("type:m.a", "kafka", "t", "m.a", {"k0": 1}, now)
    observer.flush()
    for i in range(200):
        observer.add("type:m.a", "kafka", "t", "m.a", {f"key-{i}": i}, now)
    observer.flush()
    row = ObservedSchema.objects.get(subject="type:m.a")
    assert row.too_varied and row.sample_count == 201 and set(row.schema["properties"]) == {"k0"}
