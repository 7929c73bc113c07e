"""The schema registry's verbs: the one door through which schema versions change.

The catalog forms, the REST API and the AsyncAPI import all register schemas
through these functions, so validation, compatibility and version numbering
are decided in one place. The compatibility rules themselves live in the
Django-free `designer.compat`; this module adds the database around them:
which versions count, which consumers would break, and the version counter.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string
from jsonschema.exceptions import best_match

from designer import compat, fieldtree, search
from designer.models import Consumer, EventType, SchemaVersion
from eventhub.sdk.schemas import python_validator

# How often a registration retries after losing the race for a version number.
# select_for_update serialises writers on PostgreSQL and SQLite takes its write
# lock at BEGIN, so this only matters on databases that do neither.
_NUMBERING_ATTEMPTS = 3


class InvalidSchema(Exception):
    """The document (or one of its examples) cannot be registered.

    `field` names the input at fault ("schema" or "examples"), `path` is a JSON
    pointer inside that document ("#/properties/id/type"), `index` the example.
    """

    def __init__(self, message: str, path: str = "#", *, field: str = "schema", index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.field = field
        self.index = index

    def to_dict(self) -> dict[str, Any]:
        """DRF's field-error shape plus where the problem is."""
        return {self.field: [self.message], "path": self.path}


class IncompatibleSchema(Exception):
    """A candidate breaks the event's compatibility mode."""

    def __init__(
        self,
        event_type: EventType,
        result: compat.CompatResult,
        breaking_consumers: list[Consumer],
    ) -> None:
        self.event_type = event_type
        self.result = result
        self.breaking_consumers = breaking_consumers
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        return explain(self.result)

    def to_dict(self) -> dict[str, Any]:
        return result_dict(self.result, self.breaking_consumers)


# --------------------------------------------------------------------------- reading results
def change_rows(result: compat.CompatResult) -> list[dict[str, Any]]:
    """The result's changes as JSON rows, each labelled compatible or not under the policy."""
    rows = result.to_dict()["changes"]
    for row, change in zip(rows, result.changes, strict=True):
        row["compatible"] = compat.is_compatible([change], result.policy)
    return rows


def explain(result: compat.CompatResult) -> str:
    """One plain-language sentence saying why a candidate is (in)compatible."""
    if result.compatible:
        if not result.against_versions:
            return "Compatible: there is no registered version to compare with."
        return f"Compatible under {result.mode} with version {_versions(result.against_versions)}."
    breaking = [
        (change, version)
        for change, version in zip(result.changes, result.change_versions, strict=False)
        if not compat.is_compatible([change], result.policy)
    ]
    if not breaking:  # defensive: an incompatible verdict always carries a breaking change
        return f"Not {result.mode} compatible with version {_versions(result.against_versions)}."
    change, version = breaking[0]
    more = f" ({len(breaking) - 1} more incompatible changes listed below.)" if len(breaking) > 1 else ""
    return f"Not {result.mode} compatible with version {version}: {change.reason}{more}"


def result_dict(result: compat.CompatResult, breaking_consumers: list[Consumer]) -> dict[str, Any]:
    return {
        "compatible": result.compatible,
        "mode": result.mode,
        "policy": result.policy,
        "changes": change_rows(result),
        "reason": explain(result),
        "breaking_consumers": [
            {"service": c.service.name, "group": c.group, "fields_used": list(c.fields_used or [])}
            for c in breaking_consumers
        ],
    }


def _versions(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in sorted(numbers))


# --------------------------------------------------------------------------- validation
def validate_document(schema: Any) -> None:
    """Raise InvalidSchema unless `schema` is a JSON Schema we accept for storage."""
    if not isinstance(schema, (dict, bool)):
        raise InvalidSchema(f"A schema must be a JSON object or boolean, not {_json_type(schema)}.")
    size = len(canonical_json(schema).encode())
    limit = settings.EVENTHUB_MAX_SCHEMA_BYTES
    if size > limit:
        raise InvalidSchema(f"The schema is {size} bytes; the limit is {limit} bytes (EVENTHUB_MAX_SCHEMA_BYTES).")
    try:
        compat.validate_schema(schema)
    except compat.SchemaError as error:
        raise InvalidSchema(_schema_error_message(error), error.path) from None


def validate_examples(schema: dict | bool, examples: Any) -> None:
    """Every example must validate against the schema it documents."""
    if not isinstance(examples, list):
        raise InvalidSchema(f"Examples must be a JSON array, not {_json_type(examples)}.", field="examples")
    validator = python_validator(schema, default=jsonschema.Draft7Validator)
    for index, example in enumerate(examples):
        error = best_match(validator.iter_errors(example))
        if error is not None:
            path = _pointer(error.absolute_path)
            raise InvalidSchema(
                f"Example {index + 1} does not match the schema at {path}: {error.message}",
                path,
                field="examples",
                index=index,
            )


def canonical_json(value: Any) -> str:
    """JSON text equal exactly when two documents are equal (key order ignored)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _schema_error_message(error: compat.SchemaError) -> str:
    # SchemaError's text ends with "(at <path>)"; the path travels separately.
    text = str(error)
    suffix = f" (at {error.path})"
    text = text.removesuffix(suffix)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _pointer(parts: Any) -> str:
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "#/" + "/".join(escaped) if escaped else "#"


def _json_type(value: Any) -> str:
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- verbs
def check_candidate(
    event_type: EventType,
    schema: Any,
    mode: str | None = None,
    policy: str | None = None,
) -> compat.CompatResult:
    """Would `schema` be accepted as the event's next version? Nothing is stored.

    Raises InvalidSchema for a document that is not a valid JSON Schema and
    ValueError for an unknown mode or policy.
    """
    validate_document(schema)
    previous = list(event_type.versions.registered().order_by("version").values_list("version", "schema"))
    return compat.check(
        schema,
        previous,
        mode or event_type.compatibility_mode,
        policy or event_type.compatibility_policy,
    )


def traffic_check(event_type: EventType, schema: Any, *, limit: int | None = None, user=None) -> dict[str, Any] | None:
    """How many of the type's last `limit` real events `schema` would reject; None when traffic is not checked.

    The event store answers (settings.EVENTHUB_TRAFFIC_CHECK names its function, so this
    layer does not import it): {"checked", "failing", "examples": [{"offset", "path",
    "message"}], "unread"}. Call it with a schema `validate_document` accepted.
    """
    limit = settings.EVENTHUB_TRAFFIC_CHECK_EVENTS if limit is None else limit
    if not limit or not settings.EVENTHUB_TRAFFIC_CHECK:
        return None
    return import_string(settings.EVENTHUB_TRAFFIC_CHECK)(event_type.name, schema, limit=limit, user=user)


def breaking_consumers(event_type: EventType, result: compat.CompatResult, schema: Any) -> list[Consumer]:
    """Consumers of the event that the candidate `schema` would break.

    A consumer that lists `fields_used` breaks when an incompatible change or a
    removed property touches one of its fields (a field touches a path when one
    is a prefix of the other, so "customer" is touched by a change to
    "customer.email"). A consumer that lists nothing may use anything, so it
    breaks on any incompatible change or removed property.
    """
    incompatible = [c.path for c in result.changes if not compat.is_compatible([c], result.policy)]
    latest = event_type.versions.registered().order_by("-version").values_list("schema", flat=True).first()
    # Removed properties break readers even where the data still validates
    # (an open object), and FORWARD-only modes do not report them at all.
    removed = _fields_of(latest) - _fields_of(schema) if latest is not None else set()
    touched = [pointer_fields(p) for p in incompatible] + sorted(removed)
    if not touched:
        return []
    broken = []
    for consumer in event_type.consumers.select_related("service").order_by("service__name"):
        used = [_field_tuple(f) for f in consumer.fields_used or [] if isinstance(f, str) and f.strip()]
        if not used or any(_touches(u, t) for u in used for t in touched):
            broken.append(consumer)
    return broken


def register_version(
    event_type: EventType,
    schema: Any,
    *,
    author=None,
    changelog: str = "",
    examples: list | None = None,
    as_draft: bool = False,
) -> SchemaVersion:
    """Store `schema` as the event's next version and return it.

    1. Validate the document and its examples (InvalidSchema).
    2. Lock the event type so concurrent registrations take turns.
    3. The same schema as the latest registered version returns that version
       unchanged (re-registering is idempotent, as in Confluent's registry).
    4. Check compatibility against the registered versions under the event's
       mode; raise IncompatibleSchema, unless storing a draft.
    5. Create version max+1 (drafts and registered versions share the counter).

    The returned version carries the check's CompatResult as `.compat_result`
    (None when the identical latest version was returned).
    """
    validate_document(schema)
    examples = [] if examples is None else examples
    validate_examples(schema, examples)
    for attempt in range(_NUMBERING_ATTEMPTS):
        try:
            return _register_locked(event_type, schema, author, changelog, examples, as_draft)
        except IntegrityError:
            # Another writer took our number between reading and inserting.
            if attempt == _NUMBERING_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _register_locked(
    event_type: EventType,
    schema: Any,
    author,
    changelog: str,
    examples: list,
    as_draft: bool,
) -> SchemaVersion:
    with transaction.atomic():
        locked = EventType.objects.select_for_update().get(pk=event_type.pk)
        registered = list(locked.versions.registered().order_by("version"))
        latest = registered[-1] if registered else None
        if latest is not None and canonical_json(latest.schema) == canonical_json(schema):
            latest.compat_result = None
            return latest
        result = compat.check(
            schema,
            [(v.version, v.schema) for v in registered],
            locked.compatibility_mode,
            locked.compatibility_policy,
        )
        if not result.compatible and not as_draft:
            raise IncompatibleSchema(locked, result, breaking_consumers(locked, result, schema))
        highest = locked.versions.order_by("-version").values_list("version", flat=True).first() or 0
        version = SchemaVersion.objects.create(
            event_type=locked,
            version=highest + 1,
            state=SchemaVersion.DRAFT if as_draft else SchemaVersion.REGISTERED,
            schema=schema,
            examples=examples,
            changelog=changelog,
            author=author if author is not None and author.is_authenticated else None,
        )
        if not as_draft:
            search.reindex_event(locked)  # the catalog searches the latest schema's field names
    version.compat_result = result
    return version


def diff_versions(a: SchemaVersion, b: SchemaVersion) -> list[dict[str, Any]]:
    """What changed from version `a` to version `b`, both ways, for the compare view.

    Rows: {"type", "path", "reason", "direction", "compatible"}. "backward" rows
    say whether data written with `a` can be read with `b`; "forward" rows
    whether data written with `b` can be read with `a`. `compatible` is judged
    under the event's policy.
    """
    policy = a.event_type.compatibility_policy
    rows = []
    for direction, (old, new) in (("backward", (a.schema, b.schema)), ("forward", (b.schema, a.schema))):
        for change in compat.diff(old, new, policy=policy):
            rows.append(
                {
                    "type": change.type,
                    "path": change.path,
                    "reason": change.reason,
                    "direction": direction,
                    "compatible": compat.is_compatible([change], policy),
                }
            )
    return rows


# --------------------------------------------------------------------------- field paths
# Keywords whose next segment is an index or name that says nothing about the data's fields.
_SKIP_NEXT = {"allOf", "anyOf", "oneOf", "prefixItems"}
_NAME_NEXT = {"properties", "required", "dependencies", "dependentRequired", "dependentSchemas"}
_OPAQUE = {"$defs", "definitions", "patternProperties"}


def pointer_fields(pointer: str) -> tuple[str, ...] | None:
    """The data field a schema pointer is about: "#/properties/a/items/properties/b" -> ("a", "b").

    Keywords (maxLength, items, allOf/0...) vanish. None means "cannot tell"
    (a definition reached through $ref, a pattern), which touches every field.
    """
    segments = [s.replace("~1", "/").replace("~0", "~") for s in pointer.removeprefix("#").strip("/").split("/") if s]
    fields: list[str] = []
    i = 0
    while i < len(segments):
        segment = segments[i]
        if segment in _OPAQUE:
            return None
        if segment in _NAME_NEXT and i + 1 < len(segments):
            fields.append(segments[i + 1])
            i += 2
            continue
        if segment in _SKIP_NEXT or (segment == "items" and i + 1 < len(segments) and segments[i + 1].isdigit()):
            i += 2
            continue
        i += 1
    return tuple(fields)


def _fields_of(schema: Any) -> set[tuple[str, ...]]:
    """The fields a schema declares, as tuples ("lines", "sku"), $refs followed."""
    return {_field_tuple(path) for path in fieldtree.field_paths(schema)}


def _field_tuple(field: str) -> tuple[str, ...]:
    """A consumer's declared field: "customer.email", "items[].sku", "/customer/email" or "#/properties/x"."""
    field = field.strip()
    if field.startswith(("#", "/")):
        if "/properties/" in field:  # a schema pointer
            return pointer_fields(field) or ()
        return tuple(s for s in field.lstrip("#").split("/") if s)  # a data pointer
    return tuple(part.replace("[]", "").replace("[*]", "") for part in field.split(".") if part)


def _touches(used: tuple[str, ...], changed: tuple[str, ...] | None) -> bool:
    if changed is None:
        return True
    shorter = min(len(used), len(changed))
    return used[:shorter] == changed[:shorter]
