"""AsyncAPI 3 import: a YAML or JSON document to a `Model` of the design, as plain data (no Django).

`load(text)` reads YAML or JSON into plain JSON data and `parse(document)` maps
it to a `Model` plus warnings; both raise `DocumentError` saying where the
document is wrong. `designer.asyncapi_db.import_parsed()` then writes the
`Model` into the database under rules that keep people's work; the import page
and `manage.py asyncapi_import` call these three in that order.

Where each part of the document goes in the model:
  - channels -> topics: name = `title` or the channel key; `address: null` (or
    absent) = dynamic: the key becomes the address and the description says so;
    bus from `x-eventhub-bus`, else the protocols of the channel's servers
    (kafka/kafka-secure -> Kafka, redis -> Redis; others are kept as Kafka
    topics with the protocol noted, with a warning).
  - messages -> event types, named by `event_name()`; a message listed on several
    channels becomes one event per channel (EventHub gives an event one topic).
  - payloads -> schemas: AsyncAPI and JSON Schema formats only; internal `$ref`s
    are bundled into `definitions`/`$defs` (cycles are fine); Avro, Protobuf,
    RAML, OpenAPI and remote `$ref`s leave the event without a schema, warned.
  - operations -> producers (send) / consumers (receive) of the service named by
    `x-eventhub-service` or `info.title`; a `reply` becomes the opposite action
    on the reply's messages. Traits are merged as the spec says.
  - `$ref`: internal ones are resolved (a broken or circular one is an error);
    remote ones are reported and never fetched.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml

from designer.asyncapi_common import (
    DATA_KEYS,
    DIALECT_URIS,
    NAME_MAPS,
    SPEC_VERSION,
    UNSAFE_KEY_CHARS,
    EventSpec,
    LinkSpec,
    Model,
    ServiceSpec,
    TopicSpec,
    is_pointer,
    slug,
)

BUSES = ("kafka", "redis")
PROTOCOL_BUS = {"kafka": "kafka", "kafka-secure": "kafka", "redis": "redis"}
MAX_ADDRESS = 249  # Kafka's limit, and Topic.address's
MAX_SERVICE_NAME = 100
MAX_NAME = 200

EVENT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_JSON_SCHEMA_FORMAT = re.compile(r"^application/schema\+(?:json|yaml);version=(draft-0[467]|2019-09|2020-12)$")
_ASYNCAPI_FORMAT = re.compile(r"^application/vnd\.aai\.asyncapi(?:\+json|\+yaml)?;version=\d+\.\d+\.\d+$")

# A YAML alias expands to a shared object; copying the loaded tree into plain JSON
# counts every node, so a "billion laughs" document stops here, not in memory.
MAX_NODES = 500_000

# Where schemas live: a "headers" or "security" key below these is a property name.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "$defs", "dependentSchemas", "schemas", "payload"}
)


# --------------------------------------------------------------------------- warnings, errors, the report
@dataclass(frozen=True)
class Issue:
    """A warning about a place in the document (a JSON pointer such as #/channels/a)."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer}: {self.message}"


@dataclass
class Parsed:
    model: Model
    warnings: list[Issue] = field(default_factory=list)


class DocumentError(ValueError):
    """The document cannot be imported. `pointer` or `line` says where."""

    def __init__(self, message: str, pointer: str | None = "#", *, line: int | None = None, column: int | None = None):
        self.message = message
        self.pointer = pointer
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is not None:
            where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
            return f"{where}: {self.message}"
        if self.pointer and self.pointer != "#":
            return f"{self.pointer}: {self.message}"
        return self.message


KINDS = ("domains", "services", "topics", "events", "schemas", "producers", "consumers")
OUTCOMES = ("created", "updated", "unchanged")


@dataclass
class ImportReport:
    """What an import did to the catalog, row kind by row kind, and what it warned about."""

    title: str
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {k: dict.fromkeys(OUTCOMES, 0) for k in KINDS})
    warnings: list[Issue] = field(default_factory=list)

    def add(self, kind: str, outcome: str) -> None:
        self.counts[kind][outcome] += 1

    def warn(self, pointer: str, message: str) -> None:
        self.warnings.append(Issue(pointer, message))

    @property
    def changed(self) -> bool:
        return any(c["created"] or c["updated"] for c in self.counts.values())

    def rows(self) -> list[dict[str, Any]]:
        """One row per kind that the document touched, for tables."""
        return [{"kind": k, **self.counts[k]} for k in KINDS if any(self.counts[k].values())]

    def lines(self) -> list[str]:
        out = [f"Imported “{self.title}”:"]
        rows = self.rows()
        if not rows:
            out.append("  nothing to import")
        for row in rows:
            out.append(
                f"  {row['kind']:<10} created {row['created']:>3}  updated {row['updated']:>3}"
                f"  unchanged {row['unchanged']:>3}"
            )
        if self.warnings:
            out.append(f"Warnings ({len(self.warnings)}):")
            out.extend(f"  {w}" for w in self.warnings)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "counts": self.counts,
            "warnings": [{"pointer": w.pointer, "message": w.message} for w in self.warnings],
        }


# --------------------------------------------------------------------------- pointers
def escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def join(pointer: str, *parts: Any) -> str:
    return pointer + "".join("/" + escape(p) for p in parts)


def pointer_parts(ref: str) -> list[str]:
    """'#/channels/user~1signedup' -> ['channels', 'user/signedup'] (percent-decoded, unescaped)."""
    fragment = unquote(ref[1:])
    if not fragment:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in fragment[1:].split("/")]


def _normal(ref: str) -> str:
    return join("#", *pointer_parts(ref))


@dataclass(frozen=True)
class _Remote:
    """A $ref this module does not follow: another file, a URL, or an anchor."""

    ref: str


# --------------------------------------------------------------------------- loading
# LibYAML when PyYAML was built with it: the pure-Python parser takes a second for a 25 kB document.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """YAML read as AsyncAPI's JavaScript tools read it (YAML 1.2 core schema):
    `on`/`yes`/`no` stay strings and dates stay text, so `enum: [on, off]` means
    what its author meant and every value fits in JSON."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(text: str | bytes) -> dict:
    """Read a YAML or JSON document into plain JSON data. Raises DocumentError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DocumentError("The file is not UTF-8 text; an AsyncAPI document is YAML or JSON.") from None
    if not text.strip():
        raise DocumentError("The document is empty.")
    try:
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise DocumentError(f"Not valid JSON: {error.msg}.", line=error.lineno, column=error.colno) from None
        else:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable"
        if error.context and error.context_mark and error.problem_mark:
            # "expected ',' or ']'" at the end of the file is clearer with where the list began.
            problem += f" ({error.context} started at line {error.context_mark.line + 1})"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise DocumentError(f"Not valid YAML: {problem}.", line=line, column=column) from None
    except yaml.YAMLError as error:
        raise DocumentError(f"Not valid YAML: {error}.") from None
    except RecursionError:
        raise DocumentError("The document is nested too deeply.") from None
    if not isinstance(data, dict):
        raise DocumentError(f"An AsyncAPI document is a mapping at the top level, not {_kind(data)}.")
    try:
        return _plain(data, set(), [0], [])
    except RecursionError:
        raise DocumentError("The document is nested too deeply.") from None


def _plain(node: Any, active: set[int], budget: list[int], path: list[str]) -> Any:
    """A JSON-safe deep copy: string keys, no shared or recursive nodes, bounded size."""
    budget[0] += 1
    if budget[0] > MAX_NODES:
        raise DocumentError(f"The document has more than {MAX_NODES} nodes (after expanding YAML aliases).")
    if isinstance(node, (dict, list)):
        if id(node) in active:
            raise DocumentError("The document contains itself (a recursive YAML alias).", join("#", *path))
        active.add(id(node))
        try:
            items = node.items() if isinstance(node, dict) else enumerate(node)
            out = {} if isinstance(node, dict) else []
            for key, value in items:
                path.append(str(key))
                copied = _plain(value, active, budget, path)
                path.pop()
                if isinstance(out, dict):
                    out[key if isinstance(key, str) else str(key)] = copied
                else:
                    out.append(copied)
            return out
        finally:
            active.discard(id(node))
    if isinstance(node, float) and not math.isfinite(node):
        raise DocumentError(f"{node} is not a JSON number.", join("#", *path))
    if node is None or isinstance(node, (str, bool, int, float)):
        return node
    return str(node)  # !!binary, !!set members and the like


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


# --------------------------------------------------------------------------- naming
def event_name(raw: str, prefix: str = "message") -> str:
    """A dotted lower-case event name for an AsyncAPI message name.

    1. A name that already is one ("order.placed") is kept.
    2. Otherwise words are split at case changes and at anything that is not a
       letter or digit: "lightMeasured" -> "light.measured", "CostingRequestV1"
       -> "costing.request.v1", "user/signed-up" -> "user.signed.up".
    3. A word starting with a digit joins the word before it ("v1.0" -> "v1_0").
    4. A single word gets `prefix` (the channel key) in front: "hello" on channel
       "root" -> "root.hello".
    """
    if EVENT_NAME_RE.match(raw) and len(raw) <= MAX_NAME:
        return raw
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", raw)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    words: list[str] = []
    for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()):
        if not word:
            continue
        if word[0].isdigit():
            if words:
                words[-1] += "_" + word
                continue
            word = "n" + word
        words.append(word)
    if not words:
        words = ["message"]
    if len(words) == 1:
        words.insert(0, _segment(prefix) or "message")
    return ".".join(words)[:MAX_NAME].rstrip("._")


def _segment(text: str) -> str:
    """One name segment ([a-z][a-z0-9_]*) from any text: "rpc_queue" -> "rpc_queue"."""
    word = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()).strip("_")
    if word and word[0].isdigit():
        word = "n" + word
    return word


# --------------------------------------------------------------------------- import
def parse(document: dict) -> Parsed:
    """Map an AsyncAPI 3 document to a Model. Raises DocumentError for a bad document."""
    return _Reader(document).read()


@dataclass
class _ChannelMessage:
    channel: str  # channel key
    key: str  # message key in the channel
    pointer: str  # #/channels/<channel>/messages/<key>
    target: str  # pointer of the message object after following $refs
    message: dict
    event: str = ""  # the event name given to it


class _Reader:
    def __init__(self, document: dict) -> None:
        self.root = document
        self.warnings: list[Issue] = []
        self._seen_warnings: set[tuple[str, str]] = set()
        self._noted: set[str] = set()
        self._originals: dict[str, str] = {}  # event name -> the AsyncAPI name it came from
        self._remote: list[tuple[str, str]] = []  # (pointer, ref) of references to other documents

    # ----------------------------------------------------------------- helpers
    def warn(self, pointer: str, message: str) -> None:
        if (pointer, message) not in self._seen_warnings:
            self._seen_warnings.add((pointer, message))
            self.warnings.append(Issue(pointer, message))

    def at(self, ref: str, where: str) -> Any:
        node: Any = self.root
        parts = pointer_parts(ref)
        for i, part in enumerate(parts):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                parent = join("#", *parts[:i])
                raise DocumentError(f"$ref {ref!r} does not resolve: {parent} has no {part!r}.", where)
        return node

    def deref(self, node: Any, where: str) -> tuple[Any, str]:
        """Follow a chain of $ref objects to (the object, its pointer); a _Remote for other files."""
        chain: list[str] = []
        pointer = where
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not is_pointer(ref):
                return _Remote(ref), pointer
            target = _normal(ref)
            if target in chain or target == where:
                raise DocumentError(f"Circular $ref: {' -> '.join([where, *chain, target])}.", join(pointer, "$ref"))
            chain.append(target)
            node = self.at(ref, join(pointer, "$ref"))
            pointer = target
        return node, pointer

    def obj(self, node: Any, where: str, what: str) -> dict | None:
        """The object at `where` (following $refs); None with a warning for a remote one."""
        target, pointer = self.deref(node, where)
        if isinstance(target, _Remote):
            self.warn(where, f"The {what} refers to {target.ref}, which EventHub does not fetch; it is skipped.")
            return None
        if not isinstance(target, dict):
            raise DocumentError(f"A {what} must be an object, not {_kind(target)}.", where)
        return target

    def section(self, node: dict, key: str, where: str) -> dict:
        value = node.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise DocumentError(f"`{key}` must be an object, not {_kind(value)}.", join(where, key))
        return value

    def traits(self, obj: dict, where: str) -> dict:
        """The object with its traits merged in (JSON Merge Patch, the object's own fields win)."""
        traits = obj.get("traits")
        if not traits:
            return obj
        if not isinstance(traits, list):
            raise DocumentError("`traits` must be a list.", join(where, "traits"))
        merged: dict = {}
        for i, item in enumerate(traits):
            for part in item if isinstance(item, list) else [item]:
                trait = self.obj(part, join(where, "traits", i), "trait")
                if trait:
                    merged = _merge_patch(merged, trait)
        return _merge_patch(merged, {k: v for k, v in obj.items() if k != "traits"})

    def _refs(self, node: Any, pointer: str, data: bool = False) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not data:
                yield pointer, ref
            for key, value in node.items():
                if key == "$ref":
                    continue
                if key in NAME_MAPS and isinstance(value, dict):
                    for name, sub in value.items():
                        yield from self._refs(sub, join(pointer, key, name), data)
                else:
                    yield from self._refs(value, join(pointer, key), data or key in DATA_KEYS)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from self._refs(value, join(pointer, i), data)

    # ----------------------------------------------------------------- reading
    def read(self) -> Parsed:
        info = self._check_header()
        for where, ref in self._refs(self.root, "#"):
            if is_pointer(ref):
                self.deref({"$ref": ref}, where)  # raises for a broken or circular one
            elif not ref.startswith("#"):
                self._remote.append((where, ref))
        title = info["title"].strip()
        system = info.get("x-eventhub-system") is True
        model = Model(title=title[:MAX_NAME], description=_text(info.get("description")), system=system)
        self.model = model
        self._services(info)
        self._read_channels()
        self._read_operations()
        self._unused_messages()
        self._aggregate_warnings()
        return Parsed(model, self.warnings)

    def _check_header(self) -> dict:
        version = self.root.get("asyncapi")
        if version is None:
            if "openapi" in self.root or "swagger" in self.root:
                raise DocumentError("This is an OpenAPI document, not AsyncAPI.", "#/openapi")
            raise DocumentError("Not an AsyncAPI document: the `asyncapi` field is missing.", "#")
        if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise DocumentError(f'`asyncapi` must be a version such as "3.0.0", not {version!r}.', "#/asyncapi")
        if not version.startswith("3."):
            raise DocumentError(
                f"AsyncAPI {version} is not supported: EventHub imports AsyncAPI 3 documents. "
                "Convert it first (asyncapi convert --target-version=3.0.0).",
                "#/asyncapi",
            )
        if version != SPEC_VERSION:
            self.warn("#/asyncapi", f"Read as AsyncAPI {SPEC_VERSION} (the document says {version}).")
        info = self.root.get("info")
        if not isinstance(info, dict):
            raise DocumentError("The required `info` object is missing.", "#/info")
        for key in ("title", "version"):
            if key not in info:
                raise DocumentError(f"The required field `info.{key}` is missing.", f"#/info/{key}")
            if not isinstance(info[key], str) or not info[key].strip():
                raise DocumentError(f"`info.{key}` must be a non-empty string.", f"#/info/{key}")
        for key in ("servers", "channels", "operations", "components"):
            self.section(self.root, key, "#")
        return info

    def _services(self, info: dict) -> None:
        self.services: dict[str, ServiceSpec] = {}
        entries = info.get("x-eventhub-services") or []
        if not self.model.system:
            name = self.model.title
            if len(name) > MAX_SERVICE_NAME:
                self.warn("#/info/title", f"The service name is cut to {MAX_SERVICE_NAME} characters.")
                name = name[:MAX_SERVICE_NAME]
            self.services[name] = ServiceSpec(name=name, slug=slug(name), description=self.model.description)
        # A whole-system export names each operation's service; the title is the fallback.
        self.service_name = self.model.title[:MAX_SERVICE_NAME]
        if not isinstance(entries, list):
            raise DocumentError("`x-eventhub-services` must be a list.", "#/info/x-eventhub-services")
        for i, entry in enumerate(entries):
            where = f"#/info/x-eventhub-services/{i}"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
                raise DocumentError("A service entry needs a `name`.", where)
            position = _xy(entry.get("position"))
            spec = ServiceSpec(
                name=entry["name"].strip()[:MAX_SERVICE_NAME],
                slug=_text(entry.get("slug")),
                description=_text(entry.get("description")),
                owner_team=_text(entry.get("ownerTeam")),
                repository_url=_text(entry.get("repositoryUrl")),
                tags=[t for t in entry.get("tags") or [] if isinstance(t, str)],
                domain=_text(entry.get("domain")),
                x=position[0],
                y=position[1],
            )
            self.services[spec.name] = spec
        self.model.services = list(self.services.values())

    def _service(self, name: str) -> str:
        name = name.strip()[:MAX_SERVICE_NAME]
        if name not in self.services:
            self.services[name] = ServiceSpec(name=name, slug=slug(name))
            self.model.services.append(self.services[name])
        return name

    # ----------------------------------------------------------------- servers and buses
    def _server_protocols(self, refs: Any, where: str) -> list[tuple[str, str]]:
        """(server pointer, protocol) for the channel's servers, or all servers of the document."""
        out = []
        if isinstance(refs, list) and refs:
            for i, ref in enumerate(refs):
                server = self.obj(ref, join(where, i), "server")
                if server is not None:
                    out.append((self.deref(ref, join(where, i))[1], _text(server.get("protocol")).lower()))
            return out
        for key, raw in self.section(self.root, "servers", "#").items():
            server = self.obj(raw, join("#/servers", key), "server")
            if server is not None:
                out.append((join("#/servers", key), _text(server.get("protocol")).lower()))
        return out

    def _bus(self, channel: dict, where: str) -> tuple[str, str]:
        """(bus, protocol EventHub does not monitor or "") for a channel."""
        stated = channel.get("x-eventhub-bus")
        if stated in BUSES:
            return stated, ""
        servers = self._server_protocols(channel.get("servers"), join(where, "servers"))
        if not servers:
            self._note(
                "no-servers", "#", "The document declares no servers; its channels are imported as Kafka topics."
            )
            return "kafka", ""
        buses = {PROTOCOL_BUS.get(protocol) for _, protocol in servers}
        if "kafka" in buses:
            if "redis" in buses:
                self.warn(where, "The channel is on Kafka and Redis servers; it is imported as a Kafka topic.")
            return "kafka", ""
        if buses == {"redis"}:
            return "redis", ""
        others = sorted({p or "unknown" for _, p in servers if p not in PROTOCOL_BUS})
        pointer = next(ptr for ptr, p in servers if p not in PROTOCOL_BUS)
        self._note(
            f"protocol:{pointer}",
            pointer,
            f"Protocol {', '.join(others)} is not a bus EventHub monitors; its channels are kept as Kafka "
            "topics with the protocol noted in their description.",
        )
        return "kafka", ", ".join(others)

    def _note(self, key: str, pointer: str, message: str) -> None:
        """A warning given once per document for something that repeats."""
        if key not in self._noted:
            self._noted.add(key)
            self.warn(pointer, message)

    # ----------------------------------------------------------------- channels
    def _read_channels(self) -> None:
        self.channel_messages: list[_ChannelMessage] = []
        self.channel_targets: dict[str, str] = {}  # channel object pointer -> channel key
        self.topic_names: dict[str, str] = {}
        self._parameters: list[str] = []
        for key, raw in self.section(self.root, "channels", "#").items():
            where = join("#/channels", key)
            channel = self.obj(raw, where, "channel")
            if channel is None:
                continue
            self.channel_targets[self.deref(raw, where)[1]] = key
            self.model.topics.append(self._topic(key, channel, where))
            messages = self.section(channel, "messages", where)
            for msg_key, msg_raw in messages.items():
                msg_where = join(where, "messages", msg_key)
                target, target_ptr = self.deref(msg_raw, msg_where)
                if isinstance(target, _Remote):
                    self.warn(msg_where, f"The message refers to {target.ref}, which EventHub does not fetch; skipped.")
                    continue
                if not isinstance(target, dict):
                    raise DocumentError(f"A message must be an object, not {_kind(target)}.", msg_where)
                self.channel_messages.append(
                    _ChannelMessage(key, msg_key, msg_where, target_ptr, self.traits(target, target_ptr))
                )
        self._name_events()
        for cm in self.channel_messages:
            if cm.event not in self.events:
                self.events[cm.event] = self._event(cm.event, cm.message, cm.target, topic=cm.channel)
                self.model.events.append(self.events[cm.event])

    def _topic(self, key: str, channel: dict, where: str) -> TopicSpec:
        address = channel.get("address")
        if address is not None and not isinstance(address, str):
            raise DocumentError(f"`address` must be a string or null, not {_kind(address)}.", join(where, "address"))
        dynamic = address is None
        if dynamic:
            stated = channel.get("x-eventhub-address")
            address = stated if isinstance(stated, str) and stated else key
        if not address:
            raise DocumentError("`address` must not be empty (use null for a dynamic address).", join(where, "address"))
        if len(address) > MAX_ADDRESS:
            raise DocumentError(f"The address is longer than {MAX_ADDRESS} characters.", join(where, "address"))
        if channel.get("parameters"):
            self._parameters.append(join(where, "parameters"))
        bus, protocol = self._bus(channel, where)
        partitions = retention = None
        bindings = self.obj(channel["bindings"], join(where, "bindings"), "bindings") if "bindings" in channel else None
        if bindings and "kafka" in bindings and bus == "kafka":
            kafka = self.obj(bindings["kafka"], join(where, "bindings", "kafka"), "Kafka binding") or {}
            if _integer(kafka.get("partitions")) and kafka["partitions"] >= 1:
                partitions = kafka["partitions"]
            config = kafka.get("topicConfiguration")
            if isinstance(config, dict) and _integer(config.get("retention.ms")) and config["retention.ms"] >= -1:
                retention = config["retention.ms"]
        title = _text(channel.get("title")).strip()
        name = (title or key)[:MAX_NAME]
        position = _xy(channel.get("x-eventhub-position"))
        return TopicSpec(
            key=key,
            name=name,
            address=address,
            bus=bus,
            dynamic=dynamic,
            partitions=partitions,
            retention_ms=retention,
            dead_letter_topic=_text(channel.get("x-eventhub-dead-letter-topic"))[:MAX_ADDRESS],
            description=_text(channel.get("description")) or _text(channel.get("summary")),
            protocol=protocol,
            domain=_text(channel.get("x-eventhub-domain")),
            x=position[0],
            y=position[1],
            pointer=where,
        )

    def _name_events(self) -> None:
        """Give every channel message its event name (see `event_name`).

        The same message object on several channels becomes one event per channel,
        named after the channel's key for it ("turnOn", "turnOff"); names that still
        clash get the channel in front, then a number.
        """
        self.events: dict[str, EventSpec] = {}
        by_target: dict[str, set[str]] = {}
        for cm in self.channel_messages:
            by_target.setdefault(cm.target, set()).add(cm.channel)
        taken: dict[str, str] = {}  # name -> identity "<channel>|<target>"
        for cm in self.channel_messages:
            shared = len(by_target[cm.target]) > 1
            identity = f"{cm.channel}|{cm.target}" if shared else cm.target
            if shared:
                original = cm.key
            else:
                original = _text(cm.message.get("name")) or _component_key(cm.target) or cm.key
            name = event_name(original, cm.channel)
            candidates = [name, f"{_segment(cm.channel) or 'channel'}.{name}"]
            chosen = None
            for candidate in candidates:
                if taken.get(candidate, identity) == identity:
                    chosen = candidate
                    break
            n = 2
            while chosen is None:
                candidate = f"{name}_{n}"
                if taken.get(candidate, identity) == identity:
                    chosen = candidate
                n += 1
            taken[chosen] = identity
            cm.event = chosen
            self._originals[chosen] = original

    def _event(self, name: str, message: dict, pointer: str, *, topic: str | None) -> EventSpec:
        description = _text(message.get("description")) or _text(message.get("summary")) or _text(message.get("title"))
        source = self._originals.get(name, "")
        if source and source != name:
            note = f"_AsyncAPI message `{source}`._"
            description = f"{description}\n\n{note}" if description else note
        compatibility = message.get("x-eventhub-compatibility")
        compatibility = compatibility if isinstance(compatibility, dict) else {}
        kind = message.get("x-eventhub-kind")
        position = _xy(message.get("x-eventhub-position"))
        owner = message.get("x-eventhub-owner")
        spec = EventSpec(
            name=name,
            topic=topic,
            kind=kind if kind in ("event", "command") else None,
            owner=self._service(owner) if isinstance(owner, str) and owner.strip() else None,
            key_field=_text(message.get("x-eventhub-key-field")) or None,
            compatibility_mode=_text(compatibility.get("mode")).upper() or None,
            compatibility_policy=_text(compatibility.get("policy")).upper() or None,
            description=description,
            domain=_text(message.get("x-eventhub-domain")),
            x=position[0],
            y=position[1],
            pointer=pointer,
        )
        spec.schema = self._payload(message, pointer, name)
        if spec.schema is not None:
            spec.examples = [
                ex["payload"] for ex in message.get("examples") or [] if isinstance(ex, dict) and "payload" in ex
            ]
        return spec

    # ----------------------------------------------------------------- payloads
    def _payload(self, message: dict, pointer: str, event: str) -> Any:
        if "payload" not in message:
            return None
        where = join(pointer, "payload")
        target, target_ptr = self.deref(message["payload"], where)
        fmt = None
        if isinstance(target, dict) and "schema" in target:  # a multi-format schema object
            fmt = target.get("schemaFormat")
            if fmt is None or (isinstance(fmt, str) and _ASYNCAPI_FORMAT.match(fmt)):
                pass
            elif not (isinstance(fmt, str) and _JSON_SCHEMA_FORMAT.match(fmt)):
                self.warn(where, f"{event}: the payload is {fmt} (not JSON Schema); imported without a schema.")
                return None
            target, target_ptr = self.deref(target["schema"], join(target_ptr, "schema"))
        if isinstance(target, _Remote):
            self.warn(where, f"{event}: the payload is the remote {target.ref!r}; imported without a schema.")
            return None
        match = _JSON_SCHEMA_FORMAT.match(fmt) if isinstance(fmt, str) else None
        # Without a JSON Schema format it is an AsyncAPI Schema Object: a superset of draft-07.
        dialect = match.group(1) if match else "draft-07"
        if not isinstance(target, (dict, bool)):
            self.warn(where, f"{event}: the payload schema is {_kind(target)}, not a schema; imported without one.")
            return None
        try:
            schema = _Bundler(self, dialect).bundle(target, target_ptr)
        except _RemoteInSchema as remote:
            self.warn(
                remote.where, f"{event}: the payload refers to the remote {remote.ref!r}; imported without a schema."
            )
            return None
        if isinstance(schema, dict) and dialect != "draft-07" and "$schema" not in schema:
            schema = {"$schema": DIALECT_URIS[dialect], **schema}
        return schema

    # ----------------------------------------------------------------- operations
    def _read_operations(self) -> None:
        self.links: dict[tuple[str, str, str], LinkSpec] = {}
        for key, raw in self.section(self.root, "operations", "#").items():
            where = join("#/operations", key)
            op = self.obj(raw, where, "operation")
            if op is None:
                continue
            op = self.traits(op, where)
            action = op.get("action")
            if action not in ("send", "receive"):
                raise DocumentError(f'`action` must be "send" or "receive", not {action!r}.', join(where, "action"))
            if "channel" not in op:
                raise DocumentError("The required field `channel` is missing.", join(where, "channel"))
            channel = self._channel_of(op["channel"], join(where, "channel"))
            named = op.get("x-eventhub-service")
            if isinstance(named, str) and named.strip():
                service = self._service(named)
            else:
                service = self._service(self.service_name)
            events = self._op_events(op.get("messages"), channel, join(where, "messages"))
            group, extra = self._consumer_fields(op, where)
            notes = _text(op.get("description")) or _text(op.get("summary"))
            for event in events:
                self._link(service, event, action, where, group if action == "receive" else None, extra, notes)
            if op.get("reply") is not None:
                self._reply(op["reply"], join(where, "reply"), service, action, events)

    def _channel_of(self, node: Any, where: str) -> str:
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            raise DocumentError("`channel` must be a $ref to one of #/channels.", where)
        parts = pointer_parts(node["$ref"]) if is_pointer(node["$ref"]) else []
        channels = self.section(self.root, "channels", "#")
        if len(parts) == 2 and parts[0] == "channels" and parts[1] in channels:
            return parts[1]
        target, pointer = self.deref(node, where)
        if pointer in self.channel_targets:
            return self.channel_targets[pointer]
        raise DocumentError(f"{node['$ref']!r} is not one of the document's channels (#/channels).", where)

    def _op_events(self, refs: Any, channel: str, where: str) -> list[str]:
        mine = [cm for cm in self.channel_messages if cm.channel == channel]
        if refs is None:  # the spec: no `messages` means every message of the channel
            return list(dict.fromkeys(cm.event for cm in mine))
        if not isinstance(refs, list):
            raise DocumentError("`messages` must be a list of $refs.", where)
        events = []
        for i, ref in enumerate(refs):
            item = join(where, i)
            if not isinstance(ref, dict) or not isinstance(ref.get("$ref"), str):
                raise DocumentError("An operation's message must be a $ref to a message of its channel.", item)
            direct = _normal(ref["$ref"]) if is_pointer(ref["$ref"]) else None
            _, target = self.deref(ref, item)
            found = [cm for cm in mine if cm.pointer == direct] or [cm for cm in mine if cm.target == target]
            if not found:
                self.warn(item, f"The message {ref['$ref']!r} is not on channel {channel!r}; skipped.")
                continue
            events.append(found[0].event)
        return list(dict.fromkeys(events))

    def _consumer_fields(self, op: dict, where: str) -> tuple[str | None, dict]:
        group = None
        if "bindings" in op:
            bindings = self.obj(op["bindings"], join(where, "bindings"), "bindings") or {}
            if "kafka" in bindings:
                kafka = self.obj(bindings["kafka"], join(where, "bindings", "kafka"), "Kafka binding") or {}
                group = _schema_value(kafka.get("groupId"))
        extra = op.get("x-eventhub-consumer")
        extra = extra if isinstance(extra, dict) else {}
        if isinstance(extra.get("group"), str) and extra["group"]:
            group = extra["group"]
        return group, extra

    def _link(
        self, service: str, event: str, action: str, where: str, group: str | None, extra: dict, notes: str
    ) -> None:
        key = (service, event, action)
        if key in self.links:
            return
        link = LinkSpec(service=service, event=event, action=action, notes=notes, pointer=where)
        if action == "receive":
            link.group = group[:200] if group else None
            fields_used = extra.get("fieldsUsed")
            if isinstance(fields_used, list):
                link.fields_used = [f for f in fields_used if isinstance(f, str)]
            for attr, name in (("max_attempts", "maxAttempts"), ("backoff_ms", "backoffMs")):
                value = extra.get(name)
                if _integer(value) and value >= 0:
                    setattr(link, attr, value)
            if isinstance(extra.get("deadLetter"), bool):
                link.dead_letter = extra["deadLetter"]
        self.links[key] = link
        self.model.links.append(link)

    def _reply(self, node: Any, where: str, service: str, action: str, requests: list[str]) -> None:
        reply = self.obj(node, where, "reply")
        if reply is None:
            return
        channel = self._channel_of(reply["channel"], join(where, "channel")) if "channel" in reply else None
        if channel is None:
            # No channel: each message $ref names its channel (#/channels/<key>/messages/<m>).
            events = []
            for i, ref in enumerate(reply.get("messages") or []):
                parts = pointer_parts(ref.get("$ref", "")) if isinstance(ref, dict) else []
                if len(parts) == 4 and parts[0] == "channels":
                    events += self._op_events([ref], parts[1], join(where, "messages"))
                else:
                    self.warn(join(where, "messages", i), "A reply message without a reply channel; skipped.")
        else:
            events = self._op_events(reply.get("messages"), channel, join(where, "messages"))
        opposite = "send" if action == "receive" else "receive"
        for event in events:
            self._link(service, event, opposite, where, None, {}, f"Reply to {', '.join(requests)}.")
        if events:
            verb = "producer" if opposite == "send" else "consumer"
            self.warn(
                where,
                f"The reply is imported as {service} being a {verb} of {', '.join(events)} "
                "(EventHub has no request/reply link).",
            )

    # ----------------------------------------------------------------- the rest
    def _unused_messages(self) -> None:
        """Component messages no channel lists: events without a topic."""
        used = {cm.target for cm in self.channel_messages}
        components = self.section(self.root, "components", "#")
        for key, raw in self.section(components, "messages", "#/components").items():
            where = join("#/components/messages", key)
            target, pointer = self.deref(raw, where)
            if pointer in used or not isinstance(target, dict):
                continue
            message = self.traits(target, pointer)
            original = _text(message.get("name")) or key
            name = event_name(original, self.model.title.split()[0] if self.model.title.split() else "message")
            n = 2
            base = name
            while name in self.events:
                name, n = f"{base}_{n}", n + 1
            self._originals[name] = original
            self.events[name] = self._event(name, message, pointer, topic=None)
            self.model.events.append(self.events[name])

    def _aggregate_warnings(self) -> None:
        # Remote refs in payloads were already reported with what they cost; report the others.
        said = [w.pointer for w in self.warnings]
        for where, ref in self._remote:
            if not any(where == p or where.startswith(p + "/") for p in said):
                self.warn(join(where, "$ref"), f"Remote reference {ref!r} is not fetched; it is ignored.")
        if self._parameters:
            self.warn(
                self._parameters[0],
                f"Channel parameters (in {len(self._parameters)} channel{'s' if len(self._parameters) > 1 else ''}) "
                "are kept only as {placeholders} in the topic address.",
            )
        lost = [
            ("security", "Security requirements"),
            ("headers", "Message headers"),
            ("correlationId", "Correlation IDs"),
        ]
        for key, label in lost:
            found = _first_key(self.root, key)
            if found:
                self.warn(found, f"{label} are not kept (EventHub does not model them).")


class _RemoteInSchema(Exception):
    def __init__(self, ref: str, where: str) -> None:
        super().__init__(ref)
        self.ref = ref
        self.where = where


class _Bundler:
    """One self-contained JSON Schema from a payload whose $refs point around the document.

    Every document pointer a $ref reaches gets a local home: the payload itself is
    "#", anything else is copied once into definitions (draft-07) or $defs
    (2019-09+), named after its last pointer segment. A pointer is given its home
    before its content is copied, so recursive schemas terminate.
    """

    def __init__(self, reader: _Reader, dialect: str) -> None:
        self.reader = reader
        self.defs_key = "$defs" if dialect in ("2019-09", "2020-12") else "definitions"
        self.homes: dict[str, str] = {}
        self.defs: dict[str, Any] = {}
        self.pending: list[tuple[str, Any, str]] = []

    def bundle(self, root: Any, root_ptr: str) -> Any:
        self.homes[root_ptr] = "#"
        if isinstance(root, dict) and isinstance(root.get(self.defs_key), dict):
            self.taken = set(root[self.defs_key])
        else:
            self.taken = set()
        result = self.copy(root, root_ptr, False)
        while self.pending:
            name, node, pointer = self.pending.pop(0)
            self.defs[name] = self.copy(node, pointer, False)
        if self.defs:
            result = dict(result)
            result[self.defs_key] = {**(result.get(self.defs_key) or {}), **self.defs}
        return result

    def copy(self, node: Any, pointer: str, data: bool) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and not data:
                    out[key] = self.home(value, join(pointer, key))
                elif key in NAME_MAPS and isinstance(value, dict) and not data:
                    out[key] = {n: self.copy(v, join(pointer, key, n), False) for n, v in value.items()}
                else:
                    out[key] = self.copy(value, join(pointer, key), data or key in DATA_KEYS)
            return out
        if isinstance(node, list):
            return [self.copy(v, join(pointer, i), data) for i, v in enumerate(node)]
        return node

    def home(self, ref: str, where: str) -> str:
        if not is_pointer(ref):
            if ref.startswith("#"):
                return ref  # a plain-name fragment ($anchor) keeps working inside the schema
            raise _RemoteInSchema(ref, where)
        target = _normal(ref)
        for base in sorted(self.homes, key=len, reverse=True):
            if target == base or target.startswith(base + "/"):
                return self.homes[base] + target[len(base) :]
        last = pointer_parts(target)[-1] if pointer_parts(target) else "root"
        name = base_name = UNSAFE_KEY_CHARS.sub("_", last) or "schema"
        n = 2
        while name in self.taken:
            name, n = f"{base_name}_{n}", n + 1
        self.taken.add(name)
        local = f"#/{self.defs_key}/{escape(name)}"
        self.homes[target] = local
        self.pending.append((name, self.reader.at(ref, where), target))
        return local


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch, returning a new object."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _component_key(pointer: str) -> str:
    parts = pointer_parts(pointer)
    if len(parts) == 3 and parts[:2] == ["components", "messages"]:
        return parts[2]
    return ""


def _schema_value(schema: Any) -> str | None:
    """The one value a binding schema allows (groupId: {enum: [g]} / {const: g} / {default: g})."""
    if isinstance(schema, str):
        return schema
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("const"), str):
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and isinstance(enum[0], str):
        return enum[0]
    if isinstance(schema.get("default"), str):
        return schema["default"]
    return None


def _first_key(node: Any, key: str, pointer: str = "#") -> str | None:
    """The pointer of the first `key` in document order (depth first), or None."""
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key and value:
                return join(pointer, k)
            if k in DATA_KEYS or k in _SCHEMA_MAPS:
                continue
            found = _first_key(value, key, join(pointer, k))
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _first_key(value, key, join(pointer, i))
            if found:
                return found
    return None


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _xy(value: Any) -> tuple[float | None, float | None]:
    if not isinstance(value, dict):
        return None, None

    def number(v: Any) -> float | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return float(v) if ok else None

    return number(value.get("x")), number(value.get("y"))
