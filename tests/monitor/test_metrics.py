"""/metrics: Prometheus text from the latest snapshot; a bearer token or a login."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import snapshots
from tests.monitor.support import monitor_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_store")]

URL = "/metrics"
SNAPSHOT = {
    **snapshots.empty_snapshot(),
    "at": "2026-01-01T00:00:00+00:00",
    "tick": 3,
    "tick_ms": 12.5,
    "buses": [{"kind": "kafka", "up": True, "error": None}, {"kind": "redis", "up": False, "error": "refused"}],
    "topics": [
        {"bus": "kafka", "name": "orders", "partitions": 3, "end_offset": 120, "rate": 4.5, "dead_letter": False, "designed": True},
        {"bus": "kafka", "name": "orders.dlq", "partitions": 1, "end_offset": 2, "rate": 0.05, "dead_letter": True, "designed": True},
    ],
    "groups": [
        {
            "bus": "kafka", "group": "billing", "topic": "orders", "lag": 17, "lag_seconds": 3.5, "consume_rate": 4.0,
            "time_to_drain_s": None, "status": "STALL", "reason": "stuck", "state": "Stable", "designed": True,
        }
    ],
    "services": [{"service": "billing", "up": True, "instances": 2, "last_seen": None, "last_error": None}],
    "alerts": [
        {"id": 1, "rule": "lag>10", "kind": "lag_messages", "subject": "kafka:orders/billing", "state": "firing"},
        {"id": 2, "rule": "lag>10", "kind": "lag_messages", "subject": "kafka:x/y", "state": "resolved"},
    ],
    "dead_letters": {"inflow_per_min": 3.0, "by_topic": {"orders.dlq": 3.0}},
}  # fmt: skip


def _samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_renders_the_stored_snapshot(client_as, viewer):
    snapshots.save(SNAPSHOT)
    response = client_as(viewer).get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = _samples(response.content.decode())
    assert values[("eventhub_bus_up", (("bus", "kafka"),))] == 1
    assert values[("eventhub_bus_up", (("bus", "redis"),))] == 0
    assert values[("eventhub_topic_end_offset", (("bus", "kafka"), ("topic", "orders")))] == 120
    assert values[("eventhub_topic_produce_rate", (("bus", "kafka"), ("topic", "orders")))] == 4.5
    group = (("bus", "kafka"), ("group", "billing"), ("topic", "orders"))
    assert values[("eventhub_group_lag_messages", group)] == 17
    assert values[("eventhub_group_lag_seconds", group)] == 3.5
    assert values[("eventhub_group_consume_rate", group)] == 4.0
    assert values[("eventhub_group_status", tuple(sorted(group + (("status", "STALL"),))))] == 1
    assert values[("eventhub_group_status", tuple(sorted(group + (("status", "OK"),))))] == 0
    assert values[("eventhub_service_up", (("service", "billing"),))] == 1
    assert values[("eventhub_service_instances", (("service", "billing"),))] == 2
    assert values[("eventhub_alerts_firing", (("kind", "lag_messages"), ("rule", "lag>10")))] == 1
    assert values[("eventhub_dead_letter_inflow_per_minute", (("topic", "orders.dlq"),))] == 3.0
    assert values[("eventhub_collector_tick_seconds", ())] == 0.0125


def test_without_a_token_setting_a_login_is_required(client, settings):
    settings.EVENTHUB_METRICS_TOKEN = ""
    response = client.get(URL)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_with_a_token_setting_the_bearer_token_opens_it(client, settings):
    settings.EVENTHUB_METRICS_TOKEN = "s3cret-token"
    assert client.get(URL).status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Basic s3cret-token").status_code == 401
    response = client.get(URL, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    assert b"eventhub_bus_up" in response.content


def test_wrong_method(client_as, viewer):
    assert client_as(viewer).post(URL).status_code == 405


def test_empty_before_the_first_tick(client_as, viewer):
    response = client_as(viewer).get(URL)
    assert response.status_code == 200
    assert b"# TYPE eventhub_bus_up gauge" in response.content
