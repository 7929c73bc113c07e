"""The traces pages (/traces/, /traces/<id>/), the payload API, and the links to traces from
the dead-letter, catalog and event store pages: what each persona gets.

The rows are written as the indexer writes them (its own tests cover how they come off the
bus, tests/eventstore/test_traces.py the traces read from real buses).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from deadletters.models import AuditEntry, DeadLetter
from designer.models import EventType, SchemaVersion, Service
from eventstore.models import IndexedEvent

CORRELATION = "order-77"
NOW = datetime.now(UTC)
PII_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "email": {"type": "string", "x-eventhub-pii": True}},
}


def _event(n: int, ce_id: str, ce_type: str, source: str, cause: str = "", **fields) -> IndexedEvent:
    return IndexedEvent(
        bus="kafka",
        topic="orders",
        partition=0,
        offset=str(n),
        timestamp=NOW - timedelta(seconds=10 - n),
        key_text="o-77",
        ce_id=ce_id,
        ce_type=ce_type,
        ce_source=source,
        correlation_id=CORRELATION,
        causation_id=cause,
        size=40,
        validity=fields.pop("validity", IndexedEvent.NO_SCHEMA),
        **fields,
    )


@pytest.fixture
def trace(db):
    """order (payload kept, pii marked) -> payment (invalid at $.amount) -> a dead letter of the payment."""
    Service.objects.create(name="Checkout", slug="checkout")
    order_type = EventType.objects.create(name="order.placed")
    SchemaVersion.objects.create(event_type=order_type, version=1, schema=PII_SCHEMA)
    order = _event(
        0, "e-order", "order.placed", "/services/checkout", payload=b'{"order_id":"o-77","email":"ann@example.com"}'
    )
    payment = _event(
        1,
        "e-pay",
        "payment.captured",
        "/services/billing",
        cause="e-order",
        validity=IndexedEvent.INVALID,
        invalid_path="$.amount",
        invalid_rule="minimum",
    )
    IndexedEvent.objects.bulk_create([order, payment])
    dead = DeadLetter.objects.create(
        bus="kafka",
        dlq_topic="orders.dlq",
        dlq_offset="3",
        source_topic="orders",
        event_id="e-pay",
        error_class="CardDeclined",
        group="billing",
        headers=[["ce_id", "e-pay"], ["x-eventhub-correlation-id", CORRELATION]],
    )
    return {"order": IndexedEvent.objects.get(ce_id="e-order"), "dead_letter": dead}


def test_the_trace_page_shows_lanes_events_the_dead_letter_and_the_invalid_path(client_as, viewer, trace):
    response = client_as(viewer).get(f"/traces/{CORRELATION}/")
    assert response.status_code == 200
    page = response.content.decode()
    data = json.loads(page.split('<script id="trace-data" type="application/json">')[1].split("</script>")[0])
    assert [(e["id"], e["service"]) for e in data["events"]] == [("e-order", "checkout"), ("e-pay", "billing")]
    assert data["dead_letters"][0]["id"] == trace["dead_letter"].pk
    assert f'href="/dead-letters/{trace["dead_letter"].pk}/"' in page
    assert "invalid at <code>$.amount</code> (minimum)" in page
    assert f'href="/events/{trace["order"].pk}/"' in page  # each event links to its page
    assert 'id="trace-design"' in page and "eventstore/trace.js" in page and "plotly-4.1.1.min.js" in page
    assert 'href="/traces/" aria-current="page"' in page  # the nav


def test_an_event_id_redirects_to_its_trace_and_an_unknown_id_is_404(client_as, viewer, trace):
    client = client_as(viewer)
    response = client.get("/traces/e-pay/")
    assert response.status_code == 302 and response["Location"] == f"/traces/{CORRELATION}/"
    assert client.get("/traces/nothing-like-it/").status_code == 404


def test_pages_need_a_login_and_take_only_get(client, client_as, viewer, trace):
    for url in ("/traces/", f"/traces/{CORRELATION}/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    viewer_client = client_as(viewer)
    assert viewer_client.post(f"/traces/{CORRELATION}/").status_code == 405
    assert viewer_client.post("/traces/").status_code == 405


def test_the_list_page_filters_and_says_what_is_wrong(client_as, viewer, trace):
    client = client_as(viewer)
    page = client.get("/traces/", {"type": "payment.captured", "has_dead_letter": "true"}).content.decode()
    assert f'href="/traces/{CORRELATION}/"' in page and "billing, checkout" in page
    assert CORRELATION not in client.get("/traces/", {"service": "shipping"}).content.decode()
    bad = client.get("/traces/", {"since": "last tuesday"})
    assert bad.status_code == 400 and "Enter a valid date/time." in bad.content.decode()


def test_a_viewer_reads_a_kept_payload_masked_and_an_operator_unmasked_and_audited(client_as, viewer, operator, trace):
    url = f"/api/v1/traces/events/{trace['order'].pk}/payload"
    masked = client_as(viewer).get(url).json()
    assert masked["payload"] == {"order_id": "o-77", "email": "•••"} and masked["masked"] == ["$.email"]
    assert masked["encoding"] == "json" and masked["truncated"] is False
    shown = client_as(operator).get(url).json()
    assert shown["payload"]["email"] == "ann@example.com"
    assert AuditEntry.objects.filter(action="view_sensitive", detail__via="trace").count() == 1
    payment = IndexedEvent.objects.get(ce_id="e-pay")
    gone = client_as(viewer).get(f"/api/v1/traces/events/{payment.pk}/payload").json()  # not kept, no such topic
    assert (gone["found"], gone["payload"], gone["problem"]) == (False, None, "its topic is no longer on the bus")
    assert client_as(viewer).get("/api/v1/traces/events/999999/payload").status_code == 404


def test_the_dead_letter_page_opens_its_trace(client_as, viewer, trace):
    page = client_as(viewer).get(f"/dead-letters/{trace['dead_letter'].pk}/").content.decode()
    assert f'id="dl-open-trace" href="/traces/{CORRELATION}/"' in page


def test_the_catalog_event_page_links_to_recent_traces_of_its_type(client_as, viewer, trace):
    page = client_as(viewer).get("/catalog/events/order.placed/").content.decode()
    assert 'href="/traces/?type=order.placed"' in page


def test_the_event_store_page_links_to_the_traces(client_as, viewer, db):
    assert 'id="event-store-traces"' in client_as(viewer).get("/events/").content.decode()
