"""A candidate schema replayed against the last real events of its type (the event store + the bus).

On both buses: events go through the broker, the indexer records where they are, and the
compatibility API, the register page and the CLI read them back and validate them.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from designer.models import EventType, SchemaVersion
from eventhub import connections
from eventstore.indexer import Indexer
from eventstore.models import IndexedEvent, TopicIndexSetting
from tests.deadletters.support import step_until

V1 = {
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "order_id": {"type": "string"},
        "currency": {"type": "string"},
        "email": {"type": "string", "x-eventhub-pii": True},
    },
}
EUR_ONLY = {**V1, "properties": {**V1["properties"], "currency": {"enum": ["EUR"]}}}


@pytest.fixture(autouse=True)
def _fresh_bus_clients():
    yield
    connections.reset()


@pytest.fixture
def traffic(bus, unique, db):
    """order.placed v1 registered (mode NONE), and 30 of its events on a topic among 30 others: 10 in USD."""
    event = EventType.objects.create(name="order.placed", compatibility_mode="NONE")
    SchemaVersion.objects.create(event_type=event, version=1, schema=V1)
    topic = unique("traffic")
    bus.create_topic(topic)
    for i in range(30):
        currency = "USD" if i % 3 == 0 else "EUR"
        payload = {"order_id": f"o-{i}", "currency": currency, "email": f"buyer{i}@example.com"}
        bus.publish(topic, json.dumps(payload).encode(), headers=[("ce_type", b"order.placed"), ("ce_id", b"x")])
        bus.publish(topic, b'{"other": true}', headers=[("ce_type", b"parcel.shipped"), ("ce_id", b"y")])
    indexer = Indexer([bus.kind], buses={bus.kind: bus}, include=[topic], discover_every_s=0.2)
    try:
        step_until(indexer, lambda: IndexedEvent.objects.filter(topic=topic).count() == 60, what="60 rows")
    finally:
        indexer.close()
    return {"topic": topic, "event": event}


def compatibility(client, schema, **extra):
    response = client.post(
        "/api/v1/registry/events/order.placed/compatibility",
        {"schema": schema, **extra},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_the_api_says_how_many_real_events_a_candidate_rejects(traffic, client_as, viewer):
    answer = compatibility(client_as(viewer), EUR_ONLY)
    assert answer["traffic"]["checked"] == 30 and answer["traffic"]["failing"] == 10
    assert answer["traffic"]["unread"] == 0
    examples = answer["traffic"]["examples"]
    assert len(examples) == 5 and {e["path"] for e in examples} == {"$.currency"}
    assert all(f"{traffic['topic']}/0@" in e["offset"] for e in examples)
    assert "USD" in examples[0]["message"]

    assert compatibility(client_as(viewer), V1)["traffic"]["failing"] == 0
    assert compatibility(client_as(viewer), EUR_ONLY, traffic_limit=6)["traffic"]["checked"] == 6
    assert compatibility(client_as(viewer), EUR_ONLY, traffic_limit=0)["traffic"] is None


def test_messages_hide_sensitive_values_from_who_may_not_see_them(traffic, client_as, viewer, admin):
    short_email = {**V1, "properties": {**V1["properties"], "email": {"maxLength": 3, "x-eventhub-pii": True}}}
    hidden = compatibility(client_as(viewer), short_email)["traffic"]
    assert hidden["failing"] == 30 and not any("@example.com" in e["message"] for e in hidden["examples"])
    shown = compatibility(client_as(admin), short_email)["traffic"]
    assert any("@example.com" in e["message"] for e in shown["examples"])


def test_events_gone_from_the_bus_are_counted_unread_unless_the_index_kept_them(bus, traffic, client_as, viewer):
    kept = list(IndexedEvent.objects.filter(topic=traffic["topic"], ce_type="order.placed").order_by("id")[:3])
    for row in kept:  # as if the topic kept payloads when these were indexed
        row.payload = b'{"order_id": "k", "currency": "GBP"}'
        row.save(update_fields=["payload"])
    TopicIndexSetting.objects.create(bus=bus.kind, topic=traffic["topic"], keep_payloads=True)
    bus.delete_topic(traffic["topic"])

    answer = compatibility(client_as(viewer), EUR_ONLY)["traffic"]
    assert (answer["checked"], answer["failing"], answer["unread"]) == (3, 3, 27)


def test_the_register_page_shows_the_rejected_events_before_registering(traffic, client_as, designer):
    client = client_as(designer)
    url = "/catalog/events/order.placed/versions/new/"
    form = {"schema": json.dumps(EUR_ONLY), "examples": "[]", "changelog": "EUR only"}

    checked = client.post(url, {**form, "action": "check"})
    assert checked.status_code == 200 and "10 of the last 30 real events would be rejected" in checked.content.decode()

    warned = client.post(url, {**form, "action": "register"})
    page = warned.content.decode()
    assert warned.status_code == 409 and 'id="traffic-examples"' in page and 'id="register-anyway"' in page
    assert not SchemaVersion.objects.filter(event_type=traffic["event"], version=2).exists()

    confirmed = client.post(url, {**form, "accept_traffic": "1"})
    assert confirmed.status_code == 302
    assert SchemaVersion.objects.get(event_type=traffic["event"], version=2).schema == EUR_ONLY


def test_the_cli_exits_1_when_real_events_would_fail(traffic, tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(V1))
    new.write_text(json.dumps(EUR_ONLY))
    with pytest.raises(SystemExit) as exit_:
        call_command("schema_compat", str(old), str(new), "--mode", "NONE", "--against-traffic", "order.placed")
    assert exit_.value.code == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["compatible"] is True and answer["traffic"]["failing"] == 10

    call_command("schema_compat", str(old), str(old), "--mode", "NONE", "--against-traffic", "order.placed")
    assert json.loads(capsys.readouterr().out)["traffic"]["failing"] == 0
    with pytest.raises(SystemExit) as exit_:
        call_command("schema_compat", str(old), str(new), "--against-traffic", "no.such")
    assert exit_.value.code == 2
