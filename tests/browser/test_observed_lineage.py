"""Observed lineage on the monitor in Chromium: a service nobody designed publishes on a designed
stream, a group consumes;
the dashboard lists the connection under drift, draws it dashed on the graph, and a Designer
adds it to the design with one click.
"""

from __future__ import annotations

import os
import uuid

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from eventhub.sdk import LocalSchemas, Producer
from tests.browser.conftest import LiveApp
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

PREFIX = f"lineage-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def app(make_live_app) -> LiveApp:
    return make_live_app(
        env={
            "EVENTHUB_RUN_LOOPS": "1",
            "EVENTHUB_WORKERS": "inprocess",
            "EVENTHUB_CHANNEL_LAYER": "memory",
            "EVENTHUB_INDEX_INCLUDE": f"{PREFIX}-*",
            "EVENTHUB_BUS": "redis",
        },
        name="lineage",
    )


def test_an_observed_connection_is_shown_and_added_to_the_design(app, page_as):
    service, stream, group = f"loyalty{uuid.uuid4().hex[:6]}", f"{PREFIX}-points", f"{PREFIX}-mailer"
    # The design knows the stream and its event, but nobody producing or consuming it.
    app.shell(
        "from designer.models import EventType, Topic\n"
        f"topic = Topic.objects.create(name={stream!r}, bus='redis', address={stream!r}, x=100, y=100)\n"
        "EventType.objects.get_or_create(name='points.earned', defaults={'topic': topic, 'x': 300, 'y': 100})\n"
    )
    bus = open_bus("redis", url=os.environ["REDIS_URL"])
    try:
        bus.create_topic(stream)
        schemas = LocalSchemas({"points.earned": {"schema": {"type": "object"}, "version": 1, "topic": stream}})
        with Producer(bus, service, schemas, heartbeat_interval_s=None) as producer:
            for i in range(3):
                producer.publish("points.earned", {"points": i})
        with bus.consumer(group, [stream]) as consumer:
            taken: list = []
            wait_until(lambda: taken.extend(consumer.poll(0.5, 3)) or len(taken) >= 3, 30, "the events consumed")
            consumer.commit(taken)
    finally:
        bus.close()

    page = page_as("designer", app)
    page.goto("/monitor/")
    row = page.locator("#drift-observed tbody tr", has_text=service)
    expect(row).to_be_visible(timeout=60_000)
    expect(row).to_contain_text("points.earned")
    expect(row).to_contain_text(group)
    observed_on_graph = "() => window.EventHubDashboard.currentGraph().edges('.observed').length"
    wait_until(lambda: page.evaluate(observed_on_graph) >= 2, 30, "the observed edges on the graph")

    row.get_by_role("button", name="Add to design").click()
    expect(page.locator("#observed-note")).to_contain_text(f"service {service}")
    created = app.shell(
        "from designer.models import Producer, Consumer\n"
        f"print(Producer.objects.filter(service__name={service!r}, event_type__name='points.earned').count(),"
        f" Consumer.objects.filter(group={group!r}).count())"
    )
    assert created.stdout.split()[-2:] == ["1", "1"]
    assert not page_as.errors(page)
