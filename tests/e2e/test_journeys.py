"""The first ten minutes, end to end: four journeys a newcomer takes, in real Chromium.

Each journey is one test that clicks through the real pages of a live EventHub
(Daphne, the test run's broker, Redis, see tests/browser/conftest.py and
./conftest.py) and asserts what the user sees. Nothing is mocked and nothing sleeps: every wait is
on something the page shows, with a deadline.

1. design: log in, draw a service and an event, register the event's schema,
   connect them, see both (and the arrow) in the flowchart.
2. catalog: search the demo shop by a field, open an event, compare two
   versions, try an incompatible version and be refused with the reasons.
3. monitor: the demo shop trading; charts and graph overlays move without a reload.
4. dead letters: a consumer fails on an event, the operator finds it, fixes the
   payload in the schema form, retries it, and watches it become resolved.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from eventhub.bus import open_bus
from eventhub.sdk import Consumer, Event
from eventhub.sdk import headers as h
from tests.browser.conftest import demo_shop, readme_screenshot
from tests.e2e import STREAM_PREFIX

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WAIT_MS = 45_000


# --------------------------------------------------------------------------- helpers
def _log_in_through_the_form(page: Page, app, role: str, path: str) -> None:
    """Open `path` anonymously, get sent to the login form, log in, land on `path`."""
    username, password = app.users[role]
    page.goto(path)
    expect(page).to_have_url(f"{app.url}/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form button[type=submit]")
    expect(page).to_have_url(f"{app.url}{path}")


def _add_node(page: Page, kind: str, name: str) -> str:
    """The toolbar's "+ Service" / "+ Event" form; returns the node's graph id (from the list view)."""
    name_input = page.locator("#new-node-name")
    page.click(f'[data-new="{kind}"]')
    try:  # a click before the canvas script has bound its toolbar opens nothing: click again
        expect(name_input).to_be_visible(timeout=5000)
    except AssertionError:
        page.click(f'[data-new="{kind}"]')
    name_input.fill(name)
    page.click('#new-node-form button[type="submit"]')
    item = page.locator("#outline-nodes li").filter(has_text=f"{kind.capitalize()}: {name}")
    expect(item).to_have_count(1)
    return item.get_attribute("data-node-id")


def _on_screen(page: Page, node_id: str) -> tuple[float, float]:
    box = page.locator("#cy").bounding_box()
    point = page.evaluate("(id) => window.eventhubCanvas.cy.getElementById(id).renderedPosition()", node_id)
    return box["x"] + point["x"], box["y"] + point["y"]


def _canvas_ready(page: Page, node_id: str) -> None:
    """Wait until the canvas has loaded (it lists `node_id`) and has no change in flight."""
    expect(page.locator(f'#outline-nodes li[data-node-id="{node_id}"]')).to_have_count(1)
    page.evaluate("() => window.eventhubCanvas.idle()")


def _drag(page: Page, source: str, target: str) -> None:
    """Press on one node, move to the other in steps (as a hand would), release."""
    x1, y1 = _on_screen(page, source)
    x2, y2 = _on_screen(page, target)
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, steps=8)
    page.mouse.move(x2, y2, steps=8)
    page.mouse.up()


# Which flowchart node draws a label, and whether an arrow joins two labels, read from Mermaid's SVG.
_MERMAID_NODE_ID = """([svg, label]) => {
  const node = [...document.querySelectorAll(svg + ' g.node')].find((g) => g.textContent.trim() === label);
  const id = node && node.id.match(/flowchart-([^-]+)-\\d+$/);  // "mermaid-123-flowchart-n1-0"
  return id ? id[1] : null;
}"""
_MERMAID_ARROWS = """([svg, a, b]) => [...document.querySelectorAll(svg + ' path[data-edge="true"]')]
  .filter((p) => (p.dataset.id || p.id).startsWith('L_' + a + '_' + b + '_')).length"""


def _arrows(page: Page, svg: str, source_label: str, target_label: str) -> int:
    source = page.evaluate(_MERMAID_NODE_ID, [svg, source_label])
    target = page.evaluate(_MERMAID_NODE_ID, [svg, target_label])
    assert source and target, f"{source_label!r} or {target_label!r} is not drawn"
    return page.evaluate(_MERMAID_ARROWS, [svg, source, target])


# --------------------------------------------------------------------------- 1. design
PAYMENT_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string", "description": "The order being paid."},
        "amount": {"type": "integer", "minimum": 0, "description": "Minor units (cents)."},
    },
}


def test_design_a_service_and_an_event_and_see_them_in_the_flowchart(live_app, page_as):
    tag = uuid.uuid4().hex[:6]
    service, event = f"checkout-{tag}", f"payment{tag}.requested"
    page = page_as(None)
    _log_in_through_the_form(page, live_app, "designer", "/designer/")
    expect(page.locator("#designer-toolbar")).to_be_visible()

    # 1. Draw a service and an event on the canvas.
    service_node = _add_node(page, "service", service)
    event_node = _add_node(page, "event", event)
    expect(page.locator(f'#outline-nodes li[data-node-id="{event_node}"] .lints')).to_contain_text(
        f"Nobody consumes {event}"
    )

    # 2. The flowchart (the designer's "Flowchart" button) already draws both, not yet joined.
    svg = "#flowchart [data-chart] svg"
    page.click("#flowchart-link")
    expect(page).to_have_url(f"{live_app.url}/designer/flowchart/")
    expect(page.locator(svg)).to_contain_text(service)
    expect(page.locator(svg)).to_contain_text(event)
    assert _arrows(page, svg, service, event) == 0

    # 3. The event's contract: from the canvas to the catalog, register the first schema.
    page.get_by_role("link", name="Open the canvas").click()
    _canvas_ready(page, event_node)
    page.mouse.click(*_on_screen(page, event_node))
    expect(page.locator("#panel-title")).to_have_text(event)
    page.click("#panel-catalog-link")
    expect(page.locator("h1")).to_contain_text(event)
    expect(page.locator("#schema")).to_contain_text("No schema registered yet.")
    page.get_by_role("link", name="Register the first version").click()
    expect(page).to_have_url(f"{live_app.url}/catalog/events/{event}/versions/new/")
    page.fill("#id_schema", json.dumps(PAYMENT_SCHEMA, indent=2))
    page.fill("#id_changelog", "First version: what checkout sends to ask for a payment.")
    page.fill("#id_examples", json.dumps([{"order_id": "o-1", "amount": 1250}]))
    page.get_by_role("button", name="Register version").click()
    expect(page.locator(".messages")).to_contain_text(f"Registered version 1 of {event}.")
    fields = page.locator("#schema table.fields")
    expect(fields.locator("td.name")).to_have_text(["order_id *", "amount *"])
    expect(page.locator("#examples")).to_contain_text("✓ valid")

    # 4. Back on the canvas: connect the service to the event (drag in connect mode).
    page.goto("/designer/")
    _canvas_ready(page, event_node)
    page.click("#connect-mode")
    expect(page.locator("#connect-mode")).to_have_attribute("aria-pressed", "true")
    _drag(page, service_node, event_node)
    expect(page.locator("#outline-edges li").filter(has_text=f"{service} produces {event}")).to_have_count(1)

    # 5. The flowchart follows the design: the arrow is there now.
    page.click("#flowchart-link")
    expect(page.locator(svg)).to_contain_text(service)
    expect(page.locator(svg)).to_contain_text(event)
    assert _arrows(page, svg, service, event) == 1
    assert page_as.errors(page) == []


# --------------------------------------------------------------------------- 2. catalog
def test_catalog_search_compare_and_a_refused_incompatible_version(world, page_as):
    page = page_as("designer", app=world)
    page.goto("/catalog/")

    # 1. Search by a field name: the events whose schemas have it, saying where it matched.
    page.fill("#catalog-q", "customer_id")
    expect(page).to_have_url(re.compile(r"/catalog/\?q=customer_id(&|$)"))  # live search keeps the address
    rows = page.locator("#catalog-results table.results tbody tr")
    expect(rows.filter(has_text="order.placed")).to_have_count(1)
    expect(rows.filter(has_text="notification.requested")).to_have_count(1)
    expect(rows.filter(has_text="shipment.dispatched")).to_have_count(0)
    expect(rows.filter(has_text="order.placed").locator(".match")).to_contain_text("customer_id")

    # 2. Open the event from the results: its contract, latest version first.
    rows.filter(has_text="order.placed").get_by_role("link", name="order.placed").click()
    expect(page).to_have_url(f"{world.url}/catalog/events/order.placed/")
    expect(page.locator("#schema h2")).to_contain_text("Schema v2")
    expect(page.locator("#schema td.name").filter(has_text="customer_id")).to_have_count(1)
    history = page.locator("#history tbody a[href^='?version=']")
    expect(history).to_have_text(["v3", "v2", "v1"])
    page.screenshot(path=str(readme_screenshot("catalog.png")))

    # 3. Compare v1 with v2: one optional field added, fine under the event's BACKWARD mode.
    compare = page.locator("#history form.compare-form")
    compare.locator("select[name=a]").select_option("1")
    compare.locator("select[name=b]").select_option("2")
    compare.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(f"{world.url}/catalog/events/order.placed/compare?a=1&b=2")
    expect(page.locator(".verdict")).to_contain_text("Under BACKWARD (STRICT), v2 can follow v1.")
    backward = page.locator("table.changes").first
    expect(backward.locator("tbody tr")).to_have_count(1)
    expect(backward).to_contain_text("#/properties/coupon")
    expect(backward.locator(".badge")).to_have_text("compatible")

    # 4. Register an incompatible v4: `total` becomes a plain number. Refused, with the reasons.
    page.goto("/catalog/events/order.placed/")
    page.get_by_role("link", name="Register a new version").click()
    schema = json.loads(page.input_value("#id_schema"))  # prefilled with v2, as a user would edit it
    schema["properties"]["total"] = {"type": "number"}
    page.fill("#id_schema", json.dumps(schema, indent=2))
    page.fill("#id_changelog", "Flatten total to a number.")
    page.fill("#id_examples", "[]")  # the prefilled v2 example (total as an object) no longer fits
    page.get_by_role("button", name="Register version").click()
    rejected = page.locator("#rejected")
    expect(rejected.locator(".verdict")).to_contain_text(
        "Not registered. Not BACKWARD compatible with version 2: "
        "The type of '#/properties/total' changed; old data of the previous type is rejected."
    )
    change = rejected.locator("table.changes tbody tr")
    expect(change).to_have_count(1)
    expect(change).to_contain_text("TYPE_CHANGED")
    expect(change).to_contain_text("#/properties/total")
    expect(change.locator(".badge")).to_have_text("breaking")
    breaking = rejected.locator("h3:has-text('Consumers that would break') + table tbody tr td:first-child")
    expect(breaking).to_have_text(["analytics", "inventory", "payments"])
    # The edit is still in the form, to fix or save as a draft.
    assert json.loads(page.input_value("#id_schema"))["properties"]["total"] == {"type": "number"}

    # 5. Nothing was saved.
    page.goto("/catalog/events/order.placed/")
    expect(history).to_have_text(["v3", "v2", "v1"])
    expect(page.locator("#schema h2")).to_contain_text("Schema v2")
    # The refusal answered 409, which Chromium logs; nothing else may have gone wrong.
    assert [e for e in page_as.errors(page) if "status of 409" not in e] == []


# --------------------------------------------------------------------------- 3. monitor
# Plotly keeps a chart's traces on its <div>; a trace's `meta` is its full name.
_TRACE = """([chart, name]) => {
  const div = document.getElementById(chart);
  return (div && div.data || []).find((t) => t.meta === name) || null;
}"""
_POINTS = "(args) => { const t = (" + _TRACE + ")(args); return t ? t.x.length : 0; }"
_HAS_TRAFFIC = "(args) => { const t = (" + _TRACE + ")(args); return !!t && t.y.some((v) => v > 0); }"
_OVERLAYS = """() => Object.fromEntries(window.eventhubMonitor.cy().edges()
  .filter((e) => e.data('overlay')).map((e) => [e.id(), e.data('overlay')]))"""


@pytest.fixture
def simulator(world) -> Iterator[subprocess.Popen]:
    """The demo shop's services, trading through the SDK against the world's buses (its
    consumer groups and streams are the demo's own)."""
    with demo_shop(world.env) as process:
        yield process


def test_monitor_charts_and_graph_follow_the_traffic_without_a_reload(world, simulator, page_as):
    page = page_as("viewer", app=world)
    page.goto("/monitor/")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    expect(page.locator("#monitor-connection")).to_have_text("live", timeout=WAIT_MS)
    page.wait_for_function("window.eventhubMonitor.state.socketFrames >= 1", timeout=WAIT_MS)

    # 1. The design, drawn read-only, with the shop's services reporting in.
    assert page.evaluate("window.eventhubMonitor.cy().nodes().length") > 5
    expect(page.locator("#services-table tbody")).to_contain_text("orders", timeout=WAIT_MS)

    # 2. Throughput: the orders topic gets a trace with traffic, and it keeps growing.
    page.wait_for_function(_HAS_TRAFFIC, arg=["chart-throughput", "orders"], timeout=WAIT_MS)
    points = page.evaluate(_POINTS, ["chart-throughput", "orders"])
    page.wait_for_function(
        "([args, n]) => (" + _POINTS + ")(args) >= n + 3", arg=[["chart-throughput", "orders"], points], timeout=WAIT_MS
    )

    # 3. The graph: rates on the produces edges, lag on the consumes edges, and they change.
    page.wait_for_function(
        "() => window.eventhubMonitor.cy().edges('.produces').some((e) => /\\/s$/.test(e.data('overlay')))",
        timeout=WAIT_MS,
    )
    page.wait_for_function(
        "() => window.eventhubMonitor.cy().edges('.consumes').some((e) => /lag/.test(e.data('overlay')))",
        timeout=WAIT_MS,
    )
    before = page.evaluate(_OVERLAYS)
    page.wait_for_function(
        "(before) => { const now = (" + _OVERLAYS + ")();"
        " return Object.keys(now).some((id) => id in before && now[id] !== before[id]); }",
        arg=before,
        timeout=WAIT_MS,
    )

    assert page.evaluate("window.__sameDocument") is True
    assert page_as.errors(page) == []


# --------------------------------------------------------------------------- 4. dead letters
CHARGE_SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount", "currency"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0, "description": "In the currency's main unit."},
        "currency": {"enum": ["EUR", "USD"]},
    },
}


class AmountRejected(ValueError):
    """What billing raises for a charge it cannot take."""


class Billing:
    """The billing service's consumer (the EventHub SDK), on a thread of the test, with a bus of its own.

    It rejects negative amounts: after two attempts the SDK dead-letters the
    event to `<stream>:dlq`. `start()` / `stop()` are a deployment of it.
    """

    def __init__(self, redis_url: str, stream: str, group: str, event_type: str) -> None:
        self.redis_url, self.stream, self.group, self.event_type = redis_url, stream, group, event_type
        self.handled: list[tuple[dict, str | None]] = []  # (payload, x-eventhub-replay-of)
        self._running: tuple | None = None

    def start(self) -> None:
        bus = open_bus("redis", url=self.redis_url)
        consumer = Consumer(
            bus, "billing", self.group, [self.stream], max_attempts=2, backoff_s=0.05, heartbeat_interval_s=None
        )

        @consumer.handler(self.event_type)
        def charge(event: Event) -> None:
            if event.payload["amount"] < 0:
                raise AmountRejected(f"cannot charge a negative amount ({event.payload['amount']})")
            self.handled.append((event.payload, event.headers.get(h.REPLAY_OF)))

        stop = threading.Event()
        thread = threading.Thread(target=consumer.run, args=(stop,), name="billing", daemon=True)
        thread.start()
        self._running = (bus, consumer, stop, thread)

    def stop(self) -> None:
        if self._running is None:
            return
        bus, consumer, stop, thread = self._running
        self._running = None
        stop.set()
        thread.join(timeout=15)
        consumer.close()
        bus.close()


@pytest.fixture
def billing(world, world_redis_url) -> Iterator[Billing]:
    """A designed event on a Redis stream of this run, with its schema, and billing consuming it."""
    tag = uuid.uuid4().hex[:6]
    stream, event_type, group = f"{STREAM_PREFIX}-charges-{tag}", f"charge{tag}.requested", f"billing-{tag}"
    world.shell(
        "from designer.models import *\n"
        f"topic = Topic.objects.create(name={stream!r}, bus='redis', address={stream!r})\n"
        f"event = EventType.objects.create(name={event_type!r}, topic=topic)\n"
        f"SchemaVersion.objects.create(event_type=event, version=1, schema={CHARGE_SCHEMA!r})\n"
        f"service = Service.objects.create(name='billing {tag}', slug='billing-{tag}')\n"
        f"Consumer.objects.create(service=service, event_type=event, group={group!r}, max_attempts=2)\n"
    )
    bus = open_bus("redis", url=world_redis_url)
    bus.create_topic(stream)
    bus.close()
    service = Billing(world_redis_url, stream, group, event_type)
    service.start()
    yield service
    service.stop()


def _publish_unchecked(redis_url: str, stream: str, event_type: str, payload: dict) -> None:
    """What a producer that skips schema validation sends: a CloudEvent with any payload."""
    bus = open_bus("redis", url=redis_url)
    try:
        headers = [
            (h.CE_ID, str(uuid.uuid4())),
            (h.CE_TYPE, event_type),
            (h.CE_SOURCE, "/services/checkout"),
            (h.CE_SPECVERSION, h.CE_SPECVERSION_VALUE),
            (h.CONTENT_TYPE, h.JSON_CONTENT_TYPE),
            (h.SCHEMA_VERSION, "1"),
        ]
        bus.publish(
            stream, json.dumps(payload).encode(), key=payload["order_id"].encode(), headers=h.encode_headers(headers)
        )
    finally:
        bus.close()


def test_dead_letter_found_fixed_in_the_schema_form_retried_and_resolved(world, world_redis_url, billing, page_as):
    order = f"o-{uuid.uuid4().hex[:6]}"
    page = page_as("operator", app=world)
    page.goto("/dead-letters/")
    expect(page.locator("#dl-live")).to_have_text("live", timeout=WAIT_MS)

    # 1. Checkout sends a charge with a negative amount; billing fails on it twice and dead-letters it.
    _publish_unchecked(
        world_redis_url, billing.stream, billing.event_type, {"order_id": order, "amount": -5, "currency": "EUR"}
    )

    # 2. It shows up in the open list, live, and the operator opens it.
    row = page.locator("#dl-rows tr", has_text="cannot charge a negative amount (-5)")
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(row.locator("[data-role=status]")).to_have_text("new")
    expect(row).to_contain_text(billing.group)
    original = row.get_attribute("data-id")
    row.get_by_role("link", name=f"#{original}").click()
    expect(page.locator("h1")).to_have_text(f"Dead letter #{original} · {billing.event_type}")
    expect(page.locator("#dl-error-card")).to_contain_text("AmountRejected")
    expect(page.locator("#dl-error-card dt:text-is('Attempts') + dd")).to_have_text("2")
    expect(page.locator("#dl-problems")).to_contain_text("$.amount: -5 is less than the minimum of 0")
    expect(page.locator("#dl-status")).to_have_text("new")

    # 3. Billing is stopped for the fix; the operator corrects the amount in the form made from the schema.
    billing.stop()
    page.get_by_role("link", name="Edit and retry…").click()
    form = page.locator("#schema-form")
    expect(form.locator('[name="f/order_id"]')).to_have_value(order)
    expect(form.locator('[name="f/amount"]')).to_have_value("-5")
    form.locator('[name="f/amount"]').fill("5")
    form.get_by_role("button", name="Check and send").click()

    # 4. Sent as a new event: this page tracks it, and the original is resolved by it.
    expect(page.locator(".messages")).to_contain_text(f"the original #{original} is resolved")
    expect(page.locator("#dl-status")).to_have_text("retried")
    expect(page.locator("#dl-original-link")).to_have_text(f"the original, #{original}")
    expect(page.locator("#dl-live")).to_have_text("live", timeout=WAIT_MS)
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    copy = page.url.rstrip("/").rsplit("/", 1)[1]

    # 5. Billing is back and handles it: the status turns resolved on the open page.
    billing.start()
    expect(page.locator("#dl-status")).to_have_text("resolved", timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True
    [(payload, replay_of)] = billing.handled
    assert payload == {"order_id": order, "amount": 5, "currency": "EUR"}
    assert replay_of

    # 6. The list says so too: nothing left to do.
    page.goto("/dead-letters/")
    expect(page.locator(f"#dl-row-{original} [data-role=status]")).to_have_text("resolved")
    expect(page.locator(f"#dl-row-{copy} [data-role=status]")).to_have_text("resolved")
    assert page_as.errors(page) == []
