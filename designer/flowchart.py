"""The flowchart's Django side: read the rows, resolve a scope, call `designer.mermaid`.

A scope is how the page and the .mmd download name a part of the design:
"all", "domain:<slug>", "service:<slug>" or "flow:<slug>".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from designer import mermaid
from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, Service, Topic

ALL = "all"
KINDS = ("domain", "service", "flow")


@dataclass(frozen=True)
class Scope:
    kind: str  # "all", "domain", "service" or "flow"
    slug: str = ""
    title: str = "Whole system"

    @property
    def value(self) -> str:
        return ALL if self.kind == ALL else f"{self.kind}:{self.slug}"

    @property
    def filename(self) -> str:
        name = "system" if self.kind == ALL else f"{self.kind}-{self.slug}"
        return f"eventhub-{name}.mmd"


def resolve_scope(value: str | None) -> Scope:
    """The Scope named by `value`; 404 when it names nothing that exists."""
    value = (value or ALL).strip()
    if value == ALL:
        return Scope(ALL)
    kind, _, slug = value.partition(":")
    model = {"domain": Domain, "service": Service, "flow": Flow}.get(kind)
    if model is None or not slug:
        raise Http404(f"Unknown scope {value!r}: use all, domain:<slug>, service:<slug> or flow:<slug>.")
    name = model.objects.filter(slug=slug).values_list("name", flat=True).first()
    if name is None:
        raise Http404(f"No {kind} called {slug!r}.")
    return Scope(kind, slug, f"{kind.capitalize()} {name}")


def scope_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped (value, label) pairs for the scope selector."""
    return [
        ("", [(ALL, "Whole system")]),
        ("Domains", [(f"domain:{slug}", name) for slug, name in Domain.objects.values_list("slug", "name")]),
        ("Services", [(f"service:{slug}", name) for slug, name in Service.objects.values_list("slug", "name")]),
        ("Flows", [(f"flow:{slug}", name) for slug, name in Flow.objects.values_list("slug", "name")]),
    ]


def load_design() -> mermaid.Design:
    """The whole design as plain rows, in five queries."""
    return mermaid.Design(
        services=[
            mermaid.ServiceData(pk, name, domain)
            for pk, name, domain in Service.objects.values_list("pk", "name", "domain__slug")
        ],
        topics=[
            mermaid.TopicData(pk, name, bus, domain)
            for pk, name, bus, domain in Topic.objects.values_list("pk", "name", "bus", "domain__slug")
        ],
        events=[
            mermaid.EventData(pk, name, kind, topic, domain)
            for pk, name, kind, topic, domain in EventType.objects.values_list(
                "pk", "name", "kind", "topic_id", "domain__slug"
            )
        ],
        producers=list(Producer.objects.values_list("service_id", "event_type_id")),
        consumers=list(Consumer.objects.values_list("service_id", "event_type_id")),
    )


def load_flow(flow: Flow) -> mermaid.FlowData:
    steps = FlowStep.objects.filter(flow=flow).select_related("producer", "consumer", "event_type__topic")
    return mermaid.FlowData(
        name=flow.name,
        trigger=flow.trigger,
        steps=[
            mermaid.StepData(
                id=step.pk,
                after=step.after_id,
                event=step.event_type.name,
                producer=step.producer.name if step.producer else None,
                consumer=step.consumer.name if step.consumer else None,
                topic=step.event_type.topic.name if step.event_type.topic else None,
                bus=step.event_type.topic.bus if step.event_type.topic else None,
                logic=step.logic,
                store=step.store,
            )
            for step in steps
        ],
    )


def chart_for(scope: Scope) -> str:
    """The Mermaid text for a resolved scope."""
    if scope.kind == "flow":
        return mermaid.flow_chart(load_flow(Flow.objects.get(slug=scope.slug)))
    design = load_design()
    if scope.kind == "domain":
        return mermaid.design_chart(design, domain=scope.slug)
    if scope.kind == "service":
        return mermaid.design_chart(design, service_id=Service.objects.get(slug=scope.slug).pk)
    return mermaid.design_chart(design)
