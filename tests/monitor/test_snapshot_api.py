"""GET /api/v1/monitor/snapshot: the contract the dashboard relies on, and who may read it."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from monitor import snapshots
from tests.monitor.support import group_row, make_collector, monitor_store, produce_and_consume  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_store")]

URL = "/api/v1/monitor/snapshot"
TOP_KEYS = {
    "at",
    "tick",
    "tick_ms",
    "buses",
    "topics",
    "groups",
    "services",
    "alerts",
    "dead_letters",
    "drift",
    "edges",
}
TOPIC_KEYS = {"bus", "name", "partitions", "end_offset", "rate", "dead_letter", "designed"}
GROUP_KEYS = {
    "bus", "group", "topic", "lag", "lag_seconds", "consume_rate", "time_to_drain_s",
    "status", "reason", "state", "designed",
}  # fmt: skip


def test_anonymous_is_refused(client):
    assert client.get(URL).status_code in (401, 403)


def test_wrong_method(client_as, viewer):
    assert client_as(viewer).post(URL).status_code == 405


def test_before_the_first_tick_an_empty_snapshot(client_as, viewer):
    response = client_as(viewer).get(URL)
    assert response.status_code == 200
    assert response.json() == snapshots.empty_snapshot()


def test_token_auth_works(client, viewer):
    token = Token.objects.create(user=viewer)
    response = client.get(URL, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert set(response.json()) >= TOP_KEYS


@pytest.mark.parametrize("layer", ["redis", "memory"])
def test_lag_appears_within_two_ticks(client_as, viewer, bus, unique, settings, layer):
    settings.EVENTHUB_CHANNEL_LAYER = layer
    topic, group = unique("orders"), unique("billing")
    produce_and_consume(bus, topic, group, produced=9, consumed=2)
    collector = make_collector(bus.kind, unique)
    api = client_as(viewer)
    try:
        for _ in range(2):
            collector.tick()
            snapshot = api.get(URL).json()
            if group_row(snapshot, group, topic):
                break
    finally:
        collector.close()
    assert set(snapshot) >= TOP_KEYS
    row = group_row(snapshot, group, topic)
    assert row is not None and row["lag"] == 7
    assert set(row) >= GROUP_KEYS
    assert set(next(t for t in snapshot["topics"] if t["name"] == topic)) >= TOPIC_KEYS
    assert {"kind", "up", "error"} <= set(snapshot["buses"][0])
    assert set(snapshot["dead_letters"]) == {"inflow_per_min", "by_topic"}
    assert set(snapshot["drift"]) == {"undesigned_topics", "undesigned_groups", "silent_edges"}
    assert snapshot["tick"] >= 1


def test_both_buses_merge_into_one_snapshot(client_as, viewer, unique):
    from eventhub.bus import open_bus
    from tests.conftest import bus_options

    names = {}
    collectors = []
    try:
        for kind in ("kafka", "redis"):
            with open_bus(kind, **bus_options(kind)) as adapter:
                names[kind] = (unique("orders"), unique("billing"))
                produce_and_consume(adapter, *names[kind], produced=4, consumed=1)
            collectors.append(make_collector(kind, unique))
        for collector in collectors:
            collector.tick()
    finally:
        for collector in collectors:
            collector.close()
    snapshot = client_as(viewer).get(URL).json()
    assert {b["kind"] for b in snapshot["buses"]} == {"kafka", "redis"}
    for kind, (topic, group) in names.items():
        assert group_row(snapshot, group, topic)["bus"] == kind
        assert group_row(snapshot, group, topic)["lag"] == 3
