"""The schema registry's verbs: validation, idempotence, compatibility, numbering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from django.db import connection, connections

from designer import registry
from designer.models import Consumer, EventType, SchemaVersion, Service

ROOT = Path(__file__).resolve().parents[2]

V1 = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "total": {"type": "number"},
        "customer": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
    "required": ["id"],
}
# total: number -> string breaks BACKWARD.
V2_BREAKING = {**V1, "properties": {**V1["properties"], "total": {"type": "string"}}}
# Dropping "customer" keeps old data valid (the object is open), but readers of it break.
V2_WITHOUT_CUSTOMER = {**V1, "properties": {k: v for k, v in V1["properties"].items() if k != "customer"}}


@pytest.fixture
def event(db) -> EventType:
    return EventType.objects.create(name="order.placed")


def _consumer(event: EventType, name: str, fields: list[str]) -> Consumer:
    service = Service.objects.create(name=name)
    return Consumer.objects.create(service=service, event_type=event, fields_used=fields)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("schema", "path", "words"),
    [
        ("a string", "#", "must be a JSON object or boolean, not a string"),
        ([{"type": "string"}], "#", "not an array"),
        ({"type": "object", "properties": {"x": {"type": "strin"}}}, "#/properties/x/type", "not a valid JSON Schema"),
        ({"$schema": "https://example.com/mine", "type": "object"}, "#/$schema", "unknown $schema"),
        ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "#/properties/a/$ref", "does not resolve"),
        (
            {"properties": {"a": {"$ref": "https://x.example/a.json"}}},
            "#/properties/a/$ref",
            "points outside the document",
        ),
        ({"properties": {"name": {"pattern": "(?<=a)b"}}}, "#/properties/name/pattern", "cannot run on RE2"),
    ],
)
def test_invalid_documents_name_the_path(event, schema, path, words):
    with pytest.raises(registry.InvalidSchema) as caught:
        registry.register_version(event, schema)
    assert caught.value.path == path
    assert words.lower() in caught.value.message.lower()
    assert caught.value.to_dict() == {"schema": [caught.value.message], "path": path}
    assert not SchemaVersion.objects.exists()


def test_oversized_schema_is_refused(event, settings):
    settings.EVENTHUB_MAX_SCHEMA_BYTES = 1024
    schema = {"type": "object", "description": "x" * 2000}
    with pytest.raises(registry.InvalidSchema, match="the limit is 1024 bytes"):
        registry.register_version(event, schema)
    assert not SchemaVersion.objects.exists()


def test_examples_must_match_the_schema(event):
    good = {"id": "o-1", "total": 3}
    bad = {"id": "o-2", "customer": {"email": 7}}
    with pytest.raises(registry.InvalidSchema) as caught:
        registry.register_version(event, V1, examples=[good, bad])
    problem = caught.value
    assert (problem.field, problem.index, problem.path) == ("examples", 1, "#/customer/email")
    assert problem.message.startswith("Example 2 does not match the schema at #/customer/email")
    assert problem.to_dict()["examples"] == [problem.message]

    with pytest.raises(registry.InvalidSchema, match="Examples must be a JSON array, not an object"):
        registry.register_version(event, V1, examples=good)

    version = registry.register_version(event, V1, examples=[good])
    assert version.examples == [good]


# --------------------------------------------------------------------------- registering
def test_first_version_is_registered_with_author_and_changelog(event, designer):
    version = registry.register_version(event, V1, author=designer, changelog="First cut.")
    version.refresh_from_db()
    assert (version.version, version.state, version.author, version.changelog) == (
        1,
        "registered",
        designer,
        "First cut.",
    )
    assert version.schema == V1
    assert event.latest_version() == version


def test_identical_schema_returns_the_latest_version_unchanged(event):
    first = registry.register_version(event, V1, changelog="one")
    reordered = json.loads(json.dumps(V1, sort_keys=True))  # same document, other key order
    again = registry.register_version(event, reordered, changelog="ignored")
    assert again.pk == first.pk and again.changelog == "one"
    assert SchemaVersion.objects.count() == 1


def test_incompatible_schema_is_refused_with_changes_and_breaking_consumers(event):
    registry.register_version(event, V1)
    reads_total = _consumer(event, "billing", ["total"])
    reads_id = _consumer(event, "shipping", ["id", "customer.email"])
    reads_unknown = _consumer(event, "audit", [])

    with pytest.raises(registry.IncompatibleSchema) as caught:
        registry.register_version(event, V2_BREAKING)
    error = caught.value
    assert not error.result.compatible
    assert {c.type for c in error.result.changes} == {"TYPE_CHANGED"}
    assert set(error.breaking_consumers) == {reads_total, reads_unknown}
    assert reads_id not in error.breaking_consumers
    body = error.to_dict()
    assert body["compatible"] is False
    assert (body["mode"], body["policy"]) == ("BACKWARD", "STRICT")
    assert body["changes"] == [
        {
            "type": "TYPE_CHANGED",
            "path": "#/properties/total",
            "reason": error.result.changes[0].reason,
            "version": 1,
            "compatible": False,
        }
    ]
    assert body["reason"].startswith("Not BACKWARD compatible with version 1: The type of '#/properties/total' changed")
    assert body["breaking_consumers"] == [
        {"service": "audit", "group": "audit", "fields_used": []},
        {"service": "billing", "group": "billing", "fields_used": ["total"]},
    ]
    assert list(event.versions.values_list("version", flat=True)) == [1]


def test_removed_property_breaks_only_its_readers_even_when_compatible(event):
    registry.register_version(event, V1)
    reads_email = _consumer(event, "mailer", ["customer.email"])
    _consumer(event, "billing", ["total"])
    result = registry.check_candidate(event, V2_WITHOUT_CUSTOMER)
    assert result.compatible  # the object is open: old data still validates
    assert registry.breaking_consumers(event, result, V2_WITHOUT_CUSTOMER) == [reads_email]
    assert registry.register_version(event, V2_WITHOUT_CUSTOMER).version == 2


def test_check_candidate_uses_the_events_mode_unless_told(event):
    registry.register_version(event, V1)
    assert not registry.check_candidate(event, V2_BREAKING).compatible
    assert registry.check_candidate(event, V2_BREAKING, mode="NONE").compatible
    event.compatibility_mode = "NONE"
    event.save(update_fields=["compatibility_mode"])
    assert registry.register_version(event, V2_BREAKING).version == 2


def test_transitive_mode_checks_every_registered_version(event):
    event.compatibility_mode = "BACKWARD_TRANSITIVE"
    event.save(update_fields=["compatibility_mode"])
    registry.register_version(event, {"type": "object", "properties": {"n": {"type": "integer"}}})
    registry.register_version(event, {"type": "object", "properties": {"n": {"type": "number"}}})  # widened
    narrowed = {"type": "object", "properties": {"n": {"type": "number", "maximum": 10}}}
    with pytest.raises(registry.IncompatibleSchema) as caught:
        registry.register_version(event, narrowed)
    assert caught.value.result.against_versions == [2, 1]
    assert {row["version"] for row in caught.value.to_dict()["changes"]} == {1, 2}


def test_drafts_keep_incompatible_candidates_without_serving_them(event):
    registry.register_version(event, V1)
    draft = registry.register_version(event, V2_BREAKING, as_draft=True, changelog="Proposal")
    assert (draft.version, draft.state) == (2, "draft")
    assert draft.compat_result.compatible is False
    assert event.latest_version().version == 1
    # Drafts and registered versions share the counter, so numbers never collide.
    assert registry.register_version(event, V2_WITHOUT_CUSTOMER).version == 3


def test_diff_versions_labels_each_direction(event):
    event.compatibility_mode = "NONE"
    event.save(update_fields=["compatibility_mode"])
    a = registry.register_version(event, V1)
    b = registry.register_version(event, {**V2_BREAKING, "required": ["id", "total"]})
    rows = registry.diff_versions(a, b)
    assert {"type", "path", "reason", "direction", "compatible"} == set(rows[0])
    backward = {(r["type"], r["path"], r["compatible"]) for r in rows if r["direction"] == "backward"}
    assert ("TYPE_CHANGED", "#/properties/total", False) in backward
    assert ("REQUIRED_ATTRIBUTE_ADDED", "#/required/total", False) in backward
    forward = {(r["type"], r["path"], r["compatible"]) for r in rows if r["direction"] == "forward"}
    assert ("REQUIRED_ATTRIBUTE_REMOVED", "#/required/total", True) in forward
    assert registry.diff_versions(a, a) == []


# --------------------------------------------------------------------------- field paths (no database)
@pytest.mark.parametrize(
    ("pointer", "fields"),
    [
        ("#", ()),
        ("#/properties/total", ("total",)),
        ("#/properties/customer/properties/email/maxLength", ("customer", "email")),
        ("#/properties/lines/items/properties/sku", ("lines", "sku")),
        ("#/properties/pair/items/0/properties/a", ("pair", "a")),
        ("#/properties/payment/oneOf/1/properties/card", ("payment", "card")),
        ("#/required/total", ("total",)),
        ("#/properties/a/additionalProperties", ("a",)),
        ("#/$defs/money/properties/amount", None),
    ],
)
def test_pointer_fields(pointer, fields):
    assert registry.pointer_fields(pointer) == fields


@pytest.mark.parametrize(
    ("used", "touched"),
    [
        ("total", True),
        ("customer", True),  # the whole object is read, a part changed
        ("customer.email", True),
        ("customer.name", False),
        ("lines[].sku", False),
        ("#/properties/customer/properties/email", True),
        ("/customer/email", True),
        ("id", False),
    ],
)
def test_which_declared_fields_a_change_touches(used, touched):
    changed = [
        registry.pointer_fields("#/properties/total"),
        registry.pointer_fields("#/properties/customer/properties/email"),
    ]
    field = registry._field_tuple(used)
    assert any(registry._touches(field, c) for c in changed) is touched


@pytest.mark.django_db
def test_removed_fields_are_found_through_refs(event):
    money = {"type": "object", "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}}}
    before = {"$defs": {"money": money}, "properties": {"total": {"$ref": "#/$defs/money"}}}
    after = {**before, "$defs": {"money": {**money, "properties": {"amount": {"type": "number"}}}}}
    registry.register_version(event, before)
    reads_currency = _consumer(event, "fx", ["total.currency"])
    _consumer(event, "ledger", ["total.amount"])
    result = registry.check_candidate(event, after)
    assert registry.breaking_consumers(event, result, after) == [reads_currency]


def test_registering_refreshes_the_catalog_search_text(event):
    registry.register_version(event, V1)
    event.refresh_from_db()
    assert set(event.search_text.splitlines()) == {"id", "total", "customer", "customer.email"}
    registry.register_version(event, {"type": "object", "properties": {"sku": {}}}, as_draft=True)
    event.refresh_from_db()
    assert "sku" not in event.search_text  # drafts are not what producers send


# --------------------------------------------------------------------------- concurrency
_RACE = textwrap.dedent(
    """
    import multiprocessing, sys
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    def register(i, start):
        from designer import registry
        from designer.models import EventType
        start.wait(30)
        registry.register_version(EventType.objects.get(name="order.placed"), {"type": "object", "description": f"v{i}"})

    if __name__ == "__main__":
        call_command("migrate", verbosity=0)
        from designer.models import EventType, SchemaVersion
        EventType.objects.create(name="order.placed", compatibility_mode="NONE")
        connections.close_all()
        ctx = multiprocessing.get_context("fork")
        start = ctx.Event()
        workers = [ctx.Process(target=register, args=(i, start)) for i in range(int(sys.argv[1]))]
        for w in workers:
            w.start()
        start.set()
        for w in workers:
            w.join(60)
        print(sorted(SchemaVersion.objects.values_list("version", flat=True)), [w.exitcode for w in workers])
    """
)


@pytest.mark.slow
def test_concurrent_registrations_on_a_sqlite_file_get_distinct_versions(tmp_path):
    """Separate processes on the default database (a SQLite file) take turns for the next number."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "eventhub.settings",
    }
    done = subprocess.run(
        [sys.executable, "-c", _RACE, "6"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[1, 2, 3, 4, 5, 6] [0, 0, 0, 0, 0, 0]"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the in-memory test SQLite fails concurrent writers instead of queueing them; "
    "the subprocess test above covers SQLite",
)
def test_concurrent_registrations_in_threads_get_distinct_versions():
    """On PostgreSQL, select_for_update makes simultaneous registrations take turns."""
    assert connection.vendor == "postgresql"
    event = EventType.objects.create(name="order.placed", compatibility_mode="NONE")
    start, failures = threading.Barrier(6), []

    def register(i: int) -> None:
        try:
            start.wait(timeout=30)
            registry.register_version(event, {"type": "object", "description": f"v{i}"})
        except Exception as error:  # reported below, a thread cannot fail the test itself
            failures.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(SchemaVersion.objects.values_list("version", flat=True)) == [1, 2, 3, 4, 5, 6]
