"""The /events/ page: per topic what is indexed; Operators change a topic's settings, Viewers only read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from eventhub import connections
from eventstore.indexer import Indexer, default_group
from eventstore.models import IndexedEvent, TopicIndexSetting
from tests.deadletters.support import step_until
from tests.waiting import wait_until

URL = "/events/"
SETTINGS_URL = "/events/settings"


@pytest.fixture(autouse=True)
def _fresh_bus_clients():
    """The page reads lag through the shared adapters: close them, the brokers outlive no test."""
    yield
    connections.reset()


@pytest.fixture
def indexed(db):
    now = timezone.now()
    IndexedEvent.objects.bulk_create(
        IndexedEvent(
            bus="kafka",
            topic="orders-page",
            partition=0,
            offset=str(i),
            timestamp=now - timedelta(minutes=i),
            size=10,
            validity=IndexedEvent.VALID,
        )
        for i in range(3)
    )
    TopicIndexSetting.objects.create(bus="redis", topic="payments-page", sample_rate=0.5, keep_payloads=True)


def test_the_page_lists_topics_for_a_viewer(client_as, viewer, indexed):
    response = client_as(viewer).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "orders-page" in page and "payments-page" in page
    assert "50 %" in page and "kept" in page and "eventhub-indexer." in page
    assert 'id="event-store-setting"' not in page  # no form for a viewer
    assert 'href="/events/"' in page  # the nav link


def test_login_is_required(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_viewer_cannot_change_settings(client_as, viewer, db):
    response = client_as(viewer).post(SETTINGS_URL, {"bus": "kafka", "topic": "orders", "sample_rate": "0.1"})
    assert response.status_code == 403
    assert not TopicIndexSetting.objects.exists()


def test_an_operator_changes_settings(client_as, operator, indexed):
    client = client_as(operator)
    assert 'id="event-store-setting"' in client.get(URL).content.decode()
    data = {"bus": "kafka", "topic": "orders-page", "sample_rate": "0.2", "keep_payloads": "on", "retention_days": "3"}
    response = client.post(SETTINGS_URL, data)
    assert response.status_code == 302 and response["Location"] == URL
    setting = TopicIndexSetting.objects.get(bus="kafka", topic="orders-page")
    assert (setting.sample_rate, setting.keep_payloads, setting.retention_days) == (0.2, True, 3)
    # The same topic again updates its row.
    client.post(SETTINGS_URL, {**data, "sample_rate": "1", "keep_payloads": ""})
    setting.refresh_from_db()
    assert (setting.sample_rate, setting.keep_payloads) == (1.0, False)
    assert TopicIndexSetting.objects.filter(topic="orders-page").count() == 1


def test_bad_settings_are_refused(client_as, operator, db):
    response = client_as(operator).post(
        SETTINGS_URL, {"bus": "nats", "topic": "orders", "sample_rate": "1.5", "retention_days": "0"}
    )
    assert response.status_code == 400
    assert not TopicIndexSetting.objects.exists()


def test_wrong_methods(client_as, operator, db):
    client = client_as(operator)
    assert client.get(SETTINGS_URL).status_code == 405
    assert client.post(URL).status_code == 405


def _row_of(page: str, topic: str) -> str:
    start = page.index(f"<td>{topic}</td>")
    return page[start : page.index("</tr>", start)]


def test_the_page_shows_the_indexers_lag(bus, unique, settings, client_as, viewer):
    settings.EVENTHUB_MONITOR_NAMESPACE = unique("ns")
    topic = unique("lagging")
    bus.create_topic(topic)
    bus.publish(topic, b"{}")
    indexer = Indexer([bus.kind], buses={bus.kind: bus}, include=[topic], discover_every_s=0.2)
    assert indexer.group == default_group()
    try:
        step_until(indexer, lambda: sum(p.lag for p in bus.lag(indexer.group, topic)) == 0, what="caught up")
    finally:
        indexer.close()
    bus.publish(topic, b"{}")
    bus.publish(topic, b"{}")
    row = _row_of(client_as(viewer).get(URL).content.decode(), topic)
    cells = [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]
    assert cells[1] == "1" and cells[-1] == "2", cells  # one indexed, two not read yet


# --------------------------------------------------------------------------- one event
PII_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "email": {"type": "string", "x-eventhub-pii": True}},
}


def _index_one(bus, topic: str, value: bytes, headers=None) -> IndexedEvent:
    bus.publish(topic, value, key=b"o-1", headers=headers or [("ce_id", b"ev-1"), ("ce_type", b"order.paid")])
    indexer = Indexer([bus.kind], buses={bus.kind: bus}, include=[topic], discover_every_s=0.2)
    try:
        return step_until(indexer, lambda: IndexedEvent.objects.filter(topic=topic).first(), what="the row")
    finally:
        indexer.close()


def test_an_event_page_reads_the_payload_from_the_bus_and_masks_it(bus, unique, client_as, viewer, admin):
    from designer.models import EventType, SchemaVersion

    SchemaVersion.objects.create(event_type=EventType.objects.create(name="order.paid"), version=1, schema=PII_SCHEMA)
    topic = unique("paid")
    bus.create_topic(topic)
    row = _index_one(bus, topic, b'{"order_id": "o-1", "email": "ann@example.com"}')
    assert row.payload is None  # the index does not keep it

    page = client_as(viewer).get(f"/events/{row.pk}/").content.decode()
    assert "read from the bus by position" in page and "o-1" in page
    assert "ann@example.com" not in page and "•••" in page and "$.email" in page
    page = client_as(admin).get(f"/events/{row.pk}/").content.decode()
    assert "ann@example.com" in page and 'id="event-revealed"' in page


def test_an_event_no_longer_on_the_bus_says_so(bus, unique, client_as, viewer):
    topic = unique("gone")
    bus.create_topic(topic)
    row = _index_one(bus, topic, b'{"order_id": "o-1"}')
    bus.delete_topic(topic)
    wait_until(lambda: not bus.topic_exists(topic), 30, "the topic deleted")
    bus.create_topic(topic)
    bus.publish(topic, b'{"order_id": "someone else"}', headers=[("ce_id", b"ev-other")])

    page = client_as(viewer).get(f"/events/{row.pk}/").content.decode()
    assert 'id="event-payload-problem"' in page and "someone else" not in page
    assert "another event is at this position" in page or "no longer on the bus" in page


def test_a_kept_payload_is_shown_from_the_index_binary_as_hex(db, client_as, viewer):
    row = IndexedEvent.objects.create(
        bus="kafka",
        topic="nowhere",
        partition=0,
        offset="5",
        timestamp=timezone.now(),
        size=3,
        validity=IndexedEvent.NO_SCHEMA,
        payload=b"\x00\xff\x10",
    )
    page = client_as(viewer).get(f"/events/{row.pk}/").content.decode()
    assert "kept in the index" in page and "00 ff 10" in page and "binary" in page
    assert client_as(viewer).get("/events/999999/").status_code == 404
    assert Client().get(f"/events/{row.pk}/").status_code == 302  # anonymous: to the login page
