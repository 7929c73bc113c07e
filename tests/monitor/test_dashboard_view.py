"""GET /monitor/: the live dashboard page and what it embeds for its first paint."""

from __future__ import annotations

import json
import re

import pytest

from designer.models import Domain, Service, Topic
from eventhub import connections
from eventhub.broker import free_port
from monitor import pages, snapshots
from tests.monitor.support import monitor_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("monitor_store")]

URL = "/monitor/"


def snapshot(**changes) -> dict:
    """A snapshot as the collector writes it (the contract in docs/monitor.md), trimmed to what the page reads."""
    base = {
        "at": "2025-01-02T10:00:00.123456+00:00",
        "tick": 41,
        "tick_ms": 12.5,
        "buses": [
            {"kind": "kafka", "up": True, "error": None},
            {"kind": "redis", "up": True, "error": None},
        ],
        "topics": [
            {"bus": "kafka", "name": "orders", "partitions": 3, "end_offset": 120, "rate": 4.5, "dead_letter": False, "designed": True},
        ],
        "groups": [
            {
                "bus": "kafka", "group": "billing", "topic": "orders", "lag": 7, "lag_seconds": 3.2,
                "consume_rate": 4.1, "time_to_drain_s": 17.5, "status": "WARN",
                "reason": "lag grew in every window", "state": "Stable", "designed": True,
            },
        ],
        "services": [{"service": "billing", "up": True, "instances": 2, "last_seen": "2025-01-02T09:59:58+00:00", "last_error": None}],
        "alerts": [],
        "dead_letters": {"inflow_per_min": 0.0, "by_topic": {}},
        "drift": {"undesigned_topics": [], "undesigned_groups": [], "silent_edges": []},
        "edges": [],
    }  # fmt: skip
    base.update(changes)
    return base


def embedded(response, script_id: str):
    """The JSON a json_script tag carries, as the page's JavaScript reads it."""
    match = re.search(
        rf'<script id="{script_id}" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, f"no json_script {script_id!r} in the page"
    return json.loads(match.group(1))


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/") and "next=/monitor/" in response["Location"]


def test_wrong_method(client_as, viewer):
    assert client_as(viewer).post(URL).status_code == 405


def test_viewer_gets_the_latest_snapshot_and_the_design(client_as, viewer):
    domain = Domain.objects.create(name="Checkout")
    Service.objects.create(name="billing", domain=domain, x=10, y=20)
    Topic.objects.create(name="Orders", address="orders", bus="kafka", domain=domain)
    stored = snapshot()
    snapshots.save(stored)

    response = client_as(viewer).get(URL)

    assert response.status_code == 200
    page_field = {"page": 0, "pages": 1, "size": pages.PAGE_SIZE, "total": 1, "filter": ""}
    assert embedded(response, "monitor-snapshot") == {**stored, "groups_page": page_field}
    graph = embedded(response, "monitor-graph")
    assert {(n["kind"], n["label"]) for n in graph["nodes"]} == {("service", "billing"), ("topic", "Orders")}
    page = response.content.decode()
    assert '<option value="checkout">Checkout</option>' in page
    assert "tick 41" in page
    # The page is useful before the first frame: no "waiting" state, no banner.
    assert re.search(r'<div id="monitor-empty" class="empty" hidden>', page)
    assert "bus is down" not in page
    # Real tables with headers, charts with titles.
    assert '<th scope="col">Group</th>' in page and '<th scope="col">Last seen</th>' in page
    for title in ("Throughput per topic", "Lag per group", "Dead-letter inflow"):
        assert title in page


def test_of_many_groups_the_page_embeds_the_first_page_of_the_table(client_as, viewer):
    """The groups table shows a page at a time, worst first; the page carries that page, not every row."""
    rows = [
        {"bus": "kafka", "group": f"g{n:04d}", "topic": "orders", "lag": n, "status": "OK"}
        for n in range(pages.PAGE_SIZE + 50)
    ]
    rows[7]["status"] = "STOP"
    snapshots.save(snapshot(groups=rows))

    shown = embedded(client_as(viewer).get(URL), "monitor-snapshot")

    assert len(shown["groups"]) == pages.PAGE_SIZE
    assert shown["groups"][0]["group"] == "g0007"  # the stopped one first, then the most lag
    assert [g["lag"] for g in shown["groups"][1:4]] == [349, 348, 347]
    assert shown["groups_page"] == {"page": 0, "pages": 2, "size": pages.PAGE_SIZE, "total": 350, "filter": ""}


def test_before_the_first_tick_the_page_says_it_is_waiting(client_as, viewer):
    response = client_as(viewer).get(URL)
    assert response.status_code == 200
    assert embedded(response, "monitor-snapshot") is None
    page = response.content.decode()
    assert '<div id="monitor-empty" class="empty">' in page
    assert "Waiting for the collector…" in page and "is <code>make run</code> running?" in page


def test_a_bus_that_is_down_is_announced_and_its_error_escaped(client_as, viewer):
    error = "NoBrokersAvailable <script>alert(1)</script>"
    snapshots.save(
        snapshot(buses=[{"kind": "kafka", "up": False, "error": error}, {"kind": "redis", "up": True, "error": None}])
    )
    page = client_as(viewer).get(URL).content.decode()
    assert "Kafka bus is down: NoBrokersAvailable &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "Redis bus is down" not in page


def test_domain_filter_keeps_its_choice_and_refuses_unknown_domains(client_as, viewer):
    Domain.objects.create(name="Checkout")
    client = client_as(viewer)
    assert '<option value="checkout" selected>' in client.get(URL + "?domain=checkout").content.decode()
    assert client.get(URL + "?domain=nope").status_code == 404


def test_the_page_renders_when_the_snapshot_store_does_not_answer(client_as, viewer, settings):
    settings.EVENTHUB_CHANNEL_LAYER = "redis"
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    connections.reset()
    try:
        response = client_as(viewer).get(URL)
    finally:
        connections.reset()
    assert response.status_code == 200
    assert "The latest snapshot could not be read" in response.content.decode()
    assert embedded(response, "monitor-snapshot") is None
