"""The topic browser in Chromium: filter a busy topic, watch the scan's progress, open a message's trace.

The app runs its background loops (EVENTHUB_RUN_LOOPS=1) so its indexer indexes the topic:
then the message found by the browser links to its trace. Isolation as tests/browser/test_traces.py:
a monitor namespace of its own, an index pattern matching only this module's topics.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from eventhub.sdk import headers as h
from tests.browser.conftest import LiveApp
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

WAIT_MS = 30_000
PREFIX = f"browsepage-{uuid.uuid4().hex[:8]}"
RECORDS = 3_000


@pytest.fixture(scope="module")
def browse_app(make_live_app) -> LiveApp:
    return make_live_app(
        env={
            "EVENTHUB_RUN_LOOPS": "1",
            "EVENTHUB_WORKERS": "inprocess",
            "EVENTHUB_CHANNEL_LAYER": "memory",
            "EVENTHUB_MONITOR_NAMESPACE": PREFIX,
            "EVENTHUB_INDEX_INCLUDE": f"{PREFIX}-*",
            "EVENTHUB_DLQ_PATTERNS": f"{PREFIX}-*:dlq",
        },
        name="browse",
    )


@pytest.fixture
def busy_topic(redis_url):
    """RECORDS order events on a Redis stream; one of them, key "needle", carries a correlation id."""
    bus = open_bus("redis", url=redis_url)
    topic = f"{PREFIX}-{uuid.uuid4().hex[:6]}-orders"
    correlation = f"corr-{uuid.uuid4().hex[:8]}"
    bus.create_topic(topic)
    try:
        for n in range(RECORDS):
            headers = [(h.CE_ID, f"ev-{n}".encode()), (h.CE_TYPE, b"order.placed")]
            key = b"needle" if n == RECORDS // 3 else f"o-{n}".encode()
            if key == b"needle":
                headers.append((h.CORRELATION_ID, correlation.encode()))
            bus.send(topic, json.dumps({"order_id": f"o-{n}", "customer": {"id": f"c-{n % 7}"}}).encode(), key, headers)
        bus.flush()
    finally:
        bus.close()
    return {"topic": topic, "correlation": correlation}


def test_filter_a_busy_topic_and_open_a_messages_trace(browse_app, page_as, busy_topic):
    page = page_as("viewer", app=browse_app)
    topic, correlation = busy_topic["topic"], busy_topic["correlation"]
    # The app's indexer has the needle: its trace exists.
    wait_until(
        lambda: page.request.get(f"/api/v1/traces/{correlation}").status == 200, 60, "the app to index the needle"
    )

    page.goto("/browse/")
    page.locator(f"[data-bus=redis] a:text-is('{topic}')").click()
    expect(page.locator("h1")).to_have_text(topic)
    expect(page.locator("#browse-partitions")).to_contain_text(f"0: {RECORDS}")

    page.fill("#browse-key", "needle")
    page.fill("#browse-field", f"customer.id=c-{(RECORDS // 3) % 7}")
    page.click("#browse-run")
    progress = page.locator("#browse-progress")
    expect(progress).to_contain_text(f"scanned {RECORDS:,} of 100,000, 1 matched", timeout=WAIT_MS)
    rows = page.locator("#browse-results tbody tr.browse-row")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row.locator(".browse-key")).to_have_text("needle")
    expect(row.locator(".browse-type")).to_have_text("order.placed")
    expect(row.locator(".browse-valid")).to_have_text("no schema")

    row.click()  # the detail: headers and the payload
    detail = page.locator("#browse-results tr.browse-detail")
    expect(detail.locator(".browse-headers")).to_contain_text(correlation)
    expect(detail.locator(".browse-payload")).to_contain_text(f'"order_id": "o-{RECORDS // 3}"')

    # The scan is in the address: reloaded (or shared), the page scans the same way.
    page.reload()
    expect(page.locator("#browse-key")).to_have_value("needle")
    expect(progress).to_contain_text(f"scanned {RECORDS:,} of 100,000, 1 matched", timeout=WAIT_MS)
    expect(rows).to_have_count(1)

    # The text filter alone, newest first, a small limit: results and progress again.
    page.fill("#browse-key", "")
    page.fill("#browse-field", "")
    page.fill("#browse-limit", "5")
    page.click("#browse-run")
    expect(page.locator("#browse-progress")).to_contain_text("scanned 5 of 100,000, 5 matched", timeout=WAIT_MS)
    expect(rows.first.locator(".browse-key")).to_have_text(f"o-{RECORDS - 1}")

    # Back to the needle, then to its trace.
    page.fill("#browse-key", "needle")
    page.click("#browse-run")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first.locator(".browse-event")).to_be_visible(timeout=WAIT_MS)
    rows.first.locator(".browse-trace").click()
    expect(page).to_have_url(re.compile(rf"/traces/{correlation}/$"))
    assert page_as.errors(page) == []
