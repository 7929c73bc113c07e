"""Our AsyncAPI documents against the official AsyncAPI 3.0.0 JSON Schema, and the
official AsyncAPI example documents through import and export.

The examples live outside the repository (../shared/conformance/asyncapi-examples,
see its README) and are read in place, never copied; the tests that read them
skip when that folder is absent, and fail under CI (tests/requirements.py).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from designer import asyncapi_db, asyncapi_export, asyncapi_import, demo
from designer.models import Consumer, Domain, EventType, Producer, SchemaVersion, Service, Topic
from tests.designer import asyncapi_official
from tests.requirements import require

FIXTURES = Path(__file__).resolve().parent / "asyncapi_fixtures"
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "asyncapi-examples"


@pytest.fixture
def examples() -> Path:
    require(EXAMPLES.is_dir(), f"no AsyncAPI examples at {EXAMPLES}")
    return EXAMPLES


def _counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count() for m in (Domain, Service, Topic, EventType, SchemaVersion, Producer, Consumer)
    }


def _example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the validator itself
def test_the_official_schema_rejects_what_it_should():
    """A validator that accepts anything would make every test below pass."""
    good = asyncapi_import.load((FIXTURES / "shop.yaml").read_text())
    asyncapi_official.assert_valid(good)
    cases = {
        "no info": lambda d: d.pop("info"),
        "bad action": lambda d: d["operations"]["requestEmail"].update(action="publish"),
        "partitions as text": lambda d: d["channels"]["orders"]["bindings"]["kafka"].update(partitions="six"),
        "unknown channel field": lambda d: d["channels"]["orders"].update(eventhub_bus="redis"),
        "bad draft-07 payload": lambda d: d["channels"]["notifications"]["messages"]["emailRequested"].update(
            payload={"schemaFormat": "application/schema+json;version=draft-07", "schema": {"type": "strin"}}
        ),
    }
    for label, spoil in cases.items():
        document = copy.deepcopy(good)
        spoil(document)
        assert asyncapi_official.errors(document), f"the official schema accepted a document with {label}"


# --------------------------------------------------------------------------- our own documents
@pytest.mark.parametrize("name", ["shop.yaml", "minimal.json"])
def test_our_fixture_documents_are_valid_asyncapi(name):
    asyncapi_official.assert_valid(asyncapi_import.load((FIXTURES / name).read_text()))


@pytest.mark.django_db
def test_exports_of_the_demo_world_are_valid():
    demo.seed()
    asyncapi_official.assert_valid(asyncapi_db.export_document())
    for service in Service.objects.all():
        asyncapi_official.assert_valid(asyncapi_db.export_document(service))


@pytest.mark.django_db
def test_export_of_an_empty_catalog_is_valid():
    document = asyncapi_db.export_document()
    asyncapi_official.assert_valid(document)
    assert document["channels"] == {} and "servers" not in document


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["shop.yaml", "minimal.json"])
def test_imported_fixtures_export_valid(name):
    asyncapi_db.import_text((FIXTURES / name).read_text())
    asyncapi_official.assert_valid(asyncapi_db.export_document())
    for service in Service.objects.all():
        asyncapi_official.assert_valid(asyncapi_db.export_document(service))


# --------------------------------------------------------------------------- the official examples
# file: (topics, events, events with a schema, producers, consumers, warnings that must be there)
EXPECTED = {
    "adeo-kafka-request-reply-asyncapi.yml": (
        2,
        2,
        0,
        1,
        1,
        [
            "#/components/messages/costingRequestV1/payload: costing.request.v1: "
            "the payload is application/vnd.apache.avro;version=1.9.0 (not JSON Schema)",
            "#/operations/receiveACostingRequest/reply: The reply is imported as Adeo AsyncAPI Case Study "
            "being a producer of costing.response",
        ],
    ),
    "gitter-streaming-asyncapi.yml": (1, 2, 2, 2, 0, ["#/servers/production: Protocol https is not a bus"]),
    "operation-security-asyncapi.yml": (
        1,
        1,
        1,
        1,
        0,
        ["#/operations/sendAuthRevoke/security: Security requirements are not kept"],
    ),
    "rpc-client-asyncapi.yml": (2, 2, 2, 1, 1, ["#/servers/production: Protocol amqp is not a bus"]),
    "rpc-server-asyncapi.yml": (2, 2, 2, 1, 1, ["#/servers/production: Protocol amqp is not a bus"]),
    "simple-asyncapi.yml": (1, 1, 1, 1, 0, ["#: The document declares no servers"]),
    "slack-rtm-asyncapi.yml": (1, 48, 48, 46, 1, ["#/servers/production: Protocol https is not a bus"]),
    "streetlights-kafka-asyncapi.yml": (4, 4, 4, 3, 1, ["#/channels/lightingMeasured/parameters: Channel parameters"]),
    "streetlights-mqtt-asyncapi.yml": (4, 4, 4, 3, 1, ["#/servers/production: Protocol mqtt is not a bus"]),
    "streetlights-operation-security-asyncapi.yml": (4, 4, 4, 3, 1, ["#/servers/test/security: Security"]),
}


def test_every_example_is_covered(examples):
    assert sorted(p.name for p in examples.glob("*.yml")) == sorted(EXPECTED)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_imports_reimports_unchanged_and_reexports_valid(examples, name):
    topics, events, with_schema, producers, consumers, warnings = EXPECTED[name]
    report = asyncapi_db.import_text(_example(name))
    assert Topic.objects.count() == topics
    assert EventType.objects.count() == events
    assert EventType.objects.filter(versions__isnull=False).distinct().count() == with_schema
    assert (Producer.objects.count(), Consumer.objects.count()) == (producers, consumers)
    said = [str(w) for w in report.warnings]
    for expected in warnings:
        assert any(line.startswith(expected) for line in said), f"missing warning {expected!r} in {said}"

    before = _counts()
    again = asyncapi_db.import_text(_example(name))
    assert not again.changed and _counts() == before

    exported = asyncapi_db.export_document()
    asyncapi_official.assert_valid(exported)
    for service in Service.objects.all():
        asyncapi_official.assert_valid(asyncapi_db.export_document(service))
    # What we wrote reads back into the same catalog.
    assert not asyncapi_db.import_text(asyncapi_export.dump(exported)).changed
    assert _counts() == before


@pytest.mark.django_db
def test_examples_share_one_catalog(examples):
    """All examples into one database: shared names, same messages on other protocols."""
    for name in sorted(EXPECTED):
        asyncapi_db.import_text(_example(name))
    # Streetlights on Kafka and on MQTT: same channel keys, other addresses.
    assert Topic.objects.filter(name__startswith="lightingMeasured").count() == 2
    asyncapi_official.assert_valid(asyncapi_db.export_document())
    for service in Service.objects.all():
        asyncapi_official.assert_valid(asyncapi_db.export_document(service))
