"""What traffic says, next to the design: who really produces and consumes what on one bus (observed
lineage), and how many events of each type fail their registered schema (validity).

- Producers come from the event store (each indexed event's CloudEvents `source` and
  `type` on its topic, over the last WINDOW_S) and from producer heartbeats (service and
  topics, for services whose events are not indexed).
- Consumers come from the bus: the groups with committed offsets on a topic (the
  collector's group rows), named by the service their consumer heartbeats report.

Each observed edge goes from a producing service to a consuming service (or to nobody
when a topic has no group) through a topic and event type, with the producing rate, and
says which of its sides the design already declares. The collector asks once every
EVERY_S, not every tick: it is a database aggregate, and lineage changes slowly.
`adopt` turns an observed edge into design (a Designer's "add to design").
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.text import slugify

from designer.models import Consumer as DesignedConsumer
from designer.models import EventType, Producer, Service, Topic
from eventstore.flow_checks import SOURCE as FLOW_CHECK_SOURCE
from eventstore.models import IndexedEvent
from monitor.models import Heartbeat

WINDOW_S = 300
EVERY_S = 15.0
SOURCE_PREFIX = "/services/"  # what the EventHub SDK writes as ce_source


def service_of(source: str) -> str:
    """The service a CloudEvents `source` names: `/services/<name>` (the SDK's) or the source itself."""
    return source[len(SOURCE_PREFIX) :].strip("/") if source.startswith(SOURCE_PREFIX) else source


def observed(kind: str, design: Any, groups: list[dict[str, Any]], now=None) -> dict[str, list[dict[str, Any]]]:
    """{"edges": [{"from", "to", "group", "event_type", "topic", "rate", "designed", ...}]} of bus `kind`.

    `design` is the collector's Design of that bus; `groups` its group rows of this tick.
    """
    now = now or timezone.now()
    producers: dict[tuple[str, str, str], float | None] = {}
    for row in (
        IndexedEvent.objects.filter(bus=kind, timestamp__gte=now - timedelta(seconds=WINDOW_S))
        .exclude(ce_source="")
        .exclude(ce_source=FLOW_CHECK_SOURCE)  # EventHub's own synthetic triggers are no producer of the system
        .values("ce_source", "ce_type", "topic")
        .annotate(events=Count("id"))
        .order_by()
    ):
        key = (service_of(row["ce_source"]), row["ce_type"], row["topic"])
        producers[key] = round((producers.get(key) or 0.0) + row["events"] / WINDOW_S, 3)
    seen_on = {(service, topic) for service, _, topic in producers}
    group_service: dict[str, str] = {}
    for service, role, group, payload in Heartbeat.objects.filter(bus=kind).values_list(
        "service", "role", "group", "payload"
    ):
        if role == "consumer" and group:
            group_service.setdefault(group, service)
        elif role == "producer":
            for topic in (payload or {}).get("topics") or []:
                if isinstance(topic, str) and (service, topic) not in seen_on:
                    producers.setdefault((service, "", topic), None)
    consumers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in groups:
        consumers[row["topic"]].append((row["group"], group_service.get(row["group"], row["group"])))
    designed_producers = {(edge["service"], edge["event"], edge["topic"]) for edge in design.producers}
    designed_pairs = design.pairs
    edges = []
    for (service, event_type, topic), rate in sorted(producers.items(), key=lambda item: item[0]):
        producer_designed = (service, event_type, topic) in designed_producers
        for group, consumer in sorted(consumers.get(topic, [])) or [("", "")]:
            consumer_designed = (group, topic) in designed_pairs if group else True
            edges.append(
                {
                    "from": service,
                    "to": consumer or None,
                    "group": group or None,
                    "event_type": event_type or None,
                    "topic": topic,
                    "bus": kind,
                    "rate": rate,
                    "producer_designed": producer_designed,
                    "consumer_designed": consumer_designed,
                    "designed": producer_designed and consumer_designed,
                }
            )
    return {"edges": edges}


class CannotAdopt(ValueError):
    """The observed edge lacks what the design needs (an event type, a topic the design knows)."""


@transaction.atomic
def adopt(*, kind: str, producer: str, event_type: str, topic: str, consumer: str = "", group: str = "") -> list[str]:
    """Add an observed edge to the design: services, the event type, producer and consumer as needed.

    Returns what was created ("service checkout", "producer checkout -> order.placed", ...);
    nothing when the design already had it all. The topic is made when the design does
    not know it; the event type is made on it when missing.
    """
    if not event_type:
        raise CannotAdopt("the events carry no CloudEvents type: name the event in the designer first")
    made: list[str] = []
    topic_row = Topic.objects.filter(bus=kind, address=topic).first()
    if topic_row is None:
        topic_row = Topic.objects.create(name=topic, address=topic, bus=kind)
        made.append(f"topic {topic}")
    event = EventType.objects.filter(name=event_type).first()
    if event is None:
        event = EventType(name=event_type, topic=topic_row, description="Added from observed traffic.")
        try:
            event.full_clean(exclude=["slug"])
        except ValidationError as error:
            raise CannotAdopt(f"{event_type!r} is not a name the design takes: {'; '.join(error.messages)}") from error
        event.save()
        made.append(f"event {event_type}")

    def service(name: str) -> Service:
        found = Service.objects.filter(name=name).first()
        if found is None:
            found = Service.objects.create(name=name, slug=_free_slug(name), description="Added from observed traffic.")
            made.append(f"service {name}")
        return found

    _, created = Producer.objects.get_or_create(service=service(producer), event_type=event)
    if created:
        made.append(f"producer {producer} -> {event_type}")
    if consumer:
        _, created = DesignedConsumer.objects.get_or_create(
            service=service(consumer), event_type=event, defaults={"group": group}
        )
        if created:
            made.append(f"consumer {event_type} -> {consumer}")
    return made


def _free_slug(name: str) -> str:
    base = slugify(name)[:90] or "service"
    slug, n = base, 1
    while Service.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def validity(kind: str, now=None) -> list[dict[str, Any]]:
    """[{"event_type", "events", "invalid", "rate"}] of bus `kind`'s event types over the last WINDOW_S.

    `rate` is the invalid share (0..1) of the events checked against a registered schema;
    types without one are left out.
    """
    now = now or timezone.now()
    rows = (
        IndexedEvent.objects.filter(bus=kind, timestamp__gte=now - timedelta(seconds=WINDOW_S))
        .exclude(ce_type="")
        .exclude(validity=IndexedEvent.NO_SCHEMA)
        .values("ce_type")
        .annotate(events=Count("id"), invalid=Count("id", filter=Q(validity=IndexedEvent.INVALID)))
        .order_by("ce_type")
    )
    return [
        {
            "event_type": row["ce_type"],
            "events": row["events"],
            "invalid": row["invalid"],
            "rate": round(row["invalid"] / row["events"], 4),
        }
        for row in rows
    ]
