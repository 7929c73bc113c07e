"""The live monitor in Chromium: a real collector inside Daphne, real Kafka, frames over the websocket.

The app runs with EVENTHUB_RUN_LOOPS=1 and EVENTHUB_WORKERS=inprocess, so the
collector loop ticks inside Daphne (every second here) and pushes each snapshot
over /ws/monitor/; the in-memory channel layer and snapshot store keep this app
apart from any other live app of the session (Redis keys would be shared).

Every assertion waits on something the page shows, with a deadline; the page is
never reloaded (a marker set on `window` after the first load must survive).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from eventhub.bus import open_bus
from eventhub.launcher import web_command
from tests.browser.conftest import ROOT, LiveApp, _wait_until_healthy, demo_shop, draw_readme_picture

pytestmark = pytest.mark.browser

WAIT_MS = 45_000
MONITOR_SOCKET = re.compile(r"/ws/monitor/(\?.*)?$")  # the dashboard asks for a page of the groups table
APP_ENV = {
    "EVENTHUB_RUN_LOOPS": "1",
    "EVENTHUB_WORKERS": "inprocess",
    "EVENTHUB_CHANNEL_LAYER": "memory",
    "EVENTHUB_TICK_SECONDS": "1",
}

# JavaScript read from the page. Plotly keeps each chart's traces on its <div>; a
# trace's `meta` is its full name (the legend may shorten it).
TRACE = """([chart, name]) => {
  const div = document.getElementById(chart);
  return (div && div.data || []).find((t) => t.meta === name) || null;
}"""
POINTS = "(args) => { const t = (" + TRACE + ")(args); return t ? t.x.length : 0; }"
HAS_TRAFFIC = "(args) => { const t = (" + TRACE + ")(args); return !!t && t.y.some((v) => v > 0); }"


@pytest.fixture(scope="module")
def monitor_app(make_live_app) -> LiveApp:
    return make_live_app(env=APP_ENV, name="monitor")


@pytest.fixture(scope="module")
def quiet_app(make_live_app) -> LiveApp:
    """No collector at all: the page's socket is mocked and fed frames by the test."""
    return make_live_app(env={"EVENTHUB_CHANNEL_LAYER": "memory"}, name="monitor-quiet")


@pytest.fixture
def kafka():
    bus = open_bus("kafka", bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    yield bus
    bus.close()


def open_dashboard(page_as, app: LiveApp, path: str = "/monitor/", handshakes: list | None = None):
    """The dashboard, live. `handshakes` gets the response headers of each websocket handshake."""
    page = page_as("viewer", app=app)
    if handshakes is not None:
        devtools = page.context.new_cdp_session(page)
        devtools.on(
            "Network.webSocketHandshakeResponseReceived",
            lambda event: handshakes.append({k.lower(): v for k, v in event["response"]["headers"].items()}),
        )
        devtools.send("Network.enable")
    page.goto(path)
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    expect(page.locator("#monitor-connection")).to_have_text("live", timeout=WAIT_MS)
    # A snapshot from the running collector (not only the one embedded in the page).
    page.wait_for_function("window.eventhubMonitor.state.socketFrames >= 1", timeout=WAIT_MS)
    return page


def frames(page) -> int:
    return page.evaluate("window.eventhubMonitor.state.frames")


def consume(bus, topic: str, group: str, count: int) -> None:
    """Take `count` records with `group` and commit them; waits with a deadline."""
    with bus.consumer(group, [topic]) as consumer:
        taken: list = []
        deadline = time.monotonic() + 30
        while len(taken) < count and time.monotonic() < deadline:
            taken += consumer.poll(0.5, count - len(taken))
        assert len(taken) >= count, f"consumed only {len(taken)} of {count}"
        consumer.commit(taken[:count])


def test_dashboard_follows_the_bus_without_reloading(monitor_app, page_as, kafka, unique):
    topic, group = unique("dash-orders"), unique("dash-billing")
    handshakes: list[dict] = []
    page = open_dashboard(page_as, monitor_app, handshakes=handshakes)
    # Chromium offers permessage-deflate and the server takes it (eventhub/webserver.py).
    assert "permessage-deflate" in handshakes[0].get("sec-websocket-extensions", ""), handshakes

    # 1. A new topic shows up in the drift panel (it is not in the design).
    kafka.create_topic(topic, 1)
    expect(page.locator("#drift-topics tbody")).to_contain_text(topic, timeout=WAIT_MS)

    # 2. Messages produced now make a throughput trace for it appear, and it keeps growing.
    for i in range(30):
        kafka.publish(topic, b'{"n": %d}' % i, key=str(i).encode())
    kafka.flush()
    page.wait_for_function(HAS_TRAFFIC, arg=["chart-throughput", topic], timeout=WAIT_MS)
    points = page.evaluate(POINTS, ["chart-throughput", topic])
    seen = frames(page)
    page.wait_for_function(
        "([args, n]) => (" + POINTS + ")(args) >= n + 3", arg=[["chart-throughput", topic], points], timeout=WAIT_MS
    )
    assert frames(page) > seen

    # 3. A group that read 10 of the 30 shows lag 20 in the table and in the lag chart.
    consume(kafka, topic, group, 10)
    row = page.locator("#groups-table tbody tr", has_text=group)
    expect(row.locator("td").nth(4)).to_have_text("20", timeout=WAIT_MS)
    expect(row.locator("td").nth(2)).to_have_text(topic)
    expect(row.locator("td").nth(2).locator("a")).to_have_attribute("href", f"/browse/kafka/{topic}/")  # its messages
    page.wait_for_function(HAS_TRAFFIC, arg=["chart-lag", f"{group} → {topic}"], timeout=WAIT_MS)
    expect(page.locator("#drift-groups tbody")).to_contain_text(group)

    # 4. Seconds instead of messages: same trace, another unit.
    page.get_by_role("button", name="Seconds").click()
    expect(page.locator("#chart-lag-unit")).to_have_text("seconds")
    page.wait_for_function(
        "() => (document.getElementById('chart-lag').layout.yaxis.title.text || '').includes('seconds')",
        timeout=WAIT_MS,
    )

    # All of it came as deltas after the first frame, none of them missed.
    assert page.evaluate("window.eventhubMonitor.state.deltas") >= 3
    assert page.evaluate("window.eventhubMonitor.state.refreshes") == 0
    assert page.evaluate("window.__sameDocument") is True
    assert page_as.errors(page) == []

    # 5. A dashboard opened now starts with the last minutes, read from the history API.
    later = open_dashboard(page_as, monitor_app)
    later.wait_for_function(
        "(args) => { const t = (" + TRACE + ")(args);"
        " return !!t && +t.x[0] < window.eventhubMonitor.state.firstRecorded; }",
        arg=["chart-throughput", topic],
        timeout=WAIT_MS,
    )
    assert page_as.errors(later) == []


def commit_groups(bootstrap: str, topic: str, offsets: dict[str, int]) -> None:
    """Each group commits its offset on partition 0 of `topic`, without joining (as an offset reset does)."""
    from concurrent.futures import ThreadPoolExecutor

    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    def commit(group: str) -> None:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        try:
            consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offsets[group], "", -1)})
        finally:
            consumer.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(commit, offsets))


def test_the_groups_table_shows_a_page_at_a_time_and_the_socket_sends_only_that_page(
    monitor_app, page_as, kafka, unique
):
    """Of many groups the socket sends one page of the table, worst first, and how many
    match; the filter and the Next and Previous buttons ask the server for another."""
    from monitor.pages import PAGE_SIZE

    topic, prefix = unique("paged"), unique("pager")
    kafka.create_topic(topic, 1)
    for n in range(40):
        kafka.publish(topic, b'{"n": %d}' % n)
    kafka.flush()
    # Group n has read n % 40 records: lag 40 - n % 40.
    offsets = {f"{prefix}-{n:03d}": n % 40 for n in range(PAGE_SIZE + 12)}
    commit_groups(os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic, offsets)

    page = open_dashboard(page_as, monitor_app)
    page.locator("#groups-filter").fill(prefix)
    expect(page.locator("#groups-count")).to_have_text(f"{len(offsets)}", timeout=WAIT_MS)
    expect(page.locator("#groups-range")).to_have_text(f"1–{PAGE_SIZE} of {len(offsets)}")
    shown = page.evaluate("window.eventhubMonitor.state.snapshot.groups")
    assert len(shown) == PAGE_SIZE and {g["group"] for g in shown} <= set(offsets)  # the socket's rows: this page
    rows = page.locator("#groups-table tbody tr")
    expect(rows).to_have_count(PAGE_SIZE)
    # The most lag first (all OK): the groups that read nothing, by name.
    expect(rows.first.locator("td").nth(1)).to_contain_text(f"{prefix}-000")
    expect(rows.first.locator("td").nth(4)).to_have_text("40")
    expect(page.locator("#groups-prev")).to_be_disabled()

    page.get_by_role("button", name="Next").click()
    expect(page.locator("#groups-range")).to_have_text(f"{PAGE_SIZE + 1}–{len(offsets)} of {len(offsets)}")
    expect(rows).to_have_count(12)
    expect(page.locator("#groups-next")).to_be_disabled()
    # The last page: the least lag; group n has lag 1 when n % 40 == 39.
    expect(rows.last.locator("td").nth(4)).to_have_text("1")
    assert len(page.evaluate("window.eventhubMonitor.state.snapshot.groups")) == 12

    page.get_by_role("button", name="Previous").click()
    expect(page.locator("#groups-range")).to_have_text(f"1–{PAGE_SIZE} of {len(offsets)}")
    # A narrower filter: page one of its matches, worst first.
    page.locator("#groups-filter").fill(f"{prefix}-31")
    expect(page.locator("#groups-count")).to_have_text("2", timeout=WAIT_MS)  # -310 and -311
    expect(page.locator("#groups-pager")).to_be_hidden()
    expect(rows).to_have_count(2)
    assert page.evaluate("window.eventhubMonitor.state.refreshes") == 0
    assert page_as.errors(page) == []


def test_demo_shop_on_the_graph_tables_and_charts(monitor_app, page_as):
    """The seeded demo design with the simulator trading: overlays on the graph, services, screenshot."""
    monitor_app.manage("seed_demo")
    with demo_shop(monitor_app.env):
        page = open_dashboard(page_as, monitor_app)
        # Designed nodes drawn read-only, with live numbers on the connections.
        assert page.evaluate("window.eventhubMonitor.cy().nodes().length") > 5
        assert page.evaluate("window.eventhubMonitor.cy().autoungrabify()") is True
        page.wait_for_function(
            "() => window.eventhubMonitor.cy().edges('.produces').some((e) => /\\/s$/.test(e.data('overlay')))",
            timeout=WAIT_MS,
        )
        page.wait_for_function(
            "() => window.eventhubMonitor.cy().edges('.consumes').some((e) => /lag/.test(e.data('overlay')))",
            timeout=WAIT_MS,
        )
        # Services report through the SDK's heartbeats.
        services = page.locator("#services-table tbody tr")
        expect(services.first).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#services-table tbody")).to_contain_text("orders", timeout=WAIT_MS)
        # The designed topics carry traffic on the throughput chart.
        page.wait_for_function(HAS_TRAFFIC, arg=["chart-throughput", "orders"], timeout=WAIT_MS)

        # The domain filter narrows the graph and keeps the choice in the address.
        domain = page.locator("#monitor-domain option").nth(1).get_attribute("value")
        total = page.evaluate("window.eventhubMonitor.cy().nodes().not('.out').length")
        page.select_option("#monitor-domain", domain)
        page.wait_for_function(f"() => window.eventhubMonitor.cy().nodes().not('.out').length < {total}")
        assert f"domain={domain}" in page.url
        # From now on the socket carries that domain's topics only: the server trims them.
        page.wait_for_function(
            """() => { const s = window.eventhubMonitor.state; const topics = s.snapshot.topics;
                return topics.length > 0 && topics.every((t) => s.scope.topics.has(t.bus + ":" + t.name)); }""",
            timeout=WAIT_MS,
        )
        scoped = page.evaluate("window.eventhubMonitor.state.snapshot.topics.length")
        page.select_option("#monitor-domain", "")
        page.wait_for_function(f"() => window.eventhubMonitor.state.snapshot.topics.length > {scoped}", timeout=WAIT_MS)

        # A few more seconds of traffic make a better picture; wait for frames, not time.
        seen = frames(page)
        page.wait_for_function(f"() => window.eventhubMonitor.state.frames >= {seen + 5}", timeout=WAIT_MS)
        draw_readme_picture(page, "dashboard.png", full_page=True, timeout=WAIT_MS)
        assert page_as.errors(page) == []


def _restart(app: LiveApp) -> None:
    """Stop Daphne and start it again on the same port, database and environment."""
    app.stop()
    port = app.url.rsplit(":", 1)[1]
    with Path(app.log_path).open("ab") as log:
        app.process = subprocess.Popen(
            web_command("127.0.0.1", int(port), options=""),
            cwd=ROOT,
            env=app.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_until_healthy(app)


def test_dashboard_reconnects_after_a_server_restart(monitor_app, page_as):
    page = open_dashboard(page_as, monitor_app)

    monitor_app.stop()
    expect(page.locator("#monitor-connection")).to_have_text("reconnecting…", timeout=WAIT_MS)
    _restart(monitor_app)

    expect(page.locator("#monitor-connection")).to_have_text("live", timeout=WAIT_MS)
    # Snapshots of the restarted collector reach the page over the new socket.
    seen = page.evaluate("window.eventhubMonitor.state.lastRecorded")
    page.wait_for_function(f"() => window.eventhubMonitor.state.lastRecorded > {seen}", timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") is True
    # The failed attempts while the server was down are expected console noise; nothing else.
    assert [e for e in page_as.errors(page) if "WebSocket" not in e and "Failed to load resource" not in e] == []


# --------------------------------------------------------------------------- frames written by the test
def frame(at: str, redis_up: bool) -> str:
    """A websocket frame in the snapshot contract, with something for every panel."""
    snapshot = {
        "at": at,
        "tick": 7,
        "tick_ms": 9.5,
        "buses": [
            {"kind": "kafka", "up": True, "error": None},
            {"kind": "redis", "up": redis_up, "error": None if redis_up else "ConnectionError: connection refused"},
        ],
        "topics": [
            {"bus": "kafka", "name": "orders", "partitions": 3, "end_offset": 900, "rate": 5.0, "dead_letter": False, "designed": True},
            {"bus": "kafka", "name": "orders.dlq", "partitions": 1, "end_offset": 12, "rate": 0.05, "dead_letter": True, "designed": False},
        ],
        "groups": [
            {
                "bus": "kafka", "group": "<img src=x onerror=alert(1)>", "topic": "orders", "lag": 1234,
                "lag_seconds": 95.0, "consume_rate": 0.0, "time_to_drain_s": None, "status": "STOP",
                "reason": "committed offsets have not moved for 120 s while lag grew", "state": "Empty", "designed": False,
            },
            {
                "bus": "kafka", "group": "billing", "topic": "orders", "lag": 3, "lag_seconds": 0.4,
                "consume_rate": 5.1, "time_to_drain_s": 0.6, "status": "OK", "reason": "", "state": "Stable", "designed": True,
            },
        ],
        "services": [
            {"service": "billing", "up": True, "instances": 2, "last_seen": at, "last_error": None},
            {"service": "shipping", "up": False, "instances": 0, "last_seen": "2025-01-02T09:50:00+00:00", "last_error": "KeyError: 'carrier'"},
        ],
        "alerts": [
            {"id": 1, "rule": "billing lag", "kind": "lag", "subject": "billing/orders", "state": "firing",
             "message": "lag 1234 > 1000", "value": 1234, "started_at": "2025-01-02T09:58:00+00:00", "resolved_at": None},
            {"id": 2, "rule": "dead letters", "kind": "dlq", "subject": "orders.dlq", "state": "resolved",
             "message": "inflow 3/min > 1/min", "value": 3.0, "started_at": "2025-01-02T09:40:00+00:00",
             "resolved_at": "2025-01-02T09:45:00+00:00"},
        ],
        "dead_letters": {"inflow_per_min": 3.0, "by_topic": {"orders.dlq": 3.0}},
        "drift": {
            "undesigned_topics": [{"bus": "kafka", "name": "orders.dlq"}],
            "undesigned_groups": [{"bus": "kafka", "group": "<img src=x onerror=alert(1)>"}],
            "silent_edges": [{"edge_id": "producer:9", "event": "order.cancelled", "service": "orders", "silent_s": 640.0}],
        },
        "edges": [],
    }  # fmt: skip
    return json.dumps({"type": "snapshot", "snapshot": snapshot})


def test_each_frame_redraws_banners_alerts_tables_and_drift(quiet_app, page_as):
    page = page_as("viewer", app=quiet_app)
    sockets: list = []
    page.route_web_socket(MONITOR_SOCKET, lambda ws: sockets.append(ws))  # mocked: nothing reaches the server
    page.goto("/monitor/")

    # No collector yet: the page says so, and that it is waiting for one.
    expect(page.locator("#monitor-empty")).to_contain_text("Waiting for the collector…")
    expect(page.locator("#monitor-connection")).to_have_text("live")

    sockets[-1].send(frame("2025-01-02T10:00:00+00:00", redis_up=False))
    expect(page.locator("#monitor-empty")).to_be_hidden()
    banners = page.locator("#monitor-banners .banner-down")
    expect(banners).to_have_text(["Redis bus is down: ConnectionError: connection refused"])

    alerts = page.locator("#alerts-table tbody tr")
    expect(alerts).to_have_count(2)
    expect(alerts.nth(0)).to_contain_text("billing lag")
    expect(alerts.nth(0).locator(".status")).to_have_text("firing")
    expect(alerts.nth(1).locator(".status")).to_have_text("resolved")
    expect(page.locator("#alerts-count")).to_have_text("1 firing · 1 resolved")

    # Worst first; Burrow's reason on the status; user text stays text.
    stopped = page.locator("#groups-table tbody tr").first
    expect(stopped.locator("td").nth(1)).to_contain_text("<img src=x onerror=alert(1)>")
    expect(stopped.locator(".status")).to_have_text("STOP")
    expect(stopped.locator(".status")).to_have_attribute(
        "title", "committed offsets have not moved for 120 s while lag grew"
    )
    expect(stopped.locator("td").nth(4)).to_have_text("1,234")
    expect(stopped.locator("td").nth(5)).to_have_text("1 min 35 s")
    assert page.locator("#groups-table img").count() == 0

    shipping = page.locator("#services-table tbody tr", has_text="shipping")
    expect(shipping.locator(".status")).to_have_text("down")
    expect(shipping.locator("td").nth(4)).to_have_text("KeyError: 'carrier'")
    expect(page.locator("#drift-silent tbody")).to_contain_text("order.cancelled")
    expect(page.locator("#drift-silent tbody")).to_contain_text("10 min 40 s")
    expect(page.locator("#dlq-total")).to_have_text("3/min now")

    # The next frame says Redis is back: the banner goes with that very frame.
    sockets[-1].send(frame("2025-01-02T10:00:02+00:00", redis_up=True))
    page.wait_for_function("window.eventhubMonitor.state.frames === 2")
    assert banners.count() == 0

    # The server goes away: the page says so and comes back by itself.
    sockets[-1].close(code=1012, reason="restart")
    expect(page.locator("#monitor-connection")).to_have_text("reconnecting…")
    expect(page.locator("#monitor-connection")).to_have_text("live", timeout=WAIT_MS)
    assert len(sockets) == 2

    # Logged out meanwhile (another tab, an expired session): the page says so and stops trying.
    page.context.clear_cookies()
    sockets[-1].close(code=1011)
    expect(page.locator("#monitor-connection")).to_have_text("signed out — log in again")
    expect(page.get_by_role("link", name="log in again")).to_have_attribute("href", "/login/?next=%2Fmonitor%2F")
    assert [e for e in page_as.errors(page) if "403" not in e] == []


def test_deltas_patch_the_page_and_a_missed_one_asks_for_the_whole_view(quiet_app, page_as):
    """After the first frame: deltas with only the changed rows; ages of untouched rows move
    with the clock; a delta made from a tick the page never had is not applied: the page
    asks for the whole view ("refresh") and takes the next whole frame."""
    page = page_as("viewer", app=quiet_app)
    sockets: list = []
    said: list = []

    def take(ws) -> None:
        sockets.append(ws)
        ws.on_message(lambda message: said.append(json.loads(message)))

    page.route_web_socket(MONITOR_SOCKET, take)
    page.goto("/monitor/")
    expect(page.locator("#monitor-connection")).to_have_text("live")

    whole = json.loads(frame("2025-01-02T10:00:00+00:00", redis_up=True))
    epoch = 1735812000.0  # 2025-01-02T10:00:00Z
    stopped, billing = whole["snapshot"]["groups"]
    stopped.update(lag_since=epoch - 95, moved_at=epoch - 600)
    billing.update(lag_since=epoch - 0.4, moved_at=epoch)
    sockets[-1].send(json.dumps(whole))
    stopped_row = page.locator("#groups-table tbody tr").first
    expect(stopped_row.locator("td").nth(5)).to_have_text("1 min 35 s")

    changed = {k: v for k, v in billing.items() if k != "lag_seconds"}
    changed.update(lag=4321, status="WARN", lag_since=epoch - 30)
    delta = {
        "type": "delta",
        "tick": 8,
        "base": 7,
        "set": {"at": "2025-01-02T10:00:05+00:00"},
        "rows": {"groups": {"upsert": [changed]}, "topics": {"remove": [["kafka", "orders.dlq"]]}},
    }
    sockets[-1].send(json.dumps(delta))
    billing_row = page.locator("#groups-table tbody tr", has_text="billing")
    expect(billing_row.locator("td").nth(4)).to_have_text("4,321")
    expect(billing_row.locator("td").nth(5)).to_have_text("35 s")  # 30 s before, at a frame 5 s later
    expect(billing_row.locator(".status")).to_have_text("WARN")
    expect(stopped_row.locator("td").nth(5)).to_have_text("1 min 40 s")  # not in the delta: aged by 5 s
    assert page.evaluate("window.eventhubMonitor.state.snapshot.topics.map((t) => t.name)") == ["orders"]
    assert said == []

    # Tick 9 never arrived: the delta 9 -> 10 is not applied, the page asks for the whole view.
    sockets[-1].send(
        json.dumps({**delta, "tick": 10, "base": 9, "rows": {"groups": {"upsert": [dict(changed, lag=1)]}}})
    )
    page.wait_for_function("window.eventhubMonitor.state.refreshes === 1")
    assert said == [{"type": "refresh"}]
    expect(billing_row.locator("td").nth(4)).to_have_text("4,321")
    again = json.loads(frame("2025-01-02T10:00:09+00:00", redis_up=True))
    again["snapshot"]["tick"] = 10
    sockets[-1].send(json.dumps(again))
    expect(billing_row.locator("td").nth(4)).to_have_text("3")
    assert page.evaluate("window.eventhubMonitor.state.snapshot.tick") == 10
    assert page_as.errors(page) == []
