"""Prometheus exposition at /metrics, rendered from the latest snapshot.

A custom prometheus-client collector reads the stored snapshot on each scrape,
so a scrape never touches Kafka or Redis and every web process answers the same.
Access: ``Authorization: Bearer <EVENTHUB_METRICS_TOKEN>`` when that setting is
set (for Prometheus; a logged-in browser session also works), otherwise a login.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import snapshots
from monitor.burrow import Status


class SnapshotCollector(Collector):
    """Gauges from one snapshot dict (``snapshot`` given, or the stored one)."""

    def __init__(self, snapshot: dict | None = None) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self._snapshot if self._snapshot is not None else snapshots.load()

        bus_up = GaugeMetricFamily("eventhub_bus_up", "1 when the collector reaches the bus.", labels=["bus"])
        for bus in snap["buses"]:
            bus_up.add_metric([bus["kind"]], 1.0 if bus["up"] else 0.0)
        yield bus_up

        age = GaugeMetricFamily("eventhub_snapshot_age_seconds", "Seconds since the collector's last snapshot.")
        if snap.get("at"):
            at = datetime.fromisoformat(snap["at"])
            age.add_metric([], max(0.0, (datetime.now(UTC) - at).total_seconds()))
        yield age
        tick = GaugeMetricFamily("eventhub_collector_tick_seconds", "Duration of the last collector tick.")
        tick.add_metric([], (snap.get("tick_ms") or 0.0) / 1000)
        yield tick

        end = GaugeMetricFamily(
            "eventhub_topic_end_offset", "Sum of the partitions' end offsets.", labels=["bus", "topic"]
        )
        produce = GaugeMetricFamily(
            "eventhub_topic_produce_rate", "Messages per second written to the topic.", labels=["bus", "topic"]
        )
        for topic in snap["topics"]:
            labels = [topic["bus"], topic["name"]]
            end.add_metric(labels, float(topic["end_offset"]))
            if topic["rate"] is not None:
                produce.add_metric(labels, topic["rate"])
        yield end
        yield produce

        group_labels = ["bus", "group", "topic"]
        lag = GaugeMetricFamily(
            "eventhub_group_lag_messages", "Messages the group has not consumed.", labels=group_labels
        )
        lag_s = GaugeMetricFamily(
            "eventhub_group_lag_seconds", "Age of the oldest unconsumed message.", labels=group_labels
        )
        consume = GaugeMetricFamily(
            "eventhub_group_consume_rate", "Messages per second the group commits.", labels=group_labels
        )
        status = GaugeMetricFamily(
            "eventhub_group_status",
            "Burrow status of the group on the topic: 1 for the current status.",
            labels=[*group_labels, "status"],
        )
        for row in snap["groups"]:
            labels = [row["bus"], row["group"], row["topic"]]
            if row["lag"] is not None:
                lag.add_metric(labels, float(row["lag"]))
            if row["lag_seconds"] is not None:
                lag_s.add_metric(labels, row["lag_seconds"])
            if row["consume_rate"] is not None:
                consume.add_metric(labels, row["consume_rate"])
            for value in Status:
                status.add_metric([*labels, value.value], 1.0 if row["status"] == value.value else 0.0)
        yield from (lag, lag_s, consume, status)

        up = GaugeMetricFamily("eventhub_service_up", "1 when a heartbeat came within 3 intervals.", labels=["service"])
        instances = GaugeMetricFamily(
            "eventhub_service_instances", "Instances with a recent heartbeat.", labels=["service"]
        )
        for service in snap["services"]:
            up.add_metric([service["service"]], 1.0 if service["up"] else 0.0)
            instances.add_metric([service["service"]], float(service["instances"]))
        yield up
        yield instances

        firing = GaugeMetricFamily("eventhub_alerts_firing", "Alerts firing, by rule.", labels=["rule", "kind"])
        counts = Counter((a["rule"], a["kind"]) for a in snap["alerts"] if a["state"] == "firing")
        for (rule, kind), count in sorted(counts.items()):
            firing.add_metric([rule, kind], float(count))
        yield firing

        inflow = GaugeMetricFamily(
            "eventhub_dead_letter_inflow_per_minute", "Records per minute into dead-letter topics.", labels=["topic"]
        )
        for topic, per_min in sorted(snap["dead_letters"]["by_topic"].items()):
            inflow.add_metric([topic], per_min)
        yield inflow


def render(snapshot: dict | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)


def _token_ok(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@login_not_required  # it checks access itself: a token for Prometheus, a login otherwise
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.EVENTHUB_METRICS_TOKEN
    if token and not (_token_ok(request, token) or request.user.is_authenticated):
        response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="eventhub-metrics"'
        return response
    if not token and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
