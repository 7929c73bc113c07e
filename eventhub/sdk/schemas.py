"""Where event schemas come from, and validating payloads against them.

Two sources share one small protocol (`SchemaSource.get(event_type)`):
`LocalSchemas` for schemas shipped with the service and `RegistrySchemas` for
the EventHub registry over HTTP. `Validators` compiles each (event type,
version) once with jsonschema_rs (fast, draft-07 and 2020-12) and keeps it;
only a schema jsonschema_rs refuses to compile goes to the pure-Python
`jsonschema` package.

A schema is user input, so every validator EventHub builds (here, and in the
registry, catalog and dead-letter pages, which import these pieces) is safe to
run on a hostile one: `check_schema_is_safe` refuses a `$ref` that leaves the
document and a pattern RE2 cannot run; nothing is ever fetched
(`rust_validator`, `python_validator`); and every `pattern` and
`patternProperties` runs on a linear-time engine (RE2 here, the Rust `regex`
crate in jsonschema_rs), so no pattern can freeze a process by backtracking.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote

import jsonschema_rs
import re2

log = logging.getLogger(__name__)


class SchemaError(Exception):
    """Base class of the schema errors the SDK raises."""

    __module__ = "eventhub.sdk"


class UnknownEventType(SchemaError, LookupError):
    """The source has no schema for this event type."""

    __module__ = "eventhub.sdk"


class SchemaRegistryUnavailable(SchemaError):
    """The registry did not answer, or answered something unusable."""

    __module__ = "eventhub.sdk"


class InvalidSchema(SchemaError):
    """The schema itself cannot be compiled by either validator."""

    __module__ = "eventhub.sdk"


@dataclass(frozen=True)
class PayloadError:
    path: str  # JSON path of the failing value: "$", "$.amount", "$.items[0].sku"
    message: str  # the validator's message


class InvalidPayload(SchemaError, ValueError):
    """The payload does not match its event's schema; nothing was sent.

    `str()` names the first failing path and the validator's message; `errors`
    holds all of them. Validator messages quote the offending value, so treat
    the text like the payload itself (do not log it where payloads may not go).
    """

    __module__ = "eventhub.sdk"

    def __init__(self, event_type: str, version: int, errors: list[PayloadError]):
        self.event_type = event_type
        self.version = version
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{event_type} v{version}: {first.path}: {first.message}{more}")

    @property
    def path(self) -> str:
        return self.errors[0].path


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    version: int
    schema: dict | bool
    topic: str | None = None
    bus: str | None = None  # "kafka" or "redis" when the registry says


@runtime_checkable
class SchemaSource(Protocol):
    def get(self, event_type: str) -> EventSchema:
        """The latest schema of `event_type`; raise UnknownEventType when there is none."""
        ...


class LocalSchemas:
    """Schemas given in code: `{"order.placed": {"schema": {...}, "version": 1, "topic": "orders"}}`."""

    def __init__(self, events: Mapping[str, Mapping[str, Any]]):
        self._events = {name: _event_schema(name, spec) for name, spec in events.items()}

    def get(self, event_type: str) -> EventSchema:
        try:
            return self._events[event_type]
        except KeyError:
            raise UnknownEventType(f"no local schema for event type {event_type!r}") from None


class RegistrySchemas:
    """The latest schema of each event type from the EventHub registry, cached for `ttl_s`.

    GET {base_url}/api/v1/registry/events/{event_type}/versions/latest with
    `Authorization: Token <token>`. When the registry cannot be reached and a
    stale copy is cached, the stale copy is used (and a warning logged): a
    registry outage should not stop producers that already know the schema.
    """

    def __init__(self, base_url: str, token: str, ttl_s: float = 300, timeout_s: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self._token = token  # never logged, never in an error message
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._cache: dict[str, tuple[float, EventSchema]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistrySchemas({self.base_url!r}, token=***, ttl_s={self.ttl_s})"

    def get(self, event_type: str) -> EventSchema:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(event_type)
        if cached and now < cached[0]:
            return cached[1]
        try:
            fresh = self._fetch(event_type)
        except SchemaRegistryUnavailable:
            if cached is None:
                raise
            log.warning(
                "schema registry unavailable; using cached %s v%s",
                event_type,
                cached[1].version,
            )
            return cached[1]
        with self._lock:
            self._cache[event_type] = (now + self.ttl_s, fresh)
        return fresh

    def _fetch(self, event_type: str) -> EventSchema:
        url = f"{self.base_url}/api/v1/registry/events/{urllib.parse.quote(event_type, safe='')}/versions/latest"
        request = urllib.request.Request(
            url,
            headers={
                "Authorization": f"Token {self._token}",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise UnknownEventType(f"event type {event_type!r} is not in the registry at {self.base_url}") from None
            if exc.code in (401, 403):
                raise SchemaRegistryUnavailable(
                    f"the registry at {self.base_url} refused the token (HTTP {exc.code})"
                ) from None
            raise SchemaRegistryUnavailable(
                f"the registry at {self.base_url} answered HTTP {exc.code} for {event_type!r}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SchemaRegistryUnavailable(
                f"the registry at {self.base_url} is unreachable ({reason}) for {event_type!r}"
            ) from None
        except ValueError:
            raise SchemaRegistryUnavailable(f"the registry at {self.base_url} did not answer JSON") from None
        if not isinstance(body, dict):
            raise SchemaRegistryUnavailable(f"the registry at {self.base_url} answered no object")
        return _event_schema(event_type, body)


def _event_schema(event_type: str, spec: Mapping[str, Any]) -> EventSchema:
    try:
        schema = spec["schema"]
        version = int(spec.get("version", 1))
    except (KeyError, TypeError, ValueError):
        raise InvalidSchema(f"{event_type}: expected {{'schema': ..., 'version': int}}") from None
    if not isinstance(schema, dict | bool):
        raise InvalidSchema(f"{event_type} v{version}: the schema is not a JSON object")
    return EventSchema(event_type, version, schema, spec.get("topic"), spec.get("bus"))


class _CompiledSchema:
    """One compiled validator behind one `errors(payload)` call, whichever library compiled it."""

    def __init__(self, event: EventSchema):
        self._rs: jsonschema_rs.Validator | None = None
        self._py = None
        unsafe = check_schema_is_safe(event.schema)
        if unsafe:
            where, problem = unsafe[0]
            raise InvalidSchema(f"{event.event_type} v{event.version}: {where}: {problem}")
        try:
            self._rs = rust_validator(event.schema)
        except Exception as rs_error:  # noqa: BLE001 - whatever jsonschema_rs rejects, jsonschema may take
            self._py = _python_fallback(event, rs_error)
        # is_valid(payload) -> bool: the library's own method, called per event without a wrapper.
        self.is_valid: Callable[[Any], bool] = self._rs.is_valid if self._rs is not None else self._py.is_valid

    def errors(self, payload: Any) -> list[PayloadError]:
        if self._rs is not None:
            return [PayloadError(json_path(_rs_path(e)), e.message) for e in self._rs.iter_errors(payload)]
        return [PayloadError(json_path(list(e.absolute_path)), e.message) for e in self._py.iter_errors(payload)]


def _rs_path(error: jsonschema_rs.ValidationError) -> list[str | int]:
    # A missing property is reported on its parent object; name the property itself.
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
        return [*error.instance_path, error.kind.property]
    return list(error.instance_path)


def _python_fallback(event: EventSchema, rs_error: Exception):
    import jsonschema

    cls = jsonschema.validators.validator_for(event.schema)
    try:
        cls.check_schema(event.schema)
    except jsonschema.SchemaError as exc:
        raise InvalidSchema(f"{event.event_type} v{event.version}: {exc.message}") from None
    log.info(
        "jsonschema_rs cannot compile %s v%s (%s); using jsonschema",
        event.event_type,
        event.version,
        rs_error,
    )
    return python_validator(event.schema, format_checker=False)


class Validators:
    """Validates payloads against a source's schemas; compiles each (type, version) once.

    Thread-safe: compiled validators are immutable and the cache is locked.
    """

    def __init__(self, source: SchemaSource):
        self.source = source
        self._compiled: dict[tuple[str, int], _CompiledSchema] = {}
        self._lock = threading.Lock()

    def validate(self, event_type: str, payload: Any) -> EventSchema:
        """The event's schema; raise InvalidPayload when the payload does not match it."""
        event = self.source.get(event_type)
        compiled = self._compiled.get((event.event_type, event.version)) or self._compiled_for(event)
        # is_valid first: the common case (valid) skips building error objects.
        if not compiled.is_valid(payload):
            raise InvalidPayload(event_type, event.version, compiled.errors(payload))
        return event

    def _compiled_for(self, event: EventSchema) -> _CompiledSchema:
        key = (event.event_type, event.version)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = self._compiled[key] = _CompiledSchema(event)
        return compiled


def json_path(parts: list[str | int]) -> str:
    """["items", 0, "sku"] -> "$.items[0].sku"; [] -> "$"."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


# --------------------------------------------------------------------------- hostile schemas
class UnsupportedPattern(ValueError):
    """A regular expression RE2 cannot run: a backreference, lookaround, a repetition over 1000..."""


# The memory budget of one compiled pattern bounds its program, and with it the cost per
# character searched and what the cache below can hold (64 x 2 MiB). \p{L}{100} fits in
# both; the Rust `regex` crate needs about four times RE2's room for the same patterns.
RE2_MAX_MEM = 2 << 20
# What one schema's patterns may cost together. Compiling takes about 0.3 us per RE2
# instruction: a schema's patterns compile in well under a second however it is written.
# \p{L}{100} is 120,000 instructions; ^[A-Z]{3}-\d+$ is 8.
MAX_PATTERNS = 1000
PATTERN_INSTRUCTIONS = 1_000_000
_RUST_PATTERNS = jsonschema_rs.RegexOptions(size_limit=8 << 20, dfa_size_limit=2 << 20)
# ECMA 262's \uXXXX, which RE2 spells \x{XXXX}; other escapes pass through as written.
_ECMA_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
# Keywords whose value is data, not a schema: a "$ref" or "pattern" inside is just text.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
# Keywords whose value maps names (not keywords) to schemas.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "$defs", "dependentSchemas", "dependencies"}
)


@functools.lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> re2._Regexp:
    """`pattern` (JSON Schema's ECMA 262 dialect) compiled by RE2; raise UnsupportedPattern."""
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.log_errors = False  # the refusal is reported to whoever sent the pattern, not to stderr
    try:
        return re2.compile(_ECMA_ESCAPE.sub(_re2_escape, pattern), options)
    except re2.error as error:
        reason = error.args[0].decode(errors="replace") if isinstance(error.args[0], bytes) else str(error)
        raise UnsupportedPattern(
            f"the regular expression '{pattern}' cannot run on RE2, the linear-time engine EventHub "
            f"runs every pattern on: {reason} (RE2 has no backreferences or lookaround)"
        ) from None


def _re2_escape(match: re.Match) -> str:
    escape = match.group(1)
    return f"\\x{{{escape[1:]}}}" if len(escape) == 5 else match.group(0)


def pattern_matches(pattern: str, text: str) -> bool:
    """JSON Schema's `pattern` test (a search, not anchored) on RE2; raise UnsupportedPattern."""
    return compile_pattern(pattern).search(text) is not None


def check_schema_is_safe(schema: Any) -> list[tuple[str, str]]:
    """Why `schema` cannot be run safely, as (JSON pointer, message) pairs; [] when it can.

    1. Every `$ref` (and `$dynamicRef`, `$recursiveRef`) points inside the document:
       it starts with "#". Validators fetch nothing, so any other reference could only
       fail later, or be fetched by a validator built without these pieces.
    2. Every `pattern` and every `patternProperties` name compiles on RE2, and together
       they stay within MAX_PATTERNS distinct patterns and PATTERN_INSTRUCTIONS. After
       the first pattern refused, later ones are not compiled (that is where the time goes).

    Every object in the document is visited, except the values of data keywords
    (`enum`, `const`, `default`, `examples`): a keyword under an unknown key may still be
    reached through a `$ref`, so it is checked too.
    """
    problems: list[tuple[str, str]] = []
    patterns = _PatternBudget()
    pending: list[tuple[Any, tuple]] = [(schema, ())]
    while pending:  # a loop, not recursion: nesting depth is the sender's choice
        node, where = pending.pop()
        if isinstance(node, list):
            pending.extend((item, (*where, i)) for i, item in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                problems.append(
                    (
                        _pointer([*where, keyword]),
                        f"{keyword} '{ref}' points outside the document; only references inside it "
                        "(starting with '#') are allowed, nothing is fetched",
                    )
                )
        if isinstance(node.get("pattern"), str):
            problems += patterns.check(node["pattern"], [*where, "pattern"])
        if isinstance(node.get("patternProperties"), dict):
            for name in node["patternProperties"]:
                problems += patterns.check(name, [*where, "patternProperties", name])
        children = []
        for key, value in node.items():
            if key in _DATA_KEYWORDS:
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                children += [(sub, (*where, key, name)) for name, sub in value.items()]
            else:
                children.append((value, (*where, key)))
        pending.extend(reversed(children))
    return problems


class _PatternBudget:
    """Compiles each distinct pattern of one schema once, until one is refused."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.instructions = 0
        self.refused = False

    def check(self, pattern: str, where: list) -> list[tuple[str, str]]:
        if self.refused or pattern in self.seen:
            return []
        try:
            self.instructions += compile_pattern(pattern).programsize
        except UnsupportedPattern as error:
            self.refused = True
            return [(_pointer(where), str(error)[:1].upper() + str(error)[1:])]
        self.seen.add(pattern)
        if len(self.seen) > MAX_PATTERNS or self.instructions > PATTERN_INSTRUCTIONS:
            self.refused = True
            return [
                (
                    _pointer(where),
                    f"The schema's regular expressions are too large together: at most {MAX_PATTERNS} "
                    f"distinct ones and {PATTERN_INSTRUCTIONS:,} RE2 instructions in one schema",
                )
            ]
        return []


def _pointer(parts: list) -> str:
    """["properties", "a/b", "pattern"] -> "#/properties/a~1b/pattern" (RFC 6901, as a URI fragment)."""
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "#/" + "/".join(escaped) if escaped else "#"


def rust_validator(schema: dict | bool, *, validate_formats: bool | None = None) -> jsonschema_rs.Validator:
    """`schema` compiled by jsonschema_rs, offline (a remote $ref fails to compile instead of
    being fetched) and with patterns on the linear-time `regex` crate instead of fancy-regex.
    `validate_formats=True` checks `format` as `python_validator` does (None: the draft's default)."""
    return jsonschema_rs.validator_for(
        schema, offline=True, pattern_options=_RUST_PATTERNS, validate_formats=validate_formats
    )


def python_validator(schema: dict | bool, *, default: Any = None, format_checker: bool = True):
    """A `jsonschema` validator for `schema` that fetches nothing and runs patterns on RE2.

    `default` is the validator class for a schema without `$schema` (jsonschema's own
    default, the latest draft, when None). Formats are checked unless `format_checker` is False.
    """
    import jsonschema
    from referencing import Registry

    found = jsonschema.validators.validator_for(schema, **({} if default is None else {"default": default}))
    cls = _on_re2(found)
    return cls(
        schema,
        registry=Registry(retrieve=_refuse_to_retrieve),
        format_checker=cls.FORMAT_CHECKER if format_checker else None,
    )


def _refuse_to_retrieve(uri: str):
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)


@functools.cache
def _on_re2(cls):
    """`cls` with its regular-expression keywords running on RE2.

    jsonschema has no setting for the regex engine: `pattern`, `patternProperties`,
    `additionalProperties` and `unevaluatedProperties` (through helpers in
    jsonschema._utils and _legacy_keywords) call the module-level `re.search`. The
    extended class uses the same functions, run with `re` bound to RE2 in their
    globals (and one helper replaced), so verdicts and messages stay jsonschema's
    (tests/sdk/test_schemas.py pins which of jsonschema's functions use `re`).
    """
    import jsonschema

    on_re2 = _re2_keywords()
    return jsonschema.validators.extend(cls, {kw: on_re2[fn] for kw, fn in cls.VALIDATORS.items() if fn in on_re2})


class _Re2AsRe:
    """The part of the `re` module jsonschema's keywords use, on RE2."""

    @staticmethod
    def search(pattern: str, text: str) -> re2._Match | None:
        return compile_pattern(pattern).search(text)


@functools.cache
def _re2_keywords() -> dict:
    """jsonschema's keyword functions that run user patterns -> the same functions on RE2."""
    from jsonschema import _keywords, _legacy_keywords, _utils

    find_keys = _rebound(_utils.find_evaluated_property_keys_by_schema)
    find_keys_2019 = _rebound(_legacy_keywords.find_evaluated_property_keys_by_schema)
    return {
        _keywords.pattern: _rebound(_keywords.pattern),
        _keywords.patternProperties: _rebound(_keywords.patternProperties),
        _keywords.additionalProperties: _rebound(
            _keywords.additionalProperties, find_additional_properties=_find_additional_properties
        ),
        _keywords.unevaluatedProperties: _rebound(
            _keywords.unevaluatedProperties, find_evaluated_property_keys_by_schema=find_keys
        ),
        _legacy_keywords.unevaluatedProperties_draft2019: _rebound(
            _legacy_keywords.unevaluatedProperties_draft2019, find_evaluated_property_keys_by_schema=find_keys_2019
        ),
    }


def _find_additional_properties(instance: dict, schema: dict):
    """jsonschema._utils.find_additional_properties, one pattern at a time: it joins them
    with "|", which would make one program of all of them, over the budget of one."""
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for name in instance:
        if name not in properties and not any(pattern_matches(pattern, name) for pattern in patterns):
            yield name


def _rebound(function, **helpers):
    """A copy of `function` whose globals see RE2 as `re`, and `helpers` under their names."""
    namespace = {**function.__globals__, "re": _Re2AsRe, **helpers}
    copy = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__)
    namespace[function.__name__] = copy  # a recursive helper calls its copy
    return copy


MISSING = object()  # what resolve_local_ref answers for a reference it cannot follow


def resolve_local_ref(root: Any, ref: str) -> Any:
    """The value a local `$ref` ("#", "#/$defs/card") points at inside `root`, or MISSING.

    Anything not a JSON pointer into the document (remote references, anchors) is
    MISSING: nothing is ever fetched.
    """
    if not ref.startswith("#"):
        return MISSING
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return MISSING
    node = root
    for token in fragment.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return MISSING
    return node
