"""The topic browser's API (/api/v1/bus/<bus>/topics/...) on the real buses: filters, cursors, hostile records."""

from __future__ import annotations

import base64
import json
import time

import pytest

from deadletters.models import AuditEntry
from designer.models import EventType, SchemaVersion
from eventhub import connections
from eventhub.bus import UnknownTopic

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "order_id": {"type": "string"},
        "email": {"type": "string", "x-eventhub-pii": True},
        "total": {"type": "number", "minimum": 0},
    },
}


@pytest.fixture(autouse=True)
def _fresh_bus_clients():
    yield
    connections.reset()


@pytest.fixture
def topic(bus, unique):
    name = unique("browse")
    bus.create_topic(name)
    yield name
    try:
        bus.delete_topic(name)
    except UnknownTopic:
        pass


@pytest.fixture
def order_type(db):
    event_type = EventType.objects.create(name="shop.order.placed")
    SchemaVersion.objects.create(event_type=event_type, version=1, schema=ORDER_SCHEMA)
    return event_type


def url(bus, topic: str) -> str:
    return f"/api/v1/bus/{bus.kind}/topics/{topic}/messages"


def order(bus, topic, n: int, *, customer="c-1", total=10, structured=False, headers=()):
    data = {"order_id": f"o-{n}", "email": f"ann{n}@example.com", "total": total, "customer": {"id": customer}}
    if structured:
        envelope = {"specversion": "1.0", "id": f"ev-{n}", "type": "shop.order.placed", "source": "t", "data": data}
        return bus.publish(
            topic,
            json.dumps(envelope).encode(),
            key=f"k-{n}".encode(),
            headers=[("content-type", b"application/cloudevents+json"), *headers],
        )
    return bus.publish(
        topic,
        json.dumps(data).encode(),
        key=f"k-{n}".encode(),
        headers=[("ce_id", f"ev-{n}".encode()), ("ce_type", b"shop.order.placed"), *headers],
    )


def get(client, bus, topic, **params):
    response = client.get(url(bus, topic), params)
    assert response.status_code == 200, response.content[:500]
    return response.json()


def ids(answer) -> list[str]:
    return [m["payload"]["order_id"] for m in answer["messages"]]


def test_newest_first_by_default_and_oldest_first_from_an_offset(bus, topic, client_as, viewer, order_type):
    published = [order(bus, topic, n) for n in range(5)]
    client = client_as(viewer)

    newest = get(client, bus, topic)
    assert ids(newest) == ["o-4", "o-3", "o-2", "o-1", "o-0"]
    assert newest["scanned"] == 5 and newest["matched"] == 5 and newest["next"] is None
    first = newest["messages"][0]
    assert first["type"] == "shop.order.placed" and first["key"] == "k-4" and first["key_encoding"] == "utf-8"
    assert first["valid"] is True and first["schema_version"] == 1 and first["id"] == "ev-4"
    assert first["partition"] == 0 and str(first["offset"]) == str(published[4].offset)

    oldest = get(client, bus, topic, from_offset=str(published[2].offset))
    assert ids(oldest) == ["o-2", "o-3", "o-4"]


def test_each_filter(bus, topic, client_as, viewer, admin, order_type):
    order(bus, topic, 0, customer="c-1", total=10)
    order(bus, topic, 1, customer="c-2", total=12, headers=[("tenant", b"acme")])
    order(bus, topic, 2, customer="c-1", total=12, structured=True)
    bus.publish(topic, b"plain text mentioning o-1", key=b"\x00\xffbin", headers=[("ce_type", b"other.type")])
    client = client_as(viewer)

    assert ids(get(client, bus, topic, key="k-1")) == ["o-1"]
    assert [m["key"] for m in get(client, bus, topic, key="hex:00ff62696e")["messages"]] == [
        base64.b64encode(b"\x00\xffbin").decode()
    ]
    assert ids(get(client, bus, topic, header="tenant:acme")) == ["o-1"]
    assert get(client, bus, topic, header=["tenant:acme", "ce_type:nope"])["matched"] == 0
    assert ids(get(client, bus, topic, type="shop.order.placed")) == ["o-2", "o-1", "o-0"]  # both content modes
    assert [m["type"] for m in get(client, bus, topic, type="other.type")["messages"]] == ["other.type"]
    assert ids(get(client, bus, topic, field="customer.id=c-1")) == ["o-2", "o-0"]
    assert ids(get(client, bus, topic, field=["customer.id=c-1", "total=12"])) == ["o-2"]
    # The viewer's q skips types that mark fields (test_sensitive_fields_...): the admin's does not.
    both = get(client_as(admin), bus, topic, q="o-1")
    assert both["matched"] == 2 and both["messages"][0]["payload"] == "plain text mentioning o-1"
    assert both["scanned"] == 4


def test_a_structured_event_is_decoded(bus, topic, client_as, viewer, order_type):
    order(bus, topic, 7, structured=True)
    [message] = get(client_as(viewer), bus, topic)["messages"]
    assert message["content_mode"] == "structured" and message["type"] == "shop.order.placed"
    assert message["id"] == "ev-7" and message["payload"]["order_id"] == "o-7" and message["valid"] is True


def test_the_cursor_goes_on_where_the_budget_or_the_limit_stopped(bus, topic, client_as, viewer, order_type):
    for n in range(7):
        order(bus, topic, n, customer="c-1" if n % 2 == 0 else "c-2")
    client = client_as(viewer)

    seen, scanned, cursor = [], [], None
    while True:
        params = {"field": "customer.id=c-1", "budget": "3"}
        if cursor:
            params["cursor"] = cursor
        answer = get(client, bus, topic, **params)
        seen += ids(answer)
        scanned.append(answer["scanned"])
        cursor = answer["next"]
        if cursor is None:
            break
    assert seen == ["o-6", "o-4", "o-2", "o-0"]
    assert sum(scanned) == 7 and max(scanned) <= 3

    page1 = get(client, bus, topic, limit="2", from_offset="0" if bus.kind == "kafka" else "0-0")
    page2 = get(client, bus, topic, limit="2", cursor=page1["next"])
    assert ids(page1) == ["o-0", "o-1"] and ids(page2) == ["o-2", "o-3"]


def test_from_time(bus, topic, client_as, viewer, order_type):
    for n in range(2):
        order(bus, topic, n)
    last = bus.read(topic, 0, bus.scan_positions(topic, newest_first=False)[0], limit=10)[-1]
    wait_until_after(last.timestamp_ms + 5)
    boundary = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time())) + f".{int(time.time() * 1000) % 1000:03d}Z"
    wait_until_after(int(time.time() * 1000) + 5)
    for n in range(2, 4):
        order(bus, topic, n)
    assert ids(get(client_as(viewer), bus, topic, from_time=boundary)) == ["o-2", "o-3"]


def wait_until_after(ms: int) -> None:
    from tests.waiting import wait_until

    wait_until(lambda: time.time() * 1000 > ms, 5, "the clock to move on")


def test_hostile_records_are_all_answered(bus, topic, client_as, viewer, order_type):
    hostile = [
        (b'{"order_id": "h"}', b"k", [("bad", b"\xff\xfe\x00"), ("ce_type", b"shop.order.placed")]),
        (b"\x00\x01binary\xff", b"\x00\xff", []),
        (b"x" * (1024 * 1024 - 2048), b"big", []),
        (b"[" * 5000 + b"]" * 5000, b"deep", [("ce_type", b"shop.order.placed")]),
        (b'{"order_id": 12, "total": -1', b"invalid", [("ce_type", b"shop.order.placed")]),
        (b'{"order_id": "x\\u0000y"}\x00', b"nul", [("ce_type", b"shop.order.placed")]),
        (b"not json at all", b"lies", [("content-type", b"application/cloudevents+json")]),
        (b'{"type": 5, "data_base64": "%%%"}', b"lies2", [("content-type", b"application/cloudevents+json")]),
        (None, b"tombstone", [("x-eventhub-schema-version", b"99999999999999999999")]),
    ]
    for value, key, headers in hostile:
        bus.publish(topic, value, key=key, headers=headers)
    client = client_as(viewer)

    answer = get(client, bus, topic)
    by_key = {m["key"]: m for m in answer["messages"]}
    assert answer["matched"] == len(hostile)
    assert by_key["k"]["headers"][0] == {
        "name": "bad",
        "value": base64.b64encode(b"\xff\xfe\x00").decode(),
        "encoding": "base64",
    }
    assert by_key[base64.b64encode(b"\x00\xff").decode()]["key_encoding"] == "base64"
    assert by_key[base64.b64encode(b"\x00\xff").decode()]["payload_encoding"] == "base64"
    big = by_key["big"]
    assert big["truncated"] is True and big["size"] == 1024 * 1024 - 2048 and len(big["payload"]) == 64 * 1024
    assert big["valid"] is None  # no type, no schema to check against
    assert by_key["deep"]["valid"] is False and by_key["deep"]["payload"] == "•••"  # hidden: its type marks fields
    assert by_key["invalid"]["valid"] is False and by_key["invalid"]["error"].startswith("$: not JSON")
    assert by_key["nul"]["payload"] == "•••"  # not JSON, and its type hides fields from a viewer
    assert by_key["lies"]["content_mode"] == "structured" and by_key["lies"]["type"] == ""
    assert by_key["tombstone"]["payload"] is None and by_key["tombstone"]["size"] == 0
    # Every filter, on every hostile record: still answered.
    for params in ({"field": "a.b=1"}, {"type": "shop.order.placed"}, {"q": "binary"}, {"key": "hex:00ff"}):
        assert client.get(url(bus, topic), params).status_code == 200


def test_invalid_payloads_name_the_failing_path(bus, topic, client_as, viewer, order_type):
    bus.publish(topic, b'{"total": -1, "email": "secret@example.com"}', headers=[("ce_type", b"shop.order.placed")])
    [message] = get(client_as(viewer), bus, topic)["messages"]
    assert message["valid"] is False and message["error"].startswith("$")
    assert "secret@example.com" not in json.dumps(message)


def test_sensitive_fields_are_masked_and_unmasked_reads_audited(bus, topic, client_as, viewer, admin, order_type):
    order(bus, topic, 1)
    [masked] = get(client_as(viewer), bus, topic)["messages"]
    assert masked["payload"]["email"] == "•••" and masked["masked"] == ["$.email"]
    assert not AuditEntry.objects.exists()
    # A search must not tell a hidden value: q and field skip types with marks for the viewer.
    assert get(client_as(viewer), bus, topic, q="ann1@example")["matched"] == 0
    assert get(client_as(viewer), bus, topic, field="email=ann1@example.com")["matched"] == 0
    assert get(client_as(viewer), bus, topic, field="customer.id=c-1")["matched"] == 1  # not a marked field

    [shown] = get(client_as(admin), bus, topic)["messages"]
    assert shown["payload"]["email"] == "ann1@example.com" and shown["masked"] == []
    entry = AuditEntry.objects.get()
    assert entry.actor == admin and entry.detail["via"] == "topic-browser" and entry.detail["topic"] == topic
    assert get(client_as(admin), bus, topic, q="ann1@example")["matched"] == 1


def test_the_topic_list(bus, topic, client_as, viewer):
    bus.publish(topic, b"{}")
    answer = client_as(viewer).get(f"/api/v1/bus/{bus.kind}/topics/").json()
    row = next(t for t in answer["topics"] if t["name"] == topic)
    assert row == {"name": topic, "partitions": 1, "end_offsets": {"0": 1}, "designed": False}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"budget": "1000001"}, "budget"),
        ({"budget": "x"}, "budget"),
        ({"partition": "-1"}, "partition"),
        ({"from_offset": "abc"}, "from_offset"),
        ({"from_time": "yesterday"}, "from_time"),
        ({"from_time": "2026-01-01T00:00:00Z", "from_offset": "1"}, "from_time"),
        ({"from_offset": "1", "newest": "true"}, "newest"),
        ({"newest": "maybe"}, "newest"),
        ({"key": "hex:zz"}, "key"),
        ({"header": "nocolon"}, "header"),
        ({"field": "noequals"}, "field"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"q": "x" * 1001}, "q"),
    ],
)
def test_bad_parameters_are_400_naming_them(bus, topic, client_as, viewer, params, parameter):
    response = client_as(viewer).get(url(bus, topic), params)
    assert response.status_code == 400
    assert parameter in response.json()


def test_unknown_bus_topic_or_partition_is_404(bus, topic, client_as, viewer, unique):
    client = client_as(viewer)
    assert client.get(url(bus, unique("missing"))).status_code == 404
    assert client.get(f"/api/v1/bus/nats/topics/{topic}/messages").status_code == 404
    assert client.get("/api/v1/bus/nats/topics/").status_code == 404
    assert client.get(url(bus, topic), {"partition": "7"}).status_code == 404
    assert client.get(url(bus, "bad name with spaces")).json() == {
        "detail": client.get(url(bus, "bad name with spaces")).json()["detail"]
    }


def test_roles(bus, topic, client, client_as, designer, operator):
    assert client.get(url(bus, topic)).status_code in (401, 403)
    assert client_as(designer).get(url(bus, topic)).status_code == 200
    assert client_as(operator).get(url(bus, topic)).status_code == 200
    assert client_as(operator).post(url(bus, topic)).status_code == 405


def test_the_version_a_record_names_its_trace_and_its_indexed_event(bus, topic, client_as, viewer, order_type):
    from django.utils import timezone

    from eventstore.models import IndexedEvent

    SchemaVersion.objects.create(event_type=order_type, version=2, schema={"type": "object", "required": ["v2"]})
    names_v1 = [("ce_type", b"shop.order.placed"), ("x-eventhub-schema-version", b"1")]
    first = bus.publish(topic, b'{"order_id": "o-1"}', headers=[*names_v1, ("x-eventhub-correlation-id", b"corr-1")])
    bus.publish(topic, b'{"order_id": "o-2"}', headers=[("ce_type", b"shop.order.placed")])  # names none: latest
    indexed = IndexedEvent.objects.create(
        bus=bus.kind,
        topic=topic,
        partition=0,
        offset=str(first.offset),
        timestamp=timezone.now(),
        size=19,
        validity=IndexedEvent.VALID,
    )

    latest, named = get(client_as(viewer), bus, topic)["messages"]
    assert (named["schema_version"], named["valid"]) == (1, True)
    assert (latest["schema_version"], latest["valid"]) == (2, False) and "v2" in latest["error"]
    assert named["trace_url"] == "/traces/corr-1/" and named["event_url"] == f"/events/{indexed.pk}/"
    assert latest["trace_url"] is None and latest["event_url"] is None


def test_the_pages_list_topics_and_show_one(bus, topic, client_as, viewer, unique):
    bus.publish(topic, b"{}")
    client = client_as(viewer)
    listing = client.get("/browse/").content.decode()
    assert f'href="/browse/{bus.kind}/{topic}/"' in listing
    page = client.get(f"/browse/{bus.kind}/{topic}/")
    assert page.status_code == 200
    assert f'data-api-url="/api/v1/bus/{bus.kind}/topics/{topic}/messages"' in page.content.decode()
    assert "0: 1" in page.content.decode()
    assert client.get(f"/browse/{bus.kind}/{unique('missing')}/").status_code == 404
    assert client.post(f"/browse/{bus.kind}/{topic}/").status_code == 405


def test_a_stream_named_with_a_newline_is_listed_without_a_link(client_as, viewer, unique):
    from eventhub.bus import open_bus
    from tests.conftest import bus_options

    redis = open_bus("redis", **bus_options("redis"))
    hostile = unique("bad") + "\n<b>x</b>"
    redis.create_topic(hostile)
    try:
        listing = client_as(viewer).get("/browse/")
        assert listing.status_code == 200
        assert "&lt;b&gt;x&lt;/b&gt;" in listing.content.decode()
    finally:
        redis.delete_topic(hostile)
        redis.close()
