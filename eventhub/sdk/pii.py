"""Sensitive fields: found by the schema, hidden in payloads shown to people.

A schema marks a field sensitive with `"x-eventhub-pii": true` on the field's
schema, at any depth: `properties.customer.properties.email`,
`properties.lines.items.properties.card`, a `$defs` entry reached by `$ref`, a
branch of `anyOf`. JSON Schema ignores unknown keywords, so the mark changes no
validation and no compatibility verdict (designer.compat).

    paths = pii_paths(schema)           # [("customer", "email"), ("lines", ANY, "card")]
    shown = mask(payload, paths)        # a copy with each marked value replaced by "•••"
    edited = restore(edited, original, paths)  # "•••" sent back means "keep what was there"

A path is a tuple of property names (str), array positions (int, from tuple
`items`/`prefixItems`) and `ANY` (every array item, or every value of an object
for `additionalProperties`/`patternProperties`: a mark there masks all of that
object's values, the safe side). A marked node hides everything below it.

Hostile or huge schemas cannot stall the walk: it stops after MAX_VISITS nodes,
and a `$ref` that leads back into itself is followed MAX_REF_REPEAT times, after
which the whole value there is masked if a mark can be reached from it. When
the walk gives up, the answer is `[()]`: the whole payload is masked.

Django-free, like the rest of the SDK: every view of payloads (dead letters,
topic browser, traces) masks through this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from eventhub.sdk.schemas import MISSING, resolve_local_ref

MARK = "x-eventhub-pii"
MASK = "•••"
MAX_VISITS = 5_000  # schema nodes looked at; real schemas have a few hundred
MAX_REF_REPEAT = 3  # times one $ref is followed inside itself (recursive schemas)


class _Any:
    """The wildcard segment of a path: every item of an array, every value of an object."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
Path = tuple  # of str | int | ANY

_MISSING = object()
# Keywords whose subschemas describe the same value as their parent.
_SAME_VALUE = ("allOf", "anyOf", "oneOf")
_SAME_VALUE_ONE = ("if", "then", "else")
# Keywords whose subschema describes every value of an object or item of an array.
_EVERY_VALUE = ("additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems", "contains")


class HiddenValueMissing(ValueError):
    """An edited payload holds "•••" where a sensitive value was never there to keep."""

    reason = f"{MASK} stands for a hidden value, but there was none here: give a value or leave it out."

    def __init__(self, locations: list[Path]) -> None:
        self.locations = locations
        super().__init__(f"{', '.join(json_path(location) for location in locations[:5])}: {self.reason}")


# --------------------------------------------------------------------------- schema -> paths
def pii_paths(schema: Any) -> list[Path]:
    """Where `schema` marks values sensitive, in schema order, without repeats.

    1. A schema with no mark anywhere has none (one linear scan, no walk).
    2. Walk the schema's keywords with an explicit stack (deep schemas cannot
       overflow Python's), following local `$ref`s, extending the path by the
       property name, the tuple position or ANY.
    3. A marked node ends its branch: the whole value is masked.
    4. Past MAX_VISITS nodes, or a path longer than any payload could nest, give up: `[()]`.
    """
    if not _has_mark(schema):
        return []
    found: dict[Path, None] = {}
    stack: list[tuple[Any, Path, tuple[str, ...]]] = [(schema, (), ())]
    visits = 0
    while stack:
        node, path, refs = stack.pop()
        visits += 1
        if visits > MAX_VISITS or len(path) > 256:
            return [()]
        if not isinstance(node, dict):
            continue
        if node.get(MARK) is True:
            found[path] = None
            continue
        children: list[tuple[Any, Path, tuple[str, ...]]] = []
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = _resolve(schema, ref)
            if target is _MISSING:
                pass  # remote or unknown: the registry refuses those, nothing to follow
            elif refs.count(ref) < MAX_REF_REPEAT:
                children.append((target, path, (*refs, ref)))
            elif _reaches_mark(schema, target):
                found[path] = None  # deeper than we follow: hide all of it
        for keyword in _SAME_VALUE:
            for sub in _list(node.get(keyword)):
                children.append((sub, path, refs))
        for keyword in _SAME_VALUE_ONE:
            if isinstance(node.get(keyword), dict):
                children.append((node[keyword], path, refs))
        for keyword in ("dependentSchemas", "dependencies"):
            for sub in _dict(node.get(keyword)).values():
                if isinstance(sub, dict):
                    children.append((sub, path, refs))
        for name, sub in _dict(node.get("properties")).items():
            children.append((sub, (*path, name), refs))
        for sub in _dict(node.get("patternProperties")).values():
            children.append((sub, (*path, ANY), refs))
        items = node.get("items")
        if isinstance(items, list):
            children += [(sub, (*path, index), refs) for index, sub in enumerate(items)]
        elif isinstance(items, dict):
            children.append((items, (*path, ANY), refs))
        for index, sub in enumerate(_list(node.get("prefixItems"))):
            children.append((sub, (*path, index), refs))
        for keyword in _EVERY_VALUE:
            if isinstance(node.get(keyword), dict):
                children.append((node[keyword], (*path, ANY), refs))
        stack.extend(reversed(children))  # popped in schema order
    return list(found)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _nodes(document: Any) -> Iterator[dict]:
    """Every object inside `document` (itself included), without recursion."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _has_mark(document: Any) -> bool:
    return any(node.get(MARK) is True for node in _nodes(document))


def _reaches_mark(root: Any, start: Any) -> bool:
    """Whether a mark is inside `start` or inside anything its `$ref`s lead to."""
    seen: set[int] = set()
    stack = [start]
    while stack:
        document = stack.pop()
        if id(document) in seen:
            continue
        seen.add(id(document))
        for node in _nodes(document):
            if node.get(MARK) is True:
                return True
            if isinstance(node.get("$ref"), str):
                target = _resolve(root, node["$ref"])
                if target is not _MISSING:
                    stack.append(target)
    return False


def _resolve(root: Any, ref: str) -> Any:
    """A local JSON pointer (`#`, `#/$defs/card`); anything else is _MISSING."""
    target = resolve_local_ref(root, ref)
    return _MISSING if target is MISSING else target


# --------------------------------------------------------------------------- paths -> payload
def locations(payload: Any, paths: Iterable[Path]) -> list[Path]:
    """The concrete places in `payload` the paths reach (ANY expanded), outermost first, no repeats."""
    found: dict[Path, None] = {}
    for path in paths:
        stack: list[tuple[Any, Path, int]] = [(payload, (), 0)]
        while stack:
            node, where, depth = stack.pop()
            if depth == len(path):
                found[where] = None
                continue
            segment = path[depth]
            if segment is ANY:
                if isinstance(node, dict):
                    entries = list(node.items())
                elif isinstance(node, list):
                    entries = list(enumerate(node))
                else:
                    entries = []
                stack.extend((value, (*where, key), depth + 1) for key, value in reversed(entries))
            elif isinstance(segment, str) and isinstance(node, dict) and segment in node:
                stack.append((node[segment], (*where, segment), depth + 1))
            elif isinstance(segment, int) and isinstance(node, list) and segment < len(node):
                stack.append((node[segment], (*where, segment), depth + 1))
    ordered = sorted(found, key=len)
    kept: list[Path] = []
    for location in ordered:  # one inside another masked place is masked already
        if not any(location[: len(outer)] == outer for outer in kept):
            kept.append(location)
    return kept


def _get(payload: Any, location: Path) -> Any:
    node = payload
    for key in location:
        if isinstance(key, str) and isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(key, int) and isinstance(node, list) and key < len(node):
            node = node[key]
        else:
            return _MISSING
    return node


def _set(payload: Any, location: Path, value: Any) -> Any:
    """`payload` with the value at `location` (which exists) replaced; the root itself when location is ()."""
    if not location:
        return value
    parent = _get(payload, location[:-1])
    parent[location[-1]] = value
    return payload


def _copy(payload: Any) -> Any:
    return json.loads(json.dumps(payload))


def mask(payload: Any, paths: Iterable[Path]) -> Any:
    """A copy of `payload` with every value the paths reach replaced by MASK ("•••").

    Null, objects and arrays are masked as a whole too; keys that are absent stay absent.
    """
    paths = list(paths)
    places = locations(payload, paths)
    if not places:
        return payload
    masked = _copy(payload)
    for location in places:
        masked = _set(masked, location, MASK)
    return masked


def hidden_values(payload: Any, paths: Iterable[Path]) -> list[Any]:
    """The values `mask` would hide, to scrub them from messages that quote the payload."""
    return [_get(payload, location) for location in locations(payload, paths)]


def restore(edited: Any, original: Any, paths: Iterable[Path], *, original_is_json: bool = True) -> Any:
    """`edited` with each MASK at a sensitive place put back to the original's value there.

    Someone who saw "•••" and sent it back did not mean "•••": they meant "keep
    it". Any other value is theirs (writing a field is not reading it); a key they
    removed stays removed. A MASK where the original had nothing (a new array
    item, an original that is not JSON) raises HiddenValueMissing, so "•••" is
    never written into an event. Places are matched by position.
    """
    kept = []
    missing = []
    for location in locations(edited, paths):
        if _get(edited, location) != MASK:
            continue
        before = _get(original, location) if original_is_json else _MISSING
        if before is _MISSING:
            missing.append(location)
        else:
            kept.append((location, before))
    if missing:
        raise HiddenValueMissing(missing)
    if not kept:
        return edited
    result = _copy(edited)
    for location, before in kept:
        result = _set(result, location, _copy(before))
    return result


def scrub(text: str, values: Iterable[Any]) -> str:
    """`text` with every hidden value it quotes (as Python or JSON writes it) replaced by MASK.

    Validation messages quote the instance (`'4111 1111' does not match ...`, and a
    whole object with its fields); shown to someone who may not see the values,
    they are scrubbed. Longer quotes go first so a value inside another is not left.
    """
    quotes: set[str] = set()
    for value in values:
        if value is _MISSING or value == MASK:
            continue
        quotes.add(repr(value))
        quotes.add(json.dumps(value, ensure_ascii=False))
        if isinstance(value, str) and len(value) >= 4:
            quotes.add(value)
    for quote in sorted(quotes, key=len, reverse=True):
        pattern = re.escape(quote)
        if quote[:1].isalnum():  # a bare number or word, whole only: 5 leaves the 5 of "minimum of 50"
            pattern = rf"(?<![\w.]){pattern}(?![\w.])"
        text = re.sub(pattern, MASK, text)
    return text


def json_path(location: Path) -> str:
    """`$.customer.email`, `$.lines[0].card`, `$.lines[*].card`, `$['odd key']` (jsonschema's spelling)."""
    text = "$"
    for key in location:
        if key is ANY:
            text += "[*]"
        elif isinstance(key, int):
            text += f"[{key}]"
        elif _IDENTIFIER.match(key):
            text += f".{key}"
        else:
            text += "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return text


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
