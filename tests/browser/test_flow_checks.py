"""A flow check in Chromium against the running demo: green, red once shipping is stopped (with
the broken step shown), green again once it is back.

The app runs its loops in Daphne (EVENTHUB_RUN_LOOPS=1: indexer, flow checks); the demo shop
is `manage.py simulate`, stopped and started the way a user would, with `manage.py demo_service`.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from tests.browser.conftest import demo_shop
from tests.conftest import bus_options
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

# A check waits up to its steps' budgets (30 s each in the demo) plus the indexer's grace.
DECIDED_MS = 120_000
# The budget of the step shipping handles while the test has shipping stopped: the red check
# waits it out, and the demo's 30 s would be most of this test's time.
SHORT_BUDGET_S = 10
APP_ENV = {
    "EVENTHUB_RUN_LOOPS": "1",
    "EVENTHUB_WORKERS": "inprocess",
    "EVENTHUB_CHANNEL_LAYER": "memory",
    "EVENTHUB_FLOW_CHECK_EVERY_S": "0",  # only the checks this test runs
}
# Printed by the app: whether shipping has dispatched (and the indexer indexed) an order placed
# since the simulator started, i.e. the shop trades and the event store keeps up.
TRADING = """
from django.utils import timezone
from datetime import timedelta
from eventstore.models import IndexedEvent
print(IndexedEvent.objects.filter(ce_type="shipment.dispatched", timestamp__gte=timezone.now() - timedelta(seconds=20)).exists())
"""


@pytest.fixture(scope="module")
def demo_app(make_live_app):
    app = make_live_app(env=APP_ENV, name="flowchecks")
    app.manage("seed_demo")
    with demo_shop(app.env):
        try:
            # Each check is a `manage.py shell` (about 0.4 s of CPU): every 2 s, not back to back.
            wait_until(
                lambda: "True" in app.shell(TRADING).stdout, 180, "the demo shop to trade and be indexed", every_s=2
            )
            yield app
        finally:
            app.manage("demo_service", "start", "shipping")


def set_shipping_budget(app, seconds: int) -> None:
    app.shell(
        "from designer.models import FlowStep\n"
        "n = FlowStep.objects.filter(flow__slug='checkout', event_type__name='order.confirmed')"
        f".update(time_budget_s={seconds})\n"
        "assert n == 1, n"
    )


def shipping_lag() -> int:
    """How far the demo's shipping group is behind on `orders` (the shop writes ~6 records/s there)."""
    with open_bus("kafka", **bus_options("kafka")) as bus:
        return sum(row.lag for row in bus.lag("shipping", "orders"))


def run_check(page, expected: str) -> None:
    page.click("#run-check")
    expect(page.locator("#check-status")).to_have_text("running")
    expect(page.locator("#check-status")).to_have_text(expected, timeout=DECIDED_MS)


def step_row(page, event: str):
    return page.locator("#flow-steps tbody tr", has=page.locator("code", has_text=event))


def test_checkout_goes_green_red_when_shipping_stops_and_green_again(demo_app, page_as):
    page = page_as("operator", app=demo_app)
    page.goto("/flows/checkout/")
    expect(page.locator("h1")).to_contain_text("Checkout")
    expect(step_row(page, "order.confirmed")).to_contain_text("30 s")

    run_check(page, "passed")
    expect(page.locator("#flow-steps [data-role=status]")).to_have_text(["passed"] * 6)
    expect(page.locator("#check-history tbody tr")).to_have_count(1)

    set_shipping_budget(demo_app, SHORT_BUDGET_S)
    demo_app.manage("demo_service", "stop", "shipping")
    # The simulator follows the file within a second or two; a check started before would pass.
    wait_until(lambda: shipping_lag() >= 30, 60, "shipping to stop consuming")
    run_check(page, "failed")
    expect(step_row(page, "order.confirmed").locator("[data-role=status]")).to_have_text("failed")
    expect(page.locator("#check-error")).to_have_text(
        f"Failed at step 5 (order.confirmed → shipping): shipping did not handle it within {SHORT_BUDGET_S} s."
    )
    expect(step_row(page, "payment.authorized").locator("[data-role=status]")).to_have_text("passed")

    set_shipping_budget(demo_app, 30)
    demo_app.manage("demo_service", "start", "shipping")
    wait_until(lambda: shipping_lag() < 10, 60, "shipping to catch up")
    run_check(page, "passed")
    expect(page.locator("#check-error")).to_be_hidden()
    rows = page.locator("#check-history tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("Failed at step 5")
    # The latency chart has a line per step, a point per check.
    assert page.evaluate("document.getElementById('latency-chart').data.length") == 6
    assert page_as.errors(page) == []


def test_viewer_sees_the_checks_without_the_button(demo_app, page_as):
    page = page_as("viewer", app=demo_app)
    page.goto("/flows/checkout/")
    expect(page.locator("#flow-steps tbody tr")).to_have_count(6)
    expect(page.locator("#run-check")).to_have_count(0)
    assert page_as.errors(page) == []
