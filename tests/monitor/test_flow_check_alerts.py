"""The "Flow check failing" alert rule: the latest check of each flow, fed to the rules on each
collector tick; it fires while a flow's latest check failed and resolves when one passes."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from designer.models import EventType, Flow, FlowStep, Topic
from eventstore.models import FlowCheck
from monitor import alerts
from monitor.alerts import Rule
from monitor.models import Alert, AlertRule
from tests.monitor.support import make_collector, monitor_store  # noqa: F401

FAILED = {"flow": "checkout", "check": 7, "status": "failed", "error": "Failed at step 5 (order.confirmed → shipping)"}
PASSED = {"flow": "refund", "check": 8, "status": "passed", "error": ""}


@pytest.mark.parametrize(
    ("target", "flows", "subjects"),
    [
        ("*", [FAILED, PASSED], ["kafka:flow:checkout"]),
        ("check*", [FAILED], ["kafka:flow:checkout"]),
        ("refund", [FAILED, PASSED], []),  # the failing flow is not targeted; the targeted one passed
        ("*", [], []),  # no check yet: nothing to say
    ],
)
def test_breaches(target, flows, subjects):
    rule = Rule(1, "flows", "flow_check", target)
    found = alerts.breaches(rule, {"kind": "kafka", "flow_checks": flows})
    assert [b.subject for b in found] == subjects
    if found:
        assert found[0].message == (
            "Flow check of checkout failed (check #7): Failed at step 5 (order.confirmed → shipping)"
        )


def _check(flow: Flow, status: str, error: str = "") -> FlowCheck:
    now = timezone.now()
    return FlowCheck.objects.create(
        flow=flow,
        status=status,
        error=error,
        correlation_id=f"c-{time.monotonic_ns()}",
        started_at=now,
        finished_at=now,
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("monitor_store")
def test_a_failing_flow_fires_on_the_tick_and_resolves_when_it_passes(
    bus, unique, settings, django_capture_on_commit_callbacks
):
    settings.EVENTHUB_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"  # queued only: the webhook path is the rules'
    topic = Topic.objects.create(name=unique("orders"), bus=bus.kind, address=unique("orders"))
    bus.create_topic(topic.address)
    event = EventType.objects.create(name="order.placed", topic=topic)
    flow = Flow.objects.create(name=unique("Checkout"), trigger="Pay")
    FlowStep.objects.create(flow=flow, event_type=event)
    rule = AlertRule.objects.create(name=unique("flows"), kind=AlertRule.FLOW_CHECK, target="checkout-*")
    collector = make_collector(bus.kind, unique)
    try:
        now = time.time()
        _check(flow, "failed", "Failed at step 1 (order.placed): not seen within 30 s.")
        _check(flow, "running")  # a running check does not count: the latest finished one does
        with django_capture_on_commit_callbacks(execute=False) as queued:
            collector.tick(now)
        alert = Alert.objects.get(rule=rule)
        assert (alert.state, alert.subject) == (Alert.FIRING, f"{bus.kind}:flow:{flow.slug}")
        assert alert.message.endswith("Failed at step 1 (order.placed): not seen within 30 s.")
        assert len(queued) == 1  # the webhook, after commit
        collector.tick(now + 1)
        assert Alert.objects.filter(rule=rule).count() == 1  # still the same alert

        _check(flow, "passed")
        collector.tick(now + 2)
        alert.refresh_from_db()
        assert alert.state == Alert.RESOLVED and alert.resolved_at is not None
    finally:
        collector.close()


@pytest.mark.django_db
def test_the_demo_seeds_the_rule():
    from django.core.management import call_command

    call_command("seed_demo")
    rule = AlertRule.objects.get(kind=AlertRule.FLOW_CHECK)
    assert (rule.name, rule.target, rule.enabled) == ("Flow check failing", "*", True)
