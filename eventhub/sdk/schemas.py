"""Where event schemas come from, and validating payloads against them.

Two sources share one small protocol (`SchemaSource.get(event_type)`):
`LocalSchemas` for schemas shipped with the service and `RegistrySchemas` for
the EventHub registry over HTTP. `Validators` compiles each (event type,
version) once with jsonschema_rs (fast, draft-07 and 2020-12) and keeps it;
only a schema jsonschema_rs refuses to compile goes to the pure-Python
`jsonschema` package.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jsonschema_rs

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
        try:
            # offline: a schema's remote $ref must not make producers fetch URLs.
            self._rs = jsonschema_rs.validator_for(event.schema, offline=True)
        except Exception as rs_error:  # noqa: BLE001 - whatever jsonschema_rs rejects, jsonschema may take
            self._py = _python_validator(event, rs_error)

    def is_valid(self, payload: Any) -> bool:
        return self._rs.is_valid(payload) if self._rs is not None else self._py.is_valid(payload)

    def errors(self, payload: Any) -> list[PayloadError]:
        if self._rs is not None:
            return [PayloadError(json_path(_rs_path(e)), e.message) for e in self._rs.iter_errors(payload)]
        return [PayloadError(json_path(list(e.absolute_path)), e.message) for e in self._py.iter_errors(payload)]


def _rs_path(error: jsonschema_rs.ValidationError) -> list[str | int]:
    # A missing property is reported on its parent object; name the property itself.
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
        return [*error.instance_path, error.kind.property]
    return list(error.instance_path)


def _python_validator(event: EventSchema, rs_error: Exception):
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
    return cls(event.schema)


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
        compiled = self._compiled_for(event)
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
