"""The /events/ page: per topic what is indexed; Operators change a topic's settings, Viewers only read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from eventhub import connections
from eventstore.indexer import Indexer, default_group
from eventstore.models import IndexedEvent, TopicIndexSetting
from tests.deadletters.support import step_until

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
