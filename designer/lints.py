"""Design lints: things in the design that are probably mistakes.

`lint_design()` reads the whole design in a fixed number of queries (one per
table it needs) and reasons in memory, so the canvas can show lints on every
load. Node ids are the graph's ("service:3", "event:5", "topic:2").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from designer import compat
from designer.models import Consumer, EventType, FlowStep, Producer, SchemaVersion, Service, Topic

ERROR, WARNING, INFO = "error", "warning", "info"

# Enumerating every elementary cycle can explode on a dense design; past this
# many the design has a bigger problem than the list can show.
MAX_CYCLES = 50
MAX_STEPS = 20_000


@dataclass
class Lint:
    code: str
    severity: str
    message: str
    node_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def lint_design() -> list[Lint]:
    """Every lint of the current design, ordered by code then by first node."""
    events = {e["id"]: e for e in EventType.objects.values("id", "name", "compatibility_mode", "compatibility_policy")}
    services = dict(Service.objects.values_list("id", "name"))
    produced_by: dict[int, set[int]] = defaultdict(set)  # event -> services
    for service_id, event_id in Producer.objects.values_list("service_id", "event_type_id"):
        produced_by[event_id].add(service_id)
    consumed_by: dict[int, set[int]] = defaultdict(set)
    for service_id, event_id in Consumer.objects.values_list("service_id", "event_type_id"):
        consumed_by[event_id].add(service_id)
    topics = list(Topic.objects.values("id", "name"))
    used_topics = set(EventType.objects.exclude(topic=None).values_list("topic_id", flat=True))
    with_schema = set(SchemaVersion.objects.registered().values_list("event_type_id", flat=True).distinct())

    lints: list[Lint] = []
    for event_id, event in events.items():
        node = f"event:{event_id}"
        if event_id not in consumed_by:
            lints.append(Lint("event-without-consumer", WARNING, f"Nobody consumes {event['name']}.", [node]))
        if event_id in consumed_by and event_id not in produced_by:
            readers = sorted(consumed_by[event_id], key=lambda s: services.get(s, ""))
            lints.append(
                Lint(
                    "consumer-without-producer",
                    ERROR,
                    f"{', '.join(services[s] for s in readers)} consume{'s' if len(readers) == 1 else ''} "
                    f"{event['name']}, but no service produces it.",
                    [node, *(f"service:{s}" for s in readers)],
                )
            )
        if event_id not in with_schema:
            lints.append(Lint("event-without-schema", WARNING, f"{event['name']} has no registered schema.", [node]))
    for topic in topics:
        if topic["id"] not in used_topics:
            lints.append(
                Lint(
                    "topic-without-events",
                    INFO,
                    f"No event is published on topic {topic['name']}.",
                    [f"topic:{topic['id']}"],
                )
            )
    lints.extend(_cycle_lints(produced_by, consumed_by, services, events))
    lints.extend(_draft_lints(events))
    return sorted(lints, key=lambda lint: (lint.code, lint.node_ids))


def _cycle_lints(
    produced_by: dict[int, set[int]],
    consumed_by: dict[int, set[int]],
    services: dict[int, str],
    events: dict[int, dict],
) -> list[Lint]:
    """Services that feed each other through events without a flow that says so.

    A cycle is the normal shape of a choreographed saga (orders asks payments,
    payments answers orders), so a cycle that a designed flow walks is fine. Left
    are the likely mistakes:

    1. A service consuming an event it produces itself, unless a flow has that step
       (an outbox relay or a retry loop is deliberate, and a flow documents it).
    2. A cycle through two or more services that no single flow declares: one
       flow must have, for every hop A → B, a step "A sends one of the hop's
       events to B". Each such cycle is reported once.
    """
    declared = _flow_steps()
    lints = []
    for event_id in sorted(produced_by):
        for service_id in sorted(produced_by[event_id] & consumed_by.get(event_id, set())):
            if not any((service_id, event_id, service_id) in steps for steps in declared):
                lints.append(
                    Lint(
                        "cycle",
                        WARNING,
                        f"{services[service_id]} consumes {events[event_id]['name']}, which it produces itself,"
                        " and no flow declares it.",
                        [f"service:{service_id}", f"event:{event_id}"],
                    )
                )

    via: dict[tuple[int, int], list[int]] = defaultdict(list)  # (producer, consumer) -> events
    for event_id in sorted(produced_by):
        for source in produced_by[event_id]:
            for target in consumed_by.get(event_id, ()):
                if source != target:
                    via[(source, target)].append(event_id)
    successors: dict[int, list[int]] = defaultdict(list)
    for source, target in sorted(via):
        successors[source].append(target)

    predecessors: dict[int, list[int]] = defaultdict(list)
    for source, target in via:
        predecessors[target].append(source)

    def is_declared(cycle: list[int]) -> bool:
        hops = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        return any(all(any((a, e, b) in steps for e in via[(a, b)]) for a, b in hops) for steps in declared)

    cycles: list[list[int]] = []
    budget = MAX_STEPS
    # Each cycle is found from its smallest service id only, walking larger ids:
    # that is what makes every cycle appear exactly once. Only services that can
    # still get back to the start are entered, so no walk is wasted on dead ends.
    for start in sorted(successors):
        returns = _reaching(start, predecessors)
        stack = [(start, [start])]
        while stack and len(cycles) < MAX_CYCLES and budget > 0:
            current, path = stack.pop()
            budget -= 1
            for nxt in reversed(successors[current]):
                if nxt == start:
                    if not is_declared(path):
                        cycles.append(path)
                elif nxt in returns and nxt not in path:
                    stack.append((nxt, [*path, nxt]))

    for cycle in cycles:
        hops = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
        text = services[cycle[0]]
        nodes: list[str] = []
        for source, target in hops:
            names = " / ".join(events[e]["name"] for e in via[(source, target)])
            text += f" → ({names}) → {services[target]}"
            nodes.append(f"service:{source}")
            nodes.extend(f"event:{e}" for e in via[(source, target)])
        lints.append(Lint("cycle", WARNING, f"Services form a cycle that no flow declares: {text}.", nodes))
    return lints


def _flow_steps() -> list[set[tuple[int, int, int]]]:
    """Each flow's steps as (producer, event, consumer) service and event ids; steps missing one are left out."""
    steps: dict[int, set[tuple[int, int, int]]] = defaultdict(set)
    rows = FlowStep.objects.exclude(producer=None).exclude(consumer=None)
    for flow_id, producer_id, event_id, consumer_id in rows.values_list(
        "flow_id", "producer_id", "event_type_id", "consumer_id"
    ):
        steps[flow_id].add((producer_id, event_id, consumer_id))
    return [steps[flow_id] for flow_id in sorted(steps)]


def _reaching(start: int, predecessors: dict[int, list[int]]) -> set[int]:
    """Services above `start` that can reach `start` through services above it."""
    seen: set[int] = set()
    todo = [start]
    while todo:
        for source in predecessors.get(todo.pop(), ()):
            if source > start and source not in seen:
                seen.add(source)
                todo.append(source)
    return seen


def _draft_lints(events: dict[int, dict]) -> list[Lint]:
    """Drafts that would be refused if registered now."""
    drafts = list(SchemaVersion.objects.drafts().values_list("event_type_id", "version", "schema").order_by("version"))
    if not drafts:
        return []
    registered: dict[int, list[tuple[int, object]]] = defaultdict(list)
    rows = (
        SchemaVersion.objects.registered()
        .filter(event_type_id__in={d[0] for d in drafts})
        .order_by("version")
        .values_list("event_type_id", "version", "schema")
    )
    for event_id, version, schema in rows:
        registered[event_id].append((version, schema))
    lints = []
    for event_id, version, schema in drafts:
        event = events[event_id]
        previous = registered.get(event_id)
        if not previous:
            continue  # nothing registered yet: any first version is compatible
        try:
            # Against every registered version, as registering would check it.
            result = compat.check(schema, previous, event["compatibility_mode"], event["compatibility_policy"])
        except (compat.SchemaError, ValueError) as error:
            message = f"Draft v{version} of {event['name']} is not a valid schema: {error}"
        else:
            if result.compatible:
                continue
            breaking = [
                (change, against)
                for change, against in zip(result.changes, result.change_versions, strict=False)
                if not compat.is_compatible([change], result.policy)
            ]
            against = breaking[0][1] if breaking else previous[-1][0]
            message = (
                f"Draft v{version} of {event['name']} is not {result.mode} compatible with v{against}"
                f" ({len(breaking)} breaking change{'' if len(breaking) == 1 else 's'})."
            )
        lints.append(Lint("incompatible-draft", WARNING, message, [f"event:{event_id}"]))
    return lints
