"""The event store's page: what is indexed per bus and topic, and how each topic is indexed.

Every logged-in user reads it; changing a topic's settings needs the Operator role
(Viewers never see the form and get 403 on POST).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Max, Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from eventhub import connections, roles
from eventhub.bus import BusError
from eventstore import indexer, payloads
from eventstore.forms import TopicIndexSettingForm
from eventstore.models import BUS_CHOICES, IndexedEvent, TopicIndexSetting

log = logging.getLogger(__name__)


def _lag_by_topic(kind: str, group: str) -> dict[str, int] | None:
    """The indexer group's lag per topic on one bus; None when the bus does not answer."""
    try:
        rows = connections.bus(kind).group_lag(group)
    except BusError as error:
        log.info("event store page: no lag from %s (%s)", kind, error)
        return None
    lag: dict[str, int] = defaultdict(int)
    for row in rows:
        lag[row.topic] += row.lag
    return lag


def _topics() -> list[dict[str, Any]]:
    """One line per (bus, topic) that has events or settings, with its counts, settings and lag."""
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for stats in (
        IndexedEvent.objects.values("bus", "topic")
        .annotate(events=Count("id"), oldest=Min("timestamp"), newest=Max("timestamp"))
        .order_by()
    ):
        lines[(stats["bus"], stats["topic"])] = stats
    for setting in TopicIndexSetting.objects.all():
        line = lines.setdefault((setting.bus, setting.topic), {"bus": setting.bus, "topic": setting.topic, "events": 0})
        line["setting"] = setting
    group = indexer.default_group()
    lags = {kind: _lag_by_topic(kind, group) for kind in {bus for bus, _ in lines}}
    default_days = settings.EVENTHUB_INDEX_RETENTION_DAYS
    for (kind, topic), line in lines.items():
        setting = line.get("setting")
        line["sample_rate"] = setting.sample_rate if setting else 1.0
        line["keep_payloads"] = setting.keep_payloads if setting else False
        line["retention_days"] = setting.retention_days if setting else default_days
        line["lag"] = None if lags[kind] is None else lags[kind].get(topic)
    return [lines[key] for key in sorted(lines)]


def _render(request: HttpRequest, form: TopicIndexSettingForm | None = None, status: int = 200) -> HttpResponse:
    context = {
        "topics": _topics(),
        "form": form or TopicIndexSettingForm(),
        "group": indexer.default_group(),
        "bus_choices": BUS_CHOICES,
        "include": settings.EVENTHUB_INDEX_INCLUDE,
        "exclude": settings.EVENTHUB_INDEX_EXCLUDE,
    }
    return render(request, "eventstore/index.html", context, status=status)


@require_GET
def event_store(request: HttpRequest) -> HttpResponse:
    return _render(request)


@require_POST
def topic_setting_save(request: HttpRequest) -> HttpResponse:
    roles.require_role(request.user, roles.OPERATOR)
    bus, topic = request.POST.get("bus", ""), request.POST.get("topic", "").strip()  # as the form cleans it
    instance = TopicIndexSetting.objects.filter(bus=bus, topic=topic).first()
    form = TopicIndexSettingForm(request.POST, instance=instance)
    if not form.is_valid():
        return _render(request, form, status=400)
    setting = form.save(commit=False)
    setting.bus, setting.topic = form.cleaned_data["bus"], form.cleaned_data["topic"]
    setting.save()
    messages.success(
        request, f"{setting.topic} on {setting.bus}: settings saved; the indexer applies them to new events."
    )
    return redirect("event-store")


@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One indexed event: its columns, and its payload read back from the bus by position."""
    event = get_object_or_404(IndexedEvent.objects.select_related("schema_version__event_type"), pk=pk)
    context = {"event": event, "payload": payloads.shown(event, request.user)}
    return render(request, "eventstore/event.html", context)
