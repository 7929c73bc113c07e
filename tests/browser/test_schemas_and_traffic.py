"""Schemas and real traffic in Chromium: a schema discovered from traffic approved, and a new
version that real events would fail warned about before it is registered.

The app runs its loops (the indexer among them) on a prefix of its own; the tests write
events to Redis streams under that prefix and wait on what the pages show.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from tests.browser.conftest import LiveApp
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

PREFIX = f"discpages-{uuid.uuid4().hex[:8]}"
TYPE = f"loyalty{uuid.uuid4().hex[:6]}.points_earned"


@pytest.fixture(scope="module")
def app(make_live_app) -> LiveApp:
    return make_live_app(
        env={
            "EVENTHUB_RUN_LOOPS": "1",
            "EVENTHUB_WORKERS": "inprocess",
            "EVENTHUB_CHANNEL_LAYER": "memory",
            "EVENTHUB_INDEX_INCLUDE": f"{PREFIX}-*",
        },
        name="discovered",
    )


def publish(stream: str, event_type: str, payloads: list[dict]) -> None:
    bus = open_bus("redis", url=os.environ["REDIS_URL"])
    try:
        bus.create_topic(stream)
        for payload in payloads:
            headers = [("ce_type", event_type.encode()), ("ce_id", uuid.uuid4().hex.encode())]
            bus.publish(stream, json.dumps(payload).encode(), headers=headers)
    finally:
        bus.close()


def test_a_designer_registers_a_schema_discovered_in_traffic(app, page_as):
    payloads = [{"customer_id": f"c-{i}", "points": 10 * i, "reason": "order"} for i in range(5)]
    publish(f"{PREFIX}-loyalty", TYPE, payloads)

    page = page_as("designer", app)
    page.goto("/events/discovered/")

    def listed() -> bool:  # the indexer writes its samples every few seconds: reload until the draft shows
        if page.get_by_role("link", name=TYPE).count():
            return True
        page.reload()
        return False

    wait_until(listed, 60, "the draft listed", every_s=1.0)
    page.get_by_role("link", name=TYPE).click()
    expect(page.locator("#discovered-samples")).to_have_text("5")
    expect(page.locator("#discovered-fields")).to_contain_text("customer_id")

    draft = json.loads(page.locator("#discovered-approve textarea").input_value())
    assert draft["required"] == ["customer_id", "points", "reason"]
    draft["properties"]["points"]["minimum"] = 0
    page.locator("#discovered-approve textarea").fill(json.dumps(draft))
    page.get_by_role("button", name="Register as the first version").click()

    page.wait_for_url(f"**/catalog/events/{TYPE}/")
    expect(page.locator("#schema")).to_contain_text("Schema v1")
    page.goto("/events/discovered/")
    expect(page.get_by_role("link", name=TYPE)).to_have_count(0)
    assert not page_as.errors(page)


def test_a_version_that_real_events_would_fail_is_registered_only_once_confirmed(app, page_as):
    name = f"shop{uuid.uuid4().hex[:6]}.order_paid"
    schema = {"type": "object", "properties": {"currency": {"type": "string"}}}
    app.shell(
        "from designer.models import EventType, SchemaVersion\n"
        f"event = EventType.objects.create(name={name!r}, compatibility_mode='NONE')\n"
        f"SchemaVersion.objects.create(event_type=event, version=1, schema={schema!r})\n"
    )
    publish(f"{PREFIX}-paid", name, [{"currency": c} for c in ("EUR", "USD", "EUR", "USD")])

    page = page_as("designer", app)
    page.goto(f"/catalog/events/{name}/")

    def indexed() -> bool:  # the fragment is read once per page load: reload until the indexer has them
        page.wait_for_selector("#validity-rate")
        if "4 events indexed" in page.locator("#validity-rate").inner_text():
            return True
        page.reload()
        return False

    wait_until(indexed, 60, "the four events indexed", every_s=1.0)
    page.goto(f"/catalog/events/{name}/versions/new/")
    eur_only = {"type": "object", "properties": {"currency": {"enum": ["EUR"]}}}
    page.locator("textarea[name=schema]").fill(json.dumps(eur_only))
    page.get_by_role("button", name="Register version").click()

    expect(page.locator("#traffic-verdict")).to_contain_text("2 of the last 4 real events would be rejected")
    expect(page.locator("#traffic-examples")).to_contain_text("$.currency")
    page.get_by_role("button", name="Register anyway").click()
    page.wait_for_url(f"**/catalog/events/{name}/?version=2")
    expect(page.locator("#schema")).to_contain_text("Schema v2")
    # The form that stopped to ask was served as 409 Conflict (not registered): Chromium logs that.
    assert [error for error in page_as.errors(page) if "status of 409" not in error] == []
