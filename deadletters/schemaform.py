"""An event's JSON Schema as an edit form, and the form's values back as a payload.

Plain module, no Django: `deadletters.forms` turns the specs into form fields and the
edit page renders them; the round trip is tested without a database.

The mapping, per schema node (after following local `$ref`s):
- an object with `properties` -> a fieldset of its properties (`kind` "object");
- `enum` / `const` -> a choice ("enum"), values compared as JSON;
- string / number / integer / boolean -> one input each;
- `"type": [X, "null"]`, `anyOf/oneOf: [X, {"type": "null"}]` -> X, `nullable`;
- anything else (arrays, free-form objects, other combinators, recursive refs,
  several types) -> a JSON text box ("json"), with `reason` saying why.
A root that is not an object with properties gets no form: the page offers only
the raw JSON editor.

Values travel as text, so a payload that failed *because* of a bad value still
shows it: "twelve" in a number field stays visible, and is refused with a
field error instead of silently disappearing. An empty box (or "not set")
leaves the key out. Keys the payload has but the schema does not declare are
kept as they were; nothing the form cannot show is lost.

Form input names are "f" + the JSON pointer of the value (`f/customer/city`),
so any property name round-trips; the null checkbox of a nullable field is
"null:" + that name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from eventhub.sdk.payload import PayloadDecodeError, decode_json
from eventhub.sdk.schemas import MISSING, check_schema_is_safe, python_validator, resolve_local_ref

MAX_DEPTH = 8  # nested objects deeper than this are edited as JSON
MAX_FIELDS = 300  # a pathological schema must not produce a 10 000-input page
LEAF_KINDS = ("string", "number", "integer", "boolean", "enum", "json")
_MISSING = object()
_REQUIRED = re.compile(r"^(?P<name>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") is a required property$")


@dataclass
class FieldSpec:
    name: str  # the form input name: "f" + JSON pointer
    path: tuple[str, ...]  # property names from the payload root
    kind: str  # "object" or one of LEAF_KINDS
    required: bool = False
    nullable: bool = False
    title: str = ""
    description: str = ""
    format: str = ""
    choices: list[Any] = field(default_factory=list)  # kind "enum"
    hints: dict[str, Any] = field(default_factory=dict)  # minimum, maxLength, pattern...: shown next to the input
    reason: str = ""  # kind "json": why this is not a plain input
    closed: bool = False  # object with additionalProperties: false
    children: list[FieldSpec] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.path[-1] if self.path else "payload"

    @property
    def null_name(self) -> str:
        return "null:" + self.name

    @property
    def json_path(self) -> str:
        return json_path(self.path)


@dataclass
class SchemaForm:
    """The fields of a form for one schema; `fields` empty and `reason` set when there is no form."""

    fields: list[FieldSpec]
    reason: str = ""
    closed: bool = False  # the root object is closed

    @property
    def available(self) -> bool:
        return bool(self.fields)


@dataclass(frozen=True)
class SchemaProblem:
    """One way a payload fails its schema: where (property names and indexes) and why."""

    path: tuple[str | int, ...]
    message: str

    @property
    def json_path(self) -> str:
        return json_path(self.path)


# --------------------------------------------------------------------------- paths
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """("customer", "first name", 0) -> "$.customer['first name'][0]" (jsonschema's spelling)."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += "." + part
        else:
            text += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return text


_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")


def parse_json_path(text: str) -> tuple[str | int, ...] | None:
    """The inverse of `json_path`; None when `text` is not in that spelling."""
    if not text.startswith("$"):
        return None
    parts: list[str | int] = []
    position = 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            return None
        name, index, quoted = match.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(re.sub(r"\\(.)", r"\1", quoted))
        position = match.end()
    return tuple(parts)


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


# --------------------------------------------------------------------------- schema -> specs
class _Builder:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.count = 0

    def resolve(self, node: Any, seen: tuple[str, ...]) -> tuple[Any, tuple[str, ...], str]:
        """Follow local $refs; returns (node, refs followed so far, problem or "")."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                return node, seen, f"refers back to itself ({ref})"
            target = _follow_pointer(self.root, ref)
            if target is _MISSING:
                return node, seen, f"$ref {ref} cannot be followed here"
            seen = (*seen, ref)
            # Sibling keywords next to $ref (2019-09+) refine the target: merge them in.
            extra = {key: value for key, value in node.items() if key != "$ref"}
            node = {**target, **extra} if isinstance(target, dict) and extra else target
        return node, seen, ""

    def spec(self, node: Any, path: tuple[str, ...], required: bool, depth: int, seen: tuple[str, ...]) -> FieldSpec:
        self.count += 1
        node, seen, problem = self.resolve(node, seen)
        spec = FieldSpec(name="f" + _pointer(path), path=path, kind="json", required=required)
        if not isinstance(node, dict):
            spec.reason = "any value" if node is True or node == {} else "the schema of this field is unusual"
            return spec
        spec.title = str(node.get("title") or "")
        spec.description = str(node.get("description") or "")
        if problem:
            spec.reason = problem
            return spec
        node, spec.nullable = self._unwrap_nullable(node, seen)
        if node is None:
            spec.reason = "the schema of this field is unusual"
            return spec
        spec.title = spec.title or str(node.get("title") or "")
        spec.description = spec.description or str(node.get("description") or "")
        spec.format = str(node.get("format") or "")
        spec.hints = {key: node[key] for key in _HINTS if key in node}
        types = node.get("type")
        types = [types] if isinstance(types, str) else list(types) if isinstance(types, list) else []
        if "null" in types:
            spec.nullable = True
            types = [kind for kind in types if kind != "null"]
        if "enum" in node or "const" in node:
            values = list(node["enum"]) if isinstance(node.get("enum"), list) else [node.get("const")]
            if None in values:
                spec.nullable = True
                values = [value for value in values if value is not None]
            if values:
                spec.kind, spec.choices = "enum", values
                return spec
        if not types and isinstance(node.get("properties"), dict):
            types = ["object"]
        if any(key in node for key in ("oneOf", "anyOf", "allOf", "not", "if")):
            spec.reason = "several shapes are allowed (oneOf/anyOf/allOf)"
        elif len(types) != 1:
            spec.reason = "any type" if not types else f"one of {', '.join(types)}"
        elif types[0] == "array":
            spec.reason = "a list"
        elif types[0] == "object":
            self._object(spec, node, depth, seen)
        elif types[0] in ("string", "number", "integer", "boolean"):
            spec.kind = types[0]
        else:
            spec.reason = f"unknown type {types[0]}"
        return spec

    def _unwrap_nullable(self, node: dict, seen: tuple[str, ...]) -> tuple[dict | None, bool]:
        """anyOf/oneOf [X, {"type": "null"}] -> (X, True): how Pydantic and others say "optional"."""
        for keyword in ("anyOf", "oneOf"):
            options = node.get(keyword)
            if not isinstance(options, list) or len(options) != 2:
                continue
            resolved = [self.resolve(option, seen)[0] for option in options]
            nulls = [option for option in resolved if isinstance(option, dict) and option.get("type") == "null"]
            others = [option for option in resolved if not (isinstance(option, dict) and option.get("type") == "null")]
            if len(nulls) == 1 and len(others) == 1 and isinstance(others[0], dict):
                rest = {key: value for key, value in node.items() if key != keyword}
                return {**others[0], **rest}, True
        return node, False

    def _object(self, spec: FieldSpec, node: dict, depth: int, seen: tuple[str, ...]) -> None:
        properties = node.get("properties")
        if not isinstance(properties, dict) or not properties:
            spec.reason = "an object with free-form keys"
            return
        if depth >= MAX_DEPTH or self.count + len(properties) > MAX_FIELDS:
            spec.reason = "nested too deep for a form"
            return
        required = set(node.get("required") or []) if isinstance(node.get("required"), list) else set()
        spec.kind = "object"
        spec.closed = node.get("additionalProperties") is False
        spec.children = [
            self.spec(child, (*spec.path, name), name in required, depth + 1, seen)
            for name, child in properties.items()
        ]


_HINTS = (
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "default",
    "examples",
)


def _follow_pointer(root: Any, ref: str) -> Any:
    target = resolve_local_ref(root, ref)  # remote refs are not fetched
    return _MISSING if target is MISSING else target


def build(schema: Any) -> SchemaForm:
    """The form for `schema`: one FieldSpec per top-level property (nested ones as children)."""
    builder = _Builder(schema)
    root = builder.spec(schema, (), True, 0, ())
    if root.kind != "object":
        reason = root.reason or "the payload is not an object"
        return SchemaForm(fields=[], reason=f"The schema describes {reason}; edit the payload as JSON.")
    return SchemaForm(fields=root.children, closed=root.closed)


def walk(fields: list[FieldSpec]) -> Iterator[FieldSpec]:
    """Every spec, depth first, objects before their children."""
    for spec in fields:
        yield spec
        yield from walk(spec.children)


def inputs(fields: list[FieldSpec]) -> Iterator[FieldSpec]:
    """The specs that have an input: leaves (objects only have a null checkbox, if nullable)."""
    return (spec for spec in walk(fields) if spec.kind != "object")


# --------------------------------------------------------------------------- payload -> form values
def _get(payload: Any, path: tuple[str, ...]) -> Any:
    node = payload
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def encode_choice(value: Any) -> str:
    """An enum value as the text of an <option>: compact JSON, so 1 and "1" stay apart."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def initial(form: SchemaForm, payload: Any) -> dict[str, Any]:
    """Form values showing `payload`: {input name: text} plus {null name: True} where it is null."""
    values: dict[str, Any] = {}
    for spec in walk(form.fields):
        value = _get(payload, spec.path)
        if value is _MISSING:
            continue
        if value is None and spec.nullable:
            values[spec.null_name] = True
            continue
        if spec.kind == "object":
            continue
        values[spec.name] = _as_text(spec, value)
    return values


def _as_text(spec: FieldSpec, value: Any) -> str:
    if spec.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if spec.kind in ("enum", "boolean"):
        return encode_choice(value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    # A number in a string field, a list in a number field...: shown as JSON so it is visible.
    return json.dumps(value, ensure_ascii=False)


def extra_keys(form: SchemaForm, payload: Any) -> list[str]:
    """JSON paths of keys the payload has that the form has no field for (they are kept as they are)."""
    found: list[str] = []

    def visit(fields: list[FieldSpec], node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        declared = {spec.path[-1]: spec for spec in fields}
        for key, value in node.items():
            spec = declared.get(key)
            if spec is None:
                found.append(json_path((*path, key)))
            elif spec.kind == "object":
                visit(spec.children, value, (*path, key))

    visit(form.fields, payload, ())
    return found


# --------------------------------------------------------------------------- form values -> payload
_INTEGER = re.compile(r"^[+-]?\d+$")
_INTEGER_DIGITS_MAX = 4000  # int() refuses more than 4300 digits (ValueError, not a form error)


def to_payload(form: SchemaForm, data: Mapping[str, Any], original: Any = None) -> tuple[dict, dict[str, str]]:
    """The payload the submitted values describe, and {input name: error} for values that cannot be read.

    Keys of `original` that the schema does not declare are carried over.
    """
    errors: dict[str, str] = {}
    payload = _object_value(form.fields, data, original if isinstance(original, dict) else {}, errors)
    return payload, errors


def _object_value(fields: list[FieldSpec], data: Mapping[str, Any], original: dict, errors: dict[str, str]) -> dict:
    result: dict[str, Any] = {}
    for spec in fields:
        key = spec.path[-1]
        before = original.get(key, _MISSING)
        if spec.nullable and _checked(data.get(spec.null_name)):
            result[key] = None
            continue
        if spec.kind == "object":
            inner = _object_value(spec.children, data, before if isinstance(before, dict) else {}, errors)
            if inner or spec.required or isinstance(before, dict):
                result[key] = inner
            continue
        value = _leaf_value(spec, data.get(spec.name), errors)
        if value is not _MISSING:
            result[key] = value
    declared = {spec.path[-1] for spec in fields}
    result.update((key, value) for key, value in original.items() if key not in declared)
    return result


def _checked(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("on", "true", "1"))


def _leaf_value(spec: FieldSpec, raw: Any, errors: dict[str, str]) -> Any:
    text = "" if raw is None else str(raw)
    if spec.kind == "string":
        return text if text != "" else _MISSING
    stripped = text.strip()
    if stripped == "":
        return _MISSING
    if spec.kind == "integer":
        if _INTEGER.match(stripped) and len(stripped) <= _INTEGER_DIGITS_MAX:
            return int(stripped)
        errors[spec.name] = "Enter a whole number."
        return _MISSING
    if spec.kind == "number":
        return _number(spec, stripped, errors)
    if spec.kind == "boolean":
        if stripped in ("true", "false"):
            return stripped == "true"
        errors[spec.name] = "Choose true or false."
        return _MISSING
    try:
        value = decode_json(stripped)
    except PayloadDecodeError as error:
        if spec.kind == "enum":
            errors[spec.name] = "Pick one of the listed values."
        else:
            errors[spec.name] = json_error_message(error)
        return _MISSING
    # An enum value outside the choices is kept as it is (the page offers the failing
    # current value too): the schema check then says why it is wrong.
    return value


def json_error_message(error: PayloadDecodeError) -> str:
    """What a form says about JSON it cannot take: where a syntax error is, else why."""
    if error.line is not None:
        return f"Invalid JSON at line {error.line}, column {error.column}: {error.detail}."
    message = str(error)
    if message.startswith("the value is not JSON: "):
        return f"Invalid JSON: {message.removeprefix('the value is not JSON: ')}."
    return f"The JSON {message.removeprefix('the value ')}."


def _number(spec: FieldSpec, text: str, errors: dict[str, str]) -> Any:
    if _INTEGER.match(text) and len(text) <= _INTEGER_DIGITS_MAX:
        return int(text)
    try:
        value = float(text)
    except ValueError:
        errors[spec.name] = "Enter a number."
        return _MISSING
    if not math.isfinite(value):
        errors[spec.name] = "Enter a finite number (JSON has no NaN or Infinity)."
        return _MISSING
    return value


def options(spec: FieldSpec, current: str | None = None) -> list[tuple[str, str]]:
    """(value, label) of a choice field's <option>s: "not set", the allowed values, and the
    current value when the schema does not allow it (so it can be seen, and kept on purpose)."""
    values = [True, False] if spec.kind == "boolean" else spec.choices
    result = [("", "(not set)")]
    result += [(encode_choice(value), value if isinstance(value, str) else encode_choice(value)) for value in values]
    if current:
        try:
            decoded = decode_json(current)
        except PayloadDecodeError:
            decoded = _MISSING
        if decoded is _MISSING or not any(_same(decoded, value) for value in values):
            result.append((current, f"{current} (current, not allowed)"))
    return result


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# --------------------------------------------------------------------------- checking
def problems(schema: Any, payload: Any, limit: int = 50) -> list[SchemaProblem]:
    """Every way `payload` fails `schema` (at most `limit`), in the order the validator finds them.

    A missing required property is reported at the property itself, so the form
    can show it next to that field rather than on its parent.
    """
    unsafe = check_schema_is_safe(schema)
    if unsafe:  # stored before registration refused it: say why rather than fetch or fail
        where, problem = unsafe[0]
        return [SchemaProblem((), f"The schema cannot be checked here: {where}: {problem}")]
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
        validator = python_validator(schema)  # fetches nothing, patterns on RE2
        found = []
        for error in validator.iter_errors(payload):
            found.append(error)
            if len(found) >= limit:
                break
    except SchemaError as error:
        return [SchemaProblem((), f"The schema itself is invalid: {error.message}")]
    except Exception as error:  # noqa: BLE001 - an unresolvable $ref surfaces only while validating
        return [SchemaProblem((), f"The payload could not be checked: {error}")]
    result = []
    for error in found:
        path = tuple(error.absolute_path)
        if error.validator == "required":
            match = _REQUIRED.match(error.message)
            if match:
                try:
                    path = (*path, _python_repr_text(match.group("name")))
                except ValueError:
                    pass
        result.append(SchemaProblem(path, error.message))
    return result


def _python_repr_text(quoted: str) -> str:
    """The property name inside jsonschema's message ("'amount' is a required property")."""
    import ast

    value = ast.literal_eval(quoted)
    if not isinstance(value, str):
        raise ValueError(quoted)
    return value


def field_for(form: SchemaForm, path: tuple[str | int, ...]) -> FieldSpec | None:
    """The input that shows the value at `path` (the deepest spec whose path starts it), or None."""
    best: FieldSpec | None = None
    for spec in walk(form.fields):
        if spec.path == tuple(path[: len(spec.path)]) and (best is None or len(spec.path) > len(best.path)):
            best = spec
    # An object's spec (no input of its own) takes problems with the object as a whole,
    # such as an unexpected key: the page shows them on its fieldset.
    return best
