"""AsyncAPI 3.0 export: a `Model` of the design as a document, as plain data (no Django).

`build(model, servers=...)` writes the document and `dump(document, fmt)`
serialises it as YAML or JSON. `designer.asyncapi_db.export_document()` reads
the `Model` from the database; the export views and `manage.py asyncapi_export`
call that, then `dump`.

Where each part of the model goes in the document:
  - info: title/description of the service (or of the whole system, marked
    `x-eventhub-system: true`); `version` is a fingerprint of the content, so it
    changes exactly when the contract changes; `x-eventhub-services` carries the
    services' own fields (slug, team, tags, domain, canvas position).
  - servers: one per bus in use, keys `kafka` (protocol kafka) and `redis`.
  - channels: one per Topic, key = the topic name made key-safe (`title` keeps the
    name when they differ); `address` (null for a dynamic topic); `servers`;
    Kafka: `bindings.kafka.partitions` and `topicConfiguration.retention.ms`;
    Redis: `x-eventhub-bus: redis`; parameters for `{placeholders}`.
  - components.messages: one per EventType, key and `name` = the dotted event
    name, payload -> components.schemas[<event name>], a multi-format schema
    object (`application/schema+json;version=draft-07`, or the schema's own
    dialect) holding the latest registered version; examples; owner, kind, key
    field, compatibility as `x-eventhub-*`.
  - operations: `<service>.send.<event>` per Producer, `<service>.receive.<event>`
    per Consumer (Kafka binding `groupId`, `x-eventhub-consumer` for the rest),
    each with `x-eventhub-service`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import yaml

from designer.asyncapi_common import (
    DATA_KEYS,
    DIALECT_URIS,
    NAME_MAPS,
    SPEC_VERSION,
    UNSAFE_KEY_CHARS,
    Model,
    is_pointer,
    slug,
)

KAFKA_BINDING_VERSION = "0.5.0"
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_\-]+)\}")
# LibYAML's emitter when PyYAML was built with it (asyncapi_import reads with its parser).
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def build(model: Model, *, servers: dict[str, dict] | None = None) -> dict:
    """The AsyncAPI 3.0.0 document for `model`.

    `servers` maps a bus ("kafka", "redis") to its Server Object; only buses
    that carry one of the model's topics are written.
    """
    servers = servers or {}
    keys: dict[str, str] = {}  # TopicSpec.key -> channel key
    for topic in sorted(model.topics, key=lambda t: t.name):
        key = base = channel_key(topic.name)
        n = 2
        while key in keys.values():
            key, n = f"{base}_{n}", n + 1
        keys[topic.key] = key
    topics = {t.key: t for t in model.topics}
    events = sorted(model.events, key=lambda e: e.name)
    services = {s.name: s for s in model.services}

    document: dict[str, Any] = {"asyncapi": SPEC_VERSION, "info": _info(model)}
    document["defaultContentType"] = "application/json"
    used_buses = sorted({t.bus for t in model.topics})
    doc_servers = {bus: servers[bus] for bus in used_buses if bus in servers}
    if doc_servers:
        document["servers"] = doc_servers

    channels: dict[str, Any] = {}
    for topic in sorted(model.topics, key=lambda t: keys[t.key]):
        key = keys[topic.key]
        channel: dict[str, Any] = {"address": None if topic.dynamic else topic.address}
        if key != topic.name:
            channel["title"] = topic.name
        if topic.description:
            channel["description"] = topic.description
        if topic.bus in doc_servers:
            channel["servers"] = [{"$ref": f"#/servers/{topic.bus}"}]
        messages = {e.name: {"$ref": f"#/components/messages/{e.name}"} for e in events if e.topic == topic.key}
        if messages:
            channel["messages"] = messages
        placeholders = sorted(set(_PLACEHOLDER.findall(topic.address or "")))
        if placeholders and not topic.dynamic:
            channel["parameters"] = {name: {} for name in placeholders}
        if topic.bus == "kafka":
            binding: dict[str, Any] = {"partitions": topic.partitions or 1}
            if topic.retention_ms is not None:
                binding["topicConfiguration"] = {"retention.ms": topic.retention_ms}
            binding["bindingVersion"] = KAFKA_BINDING_VERSION
            channel["bindings"] = {"kafka": binding}
        else:
            channel["x-eventhub-bus"] = topic.bus
        if topic.dynamic and topic.address != key:
            channel["x-eventhub-address"] = topic.address
        channel.update(
            _drop_empty(
                {
                    "x-eventhub-dead-letter-topic": topic.dead_letter_topic,
                    "x-eventhub-domain": topic.domain,
                    "x-eventhub-position": _position(topic.x, topic.y),
                }
            )
        )
        channels[key] = channel
    document["channels"] = channels

    operations: dict[str, Any] = {}
    by_name = {e.name: e for e in events}
    for link in sorted(model.links, key=lambda k: (k.service, k.action, k.event)):
        event = by_name.get(link.event)
        if event is None or event.topic not in keys:
            continue  # an operation needs a channel; events without a topic have none
        key = keys[event.topic]
        service = services.get(link.service)
        op: dict[str, Any] = {
            "action": link.action,
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{event.name}"}],
        }
        if link.notes:
            op["description"] = link.notes
        op["x-eventhub-service"] = link.service
        if link.action == "receive":
            if topics[event.topic].bus == "kafka" and link.group:
                op["bindings"] = {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [link.group]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                }
            consumer = {
                "group": link.group,
                "fieldsUsed": link.fields_used,
                "maxAttempts": link.max_attempts,
                "backoffMs": link.backoff_ms,
                "deadLetter": link.dead_letter,
            }
            op["x-eventhub-consumer"] = {k: v for k, v in consumer.items() if v not in (None, "")}
        op_slug = service.slug if service and service.slug else slug(link.service)
        operations[f"{op_slug}.{link.action}.{event.name}"] = op
    document["operations"] = operations

    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event in events:
        message: dict[str, Any] = {"name": event.name}
        if event.description:
            message["description"] = event.description
        if event.schema is not None:
            base = f"#/components/schemas/{event.name}/schema"
            schemas[event.name] = {
                "schemaFormat": schema_format(event.schema),
                "schema": _rebase_refs(event.schema, base),
            }
            message["payload"] = {"$ref": f"#/components/schemas/{event.name}"}
            if event.examples:
                message["examples"] = [{"payload": example} for example in event.examples]
        message["x-eventhub-kind"] = event.kind or "event"
        compatibility = _drop_empty({"mode": event.compatibility_mode, "policy": event.compatibility_policy})
        message.update(
            _drop_empty(
                {
                    "x-eventhub-owner": event.owner,
                    "x-eventhub-key-field": event.key_field,
                    "x-eventhub-compatibility": compatibility,
                    "x-eventhub-domain": event.domain,
                    "x-eventhub-position": _position(event.x, event.y),
                }
            )
        )
        messages[event.name] = message
    components = _drop_empty({"schemas": schemas, "messages": messages})
    if components:
        document["components"] = components

    document["info"]["version"] = fingerprint(document)
    return document


def _info(model: Model) -> dict[str, Any]:
    info: dict[str, Any] = {"title": model.title, "version": ""}
    if model.description:
        info["description"] = model.description
    if model.system:
        info["x-eventhub-system"] = True
    entries = []
    for service in sorted(model.services, key=lambda s: s.name):
        entries.append(
            _drop_empty(
                {
                    "name": service.name,
                    "slug": service.slug,
                    "description": service.description,
                    "ownerTeam": service.owner_team,
                    "repositoryUrl": service.repository_url,
                    "tags": list(service.tags),
                    "domain": service.domain,
                    "position": _position(service.x, service.y),
                }
            )
        )
    if entries:
        info["x-eventhub-services"] = entries
    return info


def fingerprint(document: dict) -> str:
    """A short hash of the document without info.version: equal contracts, equal versions."""
    data = {**document, "info": {k: v for k, v in document["info"].items() if k != "version"}}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def dump(document: dict, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown format {fmt!r}; use yaml or json")
    return yaml.dump(
        document, Dumper=_SafeDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def channel_key(name: str) -> str:
    return UNSAFE_KEY_CHARS.sub("_", name).strip("_") or "channel"


def schema_format(schema: Any) -> str:
    """The multi-format `schemaFormat` for a stored JSON Schema (its $schema, draft-07 by default)."""
    uri = schema.get("$schema") if isinstance(schema, dict) else None
    if isinstance(uri, str):
        for version, known in DIALECT_URIS.items():
            if uri.strip().rstrip("#") == known.rstrip("#"):
                return f"application/schema+json;version={version}"
    return "application/schema+json;version=draft-07"


def _rebase_refs(node: Any, base: str, data: bool = False) -> Any:
    """Copy a schema with its local $refs ('#/...') pointing under `base` in the document.

    A stored schema's "#/definitions/x" means its own root; inside an AsyncAPI
    document every "#..." means the document's root.
    """
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and is_pointer(value) and not data:
                out[key] = base + value[1:]
            elif key in NAME_MAPS and isinstance(value, dict) and not data:
                out[key] = {name: _rebase_refs(sub, base) for name, sub in value.items()}
            else:
                out[key] = _rebase_refs(value, base, data or key in DATA_KEYS)
        return out
    if isinstance(node, list):
        return [_rebase_refs(v, base, data) for v in node]
    return node


def _position(x: float | None, y: float | None) -> dict | None:
    if x is None and y is None:
        return None
    return {"x": x, "y": y}


def _drop_empty(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v not in (None, "", [], {})}
