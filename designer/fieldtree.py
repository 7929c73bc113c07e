"""A JSON Schema as the tree of fields a reader of the event sees.

Plain module, no Django: the catalog renders the tree, search indexes the field
names. Each field carries two addresses:

- ``path``: a JSON pointer into the *schema* (``#/properties/total/properties/amount``),
  the vocabulary of the compatibility diff, so a change can point at its field;
- ``data_path``: where the value sits in an *event* (``total.amount``, ``lines[].sku``),
  the vocabulary consumers use for "fields used".

``$ref`` is followed inside the document (``#/...`` pointers and ``#anchor``);
a reference back to a schema already being expanded on the current branch is
shown once, marked recursive, instead of looping. ``oneOf``/``anyOf``/``allOf``
become alternatives, each with its own subtree. Expansion stops after
``MAX_NODES`` fields so a pathological document cannot blow up a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

MAX_NODES = 2000
MAX_DEPTH = 32
COMBINATORS = ("oneOf", "anyOf", "allOf")
COMBINATOR_LABELS = {"oneOf": "exactly one of", "anyOf": "any of", "allOf": "all of"}
# Shown next to the type so a reader sees the constraints without the raw JSON.
_CONSTRAINT_KEYWORDS = (
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
)  # fmt: skip


@dataclass
class Field:
    name: str
    path: str
    data_path: str
    types: list[str] = field(default_factory=list)
    required: bool = False
    description: str = ""
    title: str = ""
    enum: list[Any] | None = None
    const: Any = None
    has_const: bool = False
    default: Any = None
    has_default: bool = False
    format: str = ""
    constraints: dict[str, Any] = field(default_factory=dict)
    deprecated: bool = False
    ref: str = ""  # the $ref followed to get here, if any
    recursive: bool = False  # the $ref points back up the branch; not expanded again
    unresolved: bool = False  # the $ref does not resolve inside this document
    children: list[Field] = field(default_factory=list)
    combinator: str = ""  # oneOf / anyOf / allOf when alternatives is set
    alternatives: list[Field] = field(default_factory=list)
    closed: bool = False  # an object with additionalProperties: false

    @property
    def type_label(self) -> str:
        return " | ".join(self.types) if self.types else "any"

    @property
    def combinator_label(self) -> str:
        return COMBINATOR_LABELS.get(self.combinator, self.combinator)


@dataclass
class FieldTree:
    root: Field
    truncated: bool = False  # MAX_NODES reached; the rest is in the raw JSON

    @property
    def fields(self) -> list[Field]:
        return self.root.children


def build(schema: Any) -> FieldTree:
    """Build the field tree of a schema document (a dict or a boolean schema)."""
    builder = _Builder(schema)
    root = builder.node(schema, name="(event)", path="#", data_path="", required=True, stack=(), depth=0)
    return FieldTree(root=root, truncated=builder.truncated)


def iter_fields(tree: FieldTree | Field) -> Iterator[Field]:
    """Every field below the root, depth first, alternatives included."""
    start = tree.root if isinstance(tree, FieldTree) else tree
    pending = list(reversed(start.children + start.alternatives))
    while pending:
        node = pending.pop()
        yield node
        pending.extend(reversed(node.children + node.alternatives))


def field_paths(schema: Any) -> list[str]:
    """Distinct data paths of the named fields (``total.amount``), in document order."""
    seen: dict[str, None] = {}
    for node in iter_fields(build(schema)):
        # Array items ("lines[]") and catch-alls are containers, not named fields.
        if node.data_path and not node.data_path.endswith(("[]", "*")):
            seen.setdefault(node.data_path, None)
    return list(seen)


@dataclass(frozen=True)
class Row:
    """One line of the tree as a table: indentation depth, and whether it is an alternative."""

    field: Field
    depth: int
    option: bool


def rows(tree: FieldTree) -> list[Row]:
    """The tree flattened depth first, for a table; alternatives follow their parent's fields."""
    out: list[Row] = []

    def walk(node: Field, depth: int, option: bool) -> None:
        out.append(Row(node, depth, option))
        for child in node.children:
            walk(child, depth + 1, False)
        for alternative in node.alternatives:
            walk(alternative, depth + 1, True)

    for child in tree.root.children:
        walk(child, 0, False)
    for alternative in tree.root.alternatives:
        walk(alternative, 0, True)
    return out


# --------------------------------------------------------------------------- internals
def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _join_data(parent: str, name: str) -> str:
    if name.startswith("["):
        return f"{parent}{name}"
    return f"{parent}.{name}" if parent else name


_MISSING = object()


class _Builder:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.count = 0
        self.truncated = False
        self.anchors = self._collect_anchors(root)

    # ---- $ref resolution
    def _collect_anchors(self, node: Any) -> dict[str, Any]:
        anchors: dict[str, Any] = {}
        pending = [node]
        seen: set[int] = set()
        while pending:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            if isinstance(current, dict):
                anchor = current.get("$anchor")
                if isinstance(anchor, str):
                    anchors.setdefault(anchor, current)
                legacy = current.get("$id") or current.get("id")
                if isinstance(legacy, str) and legacy.startswith("#") and len(legacy) > 1:
                    anchors.setdefault(legacy[1:], current)  # draft-07 "$id": "#name"
                pending.extend(current.values())
            elif isinstance(current, list):
                pending.extend(current)
        return anchors

    def resolve(self, ref: str) -> Any:
        """The target of a local $ref, or _MISSING. Other documents are not fetched."""
        if not ref.startswith("#"):
            return _MISSING
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            return self.anchors.get(fragment, _MISSING)
        target: Any = self.root
        for token in fragment.split("/")[1:]:
            token = _unescape(token)
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return _MISSING
        return target

    def _full(self) -> bool:
        """True once MAX_NODES fields exist; callers stop adding siblings."""
        if self.count >= MAX_NODES:
            self.truncated = True
        return self.truncated and self.count >= MAX_NODES

    # ---- nodes
    def node(
        self,
        schema: Any,
        *,
        name: str,
        path: str,
        data_path: str,
        required: bool,
        stack: tuple[int, ...],
        depth: int,
    ) -> Field:
        self.count += 1
        node = Field(name=name, path=path, data_path=data_path, required=required)
        schema, stack = self._follow_refs(node, schema, stack)
        if node.recursive or node.unresolved:
            return node
        if schema is False:
            node.types = ["never"]
            return node
        if not isinstance(schema, dict):
            return node  # true or {}: anything
        if depth >= MAX_DEPTH or self.count >= MAX_NODES:
            self.truncated = self.truncated or self.count >= MAX_NODES or depth >= MAX_DEPTH
            self._describe(node, schema)
            return node
        stack = (*stack, id(schema))
        self._describe(node, schema)
        self._object_children(node, schema, path, data_path, stack, depth)
        self._array_children(node, schema, path, data_path, stack, depth)
        self._alternatives(node, schema, path, data_path, stack, depth)
        return node

    def _follow_refs(self, node: Field, schema: Any, stack: tuple[int, ...]) -> tuple[Any, tuple[int, ...]]:
        """Replace a $ref schema by its target; return it and the stack grown by the targets.

        A local description or title next to the $ref wins over the target's (2019-09+
        evaluates siblings; draft-07 ignores them, but the local text is what the
        author meant to show here).
        """
        followed: list[int] = []
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            target = self.resolve(ref)
            node.ref = ref
            if target is _MISSING:
                node.unresolved = True
                self._describe(node, schema)
                return schema, stack
            if id(target) in stack or id(target) in followed:
                node.recursive = True
                self._describe(node, schema)
                if isinstance(target, dict):
                    node.types = node.types or _types_of(target)
                    node.description = node.description or _text(target.get("description"))
                return schema, stack
            followed.append(id(target))
            local = {k: schema[k] for k in ("description", "title") if k in schema}
            schema = {**target, **local} if local and isinstance(target, dict) else target
        return schema, (*stack, *followed)

    def _describe(self, node: Field, schema: dict) -> None:
        node.types = _types_of(schema)
        node.description = _text(schema.get("description")) or node.description
        node.title = _text(schema.get("title"))
        if isinstance(schema.get("enum"), list):
            node.enum = list(schema["enum"])
        if "const" in schema:
            node.const, node.has_const = schema["const"], True
        if "default" in schema:
            node.default, node.has_default = schema["default"], True
        node.format = _text(schema.get("format"))
        node.deprecated = schema.get("deprecated") is True
        node.constraints = {k: schema[k] for k in _CONSTRAINT_KEYWORDS if k in schema}
        node.closed = schema.get("additionalProperties") is False or schema.get("unevaluatedProperties") is False

    def _object_children(self, node, schema, path, data_path, stack, depth) -> None:
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for prop, sub in properties.items():
                if self._full():
                    return
                node.children.append(
                    self.node(
                        sub,
                        name=prop,
                        path=f"{path}/properties/{_escape(prop)}",
                        data_path=_join_data(data_path, prop),
                        required=prop in required,
                        stack=stack,
                        depth=depth + 1,
                    )
                )
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict):
            for pattern, sub in patterns.items():
                if self._full():
                    return
                node.children.append(
                    self.node(
                        sub,
                        name=f"/{pattern}/",
                        path=f"{path}/patternProperties/{_escape(pattern)}",
                        data_path=_join_data(data_path, "*"),
                        required=False,
                        stack=stack,
                        depth=depth + 1,
                    )
                )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra and not self._full():
            node.children.append(
                self.node(
                    extra,
                    name="(any other key)",
                    path=f"{path}/additionalProperties",
                    data_path=_join_data(data_path, "*"),
                    required=False,
                    stack=stack,
                    depth=depth + 1,
                )
            )

    def _array_children(self, node, schema, path, data_path, stack, depth) -> None:
        # 2020-12 tuples are prefixItems (+ items for the rest); earlier drafts use an items list.
        tuple_key = "prefixItems" if isinstance(schema.get("prefixItems"), list) else "items"
        tuple_items = schema.get(tuple_key) if isinstance(schema.get(tuple_key), list) else None
        if tuple_items is not None:
            for index, sub in enumerate(tuple_items):
                if self._full():
                    return
                node.children.append(
                    self.node(
                        sub,
                        name=f"[{index}]",
                        path=f"{path}/{tuple_key}/{index}",
                        data_path=_join_data(data_path, f"[{index}]"),
                        required=False,
                        stack=stack,
                        depth=depth + 1,
                    )
                )
        items = schema.get("items")
        if isinstance(items, dict | bool) and items is not True and items != {} and not self._full():
            node.children.append(
                self.node(
                    items,
                    name="[]",
                    path=f"{path}/items",
                    data_path=_join_data(data_path, "[]"),
                    required=False,
                    stack=stack,
                    depth=depth + 1,
                )
            )

    def _alternatives(self, node, schema, path, data_path, stack, depth) -> None:
        for keyword in COMBINATORS:
            branches = schema.get(keyword)
            if not isinstance(branches, list):
                continue
            if node.combinator:  # several combinators on one schema: nest the later ones
                holder = Field(name=COMBINATOR_LABELS[keyword], path=path, data_path="", combinator=keyword)
                node.alternatives.append(holder)
            else:
                holder = node
                node.combinator = keyword
            for index, sub in enumerate(branches):
                if self._full():
                    return
                branch = self.node(
                    sub,
                    name=f"option {index + 1}",
                    path=f"{path}/{keyword}/{index}",
                    data_path=data_path,
                    required=False,
                    stack=stack,
                    depth=depth + 1,
                )
                # A branch's data_path is its parent's; blank it so search lists the field once.
                branch.data_path = ""
                holder.alternatives.append(branch)


def _types_of(schema: dict) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    if "const" in schema:
        return [_json_type(schema["const"])]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return list(dict.fromkeys(_json_type(v) for v in schema["enum"]))
    if any(k in schema for k in ("properties", "patternProperties", "additionalProperties", "required")):
        return ["object"]
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return ["array"]
    return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
