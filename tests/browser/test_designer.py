"""The designer canvas and the flowchart in real Chromium against a live Daphne."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from designer import mermaid
from tests.browser import json_from
from tests.browser.conftest import readme_screenshot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
NASTY = [
    'say "hi"',
    "[brackets] (parens) {braces}",
    "A --> B",
    "pipe | bar",
    "hash #1 #quot;",
    "semi; colon: end",
    "line one\nline two",
    "Zürich 中文 🚀",
    XSS,
    "100% %%{init: {'theme':'dark'}}%%",
    "a & b <b>bold</b>",
    "`backtick`",
    "end",
]


def _domain(live_app) -> tuple[str, int]:
    """A domain of its own, so this test's canvas shows only what it made."""
    slug = f"browser-{uuid.uuid4().hex[:8]}"
    result = live_app.shell(
        "import json; from designer.models import Domain\n"
        f"d = Domain.objects.create(name={slug!r}, slug={slug!r}); print(json.dumps(d.pk))"
    )
    return slug, json_from(result)


def _add_node(page: Page, kind: str, name: str) -> str:
    """Add a node through the toolbar's form; returns its graph id (from the list view)."""
    page.click(f'[data-new="{kind}"]')
    page.fill("#new-node-name", name)
    page.click('#new-node-form button[type="submit"]')
    return _node_id(page, f"{kind.capitalize()}: {name}")


def _node_id(page: Page, text: str) -> str:
    """The graph id of the node listed as `text` ("Service: orders") in the list view."""
    item = page.locator("#outline-nodes li").filter(has_text=text)
    expect(item).to_have_count(1)
    return item.get_attribute("data-node-id")


def _screen_point(page: Page, node_id: str) -> tuple[float, float]:
    """Where a node's centre is on the screen."""
    box = page.locator("#cy").bounding_box()
    point = page.evaluate(
        "(id) => window.eventhubCanvas.cy.getElementById(id).renderedPosition()",
        node_id,
    )
    return box["x"] + point["x"], box["y"] + point["y"]


def _drag(page: Page, source: str, target: str) -> None:
    x1, y1 = _screen_point(page, source)
    x2, y2 = _screen_point(page, target)
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, steps=8)
    page.mouse.move(x2, y2, steps=8)
    page.mouse.up()


def _select(page: Page, node_id: str) -> None:
    """Click a node on the canvas, which opens it in the side panel."""
    page.mouse.click(*_screen_point(page, node_id))


def _idle(page: Page) -> None:
    """Wait until every queued API call of the canvas has finished."""
    page.evaluate("() => window.eventhubCanvas.idle()")


def _graph(page: Page, domain: str) -> dict:
    response = page.request.get(f"/api/v1/graph/?domain={domain}")
    assert response.ok, response.text()
    return response.json()


def test_designer_builds_connects_moves_and_it_persists(live_app, page_as):
    slug, _ = _domain(live_app)
    tag = uuid.uuid4().hex[:6]
    page = page_as("designer")
    page.goto(f"/designer/?domain={slug}")
    expect(page.locator("#designer-toolbar")).to_be_visible()

    checkout = _add_node(page, "service", f"checkout {tag}")
    billing = _add_node(page, "service", f"billing {tag}")
    event = _add_node(page, "event", f"order{tag}.placed")
    # Lints from the server show on the node (list view is its text twin).
    lints = page.locator(f'#outline-nodes li[data-node-id="{event}"] .lints')
    expect(lints).to_contain_text(f"Nobody consumes order{tag}.placed")

    # Move a node: it follows the pointer, and the position is saved on drag end.
    before = page.evaluate("(id) => window.eventhubCanvas.cy.getElementById(id).position()", billing)
    zoom = page.evaluate("() => window.eventhubCanvas.cy.zoom()")
    x, y = _screen_point(page, billing)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y + 120, steps=10)
    page.mouse.up()
    _idle(page)
    moved = page.evaluate("(id) => window.eventhubCanvas.cy.getElementById(id).position()", billing)
    assert moved == pytest.approx({"x": before["x"] + 40 / zoom, "y": before["y"] + 120 / zoom}, abs=1)

    page.click("#connect-mode")
    expect(page.locator("#connect-mode")).to_have_attribute("aria-pressed", "true")
    _drag(page, checkout, event)
    expect(
        page.locator("#outline-edges li").filter(has_text=f"checkout {tag} produces order{tag}.placed")
    ).to_have_count(1)
    _drag(page, event, billing)
    expect(
        page.locator("#outline-edges li").filter(has_text=f"billing {tag} consumes order{tag}.placed")
    ).to_have_count(1)

    expect(lints).not_to_contain_text("Nobody consumes")

    page.reload()
    nodes = page.locator("#outline-nodes li")
    expect(nodes.filter(has_text=f"Service: checkout {tag}")).to_have_count(1)
    expect(nodes.filter(has_text=f"Service: billing {tag}")).to_have_count(1)
    expect(nodes.filter(has_text=f"Event: order{tag}.placed")).to_have_count(1)
    edges = page.locator("#outline-edges li")
    expect(edges.filter(has_text=f"checkout {tag} produces order{tag}.placed")).to_have_count(1)
    expect(edges.filter(has_text=f"billing {tag} consumes order{tag}.placed")).to_have_count(1)
    after = page.evaluate("(id) => window.eventhubCanvas.cy.getElementById(id).position()", billing)
    assert after == pytest.approx(moved, abs=0.2)

    graph = _graph(page, slug)
    kinds = {(e["source"], e["kind"], e["target"]) for e in graph["edges"]}
    assert (checkout, "produces", event) in kinds
    assert (event, "consumes", billing) in kinds
    assert page_as.errors(page) == []


def test_designer_undo_reverts_the_last_change(live_app, page_as):
    slug, _ = _domain(live_app)
    tag = uuid.uuid4().hex[:6]
    page = page_as("designer")
    page.goto(f"/designer/?domain={slug}")
    service = _add_node(page, "service", f"undo-me {tag}")
    event = _add_node(page, "event", f"undo{tag}.done")
    page.click("#connect-mode")
    _drag(page, service, event)
    edge = page.locator("#outline-edges li").filter(has_text=f"undo-me {tag} produces undo{tag}.done")
    expect(edge).to_have_count(1)

    page.keyboard.press("Escape")  # leave connect mode
    page.keyboard.press("Control+z")
    expect(edge).to_have_count(0)
    page.click("#undo")
    expect(page.locator("#outline-nodes li").filter(has_text=f"Event: undo{tag}.done")).to_have_count(0)
    assert {n["label"] for n in _graph(page, slug)["nodes"]} == {f"undo-me {tag}"}


def test_delete_asks_first_and_undo_restores_the_connections(live_app, page_as):
    slug, _ = _domain(live_app)
    tag = uuid.uuid4().hex[:6]
    page = page_as("designer")
    page.goto(f"/designer/?domain={slug}")
    writer = _add_node(page, "service", f"writer {tag}")
    reader = _add_node(page, "service", f"reader {tag}")
    event = _add_node(page, "event", f"thing{tag}.done")
    topic = _add_node(page, "topic", f"things-{tag}")
    expect(page.locator(f'#outline-nodes li[data-node-id="{topic}"]')).to_contain_text("(kafka)")
    page.click("#connect-mode")
    _drag(page, writer, event)
    _drag(page, event, reader)
    _drag(page, event, topic)
    edges = page.locator("#outline-edges li")
    consumes = edges.filter(has_text=f"reader {tag} consumes thing{tag}.done")
    on_topic = edges.filter(has_text=f"thing{tag}.done is on topic things-{tag}")
    expect(consumes).to_have_count(1)
    expect(on_topic).to_have_count(1)
    page.click("#connect-mode")

    # Cancel keeps it; confirming deletes the service and its connection.
    _select(page, reader)
    page.click("#delete-node")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-message")).to_contain_text(f"reader {tag}")
    page.click('#confirm-dialog button[value="cancel"]')
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(consumes).to_have_count(1)
    page.click("#delete-node")
    page.click("#confirm-ok")
    expect(consumes).to_have_count(0)
    expect(page.locator("#outline-nodes li").filter(has_text=f"reader {tag}")).to_have_count(0)

    page.keyboard.press("Control+z")
    expect(consumes).to_have_count(1)

    # The Delete key works too; undo puts the event back on the re-created topic.
    _select(page, topic)
    page.keyboard.press("Delete")
    page.click("#confirm-ok")
    expect(on_topic).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(on_topic).to_have_count(1)

    # Auto-layout saves every position.
    page.click("#auto-layout")
    expect(page.locator("#designer-status")).to_contain_text("Laid out")
    _idle(page)
    on_screen = page.evaluate(
        "() => Object.fromEntries(window.eventhubCanvas.cy.nodes().map((n) => [n.id(), n.position()]))"
    )
    saved = {n["id"]: {"x": n["x"], "y": n["y"]} for n in _graph(page, slug)["nodes"]}
    assert saved.keys() == on_screen.keys()
    for node_id, point in saved.items():
        assert point["x"] == pytest.approx(on_screen[node_id]["x"], abs=0.1)
        assert point["y"] == pytest.approx(on_screen[node_id]["y"], abs=0.1)
    # Left to right: producer, event, consumer.
    reader = _node_id(page, f"Service: reader {tag}")  # re-created by undo: a new id
    assert on_screen[writer]["x"] < on_screen[event]["x"] < on_screen[reader]["x"]
    assert page_as.errors(page) == []


def test_clicks_land_on_the_node_while_the_new_node_form_opens_and_closes(live_app, page_as):
    """The new-node form sits above the canvas and pushes it down while open: the canvas follows."""
    slug, _ = _domain(live_app)
    tag = uuid.uuid4().hex[:6]
    page = page_as("designer")
    page.goto(f"/designer/?domain={slug}")
    first = _add_node(page, "service", f"first {tag}")
    second = _add_node(page, "service", f"second {tag}")  # adding selects it
    title = page.locator("#panel-title")
    expect(title).to_have_text(f"second {tag}")

    page.click('[data-new="event"]')
    expect(page.locator("#new-node-form")).to_be_visible()
    _select(page, first)
    expect(title).to_have_text(f"first {tag}")

    page.click('#new-node-form [data-action="cancel"]')
    expect(page.locator("#new-node-form")).to_be_hidden()
    _select(page, second)
    expect(title).to_have_text(f"second {tag}")
    assert page_as.errors(page) == []


def test_side_panel_shows_server_validation_errors_next_to_the_field(live_app, page_as):
    slug, _ = _domain(live_app)
    page = page_as("designer")
    page.goto(f"/designer/?domain={slug}")
    event = _add_node(page, "event", f"panel{uuid.uuid4().hex[:6]}.checked")
    _select(page, event)
    expect(page.locator("#f-name")).to_have_value(re.compile(r"panel.*\.checked"))
    page.fill("#f-name", "Not A Dotted Name")
    page.click('#node-form button[type="submit"]')
    expect(page.locator('#node-form [data-error-for="name"]')).to_contain_text("dotted")

    # The toolbar form shows its errors in the page too.
    page.click('[data-new="event"]')
    page.fill("#new-node-name", "nodots")
    page.click('#new-node-form button[type="submit"]')
    expect(page.locator('#new-node-form [data-error-for="name"]')).to_contain_text("dotted")


def test_viewer_sees_the_canvas_without_edit_tools(live_app, page_as):
    slug, domain_id = _domain(live_app)
    live_app.shell(
        f"from designer.models import Service; Service.objects.create(name='seen-by-viewer-{slug}', domain_id={domain_id})"
    )
    page = page_as("viewer")
    page.goto(f"/designer/?domain={slug}")
    expect(page.locator("#outline-nodes li").filter(has_text=f"seen-by-viewer-{slug}")).to_have_count(1)
    expect(page.locator("#designer-toolbar")).to_have_count(0)
    expect(page.locator("[data-new]")).to_have_count(0)
    page.click("#outline summary")  # the list view selects too, for keyboard users
    page.locator("#outline-nodes li button").first.click()
    expect(page.locator("#f-name")).to_have_value(f"seen-by-viewer-{slug}")
    expect(page.locator("#f-name")).to_be_disabled()
    expect(page.locator("#delete-node")).to_have_count(0)
    # And the server refuses anyway.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post("/api/v1/services/", data={"name": "sneaky"}, headers={"X-CSRFToken": token})
    assert response.status == 403


def test_a_script_in_a_name_stays_text(live_app, page_as):
    slug, _ = _domain(live_app)
    page = page_as("designer")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/designer/?domain={slug}")
    node = _add_node(page, "service", XSS)
    _select(page, node)
    expect(page.locator("#panel-title")).to_have_text(XSS)
    expect(page.locator("#f-name")).to_have_value(XSS)

    page.goto(f"/designer/flowchart/?scope=domain:{slug}")
    expect(page.locator("#flowchart [data-chart] svg")).to_be_visible()
    expect(page.locator("#flowchart [data-chart] svg")).to_contain_text(XSS)
    assert page.locator('img[src="x"]').count() == 0
    assert dialogs == []


def test_flowchart_draws_nasty_names(live_app, page_as):
    tag = uuid.uuid4().hex[:6]
    spec = {"tag": tag, "names": NASTY}
    live_app.shell(
        "import json\n"
        "from designer.models import *\n"
        f"spec = json.loads({json.dumps(spec)!r})\n"
        "tag = spec['tag']\n"
        "d = Domain.objects.create(name='nasty ' + tag, slug='nasty-' + tag)\n"
        "t = Topic.objects.create(name='topic ' + spec['names'][0] + tag, address='nasty-' + tag, domain=d)\n"
        "services = [Service.objects.create(name=n + ' ' + tag, slug=f's{i}-{tag}', domain=d) for i, n in enumerate(spec['names'])]\n"
        "e = EventType.objects.create(name=f'nasty{tag}.happened', topic=t, domain=d)\n"
        "Producer.objects.create(service=services[0], event_type=e)\n"
        "for s in services[1:]: Consumer.objects.create(service=s, event_type=e)\n"
        "f = Flow.objects.create(name='flow ' + tag, slug='flow-' + tag, trigger=spec['names'][8], domain=d)\n"
        "first = FlowStep.objects.create(flow=f, order=0, producer=services[0], event_type=e, consumer=services[1], logic=spec['names'][2], store=spec['names'][1])\n"
        "FlowStep.objects.create(flow=f, order=1, after=first, producer=services[1], event_type=e, consumer=services[3], logic=spec['names'][9], store=spec['names'][10])\n"
    )
    page = page_as("viewer")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for scope in (f"domain:nasty-{tag}", f"flow:flow-{tag}", "all"):
        page.goto(f"/designer/flowchart/?scope={scope}")
        chart = page.locator("#flowchart [data-chart] svg")
        expect(chart).to_be_visible()
        expect(page.locator("#flowchart [data-chart-error]")).to_be_hidden()
        expect(page.locator("#flowchart [data-svg-link]")).to_be_visible()
    # The flow: trigger, logic and store texts are drawn as written.
    page.goto(f"/designer/flowchart/?scope=flow:flow-{tag}")
    chart = page.locator("#flowchart [data-chart] svg")
    for text in (
        XSS,
        "A --> B",
        "[brackets] (parens) {braces}",
        "a & b <b>bold</b>",
        "100% %%{init: {'theme':'dark'}}%%",
    ):
        expect(chart).to_contain_text(text)
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("#flowchart [data-chart] b").count() == 0

    # Both downloads: the server's .mmd and the browser-drawn .svg.
    with page.expect_download() as mmd:
        page.click("#flowchart [data-mmd-link]")
    assert mmd.value.suggested_filename == f"eventhub-flow-flow-{tag}.mmd"
    assert Path(mmd.value.path()).read_text().startswith("flowchart LR\n")
    with page.expect_download() as svg:
        page.click("#flowchart [data-svg-link]")
    assert svg.value.suggested_filename == f"eventhub-flow-flow-{tag}.svg"
    drawn = Path(svg.value.path()).read_text()
    assert drawn.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg')
    assert "&lt;img src=x onerror=alert(1)&gt;" in drawn
    assert "<img" not in drawn
    assert dialogs == []
    assert page_as.errors(page) == []


def test_real_mermaid_parses_and_draws_every_nasty_label(live_app, page_as):
    """designer.mermaid's escaping against the vendored mermaid.js itself, one chart per name."""
    page = page_as("viewer")
    page.goto("/designer/flowchart/")
    expect(page.locator("#flowchart [data-chart] svg, #flowchart [data-chart-error]").first).to_be_attached()
    for number, name in enumerate(NASTY):
        design = mermaid.Design(
            services=[mermaid.ServiceData(1, name), mermaid.ServiceData(2, "reader")],
            topics=[mermaid.TopicData(1, name, "redis")],
            events=[mermaid.EventData(1, "thing.happened", topic_id=1)],
            producers=[(1, 1)],
            consumers=[(2, 1)],
        )
        text = mermaid.design_chart(design)
        drawn = page.evaluate(
            """async ([id, text]) => {
                const { svg } = await window.mermaid.render(id, text);
                const doc = new DOMParser().parseFromString(svg, "text/html");
                return doc.body.textContent;
            }""",
            [f"nasty-{number}", text],
        )
        for line in name.split("\n"):
            assert line in drawn, (name, text)


def test_canvas_screenshot_of_the_demo_world(make_live_app, page_as):
    """Also regenerates docs/screenshots/designer.png for the README."""
    app = make_live_app(name="demo")
    app.manage("seed_demo")
    page = page_as("designer", app=app)
    page.goto("/designer/")
    expect(page.locator("#outline-nodes li").filter(has_text="Event: order.placed")).to_have_count(1)
    page.click("#outline summary")
    page.locator("#outline-nodes li").filter(has_text="Event: order.placed").locator("button").click()
    page.click("#outline summary")
    expect(page.locator("#f-name")).to_have_value("order.placed")
    page.click("#fit")
    target = readme_screenshot("designer.png")
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000

    # The flowchart of the current view, and the domain filter (which keeps the URL in step).
    page.click("#flowchart-panel summary")
    expect(page.locator("#canvas-flowchart [data-chart] svg")).to_be_visible()
    expect(page.locator("#canvas-flowchart [data-chart] svg")).to_contain_text("inventory.reserved")
    nodes = page.locator("#outline-nodes li")
    expect(nodes.filter(has_text="Topic: inventory (kafka)")).to_have_count(1)
    page.select_option("#domain-filter", "sales")
    expect(page).to_have_url(re.compile(r"/designer/\?domain=sales$"))
    expect(nodes.filter(has_text="Topic: inventory (kafka)")).to_have_count(0)
    expect(nodes.filter(has_text="Service: orders")).to_have_count(1)
    expect(page.locator("#flowchart-link")).to_have_attribute("href", "/designer/flowchart/?scope=domain%3Asales")
    expect(page.locator("#canvas-flowchart [data-mmd-link]")).to_have_attribute(
        "href", "/designer/flowchart.mmd?scope=domain%3Asales"
    )
    assert page_as.errors(page) == []
