"""The dead-letter pages in Chromium, fed the real way: records on a dead-letter stream.

The app runs the background loops in Daphne (EVENTHUB_RUN_LOOPS=1,
EVENTHUB_WORKERS=inprocess), so its dead-letter ingester reads what the tests
publish, stores it, and broadcasts over the in-memory channel layer to the
pages' /ws/dead-letters/ sockets; retries go to the real Redis, and the ingester
marks them resolved once the group has acked the replay.

Isolation: other live apps of the session (and other test runs on the same
Redis) run ingesters too, with the default dead-letter patterns and the same
group name. This app's pattern (EVENTHUB_DLQ_PATTERNS) matches only streams
named `<PREFIX>-...dead`, which no default pattern matches, so only this app
reads them.

Every wait is on something the page shows, with a deadline; `window.__sameDocument`
proves a page was not reloaded.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
import uuid
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from eventhub.sdk import headers as h
from tests.browser.conftest import LiveApp, readme_screenshot
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

WAIT_MS = 30_000
PREFIX = f"dlpages-{uuid.uuid4().hex[:8]}"
SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string", "description": "The order being paid."},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "customer": {"type": "object", "properties": {"name": {"type": "string"}, "vip": {"type": "boolean"}}},
    },
}


@pytest.fixture(scope="module")
def dl_app(make_live_app) -> LiveApp:
    return make_live_app(
        env={
            "EVENTHUB_RUN_LOOPS": "1",
            "EVENTHUB_WORKERS": "inprocess",
            "EVENTHUB_CHANNEL_LAYER": "memory",
            "EVENTHUB_DLQ_PATTERNS": f"{PREFIX}-*.dead",
        },
        name="deadletters",
    )


@pytest.fixture(scope="module")
def event_name(dl_app) -> str:
    """An event type with a schema in the app's design, for the schema form."""
    name = f"shop{uuid.uuid4().hex[:6]}.payment.requested"
    dl_app.shell(
        "from designer.models import EventType, SchemaVersion\n"
        f"event = EventType.objects.create(name={name!r}, slug={name.replace('.', '-')!r})\n"
        f"SchemaVersion.objects.create(event_type=event, version=1, schema={SCHEMA!r})\n"
    )
    return name


@pytest.fixture
def redis():
    bus = open_bus("redis", url=os.environ["REDIS_URL"])
    yield bus
    bus.close()


@pytest.fixture
def source(redis, unique) -> str:
    """A source stream of this test (it must exist for a replay to be sent to it)."""
    name = f"{PREFIX}-{unique('orders')}"
    redis.create_topic(name)
    redis.create_topic(f"{name}.dead")
    return name


def publish_dead_letter(
    redis,
    source: str,
    *,
    group: str = "billing",
    payload: dict | bytes = b'{"order_id":"o-1","amount":-5}',
    error_class: str = "InvalidAmount",
    message: str = "amount must be positive",
    event_type: str = "",
) -> None:
    """What the EventHub SDK writes when a consumer gives up on a record: the event plus the failure."""
    value = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    headers = [(h.CE_ID, str(uuid.uuid4())), (h.CE_SOURCE, "/services/checkout"), (h.CE_SPECVERSION, "1.0")]
    if event_type:
        headers += [(h.CE_TYPE, event_type), (h.SCHEMA_VERSION, "1")]
    headers += [
        (h.CONTENT_TYPE, "application/json"),
        (h.ORIGINAL_TOPIC, source),
        (h.ORIGINAL_ENTRY_ID, "1700000000000-0"),
        (h.GROUP, group),
        (h.SERVICE, "billing"),
        (h.ATTEMPTS, "3"),
        (h.ERROR_CLASS, error_class),
        (h.ERROR_MESSAGE, message),
        (h.STACKTRACE, 'Traceback (most recent call last):\n  File "billing.py", line 42, in handle\n' + error_class),
        (h.FAILED_AT, datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    ]
    redis.publish(f"{source}.dead", value, key=b"o-1", headers=h.encode_headers(headers))


def ack_everything(redis, stream: str, group: str) -> int:
    """Be the fixed consumer: read the stream with `group` and ack all of it."""
    with redis.consumer(group, [stream]) as consumer:
        taken: list = []
        deadline = time.monotonic() + 20
        while not taken and time.monotonic() < deadline:
            taken += consumer.poll(0.5, 100)
        assert taken, f"nothing to consume on {stream}"
        consumer.commit(taken)
        return len(taken)


def open_list(page, path: str):
    page.goto(path)
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    expect(page.locator("#dl-live")).to_have_text("live", timeout=WAIT_MS)
    return page


def new_row(page, text: str):
    """The row (live-inserted) whose text contains `text`; returns (locator, dead-letter id)."""
    row = page.locator("#dl-rows tr", has_text=text)
    expect(row).to_have_count(1, timeout=WAIT_MS)
    return row, int(row.get_attribute("data-id"))


def test_a_new_dead_letter_appears_in_an_open_list(dl_app, page_as, redis, source):
    page = open_list(page_as("viewer", app=dl_app), f"/dead-letters/?topic={source}")
    expect(page.locator("#dl-empty")).to_be_visible()

    publish_dead_letter(redis, source, message="card expired in March")

    row, _ = new_row(page, "card expired in March")
    expect(row.locator("[data-role=status]")).to_have_text("new")
    expect(page.locator('#dl-counts [data-status-count="new"]')).to_have_text("1", timeout=WAIT_MS)
    expect(page.locator("#dl-empty")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True
    assert page_as.errors(page) == []


def test_a_dead_letter_stored_before_the_socket_opens_is_shown_when_it_opens(dl_app, page_as, redis, source):
    """The race CI once caught: a dead letter stored between the list's render and its
    socket's opening comes with no frame. Here the page's socket is held until the
    ingester has stored one, then let through: the row must come anyway."""
    page = page_as("viewer", app=dl_app)

    def stored() -> int:
        with sqlite3.connect(dl_app.db_path) as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM monitor_deadletter WHERE source_topic = ?", (source,)
            ).fetchone()
        return count

    def hold_then_open(socket) -> None:
        publish_dead_letter(redis, source, message="stored while the socket was opening")
        wait_until(lambda: stored() == 1, 30, "the ingester to store the dead letter")
        socket.connect_to_server()

    page.route_web_socket("**/ws/dead-letters/", hold_then_open)
    open_list(page, f"/dead-letters/?topic={source}")
    new_row(page, "stored while the socket was opening")
    expect(page.locator('#dl-counts [data-status-count="new"]')).to_have_text("1", timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True
    assert page_as.errors(page) == []


def test_operator_retries_from_the_ui_and_sees_the_status_change_live(dl_app, page_as, redis, source, unique):
    group = unique("billing")
    operator = page_as("operator", app=dl_app)
    listing = open_list(operator, f"/dead-letters/?topic={source}")
    publish_dead_letter(redis, source, group=group, message="ledger locked")
    row, pk = new_row(listing, "ledger locked")

    # The detail page, in a second tab; the list stays open to watch its row.
    detail = operator.context.new_page()
    detail.goto(f"/dead-letters/{pk}/")
    expect(detail.locator("#dl-live")).to_have_text("live", timeout=WAIT_MS)
    expect(detail.locator("#dl-status")).to_have_text("new")
    # Targeted replay: only the group that failed; the preview follows the choice.
    detail.select_option("#id_target_group", group)
    expect(detail.locator("#dl-receivers-list")).to_contain_text(f"group {group}", timeout=WAIT_MS)
    detail.get_by_role("button", name="Retry", exact=True).click()
    expect(detail.locator(".messages")).to_contain_text(f"Sent again to {source} for {group} only")
    expect(detail.locator("#dl-status")).to_have_text("retried")
    detail.evaluate("window.__sameDocument = true")
    expect(row.locator("[data-role=status]")).to_have_text("retried", timeout=WAIT_MS)

    # The fixed consumer handles the replay: the ingester marks it resolved, and both pages show it.
    assert ack_everything(redis, source, group) == 1
    expect(detail.locator("#dl-status")).to_have_text("resolved", timeout=WAIT_MS)
    expect(listing.locator(f"#dl-row-{pk} [data-role=status]")).to_have_text("resolved", timeout=WAIT_MS)
    expect(detail.locator("#dl-audit")).to_contain_text("replay 1 handled by the group")
    expect(detail.locator("#dl-retry")).to_be_hidden()
    assert detail.evaluate("window.__sameDocument") is True
    assert listing.evaluate("window.__sameDocument") is True
    assert page_as.errors(listing) == []


def test_viewer_sees_no_retry_button_and_is_refused_by_the_api(dl_app, page_as, redis, source):
    page = open_list(page_as("viewer", app=dl_app), f"/dead-letters/?topic={source}")
    publish_dead_letter(redis, source, message="viewer looks only")
    _, pk = new_row(page, "viewer looks only")
    assert page.locator("#dl-rows input[type=checkbox]").count() == 0

    page.goto(f"/dead-letters/{pk}/")
    expect(page.locator("#dl-status")).to_have_text("new")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.locator("#dl-actions")).to_have_count(0)

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    api = page.request.post(f"/api/v1/dead-letters/{pk}/retry", headers={"X-CSRFToken": token}, data={})
    assert api.status == 403
    form = page.request.post(f"/dead-letters/{pk}/retry", headers={"X-CSRFToken": token}, form={"target_group": ""})
    assert form.status == 403
    page.reload()
    expect(page.locator("#dl-status")).to_have_text("new")
    assert sum(redis.end_offsets(source).values()) == 0


def test_operator_fixes_the_payload_in_the_schema_form_and_retries(dl_app, page_as, redis, source, event_name):
    page = open_list(page_as("operator", app=dl_app), f"/dead-letters/?topic={source}")
    publish_dead_letter(
        redis,
        source,
        payload={"order_id": "o-77", "amount": -5, "customer": {"name": "Ann"}, "note": "keep me"},
        event_type=event_name,
        message="negative amount",
    )
    _, pk = new_row(page, "negative amount")
    page.goto(f"/dead-letters/{pk}/")
    expect(page.locator("#dl-problems")).to_contain_text("$.amount: -5 is less than the minimum of 0")
    page.get_by_role("link", name="Edit and retry…").click()

    form = page.locator("#schema-form")
    expect(form).to_be_visible()
    amount = form.locator('[name="f/amount"]')
    expect(amount).to_have_value("-5")
    expect(form.locator('[name="f/customer/name"]')).to_have_value("Ann")

    # Still wrong: refused next to the field, nothing sent.
    amount.fill("-1")
    form.get_by_role("button", name="Check and send").click()
    expect(page.locator('[data-errors-for="$.amount"]')).to_contain_text("$.amount: -1 is less than the minimum of 0")
    expect(page.locator("#edit-error")).to_contain_text("Nothing was sent")
    assert sum(redis.end_offsets(source).values()) == 0

    # Fixed: sent as a new event; the page moves to the copy that tracks it.
    form = page.locator("#schema-form")
    form.locator('[name="f/amount"]').fill("12.5")
    form.locator('[name="f/currency"]').select_option(label="EUR")
    form.get_by_role("button", name="Check and send").click()
    expect(page.locator(".messages")).to_contain_text(f"the original #{pk} is resolved")
    expect(page.locator("#dl-original-link")).to_have_text(f"the original, #{pk}")
    expect(page.locator("#dl-status")).to_have_text("retried")
    [record] = _read(redis, source)
    assert json.loads(record.value) == {
        "order_id": "o-77",
        "amount": 12.5,
        "currency": "EUR",
        "customer": {"name": "Ann"},
        "note": "keep me",
    }
    # The refused edit answered 400, which Chromium logs; nothing else may have gone wrong.
    assert [e for e in page_as.errors(page) if "status of 400" not in e] == []


def _read(redis, stream: str) -> list:
    with redis.consumer(f"reader-{uuid.uuid4().hex[:8]}", [stream]) as consumer:
        records: list = []
        deadline = time.monotonic() + 20
        while not records and time.monotonic() < deadline:
            records += consumer.poll(0.5, 100)
        return records


def test_screenshot_of_the_list(dl_app, page_as, redis, source, event_name):
    """docs/screenshots/dead-letters.png: a list with a few kinds of failure, arriving live."""
    page = open_list(page_as("operator", app=dl_app), f"/dead-letters/?topic={source}")
    failures = [
        ("InvalidAmount", "amount must be positive", "billing", {"order_id": "o-1001", "amount": -5}),
        ("InvalidAmount", "amount must be positive", "billing", {"order_id": "o-1002", "amount": -12}),
        ("CurrencyNotSupported", "currency JPY is not accepted", "billing", {"order_id": "o-1003", "amount": 30, "currency": "JPY"}),
        ("TimeoutError", "ledger did not answer in 5 s", "ledger-sync", {"order_id": "o-1004", "amount": 99}),
        ("KeyError", "'customer'", "shipping", {"order_id": "o-1005", "amount": 12}),
    ]  # fmt: skip
    for error_class, message, group, payload in failures:
        typed = event_name if group == "billing" else ""
        publish_dead_letter(
            redis, source, group=group, payload=payload, error_class=error_class, message=message, event_type=typed
        )
    expect(page.locator("#dl-rows tr")).to_have_count(len(failures), timeout=WAIT_MS)
    expect(page.locator('#dl-counts [data-status-count="new"]')).to_have_text(str(len(failures)), timeout=WAIT_MS)
    page.evaluate("document.querySelectorAll('tr.fresh').forEach((row) => row.classList.remove('fresh'))")
    page.locator("#dl-rows input[name=ids]").first.check()
    page.locator("#dl-rows input[name=ids]").nth(1).check()
    expect(page.locator("#dl-selected-count")).to_have_text("2 selected")
    page.screenshot(path=str(readme_screenshot("dead-letters.png")), full_page=True)

    # The grouped view of the same: two InvalidAmount from billing, one retry button for both.
    page.goto(f"/dead-letters/?view=grouped&topic={source}")
    group_row = page.locator("#dl-groups tbody tr", has_text="InvalidAmount")
    expect(group_row.locator("td").nth(3).locator("a")).to_have_text("2")
    group_row.get_by_role("button", name="Retry all 2…").click()
    expect(page.locator("#dry-run-count")).to_have_text("2")
    expect(page.locator("#dry-run-topics")).to_contain_text(source)

    # Start it slowly (one every 2 s): the job page follows its progress live.
    page.fill("#id_rate_per_s", "0.5")
    page.get_by_role("button", name="Start job: retry 2").click()
    expect(page.locator("#job-total")).to_have_text("2")
    started = page.locator("#job-state").text_content()
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#job-state")).to_have_text("done", timeout=WAIT_MS)
    expect(page.locator("#job-finished")).to_have_text("2")
    expect(page.locator("#job-done")).to_have_text("2")
    expect(page.locator("#job-bar > div")).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(page.locator("#job-cancel")).to_have_count(0)  # the partial came back without it
    expect(page.locator("#job-audit")).to_contain_text("2 done, 0 failed, 0 skipped of 2")
    assert started != "done" and page.evaluate("window.__sameDocument") is True
    assert page_as.errors(page) == []
