"""Alert rules: evaluated on every collector tick, opened and resolved as Alert rows.

Two halves:

1. Plain functions (no Django): ``breaches(rule, part)`` lists what breaks a rule in
   one bus's part of the snapshot, and ``decide`` turns breaches into what to fire
   and what to resolve. A condition must hold for ``for_seconds`` before it fires
   (``pending`` remembers since when it holds, in the collector's memory: after a
   restart the wait starts again); it resolves on the first tick it no longer holds,
   or when its rule was disabled. Nothing is evaluated for a bus that is down: the
   subjects vanish from the part, which must not read as "all is well".
2. The Django side: ``apply`` writes the rows in one transaction, and after commit
   queues the webhook (``EVENTHUB_ALERT_WEBHOOK_URL``) through
   ``eventhub.background.submit``: a Celery task, or a thread without Celery.
   Deliveries are retried with exponential backoff; each failure is recorded on
   the Alert (``webhook_attempts``, ``webhook_error``) and shown in the snapshot.

Subjects start with the bus: ``kafka:orders/billing`` (group on a topic),
``kafka:orders.dlq`` (dead-letter topic), ``kafka:consumer:7`` (designed edge),
``kafka:billing`` (service), ``kafka:flow:checkout`` (flow check). A rule's ``target`` is an fnmatch pattern tried
against the names a subject is known by (topic, group, ``topic/group``, service,
event, edge id).
"""

from __future__ import annotations

import fnmatch
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 5
WEBHOOK_TIMEOUT_S = 5.0
# Resolved alerts stay in the snapshot this long, so the dashboard shows what just ended.
RESOLVED_SHOWN = timedelta(hours=1)
SNAPSHOT_ALERTS_MAX = 100
BAD_STATUSES = ("STOP", "STALL")

# --- plain evaluation --------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    target: str = "*"
    threshold: float = 0.0
    for_seconds: float = 0.0


@dataclass(frozen=True)
class Breach:
    rule_id: int
    subject: str
    value: float | None
    message: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.rule_id, self.subject)


@dataclass
class Decision:
    fire: list[Breach] = field(default_factory=list)
    resolve: list[tuple[int, str]] = field(default_factory=list)


MIN_EVENTS_FOR_RATE = 10  # an invalid-event share over fewer events is noise, not a rate


def _matches(target: str, *names: str | None) -> bool:
    target = target or "*"
    return any(name is not None and fnmatch.fnmatchcase(name, target) for name in names)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}".rstrip("0").rstrip(".")


def breaches(rule: Rule, part: dict[str, Any]) -> list[Breach]:
    """What breaks `rule` in one bus's part of the snapshot (see module docstring)."""
    bus = part["bus"]["kind"] if isinstance(part.get("bus"), dict) else part.get("kind", "")
    found: list[Breach] = []
    kind, limit = rule.kind, rule.threshold
    if kind in ("lag_messages", "lag_seconds", "group_status"):
        for row in part.get("groups", ()):
            group, topic = row["group"], row["topic"]
            if not _matches(rule.target, group, topic, f"{topic}/{group}"):
                continue
            subject = f"{bus}:{topic}/{group}"
            if kind == "lag_messages" and row["lag"] is not None and row["lag"] > limit:
                message = f"Group {group} is {row['lag']} messages behind on {topic} (limit {_fmt(limit)})."
                found.append(Breach(rule.id, subject, float(row["lag"]), message))
            elif kind == "lag_seconds" and row["lag_seconds"] is not None and row["lag_seconds"] > limit:
                message = f"Group {group} is {_fmt(row['lag_seconds'])} s behind on {topic} (limit {_fmt(limit)} s)."
                found.append(Breach(rule.id, subject, float(row["lag_seconds"]), message))
            elif kind == "group_status" and row["status"] in BAD_STATUSES:
                message = f"Group {group} on {topic} is {row['status']}: {row['reason']}"
                found.append(Breach(rule.id, subject, float(row["lag"] or 0), message[:500]))
    elif kind == "freshness":
        for edge in part.get("edges", ()):
            silent = edge.get("silent_s")
            if silent is None or silent <= limit:
                continue
            if not _matches(rule.target, edge["edge_id"], edge.get("service"), edge.get("event")):
                continue
            verb = "publishing" if edge["edge_id"].startswith("producer:") else "consuming"
            message = (
                f"{edge.get('service')} has not been seen {verb} {edge.get('event')} "
                f"for {_fmt(silent)} s (limit {_fmt(limit)} s)."
            )
            found.append(Breach(rule.id, f"{bus}:{edge['edge_id']}", float(silent), message))
    elif kind == "dlq_inflow":
        for topic, per_min in part.get("dead_letters", {}).get("by_topic", {}).items():
            if per_min > limit and _matches(rule.target, topic):
                message = f"{_fmt(per_min)} dead letters per minute into {topic} (limit {_fmt(limit)})."
                found.append(Breach(rule.id, f"{bus}:{topic}", float(per_min), message))
    elif kind == "heartbeat":
        for service in part.get("services", ()):
            if service["up"] or not _matches(rule.target, service["service"]):
                continue
            silent = service.get("silent_s")
            message = f"No heartbeat from {service['service']} for {_fmt(silent)} s."
            found.append(Breach(rule.id, f"{bus}:{service['service']}", silent, message))
    elif kind == "flow_check":
        # The latest finished check of each flow (eventstore.flow_checks.latest_by_flow), on the
        # bus of its trigger; the alert resolves when a later check passes.
        for flow in part.get("flow_checks", ()):
            if flow["status"] != "failed" or not _matches(rule.target, flow["flow"]):
                continue
            message = f"Flow check of {flow['flow']} failed (check #{flow['check']}): {flow['error']}"
            found.append(Breach(rule.id, f"{bus}:flow:{flow['flow']}", None, message[:500]))
    elif kind == "invalid_rate":
        # Each event type's share of events that failed their registered schema (monitor/lineage.py).
        for row in part.get("validity", ()):
            share = 100.0 * row["invalid"] / row["events"] if row["events"] >= MIN_EVENTS_FOR_RATE else None
            if share is None or share <= limit or not _matches(rule.target, row["event_type"]):
                continue
            message = (
                f"{_fmt(share)} % of {row['event_type']} events are invalid "
                f"({row['invalid']} of {row['events']} in 5 minutes; limit {_fmt(limit)} %)."
            )
            found.append(Breach(rule.id, f"{bus}:type:{row['event_type']}", share, message))
    return found


def decide(
    rules: Iterable[Rule],
    part: dict[str, Any],
    pending: dict[tuple[int, str], float],
    firing: Iterable[tuple[int, str]],
    now: float,
) -> Decision:
    """What to fire and resolve on this tick. Updates `pending` in place."""
    rules = list(rules)
    current = {b.key: b for rule in rules for b in breaches(rule, part)}
    wait = {rule.id: rule.for_seconds for rule in rules}
    firing = set(firing)
    for key in list(pending):
        if key not in current or key in firing:
            del pending[key]
    decision = Decision()
    for key, breach in current.items():
        if key in firing:
            continue
        since = pending.setdefault(key, now)
        if now - since >= wait[breach.rule_id]:
            decision.fire.append(breach)
            del pending[key]
    decision.resolve = sorted(key for key in firing if key not in current)
    return decision


def webhook_backoff(attempt: int, base_s: float) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1): base, 2×, 4×..."""
    return base_s * 2 ** (attempt - 1)


# --- Django side --------------------------------------------------------------------


def load_rules() -> list[Rule]:
    from monitor.models import AlertRule

    return [
        Rule(r.id, r.name, r.kind, r.target, r.threshold, r.for_seconds)
        for r in AlertRule.objects.filter(enabled=True).order_by("id")
    ]


def firing_keys(kind: str) -> set[tuple[int, str]]:
    from monitor.models import Alert

    rows = Alert.objects.filter(state=Alert.FIRING, subject__startswith=f"{kind}:").values_list("rule_id", "subject")
    return set(rows)


def apply(decision: Decision, now: float) -> list[int]:
    """Open and resolve Alert rows; queue the webhook after commit. Returns changed ids."""
    from django.conf import settings
    from django.db import transaction

    from eventhub import background
    from monitor import tasks
    from monitor.models import Alert

    if not decision.fire and not decision.resolve:
        return []
    at = datetime.fromtimestamp(now, UTC)
    changed: list[tuple[int, str]] = []
    with transaction.atomic():
        for breach in decision.fire:
            alert = Alert.objects.create(
                rule_id=breach.rule_id,
                subject=breach.subject[:300],
                message=breach.message[:500],
                value=breach.value,
                started_at=at,
            )
            changed.append((alert.pk, Alert.FIRING))
        for rule_id, subject in decision.resolve:
            ids = list(
                Alert.objects.filter(rule_id=rule_id, subject=subject, state=Alert.FIRING).values_list("pk", flat=True)
            )
            Alert.objects.filter(pk__in=ids).update(state=Alert.RESOLVED, resolved_at=at)
            changed += [(pk, Alert.RESOLVED) for pk in ids]
        if settings.EVENTHUB_ALERT_WEBHOOK_URL:
            for pk, event in changed:
                background.submit(tasks.deliver_alert_webhook, pk, event)
    for pk, event in changed:
        log.info("alert %s %s", pk, event)
    return [pk for pk, _ in changed]


def alert_dict(alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "rule": alert.rule.name,
        "kind": alert.rule.kind,
        "subject": alert.subject,
        "state": alert.state,
        "message": alert.message,
        "value": alert.value,
        "started_at": alert.started_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "webhook": {
            "attempts": alert.webhook_attempts,
            "error": alert.webhook_error or None,
            "delivered_at": alert.webhook_delivered_at.isoformat() if alert.webhook_delivered_at else None,
        },
    }


def recent_alerts(now: datetime | None = None) -> list[dict[str, Any]]:
    """Firing alerts first, then those resolved within RESOLVED_SHOWN; newest first."""
    from django.db.models import Case, IntegerField, Q, Value, When

    from monitor.models import Alert

    now = now or datetime.now(UTC)
    rows = (
        Alert.objects.filter(Q(state=Alert.FIRING) | Q(resolved_at__gte=now - RESOLVED_SHOWN))
        .select_related("rule")
        .annotate(order=Case(When(state=Alert.FIRING, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("order", "-started_at", "-id")[:SNAPSHOT_ALERTS_MAX]
    )
    return [alert_dict(alert) for alert in rows]


def webhook_payload(alert, event: str) -> dict[str, Any]:
    return {"source": "eventhub", "event": f"alert.{event}", "alert": alert_dict(alert)}


def webhook_origin(url: str) -> str:
    """`scheme://host:port` of a webhook URL: all of it that an error may show. Chat webhooks
    carry their secret in the path or query, and a URL may carry `user:password@`."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a broken IPv6 literal
        return "unreadable URL"
    if not parts.scheme or not host:
        return "unreadable URL"
    port = port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


def webhook_failure(failure: BaseException) -> str:
    """What went wrong, from parts that cannot hold the URL: the status code with its standard
    phrase (not the server's), or the kind of network error with the OS's text for it.
    urllib puts the whole URL in some messages ("unknown url type: '...'"): those are not used."""
    if isinstance(failure, urllib.error.HTTPError):
        try:
            return f"HTTP {failure.code} {HTTPStatus(failure.code).phrase}"
        except ValueError:
            return f"HTTP {failure.code}"
    reason = getattr(failure, "reason", failure)  # URLError wraps the socket's error
    if not isinstance(reason, BaseException):
        reason = failure
    detail = reason.strerror if isinstance(reason, OSError) and isinstance(reason.strerror, str) else ""
    return f"{type(reason).__name__}: {detail}" if detail else type(reason).__name__


def attempt_webhook(alert_id: int, event: str) -> bool:
    """POST the alert once; record the attempt on the row. True when delivered (2xx).

    Errors stored, logged and shown name the endpoint by `webhook_origin` only.
    """
    from django.conf import settings
    from django.db.models import F

    from monitor.models import Alert

    url = settings.EVENTHUB_ALERT_WEBHOOK_URL
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None or not url:
        return True  # nothing to deliver any more
    body = json.dumps(webhook_payload(alert, event)).encode("utf-8")
    error = ""
    try:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "EventHub"}
        )
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310 - admin-set URL
            status = response.status
    except urllib.error.HTTPError as failure:
        status, error = failure.code, webhook_failure(failure)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as failure:
        status, error = 0, webhook_failure(failure)
    delivered = 200 <= status < 300
    if delivered:
        _record(
            alert_id,
            webhook_attempts=F("webhook_attempts") + 1,
            webhook_error="",
            webhook_delivered_at=datetime.now(UTC),
        )
    else:
        error = f"{error or f'HTTP {status}'} ({webhook_origin(url)})"
        log.warning("alert %s webhook (%s) failed: %s", alert_id, event, error)
        _record(alert_id, webhook_attempts=F("webhook_attempts") + 1, webhook_error=f"{event}: {error}"[:500])
    return delivered


def _record(alert_id: int, **fields) -> None:
    """Write the outcome of an attempt, retrying briefly when SQLite reports a lock.

    The delivery runs in its own thread; on SQLite a concurrent writer (the
    collector) can make this UPDATE fail at once instead of waiting, and losing
    the record of an attempt would hide exactly the failure it is meant to show.
    """
    from django.db import OperationalError

    from monitor.models import Alert

    for attempt in range(5):
        try:
            Alert.objects.filter(pk=alert_id).update(**fields)
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def deliver_webhook(
    alert_id: int,
    event: str,
    attempts: int = WEBHOOK_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Attempt up to `attempts` times with exponential backoff (for the thread path)."""
    from django.conf import settings

    base = getattr(settings, "EVENTHUB_ALERT_WEBHOOK_BACKOFF_S", 2.0)
    for attempt in range(1, attempts + 1):
        if attempt_webhook(alert_id, event):
            return True
        if attempt < attempts:
            sleep(webhook_backoff(attempt, base))
    return False
