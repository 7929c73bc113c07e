"""From a dead letter to its trace, in Chromium, fed the real way.

The app runs its background loops (EVENTHUB_RUN_LOOPS=1): its indexer indexes what the
test publishes with the SDK on a Redis stream, and its dead-letter ingester stores what
a real SDK consumer dead-letters. A Viewer finds the dead letter in the list, opens it,
follows "Open trace" and sees the journey: a lane per service and the dead letter.

Isolation: a monitor namespace of its own gives this app indexer and ingester groups no
other app of the run shares; its index and dead-letter patterns match only PREFIX streams.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from eventhub.sdk import Consumer, Event, LocalSchemas, Producer
from eventhub.sdk import headers as h
from tests.browser.conftest import LiveApp
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

WAIT_MS = 30_000
PREFIX = f"trpages-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def trace_app(make_live_app) -> LiveApp:
    app = make_live_app(
        env={
            "EVENTHUB_RUN_LOOPS": "1",
            "EVENTHUB_WORKERS": "inprocess",
            "EVENTHUB_CHANNEL_LAYER": "memory",
            "EVENTHUB_MONITOR_NAMESPACE": PREFIX,
            "EVENTHUB_INDEX_INCLUDE": f"{PREFIX}-*",
            "EVENTHUB_DLQ_PATTERNS": f"{PREFIX}-*:dlq",
        },
        name="traces",
    )
    # The design the page highlights the trace on: checkout produces order.placed.
    app.shell(
        "from designer.models import EventType, Producer, Service\n"
        "checkout = Service.objects.create(name='Checkout', slug='checkout', x=0, y=0)\n"
        "Service.objects.create(name='Ledger', slug='ledger', x=0, y=200)\n"
        "order = EventType.objects.create(name='order.placed', x=250, y=0)\n"
        "Producer.objects.create(service=checkout, event_type=order)\n"
    )
    return app


@pytest.fixture
def failed_journey(trace_app, redis_url):
    """order.placed by checkout -> payment.captured by billing, which shipping fails: one dead letter."""
    bus = open_bus("redis", url=redis_url)
    topic = f"{PREFIX}-{uuid.uuid4().hex[:6]}-events"
    correlation = f"order-{uuid.uuid4().hex[:8]}"
    bus.create_topic(topic)
    schemas = LocalSchemas(
        {name: {"schema": {"type": "object"}, "topic": topic} for name in ("order.placed", "payment.captured")}
    )
    checkout = Producer(bus, "checkout", schemas, heartbeat_interval_s=None)
    billing = Producer(bus, "billing", schemas, heartbeat_interval_s=None)
    shipping = Consumer(bus, "shipping", f"{PREFIX}-shipping", [topic], max_attempts=1, heartbeat_interval_s=None)
    failed: list[str] = []

    @shipping.handler("payment.captured")
    def ship(event: Event) -> None:
        failed.append(event.id)
        raise RuntimeError("no parcel service today")

    shipping.handler("order.placed")(lambda event: None)
    try:
        order_id = checkout.publish_nowait("order.placed", {"order_id": "o-1"}, key="o-1", correlation_id=correlation)
        checkout.flush()
        cause = Event("order.placed", None, None, {h.CE_ID: order_id, h.CORRELATION_ID: correlation}, None, 1)
        billing.publish("payment.captured", {"order_id": "o-1"}, key="o-1", caused_by=cause)
        wait_until(lambda: shipping.run_once(0.2) >= 0 and failed, 30, "shipping to fail the payment")
    finally:
        shipping.close()
        checkout.close()
        billing.close()
        bus.close()
    return {
        "topic": topic,
        "correlation": correlation,
        "payment": failed[0],
        "redis_url": redis_url,
        "schemas": schemas,
    }


def test_from_a_dead_letter_to_its_trace(trace_app, page_as, failed_journey):
    page = page_as("viewer", app=trace_app)
    # The app's loops have indexed both events and stored the dead letter: what the page will show.
    wait_until(
        lambda: len(page.request.get(f"/api/v1/traces/{failed_journey['correlation']}").json().get("events", [])) == 2,
        30,
        "the app to index both events",
    )
    page.goto(f"/dead-letters/?topic={failed_journey['topic']}")
    row = page.locator("#dl-results tbody tr").first
    expect(row).to_contain_text("RuntimeError", timeout=WAIT_MS)
    row.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("Dead letter #")
    page.locator("#dl-open-trace").click()
    expect(page).to_have_url(re.compile(rf"/traces/{failed_journey['correlation']}/$"))
    # The timeline: one lane per producing service, and the dead letter's own lane.
    lanes = page.locator("#trace-timeline .ytick text")
    expect(lanes).to_have_text(["checkout", "billing", "dead letters"], timeout=WAIT_MS)
    expect(page.locator("#trace-timeline")).to_contain_text("new")  # the dead letter's mark: "#<id> new"
    expect(page.locator("#trace-timeline")).to_contain_text(" ms")  # the arrow's latency
    # The design: the producing service and the type it published, not the service that took no part.
    expect(page.locator("#trace-path-nodes")).to_have_text("Checkout, order.placed")
    dead = page.locator("#trace-dead-letters tbody tr")
    expect(dead).to_have_count(1)
    expect(dead).to_contain_text(failed_journey["payment"])
    expect(dead).to_contain_text("RuntimeError")
    # The trace is young: the page follows it. A refund reacting to the payment shows up without a reload.
    page.evaluate("window.__sameDocument = true")
    bus = open_bus("redis", url=failed_journey["redis_url"])
    try:
        with Producer(bus, "billing", failed_journey["schemas"], heartbeat_interval_s=None) as billing:
            cause = Event(
                None,
                None,
                None,
                {h.CE_ID: failed_journey["payment"], h.CORRELATION_ID: failed_journey["correlation"]},
                None,
                1,
            )
            billing.publish("payment.captured", {"order_id": "o-1", "refund": True}, caused_by=cause)
    finally:
        bus.close()
    expect(page.locator("#trace-count")).to_have_text("3", timeout=WAIT_MS)
    expect(page.locator("#trace-events tbody tr")).to_have_count(3)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#trace-live")).to_have_text("live: refreshing")
    dead.locator("a").click()
    expect(page.locator("h1")).to_contain_text("Dead letter #")
    assert page_as.errors(page) == []
