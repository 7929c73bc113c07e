"""What AsyncAPI export and import share, as plain data (no Django).

`designer.asyncapi_export` writes the model below as an AsyncAPI 3 document,
`designer.asyncapi_import` reads a document into it, and `designer.asyncapi_db`
moves it in and out of the database. Only what both directions need is here:
the model, the keys a walk over a JSON Schema must respect, and the mark of a
dynamic address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SPEC_VERSION = "3.0.0"

# A dynamic topic (AsyncAPI `address: null`) has no column of its own, so the
# mark lives in the description, where people see it too. Export strips it.
DYNAMIC_NOTE = "_Dynamic address: set at run time (AsyncAPI `address: null`)._"

DIALECT_URIS = {
    "draft-04": "http://json-schema.org/draft-04/schema#",
    "draft-06": "http://json-schema.org/draft-06/schema#",
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}
# What an AsyncAPI component key cannot hold (keys match ^[a-zA-Z0-9.\-_]+$); channel keys keep to the same set.
UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")

# Keys whose values are instance data, not schemas: a "$ref" in them is not a reference.
DATA_KEYS = frozenset({"enum", "const", "default", "examples", "example"})
# Keys whose values map names to schemas or objects: their keys are names, never keywords.
NAME_MAPS = frozenset(
    {
        "properties",
        "patternProperties",
        "definitions",
        "$defs",
        "dependentSchemas",
        "schemas",
        "messages",
        "channels",
        "operations",
        "parameters",
        "servers",
        "securitySchemes",
        "correlationIds",
        "operationTraits",
        "messageTraits",
        "replies",
        "replyAddresses",
        "serverVariables",
        "variables",
    }
)


# --------------------------------------------------------------------------- the plain model
@dataclass
class ServiceSpec:
    name: str
    slug: str = ""
    description: str = ""
    owner_team: str = ""
    repository_url: str = ""
    tags: list[str] = field(default_factory=list)
    domain: str = ""
    x: float | None = None
    y: float | None = None


@dataclass
class TopicSpec:
    """A topic. `key` identifies it inside one Model (import: the channel key)."""

    key: str
    name: str
    address: str
    bus: str = "kafka"
    dynamic: bool = False
    partitions: int | None = None  # None: the document does not say
    retention_ms: int | None = None
    dead_letter_topic: str = ""  # "" on export: the default
    description: str = ""
    protocol: str = ""  # import: a protocol EventHub does not monitor (mqtt, amqp...)
    domain: str = ""
    x: float | None = None
    y: float | None = None
    pointer: str = ""


@dataclass
class EventSpec:
    """An event type. Fields left None are not stated by the document."""

    name: str
    topic: str | None = None  # a TopicSpec.key
    kind: str | None = None
    owner: str | None = None  # a service name
    key_field: str | None = None
    compatibility_mode: str | None = None
    compatibility_policy: str | None = None
    description: str = ""
    domain: str = ""
    schema: Any = None  # None: no (usable) schema
    examples: list = field(default_factory=list)
    x: float | None = None
    y: float | None = None
    pointer: str = ""


@dataclass
class LinkSpec:
    """A producer (action "send") or consumer ("receive") of an event."""

    service: str
    event: str
    action: str
    group: str | None = None
    fields_used: list[str] | None = None
    max_attempts: int | None = None
    backoff_ms: int | None = None
    dead_letter: bool | None = None
    notes: str = ""
    pointer: str = ""


@dataclass
class Model:
    title: str
    description: str = ""
    system: bool = False
    services: list[ServiceSpec] = field(default_factory=list)
    topics: list[TopicSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    links: list[LinkSpec] = field(default_factory=list)


# --------------------------------------------------------------------------- shared helpers
def is_pointer(ref: str) -> bool:
    """A $ref into this document ('#' or '#/...'), not another file, a URL or an $anchor."""
    return ref == "#" or ref.startswith("#/")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "service"


def split_topic_description(text: str) -> tuple[str, bool]:
    """A stored topic description -> (the prose, is the address dynamic)."""
    if DYNAMIC_NOTE not in text:
        return text, False
    return text.replace(DYNAMIC_NOTE, "").strip(), True


def compose_topic_description(spec: TopicSpec) -> str:
    """What an imported topic's description says: the prose plus the marks."""
    parts = [spec.description.strip()]
    if spec.protocol:
        parts.append(f"_Protocol: {spec.protocol} (from AsyncAPI; EventHub keeps it as a Kafka topic)._")
    if spec.dynamic:
        parts.append(DYNAMIC_NOTE)
    return "\n\n".join(p for p in parts if p)
