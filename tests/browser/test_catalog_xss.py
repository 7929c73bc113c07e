"""Catalog pages in real Chromium: hostile names and Markdown stay inert, live search works.

Script in an event description, a changelog, a field description or a service
name must never run: each test checks `window.__xss` stays undefined after the
page (and any htmx swap) has rendered, and that markup in names shows as text.
"""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser import json_from

pytestmark = pytest.mark.browser

DESCRIPTION = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> **Placed** orders.'
SERVICE_NAME = '<b>Evil</b><img src=x onerror="window.__xss=3">'


def _hostile_world(live_app) -> dict:
    """A service with markup in its name owning an event with script in its description."""
    tag = uuid.uuid4().hex[:8]
    code = f"""
import json
from designer.models import Consumer, EventType, SchemaVersion, Service
service = Service.objects.create(name={SERVICE_NAME + tag!r}, slug="evil-{tag}", description={DESCRIPTION!r})
event = EventType.objects.create(name="xss{tag}.happened", owner=service, description={DESCRIPTION!r})
SchemaVersion.objects.create(event_type=event, version=1, changelog="<script>window.__xss=4</script>first", schema={{
    "type": "object",
    "additionalProperties": False,
    "properties": {{"evil_field_{tag}": {{"type": "string", "description": "<img src=x onerror=window.__xss=5>",
                                          "enum": ["<script>window.__xss=6</script>"]}}}},
}})
Consumer.objects.create(service=service, event_type=event, fields_used=["<i>evil_field_{tag}</i>"])
print(json.dumps({{"event": event.name, "slug": service.slug, "field": "evil_field_{tag}", "name": service.name}}))
"""
    return json_from(live_app.shell(code))


def _assert_inert(page: Page) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('main script, main [onerror], main iframe').length") == 0


def test_hostile_event_and_service_text_does_not_run(live_app, page_as):
    world = _hostile_world(live_app)
    page = page_as("viewer")

    page.goto(f"/catalog/events/{world['event']}/")
    expect(page.locator("h1")).to_contain_text(world["event"])
    expect(page.locator(".markdown strong").first).to_have_text("Placed")  # the Markdown still renders
    owner = page.locator(f"a[href='/catalog/services/{world['slug']}/']").first
    expect(owner).to_have_text(world["name"])  # markup in a name shows as text...
    assert owner.locator("b, img").count() == 0  # ...and builds no elements
    expect(page.locator("table.fields")).to_contain_text(world["field"])
    expect(page.locator("table.fields")).to_contain_text("<img src=x onerror=window.__xss=5>")
    _assert_inert(page)

    page.goto(f"/catalog/services/{world['slug']}/")
    expect(page.locator("h1")).to_have_text(world["name"])
    _assert_inert(page)

    page.goto("/catalog/?tab=services&q=evil")
    expect(page.locator("table.results")).to_contain_text(world["name"])
    _assert_inert(page)
    assert not [e for e in page_as.errors(page) if e.startswith("pageerror")]


def test_live_search_swaps_in_results_with_the_matching_field(live_app, page_as):
    world = _hostile_world(live_app)
    page = page_as("viewer")
    page.goto("/catalog/")
    page.fill("#catalog-q", world["field"])  # htmx searches as the user types
    results = page.locator("#catalog-results")
    expect(results.locator(f"a[href='/catalog/events/{world['event']}/']")).to_be_visible()
    expect(results.locator(".match")).to_contain_text(f"Matched field {world['field']}")
    assert f"q={world['field']}" in page.url  # the URL follows the search: shareable, back button works
    _assert_inert(page)
    assert page_as.errors(page) == []


def test_designer_registers_a_version_with_hostile_text_through_the_form(live_app, page_as):
    world = _hostile_world(live_app)
    page = page_as("designer")
    page.goto(f"/catalog/events/{world['event']}/")
    page.click("text=Register a new version")
    schema = json.loads(page.locator("#id_schema").input_value())
    schema["properties"]["note"] = {"type": "string", "description": "<script>window.__xss=7</script>"}
    page.fill("#id_schema", json.dumps(schema, indent=2))
    page.fill("#id_changelog", '<img src=x onerror="window.__xss=8">Added **note**.')
    page.click("button[value=register]")
    expect(page.locator(".messages")).to_contain_text(f"Registered version 2 of {world['event']}.")
    expect(page.locator("#schema h2")).to_contain_text("Schema v2")
    expect(page.locator("#schema .markdown strong")).to_have_text("note")
    _assert_inert(page)


def test_viewer_sees_no_register_button(live_app, page_as):
    world = _hostile_world(live_app)
    page = page_as("viewer")
    page.goto(f"/catalog/events/{world['event']}/")
    expect(page.locator("h1")).to_contain_text(world["event"])
    expect(page.get_by_text("Register a new version")).to_have_count(0)
