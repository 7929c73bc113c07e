"""Traces on the real buses: events published with the SDK (chains through `caused_by=`), indexed
by stepping the Indexer, dead letters made by a real consumer and stored by the real ingester;
read back through /api/v1/traces/. Then the causal order and the cursor alone, without a bus.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deadletters.ingest import Ingester
from deadletters.models import DeadLetter
from designer.models import EventType, SchemaVersion, Service
from eventhub.sdk import Consumer, Event, LocalSchemas, Producer
from eventhub.sdk import headers as h
from eventstore import traces
from eventstore.models import IndexedEvent
from tests.deadletters.support import step_until
from tests.eventstore.test_indexer import make_indexer

LOOSE = {"type": "object"}
ORDER = {"type": "object", "properties": {"amount": {"type": "integer", "minimum": 0}}}
TYPES = ("order.placed", "payment.captured", "stock.reserved", "parcel.shipped")


def cause(event_id: str, correlation_id: str) -> Event:
    """The event a handler would be reacting to, as `caused_by=` takes it (built by hand, as handlers' tests do)."""
    return Event(None, None, None, {h.CE_ID: event_id, h.CORRELATION_ID: correlation_id}, None, 1)


@pytest.fixture
def shop(db, bus, unique):
    """A fresh topic, an indexer for it, and producers of three services (checkout is designed)."""
    prefix = unique("tr")
    topic = f"{prefix}-events"
    bus.create_topic(topic)
    schemas = LocalSchemas({name: {"schema": LOOSE, "version": 1, "topic": topic} for name in TYPES})
    Service.objects.create(name="Checkout", slug="checkout")
    registered = EventType.objects.create(name="order.placed")
    SchemaVersion.objects.create(event_type=registered, version=1, schema=ORDER)
    producers = {
        name: Producer(bus, name, schemas, heartbeat_interval_s=None) for name in ("checkout", "billing", "stock")
    }
    indexer = make_indexer(bus, prefix, unique("indexer"))
    yield {"topic": topic, "prefix": prefix, "producers": producers, "indexer": indexer}
    indexer.close()
    for producer in producers.values():
        producer.close()


def index(shop, count: int) -> None:
    """Step the indexer until the topic has `count` rows."""
    step_until(
        shop["indexer"],
        lambda: IndexedEvent.objects.filter(topic=shop["topic"]).count() >= count,
        what=f"{count} indexed events",
    )


def journey(shop, correlation_id: str, key: str = "o-1", amount: int = 10) -> dict[str, str]:
    """order -> payment, order -> stock -> parcel (a chain and a branch); returns the ids by type."""
    checkout, billing, stock = (shop["producers"][name] for name in ("checkout", "billing", "stock"))
    order = checkout.publish_nowait("order.placed", {"amount": amount}, key=key, correlation_id=correlation_id)
    checkout.flush()
    payment = billing.publish_nowait("payment.captured", {}, key=key, caused_by=cause(order, correlation_id))
    billing.flush()
    reserved = stock.publish_nowait("stock.reserved", {}, key=key, caused_by=cause(order, correlation_id))
    stock.flush()
    parcel = stock.publish_nowait("parcel.shipped", {}, key=key, caused_by=cause(reserved, correlation_id))
    stock.flush()
    return {"order": order, "payment": payment, "reserved": reserved, "parcel": parcel}


def test_a_trace_reads_a_chain_and_a_branch_in_causal_order(bus, shop, client_as, viewer, unique):
    correlation = unique("order")
    ids = journey(shop, correlation, amount=-1)  # the order fails its registered schema
    index(shop, 4)
    answer = client_as(viewer).get(f"/api/v1/traces/{correlation}")
    assert answer.status_code == 200
    trace = answer.json()
    assert trace["correlation_id"] == correlation and trace["truncated"] is False and trace["dead_letters"] == []
    order = [event["id"] for event in trace["events"]]
    assert sorted(order) == sorted(ids.values())
    # Each effect after its cause; the branch's two children after the order, the parcel after the stock.
    assert order[0] == ids["order"]
    assert order.index(ids["parcel"]) > order.index(ids["reserved"])
    first = trace["events"][0]
    assert (first["type"], first["service"], first["source"]) == ("order.placed", "checkout", "/services/checkout")
    assert (first["valid"], first["invalid_path"], first["schema_version"]) == (False, "$.amount", 1)
    assert first["causation_id"] == "" and first["latency_ms"] is None
    parcel = next(event for event in trace["events"] if event["id"] == ids["parcel"])
    assert parcel["causation_id"] == ids["reserved"] and parcel["service"] == "stock"
    assert parcel["valid"] is None  # parcel.shipped has no registered schema
    assert parcel["latency_ms"] >= 0 and parcel["bus"] == bus.kind and parcel["topic"] == shop["topic"]
    assert trace["services"] == ["billing", "checkout", "stock"] and trace["live"] is True


def test_a_trace_is_found_by_event_id_and_by_key(shop, client_as, viewer, unique):
    correlation = unique("order")
    ids = journey(shop, correlation, key="customer-42")
    other = unique("order")
    journey(shop, other, key="customer-7")
    index(shop, 8)
    client = client_as(viewer)
    by_event = client.get(f"/api/v1/traces/{ids['parcel']}").json()
    assert by_event["correlation_id"] == correlation and len(by_event["events"]) == 4
    listed = client.get("/api/v1/traces/", {"key": "customer-42"}).json()
    assert [row["correlation_id"] for row in listed["results"]] == [correlation]
    assert listed["results"][0]["events"] == 4 and listed["results"][0]["url"] == f"/api/v1/traces/{correlation}"
    by_id = client.get("/api/v1/traces/", {"event_id": ids["payment"]}).json()
    assert [row["correlation_id"] for row in by_id["results"]] == [correlation]


def test_a_dead_letter_of_the_trace_is_in_it(bus, shop, client_as, viewer, unique):
    correlation = unique("order")
    ids = journey(shop, correlation)
    billing = Consumer(bus, "billing", unique("billing"), [shop["topic"]], max_attempts=1, heartbeat_interval_s=None)

    @billing.handler("payment.captured")
    def refuse(event: Event) -> None:
        raise ValueError("card declined")

    for other in ("order.placed", "stock.reserved", "parcel.shipped"):
        billing.handler(other)(lambda event: None)  # not billing's business: handled, not dead-lettered

    dlq = h.dead_letter_topic(shop["topic"], bus.kind)
    ingester = Ingester(
        [bus.kind], buses={bus.kind: bus}, group=unique("ingester"), patterns=[dlq], discover_every_s=0.2
    )
    try:
        # The consumer fails the payment once (max_attempts=1): dead-lettered, then ingested.
        step_until(ingester, lambda: billing.run_once(0.2) >= 0 and DeadLetter.objects.exists(), 30, "a dead letter")
    finally:
        billing.close()
        ingester.close()
    index(shop, 4)
    trace = client_as(viewer).get(f"/api/v1/traces/{correlation}").json()
    [dead] = trace["dead_letters"]
    stored = DeadLetter.objects.get()
    assert dead == {
        "id": stored.pk,
        "event_id": ids["payment"],
        "status": "new",
        "error_class": "ValueError",
        "group": stored.group,
        "service": stored.service,
        "topic": shop["topic"],
        "replay_count": 0,
        "failed_at": dead["failed_at"],
    }
    listed = client_as(viewer).get("/api/v1/traces/", {"has_dead_letter": "true", "key": "o-1"}).json()
    assert [(row["correlation_id"], row["dead_letters"]) for row in listed["results"]] == [(correlation, 1)]


def test_the_list_filters_by_type_service_time_dead_letter_and_validity(shop, client_as, viewer, unique):
    valid, broken = unique("ok"), unique("bad")
    journey(shop, valid)
    only = shop["producers"]["billing"]
    only.publish("payment.captured", {}, correlation_id=broken)
    shop["producers"]["checkout"].publish("order.placed", {"amount": -3}, correlation_id=broken)
    index(shop, 6)
    client = client_as(viewer)

    def listed(**query) -> list[str]:
        answer = client.get("/api/v1/traces/", query)
        assert answer.status_code == 200, answer.content
        return [row["correlation_id"] for row in answer.json()["results"] if row["correlation_id"] in (valid, broken)]

    assert listed(type="stock.reserved") == [valid]
    assert listed(service="stock") == [valid]
    assert listed(service="Checkout") == [broken, valid]  # by name: the designed service's slug
    assert listed(invalid="true") == [broken]
    assert listed(invalid="false", service="billing") == [valid]
    assert listed(has_dead_letter="false", type="payment.captured") == [broken, valid]
    assert listed(has_dead_letter="true") == []
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert listed(since=later) == []
    assert listed(until=later, type="order.placed") == [broken, valid]
    row = next(
        r
        for r in client.get("/api/v1/traces/", {"type": "order.placed"}).json()["results"]
        if r["correlation_id"] == broken
    )
    assert (row["events"], row["invalid"], row["types"]) == (2, 1, ["order.placed", "payment.captured"])
    assert row["services"] == ["billing", "checkout"] and row["dead_letters"] == 0


def test_the_list_pages_by_cursor_newest_first_without_repeating_a_trace(shop, client_as, viewer, unique):
    producer = shop["producers"]["checkout"]
    names = [unique(f"c{n}") for n in range(5)]
    for name in names:
        producer.publish("order.placed", {"amount": 1}, correlation_id=name)
    # The oldest trace grows last: its newest event puts it first.
    producer.publish("order.placed", {"amount": 2}, correlation_id=names[0])
    index(shop, 6)
    client = client_as(viewer)
    seen: list[str] = []
    page = client.get("/api/v1/traces/", {"service": "checkout", "limit": 2}).json()
    while True:
        seen += [row["correlation_id"] for row in page["results"]]
        if not page["next"]:
            break
        page = client.get(page["next"]).json()
    assert seen == [names[0], names[4], names[3], names[2], names[1]]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-01"}, "until"),
        ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "until"),
        ({"has_dead_letter": "maybe"}, "has_dead_letter"),
        ({"invalid": "1"}, "invalid"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"type": "x" * 201}, "type"),
    ],
)
def test_bad_filters_are_a_400_naming_the_field(client_as, viewer, query, field):
    answer = client_as(viewer).get("/api/v1/traces/", query)
    assert answer.status_code == 400
    assert list(answer.json()) == [field]


def test_an_unknown_trace_is_a_404_with_a_json_error(client_as, viewer):
    answer = client_as(viewer).get("/api/v1/traces/no-such-chain")
    assert answer.status_code == 404
    assert "correlation id" in answer.json()["detail"]


def test_anonymous_gets_no_trace(client, db):
    assert client.get("/api/v1/traces/anything").status_code in (401, 403)
    assert client.get("/api/v1/traces/").status_code in (401, 403)


def test_a_trace_is_cut_at_its_limit(db):
    now = datetime.now(UTC)
    IndexedEvent.objects.bulk_create(
        IndexedEvent(
            bus="kafka",
            topic="cut",
            partition=0,
            offset=str(n),
            timestamp=now + timedelta(milliseconds=n),
            ce_id=f"e-{n}",
            correlation_id="long-chain",
            causation_id=f"e-{n - 1}" if n else "",
            size=2,
            validity=IndexedEvent.NO_SCHEMA,
        )
        for n in range(12)
    )
    trace = traces.find_trace("long-chain", limit=10)
    assert trace["truncated"] is True
    assert [event["id"] for event in trace["events"]] == [f"e-{n}" for n in range(10)]


# --------------------------------------------------------------------------- plain logic
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _row(pk: int, ms: int, ce_id: str, causation_id: str = "") -> dict:
    return {"_pk": pk, "_ts": T0 + timedelta(milliseconds=ms), "ce_id": ce_id, "causation_id": causation_id}


@pytest.mark.parametrize(
    "rows, expected",
    [
        # A chain whose effect has an earlier broker time than its cause (clocks of two partitions).
        ([_row(1, 0, "a"), _row(2, 50, "b", "a"), _row(3, 30, "c", "b")], ["a", "b", "c"]),
        # A branch: the children by time, each after the root.
        ([_row(1, 10, "a"), _row(2, 40, "b", "a"), _row(3, 20, "c", "a"), _row(4, 5, "z")], ["z", "a", "c", "b"]),
        # A replay (same id, later) is not the cause; its effect follows the first.
        ([_row(1, 0, "a"), _row(2, 100, "a"), _row(3, 50, "b", "a")], ["a", "b", "a"]),
        # A cause outside the trace: a root, by time.
        ([_row(1, 20, "b", "gone"), _row(2, 10, "a")], ["a", "b"]),
        # A cycle made by hand-written headers: last, by time.
        ([_row(1, 0, "a", "b"), _row(2, 10, "b", "a"), _row(3, 20, "c")], ["c", "a", "b"]),
    ],
)
def test_causal_order(rows, expected):
    assert [row["ce_id"] for row in traces.causal_order(rows)] == expected


def test_a_cursor_goes_round_and_a_forged_one_is_refused():
    moment = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert traces.decode_cursor(traces.encode_cursor(moment, 42)) == (moment, 42)
    for forged in ("", "abc", traces.encode_cursor(moment, 1)[:-3], "MjAyNHwx"):
        with pytest.raises(traces.BadCursor):
            traces.decode_cursor(forged)


def test_services_map_to_designed_slugs(db):
    Service.objects.create(name="Order Desk", slug="orders")
    assert traces.services_of(["/services/orders", "/services/Order Desk", "/services/ghost", "urn:x", ""]) == {
        "/services/orders": "orders",
        "/services/Order Desk": "orders",
        "/services/ghost": "ghost",
        "urn:x": "urn:x",
        "": "",
    }
