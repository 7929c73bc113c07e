"""Registered schema versions and their validators, cached: shared by the indexer and the topic browser.

Both check an event's data against the registered version of its type that the event
names (x-eventhub-schema-version), else the type's latest. Validators are built once per
SchemaVersion (a registered version never changes), with the SDK's own validator and
only for schemas `check_schema_is_safe` passes (a hostile schema must not hang a check).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from designer.models import EventType, SchemaVersion
from eventhub.sdk.schemas import check_schema_is_safe, python_validator, rust_validator

log = logging.getLogger(__name__)


class Schemas:
    """Registered schema versions by event type, and their validators (versions never change)."""

    def __init__(self) -> None:
        self._validators: dict[int, Any] = {}  # SchemaVersion id -> validator, None when unsafe

    def versions_for(self, names: set[str]) -> dict[str, dict[int, int]]:
        """{type name: {version number: SchemaVersion id}} of the registered versions of these types."""
        names = names - {""}
        found: dict[str, dict[int, int]] = {}
        for pk, name, number in (
            SchemaVersion.objects.registered()
            .filter(event_type__in=EventType.objects.filter(name__in=names))
            .values_list("id", "event_type__name", "version")
        ):
            found.setdefault(name, {})[number] = pk
        return found

    def validator(self, version_id: int):
        """The validator of one SchemaVersion; None when its schema cannot be checked safely."""
        if version_id not in self._validators:
            schema = SchemaVersion.objects.values_list("schema", flat=True).get(pk=version_id)
            unsafe = check_schema_is_safe(schema)
            if unsafe:
                log.warning("schema version #%s cannot be checked safely: %s", version_id, unsafe[0])
            self._validators[version_id] = None if unsafe else Checker(python_validator(schema), _rust_or_none(schema))
        return self._validators[version_id]


class Checker:
    """A schema's two validators: jsonschema_rs answers "valid?" (most events are: the fast path),
    the `jsonschema` one says where an invalid event fails (`best_match` over `iter_errors`)."""

    def __init__(self, python: Any, rust: Any | None) -> None:
        self.python, self.rust = python, rust

    def iter_errors(self, payload: Any) -> Iterator[Any]:
        if self.rust is not None and self.rust.is_valid(payload):
            return iter(())
        return self.python.iter_errors(payload)


def _rust_or_none(schema: Any):
    """jsonschema_rs' validator, formats checked as the Python one checks them; None when it cannot compile it."""
    try:
        return rust_validator(schema, validate_formats=True)
    except Exception:  # noqa: BLE001 - whatever jsonschema_rs refuses, the Python validator still checks
        return None


def checked_version(versions: dict[int, int], number: int | None) -> tuple[int, int] | None:
    """(version number, SchemaVersion id) an event is checked against: the version it names when
    registered, else its type's latest (as the indexer does); None when the type has none."""
    if number is not None and number in versions:
        return number, versions[number]
    if not versions:
        return None
    latest = max(versions)
    return latest, versions[latest]
