"""Mermaid `flowchart LR` text for the design, a part of it, or one Flow.

Plain module: it takes plain dataclasses (built from the database by
`designer.flowchart`) and returns text, so it is tested without a database.

Two rules make any name safe to render:
1. Node ids are generated (n1, n2, ...), never derived from names, so a service
   called `end`, `A-->B` or `click` cannot change the graph's structure.
2. Every label is a quoted string in which the characters Mermaid's parser or
   its HTML renderer give a meaning to are written as Mermaid entity codes
   (`#quot;`, `#lt;`, `#35;`...). Mermaid turns them back into HTML entities in
   the final SVG, so they display literally and can never form markup. `%` is
   escaped too, because Mermaid looks for `%%{init: ...}%%` directives anywhere
   in the text, and `:` because of a pre-parse rewrite of lines that look like
   `style ...: #...;`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Characters with a meaning to Mermaid or to HTML, and the code written instead.
_ENTITIES = {
    '"': "#quot;",
    "#": "#35;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    "%": "#37;",
    "`": "#96;",
    ";": "#59;",
    ":": "#58;",
    # Mermaid marks decoded entities with "ﬂ°" ... "¶ß" internally; a name holding
    # those characters must not be able to forge one.
    "\ufb02": "#64258;",
    "\u00b6": "#182;",
}
LINE_BREAK = "<br>"
EMPTY_LABEL = "(no name)"

# Node shapes by kind: (opening, closing) around the quoted label.
_SHAPES = {
    "trigger": ("([", "])"),  # stadium
    "service": ("(", ")"),  # rounded box
    "event": ("{{", "}}"),  # hexagon
    "command": ("{{", "}}"),
    "topic": ("[/", "/]"),  # parallelogram: a topic with no event on it
    "bus": ("[/", "/]"),  # an event travelling on a topic, in a Flow
    "logic": ("[", "]"),
    "store": ("[(", ")]"),  # cylinder
}

CLASS_DEFS = {
    "trigger": "fill:#fff4d6,stroke:#b7791f,color:#1c2430",
    "service": "fill:#e8f0fe,stroke:#2859c5,color:#1c2430",
    "external": "fill:#f6f7f9,stroke:#8a94a3,color:#5b6675,stroke-dasharray:4 3",
    "event": "fill:#fdf0e6,stroke:#c05621,color:#1c2430",
    "command": "fill:#f3e8fd,stroke:#7b3fc4,color:#1c2430",
    "topic": "fill:#e6f6ec,stroke:#1a7f37,color:#1c2430",
    "redis": "fill:#fde8e8,stroke:#c62828,color:#1c2430",
    "bus": "fill:#e6f6ec,stroke:#1a7f37,color:#1c2430",
    "logic": "fill:#ffffff,stroke:#5b6675,color:#1c2430",
    "store": "fill:#eef1f5,stroke:#3c4656,color:#1c2430",
}


def escape_label(text: str | None) -> str:
    """`text` as the inside of a Mermaid "..." label, displaying exactly as written.

    Line breaks become <br>; other control characters become spaces.
    """
    if not text or not text.strip():
        return EMPTY_LABEL
    out: list[str] = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char in text:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char == "\n":
            out.append(LINE_BREAK)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _label(*lines: str | None) -> str:
    """Several lines of text joined by line breaks, each escaped."""
    return LINE_BREAK.join(escape_label(line) for line in lines if line)


# --------------------------------------------------------------------------- input
@dataclass(frozen=True)
class ServiceData:
    id: int
    name: str
    domain: str | None = None  # domain slug


@dataclass(frozen=True)
class TopicData:
    id: int
    name: str
    bus: str = "kafka"
    domain: str | None = None


@dataclass(frozen=True)
class EventData:
    id: int
    name: str
    kind: str = "event"  # "event" or "command"
    topic_id: int | None = None
    domain: str | None = None


@dataclass
class Design:
    """The whole design as plain rows; producers/consumers are (service id, event id)."""

    services: list[ServiceData] = field(default_factory=list)
    topics: list[TopicData] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)
    producers: list[tuple[int, int]] = field(default_factory=list)
    consumers: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class StepData:
    """One FlowStep with its names resolved; `after` is the id of the step it follows."""

    id: int
    event: str
    after: int | None = None
    producer: str | None = None
    consumer: str | None = None
    topic: str | None = None
    bus: str | None = None
    logic: str = ""
    store: str = ""


@dataclass(frozen=True)
class FlowData:
    name: str
    trigger: str
    steps: list[StepData] = field(default_factory=list)


# --------------------------------------------------------------------------- writer
class _Chart:
    """Collects nodes, edges and subgraphs under generated ids, then writes text."""

    def __init__(self) -> None:
        self._count = 0
        self.lines: list[str] = []
        self.edges: list[str] = []
        self.used_classes: set[str] = set()

    def new_id(self) -> str:
        self._count += 1
        return f"n{self._count}"

    def node(self, kind: str, label: str, css_class: str | None = None, indent: str = "  ") -> str:
        node_id = self.new_id()
        opening, closing = _SHAPES[kind]
        css = css_class or kind
        self.used_classes.add(css)
        self.lines.append(f'{indent}{node_id}{opening}"{label}"{closing}:::{css}')
        return node_id

    def edge(self, source: str, target: str, dashed: bool = False) -> None:
        arrow = "-.->" if dashed else "-->"
        self.edges.append(f"  {source} {arrow} {target}")

    def text(self) -> str:
        out = ["flowchart LR", *self.lines, *self.edges]
        out += [f"  classDef {name} {CLASS_DEFS[name]}" for name in sorted(self.used_classes)]
        return "\n".join(out) + "\n"


def _scoped(design: Design, service_ids: set[int] | None, event_ids: set[int] | None) -> Design:
    """The part of `design` around some services and events: those, the events the
    services produce or consume, every producer and consumer of those events, and
    their topics. None for both means everything."""
    if service_ids is None and event_ids is None:
        return design
    service_ids = set(service_ids or ())
    events = set(event_ids or ())
    events |= {e for s, e in design.producers + design.consumers if s in service_ids}
    services = service_ids | {s for s, e in design.producers + design.consumers if e in events}
    topic_ids = {e.topic_id for e in design.events if e.id in events and e.topic_id is not None}
    return Design(
        services=[s for s in design.services if s.id in services],
        topics=[t for t in design.topics if t.id in topic_ids],
        events=[e for e in design.events if e.id in events],
        producers=[(s, e) for s, e in design.producers if e in events and s in services],
        consumers=[(s, e) for s, e in design.consumers if e in events and s in services],
    )


def design_chart(
    design: Design,
    *,
    domain: str | None = None,
    service_id: int | None = None,
) -> str:
    """producer service --> event --> consumer service, events grouped by topic.

    With `domain` (a slug): that domain's services, topics and events plus the
    services at the other end of their events, drawn as external. With
    `service_id`: that service's neighbourhood, the others drawn as external.
    """
    focus: set[int] | None = None
    if service_id is not None:
        focus = {service_id}
        part = _scoped(design, focus, set())
    elif domain is not None:
        focus = {s.id for s in design.services if s.domain == domain}
        part = _scoped(design, focus, {e.id for e in design.events if e.domain == domain})
        # A domain's topics belong in its chart even when nothing is on them yet.
        shown = {t.id for t in part.topics}
        part.topics += [t for t in design.topics if t.domain == domain and t.id not in shown]
    else:
        part = design

    chart = _Chart()
    service_node: dict[int, str] = {}
    for service in part.services:
        external = focus is not None and service.id not in focus
        service_node[service.id] = chart.node("service", _label(service.name), "external" if external else "service")

    event_node: dict[int, str] = {}
    by_topic: dict[int | None, list[EventData]] = {}
    for event in part.events:
        by_topic.setdefault(event.topic_id, []).append(event)

    def add_event(event: EventData, indent: str) -> None:
        kind = "command" if event.kind == "command" else "event"
        event_node[event.id] = chart.node(kind, _label(event.name), indent=indent)

    for event in by_topic.get(None, []):
        add_event(event, "  ")
    for topic in part.topics:
        title = _label(f"{topic.name} · {topic.bus}")
        css = "redis" if topic.bus == "redis" else "topic"
        if topic.id not in by_topic:
            chart.node("topic", title, css)
            continue
        # A subgraph per topic: the bus is the box the events travel in.
        subgraph_id = chart.new_id()
        chart.lines.append(f'  subgraph {subgraph_id}["{title}"]')
        for event in by_topic[topic.id]:
            add_event(event, "    ")
        chart.lines.append("  end")
        chart.lines.append(f"  class {subgraph_id} {css}")
        chart.used_classes.add(css)

    for service_id_, event_id in part.producers:
        chart.edge(service_node[service_id_], event_node[event_id])
    for service_id_, event_id in part.consumers:
        chart.edge(event_node[event_id], service_node[service_id_])
    return chart.text()


def flow_chart(flow: FlowData) -> str:
    """trigger --> producer --> event on its topic --> consumer --> logic --> store.

    1. Steps without `after` start from the trigger; a step with `after` starts
       where that step's consumer is: when the consumer is also this step's
       producer the same node is reused, otherwise the new producer follows the
       previous step's last node.
    2. One bus node per (producer node, event): two steps delivering the same
       event to two consumers fan out from a single node, as pub/sub does.
    """
    chart = _Chart()
    trigger = chart.node("trigger", _label(flow.trigger))
    steps = {step.id: step for step in flow.steps}
    consumer_node: dict[int, str] = {}  # step id -> its consumer node (or its last node)
    consumer_name: dict[int, str | None] = {}
    tail_node: dict[int, str] = {}  # step id -> its last node
    producer_nodes: dict[tuple[str, str | None], str] = {}  # (attach point, producer name) -> node
    bus_nodes: dict[tuple[str, str], str] = {}  # (producer node, event) -> node

    for step in _in_dependency_order(flow.steps):
        previous = steps.get(step.after) if step.after is not None else None
        if previous is None:
            attach = trigger
        elif previous.consumer and previous.consumer == step.producer:
            attach = consumer_node[previous.id]
        else:
            attach = tail_node[previous.id]

        if step.producer and not (previous is not None and consumer_name.get(previous.id) == step.producer):
            key = (attach, step.producer)
            if key not in producer_nodes:
                producer_nodes[key] = chart.node("service", _label(step.producer))
                chart.edge(attach, producer_nodes[key])
            origin = producer_nodes[key]
        else:
            origin = attach

        on = f"{step.topic} · {step.bus}" if step.topic else None
        bus_key = (origin, step.event)
        if bus_key not in bus_nodes:
            css = "redis" if step.bus == "redis" else "bus"
            bus_nodes[bus_key] = chart.node("bus", _label(step.event, on), css)
            chart.edge(origin, bus_nodes[bus_key])
        last = bus_nodes[bus_key]

        consumer_name[step.id] = step.consumer
        if step.consumer:
            node = chart.node("service", _label(step.consumer))
            chart.edge(last, node)
            last = node
        consumer_node[step.id] = last
        if step.logic:
            node = chart.node("logic", _label(step.logic))
            chart.edge(last, node)
            last = node
        if step.store:
            node = chart.node("store", _label(step.store))
            chart.edge(last, node)
            last = node
        tail_node[step.id] = last
    return chart.text()


def _in_dependency_order(steps: Iterable[StepData]) -> list[StepData]:
    """Steps with every step before the steps that follow it; a step whose `after`
    is missing or part of a cycle is treated as starting from the trigger."""
    steps = list(steps)
    known = {step.id for step in steps}
    placed: set[int] = set()
    ordered: list[StepData] = []
    pending = list(steps)
    while pending:
        progress = False
        for step in list(pending):
            if step.after is None or step.after not in known or step.after in placed:
                ordered.append(step)
                placed.add(step.id)
                pending.remove(step)
                progress = True
        if not progress:  # a cycle: break it at the first remaining step
            first = pending.pop(0)
            ordered.append(StepData(**{**first.__dict__, "after": None}))
            placed.add(first.id)
    return ordered
