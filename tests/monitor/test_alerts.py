"""Alert rules: plain evaluation (no database), opening/resolving rows, the webhook."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor import alerts
from monitor.alerts import Rule
from monitor.models import Alert, AlertRule
from tests.monitor.support import make_collector, monitor_store, produce_and_consume, wait_until  # noqa: F401


def _part(**sections) -> dict:
    base = {
        "bus": {"kind": "kafka", "up": True, "error": None},
        "groups": [],
        "edges": [],
        "services": [],
        "dead_letters": {"inflow_per_min": 0.0, "by_topic": {}},
    }
    return {**base, **sections}


def _group(lag=0, lag_seconds=0.0, status="OK", group="billing", topic="orders") -> dict:
    return {"group": group, "topic": topic, "lag": lag, "lag_seconds": lag_seconds, "status": status, "reason": "r"}


# One row per case: rule, part, expected subjects.
CASES = [
    ("lag over", Rule(1, "r", "lag_messages", "*", 100), _part(groups=[_group(lag=101)]), ["kafka:orders/billing"]),
    ("lag at limit", Rule(1, "r", "lag_messages", "*", 100), _part(groups=[_group(lag=100)]), []),
    ("lag unknown", Rule(1, "r", "lag_messages", "*", 0), _part(groups=[_group(lag=None)]), []),
    ("target group", Rule(1, "r", "lag_messages", "bill*", 1), _part(groups=[_group(lag=5)]), ["kafka:orders/billing"]),
    (
        "target topic",
        Rule(1, "r", "lag_messages", "orders", 1),
        _part(groups=[_group(lag=5)]),
        ["kafka:orders/billing"],
    ),
    (
        "target pair",
        Rule(1, "r", "lag_messages", "orders/billing", 1),
        _part(groups=[_group(lag=5)]),
        ["kafka:orders/billing"],
    ),
    ("target other", Rule(1, "r", "lag_messages", "payments*", 1), _part(groups=[_group(lag=5)]), []),
    (
        "lag seconds",
        Rule(2, "r", "lag_seconds", "*", 30),
        _part(groups=[_group(lag_seconds=31.5)]),
        ["kafka:orders/billing"],
    ),
    ("stall", Rule(3, "r", "group_status", "*"), _part(groups=[_group(status="STALL")]), ["kafka:orders/billing"]),
    ("stop", Rule(3, "r", "group_status", "*"), _part(groups=[_group(status="STOP")]), ["kafka:orders/billing"]),
    ("warn is not an error", Rule(3, "r", "group_status", "*"), _part(groups=[_group(status="WARN")]), []),
    (
        "silent edge",
        Rule(4, "r", "freshness", "shop", 60),
        _part(edges=[{"edge_id": "producer:3", "service": "shop", "event": "order.placed", "silent_s": 61}]),
        ["kafka:producer:3"],
    ),
    (
        "fresh edge",
        Rule(4, "r", "freshness", "*", 60),
        _part(edges=[{"edge_id": "consumer:3", "service": "shop", "event": "order.placed", "silent_s": 5}]),
        [],
    ),
    (
        "dlq inflow",
        Rule(5, "r", "dlq_inflow", "*.dlq", 1),
        _part(dead_letters={"inflow_per_min": 3.0, "by_topic": {"orders.dlq": 3.0, "pay.dlq": 0.0}}),
        ["kafka:orders.dlq"],
    ),
    (
        "heartbeat lost",
        Rule(6, "r", "heartbeat", "bill*"),
        _part(services=[{"service": "billing", "up": False, "silent_s": 40}, {"service": "shop", "up": False}]),
        ["kafka:billing"],
    ),
    ("heartbeat fine", Rule(6, "r", "heartbeat", "*"), _part(services=[{"service": "billing", "up": True}]), []),
]


@pytest.mark.parametrize(("case", "rule", "part", "subjects"), CASES, ids=[c[0] for c in CASES])
def test_breaches(case, rule, part, subjects):
    assert [b.subject for b in alerts.breaches(rule, part)] == subjects


def test_decide_waits_for_seconds_then_fires_then_resolves():
    rule = Rule(1, "lag", "lag_messages", "*", 10, for_seconds=30)
    bad, good = _part(groups=[_group(lag=50)]), _part(groups=[_group(lag=0)])
    pending: dict = {}
    assert alerts.decide([rule], bad, pending, set(), now=100).fire == []
    assert alerts.decide([rule], bad, pending, set(), now=120).fire == []
    fired = alerts.decide([rule], bad, pending, set(), now=130).fire
    assert [b.key for b in fired] == [(1, "kafka:orders/billing")]
    assert pending == {}
    firing = {(1, "kafka:orders/billing")}
    assert alerts.decide([rule], bad, pending, firing, now=140).resolve == []
    assert alerts.decide([rule], good, pending, firing, now=150).resolve == [(1, "kafka:orders/billing")]


def test_decide_a_blip_shorter_than_for_seconds_never_fires():
    rule = Rule(1, "lag", "lag_messages", "*", 10, for_seconds=30)
    pending: dict = {}
    alerts.decide([rule], _part(groups=[_group(lag=50)]), pending, set(), now=100)
    alerts.decide([rule], _part(groups=[_group(lag=0)]), pending, set(), now=110)
    assert alerts.decide([rule], _part(groups=[_group(lag=50)]), pending, set(), now=135).fire == []


def test_decide_resolves_alerts_of_a_disabled_rule():
    decision = alerts.decide([], _part(groups=[_group(lag=50)]), {}, {(9, "kafka:orders/billing")}, now=1)
    assert decision.resolve == [(9, "kafka:orders/billing")]


def test_backoff_doubles():
    assert [alerts.webhook_backoff(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]


# --- with the database and the real buses ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("monitor_store")
def test_lag_alert_opens_after_for_seconds_and_resolves(bus, unique, settings):
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""
    topic, group = unique("orders"), unique("billing")
    produce_and_consume(bus, topic, group, produced=6, consumed=1)
    rule = AlertRule.objects.create(
        name=unique("lag"), kind=AlertRule.LAG_MESSAGES, target=group, threshold=3, for_seconds=20
    )
    collector = make_collector(bus.kind, unique)
    try:
        now = time.time()
        collector.tick(now)
        assert not Alert.objects.filter(rule=rule).exists()  # holds, but not for 20 s yet
        snapshot = collector.tick(now + 21)
        alert = Alert.objects.get(rule=rule)
        assert alert.state == Alert.FIRING
        assert alert.subject == f"{bus.kind}:{topic}/{group}"
        assert alert.value == 5
        shown = next(a for a in snapshot["alerts"] if a["id"] == alert.pk)
        assert shown["state"] == "firing" and shown["kind"] == "lag_messages" and shown["rule"] == rule.name
        collector.tick(now + 22)
        assert Alert.objects.filter(rule=rule).count() == 1  # still the same alert

        produce_and_consume(bus, topic, group, produced=0, consumed=5)
        snapshot = collector.tick(now + 23)
        alert.refresh_from_db()
        assert alert.state == Alert.RESOLVED and alert.resolved_at is not None
        assert next(a for a in snapshot["alerts"] if a["id"] == alert.pk)["state"] == "resolved"
    finally:
        collector.close()


@pytest.mark.django_db
@pytest.mark.usefixtures("monitor_store")
def test_a_bus_that_is_down_resolves_nothing(unique):
    from eventhub.bus import open_bus
    from monitor.collector import Collector

    rule = AlertRule.objects.create(name=unique("lag"), kind=AlertRule.LAG_MESSAGES, threshold=0)
    alert = Alert.objects.create(rule=rule, subject="kafka:orders/billing", message="m", started_at="2026-01-01T00:00Z")
    dead = Collector("kafka", bus_factory=lambda: open_bus("kafka", bootstrap_servers="127.0.0.1:1"))
    try:
        snapshot = dead.tick()
    finally:
        dead.close()
    assert next(b for b in snapshot["buses"] if b["kind"] == "kafka")["up"] is False
    alert.refresh_from_db()
    assert alert.state == Alert.FIRING


# --- the webhook, against a real local HTTP server ----------------------------------------


class _Hook:
    """A local HTTP server answering each POST with the next status of `statuses`
    (with the reason phrase `reason(path)` when given: a server that echoes the path)."""

    def __init__(self, statuses: list[int], reason=None):
        self.statuses = list(statuses)
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status, reason(self.path) if reason else None)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory():
    hooks = []

    def make(statuses, reason=None):
        hooks.append(_Hook(statuses, reason))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


def _fire(unique) -> Alert:
    """Open an alert through the one door (alerts.apply); the webhook is queued after commit."""
    rule = AlertRule.objects.create(name=unique("lag"), kind=AlertRule.LAG_MESSAGES, threshold=1)
    breach = alerts.Breach(rule.pk, "kafka:orders/billing", 9.0, "Group billing is 9 messages behind on orders.")
    alerts.apply(alerts.Decision(fire=[breach]), time.time())
    return Alert.objects.get(rule=rule)


def _settled(alert_id: int, condition):
    """Read the alert, tolerating SQLite's lock errors while the delivery thread writes."""
    from django.db import OperationalError

    try:
        alert = Alert.objects.get(pk=alert_id)
    except OperationalError:
        return None
    return alert if condition(alert) else None


@pytest.mark.django_db
def test_webhook_retries_with_backoff_until_delivered(settings, unique, hook_factory):
    from monitor import tasks

    hook = hook_factory([500, 503, 200])
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""  # nothing queued by apply(); delivered below
    alert = _fire(unique)
    settings.EVENTHUB_ALERT_WEBHOOK_URL = hook.url
    waits = []
    assert alerts.deliver_webhook(alert.pk, "firing", sleep=waits.append) is True
    assert waits == [2.0, 4.0]  # exponential backoff between the three attempts
    alert.refresh_from_db()
    assert alert.webhook_attempts == 3
    assert alert.webhook_error == ""
    assert alert.webhook_delivered_at is not None
    assert len(hook.bodies) == 3
    assert hook.bodies[-1]["event"] == "alert.firing"
    assert hook.bodies[-1]["alert"]["subject"] == "kafka:orders/billing"
    assert hook.bodies[-1]["alert"]["state"] == "firing"
    # The Celery task run directly (the thread path) does the same loop.
    settings.EVENTHUB_ALERT_WEBHOOK_BACKOFF_S = 0.01
    assert tasks.deliver_alert_webhook.run(alert.pk, "resolved") is True
    assert hook.bodies[-1]["event"] == "alert.resolved"


@pytest.mark.django_db
@pytest.mark.usefixtures("monitor_store")
def test_webhook_failures_are_recorded_and_shown(settings, unique, hook_factory):
    hook = hook_factory([500])
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""
    alert = _fire(unique)
    settings.EVENTHUB_ALERT_WEBHOOK_URL = hook.url
    assert alerts.deliver_webhook(alert.pk, "firing", sleep=lambda s: None) is False
    alert.refresh_from_db()
    assert alert.webhook_attempts == alerts.WEBHOOK_ATTEMPTS == len(hook.bodies)
    assert alert.webhook_delivered_at is None
    port = hook.server.server_address[1]
    assert alert.webhook_error == f"firing: HTTP 500 Internal Server Error (http://127.0.0.1:{port})"
    shown = next(a for a in alerts.recent_alerts() if a["id"] == alert.pk)
    assert shown["webhook"] == {"attempts": alerts.WEBHOOK_ATTEMPTS, "error": alert.webhook_error, "delivered_at": None}


@pytest.mark.django_db
def test_webhook_to_nowhere_records_the_connection_error(settings, unique):
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""
    alert = _fire(unique)
    settings.EVENTHUB_ALERT_WEBHOOK_URL = "http://127.0.0.1:1/hook"
    assert alerts.attempt_webhook(alert.pk, "firing") is False
    assert "Connection refused" in Alert.objects.get(pk=alert.pk).webhook_error


SECRET_PATH = "/services/T0001/B0002/s3cretHookToken"


@pytest.mark.django_db
@pytest.mark.usefixtures("monitor_store")
def test_webhook_errors_name_only_scheme_host_and_port(settings, unique, hook_factory, caplog):
    """The webhook's secret is in its path and query: not stored, logged or pushed, even when
    the server echoes the path in its reason phrase."""
    hook = hook_factory([500], reason=lambda path: f"no hook at {path}")
    port = hook.server.server_address[1]
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""
    alert = _fire(unique)
    settings.EVENTHUB_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}{SECRET_PATH}?token=s3cretQuery"
    caplog.set_level("WARNING", logger="monitor.alerts")
    assert alerts.deliver_webhook(alert.pk, "firing", attempts=2, sleep=lambda s: None) is False
    assert len(hook.bodies) == 2  # the server was reached, and answered 500
    stored = Alert.objects.get(pk=alert.pk).webhook_error
    shown = next(a for a in alerts.recent_alerts() if a["id"] == alert.pk)["webhook"]["error"]  # in every snapshot
    logged = caplog.text
    assert stored == shown == f"firing: HTTP 500 Internal Server Error (http://127.0.0.1:{port})"
    assert f"(http://127.0.0.1:{port})" in logged
    for text in (stored, shown, logged):
        for secret in ("s3cret", "services/", "token", "no hook at"):
            assert secret not in text, (secret, text)


@pytest.mark.django_db
def test_unusable_webhook_urls_fail_without_showing_the_url(settings, unique, caplog):
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""
    alert = _fire(unique)
    caplog.set_level("WARNING", logger="monitor.alerts")
    for url in (
        "hooks.example.com/s3cret",
        "http://127.0.0.1:port/s3cret",
        "ftp://files.invalid/s3cret",
        "http://bot:s3cret@127.0.0.1:1/s3cret",
    ):
        settings.EVENTHUB_ALERT_WEBHOOK_URL = url
        assert alerts.attempt_webhook(alert.pk, "firing") is False
        assert "s3cret" not in Alert.objects.get(pk=alert.pk).webhook_error
    assert "s3cret" not in caplog.text


@pytest.mark.parametrize(
    "url, origin",
    [
        ("https://hooks.example.com/services/T/B/x?token=y", "https://hooks.example.com:443"),
        ("http://user:pw@10.0.0.5:8080/hook", "http://10.0.0.5:8080"),
        ("http://[::1]/hook", "http://[::1]:80"),
        ("hooks.example.com/x", "unreadable URL"),
        ("http://host:port/x", "unreadable URL"),
    ],
)
def test_webhook_origin(url, origin):
    assert alerts.webhook_origin(url) == origin


@pytest.mark.django_db(transaction=True)
def test_firing_queues_the_webhook_in_the_background(settings, unique, hook_factory):
    """Without Celery (EVENTHUB_WORKERS=inprocess) the delivery and its retries run in a thread."""
    hook = hook_factory([502, 200])
    settings.EVENTHUB_ALERT_WEBHOOK_URL = hook.url
    settings.EVENTHUB_ALERT_WEBHOOK_BACKOFF_S = 0.01
    settings.EVENTHUB_WORKERS = "inprocess"
    alert = _fire(unique)
    done = wait_until(lambda: _settled(alert.pk, lambda a: a.webhook_delivered_at), 10, "the background delivery")
    assert done.webhook_attempts == 2
    assert [body["event"] for body in hook.bodies] == ["alert.firing", "alert.firing"]


@pytest.mark.django_db
def test_the_celery_task_retries_by_rescheduling_itself(settings, unique, hook_factory):
    """In a worker each attempt is one run; `apply` runs the retries eagerly, in order."""
    from monitor import tasks

    hook = hook_factory([500, 500, 200])
    settings.EVENTHUB_ALERT_WEBHOOK_URL = ""
    alert = _fire(unique)
    settings.EVENTHUB_ALERT_WEBHOOK_URL = hook.url
    tasks.deliver_alert_webhook.apply(args=(alert.pk, "firing"))
    alert.refresh_from_db()
    assert alert.webhook_attempts == 3
    assert alert.webhook_delivered_at is not None
    assert len(hook.bodies) == 3
