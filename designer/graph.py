"""The design as one graph of nodes and edges: what the canvas draws and the monitor overlays.

Its own module because three readers need it (the REST API's /api/v1/graph/,
the canvas page and the monitor dashboard), and the monitor should not reach
into the designer's API module to get it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Max, Q

from designer.lints import lint_design
from designer.models import Consumer, EventType, Producer, SchemaVersion, Service, Topic


def build_graph(domain: str | None = None) -> dict[str, Any]:
    """Nodes and edges of the design as the canvas draws them, in a fixed number of queries.

    With `domain` (a slug), only the domain's nodes and their direct neighbours
    are kept, with the edges that touch the domain.
    """
    lints = lint_design()
    by_node: dict[str, list[str]] = defaultdict(list)
    for lint in lints:
        for node_id in lint.node_ids:
            by_node[node_id].append(lint.message)

    nodes: dict[str, dict[str, Any]] = {}

    def add(kind: str, row: dict[str, Any], label: str, **extra: Any) -> None:
        node_id = f"{kind}:{row['id']}"
        nodes[node_id] = {
            "id": node_id,
            "kind": kind,
            "pk": row["id"],
            "label": label,
            "domain": row["domain__slug"],
            "x": row["x"],
            "y": row["y"],
            **extra,
            "lints": by_node.get(node_id, []),
        }

    for row in Service.objects.values("id", "name", "domain__slug", "x", "y"):
        add("service", row, row["name"])
    events = EventType.objects.annotate(
        latest=Max("versions__version", filter=Q(versions__state=SchemaVersion.REGISTERED))
    ).values("id", "name", "kind", "topic_id", "domain__slug", "x", "y", "latest")
    for row in events:
        add("event", row, row["name"], event_kind=row["kind"], latest_version=row["latest"])
    for row in Topic.objects.values("id", "name", "bus", "address", "domain__slug", "x", "y"):
        add("topic", row, row["name"], bus=row["bus"], address=row["address"])

    edges = [
        {"id": f"producer:{pk}", "kind": "produces", "pk": pk, "source": f"service:{s}", "target": f"event:{e}"}
        for pk, s, e in Producer.objects.order_by("id").values_list("id", "service_id", "event_type_id")
    ]
    edges += [
        {"id": f"consumer:{pk}", "kind": "consumes", "pk": pk, "source": f"event:{e}", "target": f"service:{s}"}
        for pk, s, e in Consumer.objects.order_by("id").values_list("id", "service_id", "event_type_id")
    ]
    edges += [
        {
            "id": f"on-topic:{row['id']}",
            "kind": "on-topic",
            "pk": None,
            "source": f"event:{row['id']}",
            "target": f"topic:{row['topic_id']}",
        }
        for row in events
        if row["topic_id"] is not None
    ]

    if domain is not None:
        inside = {node_id for node_id, node in nodes.items() if node["domain"] == domain}
        edges = [e for e in edges if e["source"] in inside or e["target"] in inside]
        keep = inside | {e["source"] for e in edges} | {e["target"] for e in edges}
        nodes = {node_id: node for node_id, node in nodes.items() if node_id in keep}
        lints = [lint for lint in lints if any(n in nodes for n in lint.node_ids)]
    return {"nodes": list(nodes.values()), "edges": edges, "lints": [lint.to_dict() for lint in lints]}
