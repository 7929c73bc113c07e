"""The first screen: the demo shop on the designer canvas, as a new user opens it after `make run`."""

from __future__ import annotations

from itertools import combinations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

# A node's lint badge is the "⚠ N lints" line canvas.js adds to its label.
BADGE = "⚠"
MAX_BADGES = 3

_RENDERED = """() => window.eventhubCanvas.cy.nodes().not(".ghost").map((n) => ({
    id: n.id(),
    label: n.data("label"),
    domain: n.data("domain"),
    display: n.data("display"),
    position: n.position(),
    box: n.boundingBox({ includeLabels: true, includeOverlays: false }),
}))"""


def _overlap(a: dict, b: dict) -> bool:
    return a["x1"] < b["x2"] and b["x1"] < a["x2"] and a["y1"] < b["y2"] and b["y1"] < a["y2"]


def test_the_demo_opens_laid_out_with_few_lint_badges(make_live_app, page_as):
    app = make_live_app(name="demo-layout")  # its own database: only the demo on the canvas
    app.manage("seed_demo")
    page = page_as("viewer", app=app)
    page.goto("/designer/")
    saved = {n["id"]: n for n in page.request.get("/api/v1/graph/").json()["nodes"]}
    expect(page.locator("#outline-nodes li")).to_have_count(len(saved))
    nodes = page.evaluate(_RENDERED)
    page.screenshot(path=str(SCREENSHOTS / "demo-layout.png"))  # the first screen, to look at

    # Drawn where the seed put them (no client-side layout was needed), none on another.
    for node in nodes:
        assert (node["position"]["x"], node["position"]["y"]) == (saved[node["id"]]["x"], saved[node["id"]]["y"])
    assert [(a["label"], b["label"]) for a, b in combinations(nodes, 2) if _overlap(a["box"], b["box"])] == []

    # Each domain a band of its own, top to bottom.
    bands = {}
    for node in nodes:
        top, bottom = bands.get(node["domain"], (node["box"]["y1"], node["box"]["y2"]))
        bands[node["domain"]] = (min(top, node["box"]["y1"]), max(bottom, node["box"]["y2"]))
    ordered = sorted(bands.values())
    assert all(upper[1] < lower[0] for upper, lower in zip(ordered, ordered[1:], strict=False)), bands

    badged = sorted(n["label"] for n in nodes if BADGE in n["display"])
    assert len(badged) <= MAX_BADGES, badged
    assert page_as.errors(page) == []
