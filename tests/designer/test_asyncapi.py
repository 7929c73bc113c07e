"""AsyncAPI 3 import and export: the plain mapping, the database side, the CLI and the pages.

Validity against the official AsyncAPI JSON Schema and the AsyncAPI examples
are in test_asyncapi_conformance.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from designer import asyncapi_common, asyncapi_db, asyncapi_export, asyncapi_import, demo
from designer.asyncapi_import import DocumentError
from designer.models import (
    Consumer,
    Domain,
    EventType,
    Flow,
    FlowStep,
    Producer,
    SchemaVersion,
    Service,
    Topic,
)

FIXTURES = Path(__file__).resolve().parent / "asyncapi_fixtures"
REPO = Path(__file__).resolve().parents[2]
IMPORT_URL = "/catalog/import/"
EXPORT_URL = "/catalog/export/asyncapi.yaml"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def parse_fixture(name: str) -> asyncapi_import.Parsed:
    return asyncapi_import.parse(asyncapi_import.load(fixture_text(name)))


def doc(**extra) -> dict:
    """A small valid document, with top-level sections replaced by `extra`."""
    base = {
        "asyncapi": "3.0.0",
        "info": {"title": "Billing", "version": "1.0.0"},
        "channels": {"invoices": {"address": "billing.invoices", "messages": {"invoiceIssued": {"payload": {}}}}},
        "operations": {"issue": {"action": "send", "channel": {"$ref": "#/channels/invoices"}}},
    }
    base.update(extra)
    return base


def warnings_text(warnings) -> str:
    return "\n".join(str(w) for w in warnings)


# =========================================================================== plain mapping
@pytest.mark.parametrize(
    ("raw", "prefix", "expected"),
    [
        ("order.placed", "x", "order.placed"),  # already ours
        ("lightMeasured", "x", "light.measured"),
        ("CostingRequestV1", "x", "costing.request.v1"),
        ("UserSignedUp", "x", "user.signed.up"),
        ("user/signed-up", "x", "user.signed.up"),
        ("HTTPRequestSent", "x", "http.request.sent"),
        ("v1.0", "x", "x.v1_0"),
        ("hello", "root", "root.hello"),
        ("sum", "rpc_queue", "rpc_queue.sum"),
        ("message", "authRevoke", "auth_revoke.message"),
        ("1stEvent", "x", "n1st.event"),
        ("!!!", "", "message.message"),
    ],
)
def test_event_names_are_dotted_lower_case(raw, prefix, expected):
    name = asyncapi_import.event_name(raw, prefix)
    assert name == expected
    assert asyncapi_import.EVENT_NAME_RE.match(name)


def test_yaml_reads_like_yaml_1_2_and_json_is_accepted():
    data = asyncapi_import.load("asyncapi: 3.0.0\nx: [on, off, yes]\nwhen: 2024-01-02\nflag: true\n")
    assert data == {"asyncapi": "3.0.0", "x": ["on", "off", "yes"], "when": "2024-01-02", "flag": True}
    assert asyncapi_import.load(b'\xef\xbb\xbf{"asyncapi": "3.0.0"}') == {"asyncapi": "3.0.0"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The document is empty."),
        ("- a\n- b\n", "a mapping at the top level, not a list"),
        ('{"asyncapi": "3.0.0",}', "line 1, column 22: Not valid JSON: Expecting property name"),
        ("a: &a [*a]\n", "recursive YAML alias"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
            "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "more than 500000 nodes",
        ),
        ("a:\n  b: [1, .nan]\n", "#/a/b/1: nan is not a JSON number."),
    ],
)
def test_unreadable_input_is_a_clear_error(text, message):
    with pytest.raises(DocumentError) as caught:
        asyncapi_import.load(text)
    assert message in str(caught.value)


BAD_DOCUMENTS = [
    ("not-yaml.yaml", "line 8, column 1: Not valid YAML:", None),
    ("not-asyncapi.yaml", "This is an OpenAPI document, not AsyncAPI.", "#/openapi"),
    ("asyncapi-2.yaml", "AsyncAPI 2.6.0 is not supported", "#/asyncapi"),
    ("missing-title.yaml", "The required field `info.title` is missing.", "#/info/title"),
    (
        "broken-ref.yaml",
        "'#/components/messages/OrderPlaced' does not resolve",
        "#/channels/orders/messages/placed/$ref",
    ),
    ("ref-cycle.yaml", "Circular $ref", "#/components/messages/b/$ref"),
    ("bad-action.yaml", '`action` must be "send" or "receive", not \'publish\'', "#/operations/publishOrders/action"),
]


@pytest.mark.parametrize(("name", "message", "pointer"), BAD_DOCUMENTS)
def test_bad_documents_are_rejected_with_where_and_why(name, message, pointer):
    with pytest.raises(DocumentError) as caught:
        parse_fixture(f"bad/{name}")
    assert message in str(caught.value)
    if name == "not-yaml.yaml":  # LibYAML and pure-Python PyYAML word it differently
        assert "expected ',' or ']'" in str(caught.value) and "started at line 7" in str(caught.value)
    if pointer:
        assert caught.value.pointer == pointer
        assert str(caught.value).startswith(pointer + ": ")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"info": {"title": "x", "version": "1"}}, "the `asyncapi` field is missing"),
        ({"asyncapi": 3, "info": {}}, '`asyncapi` must be a version such as "3.0.0"'),
        ({"asyncapi": "3.0.0"}, "The required `info` object is missing."),
        ({"asyncapi": "3.0.0", "info": {"title": "", "version": "1"}}, "`info.title` must be a non-empty string"),
        (doc(channels=[]), "`channels` must be an object, not a list"),
        (doc(operations={"o": {"action": "send"}}), "#/operations/o/channel: The required field `channel` is missing"),
        (doc(operations={"o": {"action": "send", "channel": {"$ref": "#/components/x"}}}), "does not resolve"),
        (
            doc(channels={"invoices": {"address": 12}}),
            "#/channels/invoices/address: `address` must be a string or null",
        ),
    ],
)
def test_structural_errors_name_the_field(document, message):
    with pytest.raises(DocumentError) as caught:
        asyncapi_import.parse(document)
    assert message in str(caught.value)


def test_shop_document_maps_to_topics_events_and_links():
    parsed = parse_fixture("shop.yaml")
    model = parsed.model
    assert [s.name for s in model.services] == ["Orders Service"]
    topics = {t.key: t for t in model.topics}
    assert (topics["orders"].address, topics["orders"].bus, topics["orders"].partitions) == ("shop.orders", "kafka", 6)
    assert topics["orders"].retention_ms == 604800000
    assert (topics["notifications"].bus, topics["notifications"].address) == ("redis", "shop:notifications")
    assert topics["replies"].dynamic and topics["replies"].address == "replies"
    events = {e.name: e for e in model.events}
    assert set(events) == {
        "order.placed",
        "order.cancelled",
        "email.requested",
        "replies.quote",
        "quote.requested",
        "orders.archived",
    }
    assert events["orders.archived"].topic is None  # on no channel
    assert events["order.placed"].description.endswith("_AsyncAPI message `OrderPlaced`._")
    assert events["order.placed"].examples == [
        {"order_id": "o-1", "total": {"amount": 1200, "currency": "EUR"}, "lines": []}
    ]
    # Avro and a remote payload: events without a schema.
    assert events["order.cancelled"].schema is None and events["quote.requested"].schema is None
    # 2020-12 from the multi-format object is declared in the stored schema.
    assert events["email.requested"].schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert events["email.requested"].schema["properties"]["template"]["enum"] == ["on", "off", "shipped"]
    links = {(k.event, k.action): k for k in model.links}
    assert set(links) == {
        ("order.placed", "send"),
        ("order.cancelled", "send"),
        ("quote.requested", "receive"),
        ("replies.quote", "send"),  # the reply
        ("email.requested", "send"),  # no `messages`: all of the channel's
    }
    assert links[("quote.requested", "receive")].group == "orders-quotes"  # from an operation trait
    text = warnings_text(parsed.warnings)
    assert (
        "#/components/messages/orderCancelled/payload: order.cancelled: the payload is application/vnd.apache.avro"
        in text
    )
    assert "#/components/messages/quoteRequested/payload: quote.requested: the payload is the remote" in text
    assert "#/operations/receiveQuoteRequests/reply: The reply is imported as Orders Service being a producer" in text
    assert "#/components/messageTraits/commonHeaders/headers: Message headers are not kept" in text


def test_internal_refs_are_bundled_into_one_schema_even_when_recursive():
    schema = {e.name: e for e in parse_fixture("shop.yaml").model.events}["order.placed"].schema
    assert schema["properties"]["total"] == {"$ref": "#/definitions/Money"}
    assert schema["definitions"]["Line"]["properties"]["bundle"]["items"] == {"$ref": "#/definitions/Line"}
    assert set(schema["definitions"]) == {"Money", "Line"}
    import jsonschema

    jsonschema.Draft7Validator.check_schema(schema)
    valid = {
        "order_id": "o",
        "total": {"amount": 1, "currency": "EUR"},
        "lines": [{"sku": "a", "bundle": [{"sku": "b"}]}],
    }
    jsonschema.validate(valid, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**valid, "lines": [{"bundle": [{"sku": 3}]}]}, schema)


def test_a_message_on_two_channels_becomes_one_event_per_channel():
    document = doc(
        channels={
            "on": {"address": "lights.on", "messages": {"turnOn": {"$ref": "#/components/messages/turnOnOff"}}},
            "off": {"address": "lights.off", "messages": {"turnOff": {"$ref": "#/components/messages/turnOnOff"}}},
        },
        operations={},
        components={"messages": {"turnOnOff": {"name": "turnOnOff", "payload": {"type": "object"}}}},
    )
    events = {e.name: e.topic for e in asyncapi_import.parse(document).model.events}
    assert events == {"turn.on": "on", "turn.off": "off"}


def test_x_eventhub_service_names_the_service_of_each_operation():
    document = doc(
        info={"title": "Everything", "version": "1", "x-eventhub-system": True},
        operations={
            "a": {"action": "send", "channel": {"$ref": "#/channels/invoices"}, "x-eventhub-service": "billing"},
            "b": {"action": "receive", "channel": {"$ref": "#/channels/invoices"}, "x-eventhub-service": "ledger"},
        },
    )
    model = asyncapi_import.parse(document).model
    assert {(k.service, k.action) for k in model.links} == {("billing", "send"), ("ledger", "receive")}
    assert {s.name for s in model.services} == {"billing", "ledger"}  # no service named after a system title


def test_unknown_protocols_are_kept_as_kafka_topics_with_a_warning():
    parsed = asyncapi_import.parse(doc(servers={"broker": {"host": "mq:1883", "protocol": "mqtt"}}))
    topic = parsed.model.topics[0]
    assert (topic.bus, topic.protocol) == ("kafka", "mqtt")
    assert "_Protocol: mqtt" in asyncapi_common.compose_topic_description(topic)
    assert "#/servers/broker: Protocol mqtt is not a bus EventHub monitors" in warnings_text(parsed.warnings)


def test_export_rebases_schema_refs_and_import_restores_them():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"when": {"$ref": "#/$defs/instant"}, "enum_data": {"enum": [{"$ref": "#/not-a-ref"}]}},
        "$defs": {"instant": {"type": "string", "format": "date-time"}},
    }
    model = asyncapi_common.Model(
        title="Clock",
        services=[asyncapi_common.ServiceSpec(name="Clock", slug="clock")],
        topics=[asyncapi_common.TopicSpec(key="ticks", name="ticks", address="clock.ticks")],
        events=[asyncapi_common.EventSpec(name="clock.ticked", topic="ticks", schema=schema)],
        links=[asyncapi_common.LinkSpec(service="Clock", event="clock.ticked", action="send")],
    )
    document = asyncapi_export.build(model)
    stored = document["components"]["schemas"]["clock.ticked"]
    assert stored["schemaFormat"] == "application/schema+json;version=2020-12"
    when = stored["schema"]["properties"]["when"]
    assert when == {"$ref": "#/components/schemas/clock.ticked/schema/$defs/instant"}
    assert stored["schema"]["properties"]["enum_data"] == {"enum": [{"$ref": "#/not-a-ref"}]}  # data, not a ref
    back = asyncapi_import.parse(asyncapi_import.load(asyncapi_export.dump(document, "json")))
    assert back.model.events[0].schema == schema


def test_fingerprint_version_changes_exactly_with_content():
    model = parse_fixture("shop.yaml").model
    first = asyncapi_export.build(model)
    assert asyncapi_export.build(model)["info"]["version"] == first["info"]["version"]
    model.topics[0].partitions = 12
    assert asyncapi_export.build(model)["info"]["version"] != first["info"]["version"]


# =========================================================================== database
def _wipe() -> None:
    for model in (FlowStep, Flow, Consumer, Producer, SchemaVersion, EventType, Topic, Service, Domain):
        model.objects.all().delete()


def _richer_demo() -> None:
    """The demo world plus what it lacks: positions, a dynamic topic, 2020-12, consumer knobs."""
    demo.seed()
    Service.objects.filter(slug="orders").update(x=10.0, y=20.5, repository_url="https://git.example.com/orders")
    Topic.objects.filter(name="orders").update(x=1.0, y=2.0, retention_ms=86_400_000)
    Topic.objects.filter(name="shipping").update(dead_letter_topic="shipping.DLT")
    EventType.objects.filter(name="order.placed").update(x=5.0, y=6.0)
    replies = Topic.objects.create(
        name="quote replies", address="quote-replies", description=f"Per caller.\n\n{asyncapi_common.DYNAMIC_NOTE}"
    )
    quoted = EventType.objects.create(name="quote.ready", topic=replies, owner=Service.objects.get(slug="payments"))
    SchemaVersion.objects.create(
        event_type=quoted,
        version=1,
        schema={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"price": {"$ref": "#/$defs/money"}},
            "$defs": {"money": {"type": "integer"}},
        },
        examples=[{"price": 3}],
    )
    Producer.objects.create(service=Service.objects.get(slug="payments"), event_type=quoted, notes="After pricing.")
    Consumer.objects.create(
        service=Service.objects.get(slug="orders"),
        event_type=quoted,
        group="orders-quotes",
        fields_used=["price"],
        max_attempts=5,
        backoff_ms=1000,
        dead_letter=False,
    )
    EventType.objects.create(name="order.archived", description="Not on a topic yet.")


def _counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count() for m in (Domain, Service, Topic, EventType, SchemaVersion, Producer, Consumer)
    }


@pytest.mark.django_db
def test_round_trip_of_the_whole_system_gives_the_same_document():
    _richer_demo()
    first = asyncapi_db.export_document()
    text = asyncapi_export.dump(first)
    _wipe()
    report = asyncapi_db.import_text(text)
    assert report.warnings == []
    second = asyncapi_db.export_document()
    assert second == first
    # The rows themselves, not only their picture: positions, knobs and the dynamic mark.
    assert (Service.objects.get(slug="orders").x, Service.objects.get(slug="orders").y) == (10.0, 20.5)
    consumer = Consumer.objects.get(service__slug="orders", event_type__name="quote.ready")
    assert (consumer.group, consumer.fields_used, consumer.max_attempts, consumer.dead_letter) == (
        "orders-quotes",
        ["price"],
        5,
        False,
    )
    assert asyncapi_common.DYNAMIC_NOTE in Topic.objects.get(name="quote replies").description
    assert Topic.objects.get(name="shipping").dead_letter_topic == "shipping.DLT"
    assert EventType.objects.get(name="order.archived").topic is None
    assert Topic.objects.get(name="notifications").bus == "redis"


@pytest.mark.django_db
def test_round_trip_of_one_service():
    _richer_demo()
    orders = Service.objects.get(slug="orders")
    first = asyncapi_db.export_document(orders)
    assert first["info"]["title"] == "orders"
    assert {op["x-eventhub-service"] for op in first["operations"].values()} == {"orders"}
    text = asyncapi_export.dump(first, "json")
    _wipe()
    asyncapi_db.import_text(text)
    assert asyncapi_db.export_document(Service.objects.get(slug="orders")) == first


@pytest.mark.django_db
def test_export_contents():
    _richer_demo()
    document = asyncapi_db.export_document()
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["kafka"]["protocol"] == "kafka"
    assert document["servers"]["redis"]["protocol"] == "redis"
    assert "@" not in document["servers"]["redis"]["host"]
    orders = document["channels"]["orders"]
    assert orders["bindings"]["kafka"]["partitions"] == 3
    assert orders["bindings"]["kafka"]["topicConfiguration"] == {"retention.ms": 86_400_000}
    assert document["channels"]["notifications"]["x-eventhub-bus"] == "redis"
    assert "bindings" not in document["channels"]["notifications"]
    assert document["channels"]["quote_replies"]["address"] is None
    assert document["channels"]["quote_replies"]["title"] == "quote replies"
    placed = document["components"]["messages"]["order.placed"]
    assert placed["payload"] == {"$ref": "#/components/schemas/order.placed"}
    schema = document["components"]["schemas"]["order.placed"]
    assert schema["schemaFormat"] == "application/schema+json;version=draft-07"
    latest = EventType.objects.get(name="order.placed").latest_version()
    assert schema["schema"] == latest.schema  # the latest registered version, not the draft
    receive = document["operations"]["payments.receive.order.placed"]
    assert receive["action"] == "receive"
    assert receive["bindings"]["kafka"]["groupId"] == {"type": "string", "enum": ["payments"]}
    assert document["operations"]["orders.send.order.placed"]["action"] == "send"


@pytest.mark.django_db
def test_export_servers_never_carry_credentials(settings):
    settings.REDIS_URL = "redis://app:s3cret@redis.example:6380/2"
    settings.KAFKA_BOOTSTRAP_SERVERS = "k1.example:9092,k2.example:9092"
    Topic.objects.create(name="a", address="a", bus="redis")
    Topic.objects.create(name="b", address="b", bus="kafka")
    document = asyncapi_db.export_document()
    assert document["servers"]["redis"] == {
        "host": "redis.example:6380",
        "protocol": "redis",
        "description": "Redis Streams.",
    }
    assert document["servers"]["kafka"]["host"] == "k1.example:9092"
    assert "k2.example:9092" in document["servers"]["kafka"]["description"]
    assert "s3cret" not in asyncapi_export.dump(document)


@pytest.mark.django_db
def test_only_web_links_are_imported_as_repository_urls():
    document = doc(
        info={
            "title": "Billing",
            "version": "1",
            "x-eventhub-services": [
                {"name": "Billing", "repositoryUrl": "javascript:alert(1)"},
                {"name": "Ledger", "repositoryUrl": "https://git.example.com/ledger"},
            ],
        }
    )
    report = asyncapi_db.import_parsed(asyncapi_import.parse(document))
    assert Service.objects.get(name="Billing").repository_url == ""
    assert Service.objects.get(name="Ledger").repository_url == "https://git.example.com/ledger"
    assert "Billing: repository URL 'javascript:alert(1)' ignored." in warnings_text(report.warnings)


@pytest.mark.django_db
def test_reimport_is_idempotent():
    first = asyncapi_db.import_text(fixture_text("shop.yaml"))
    assert first.counts["events"]["created"] == 6
    assert first.counts["schemas"]["created"] == 4
    before = _counts()
    again = asyncapi_db.import_text(fixture_text("shop.yaml"))
    assert _counts() == before
    assert not again.changed
    assert again.counts["events"] == {"created": 0, "updated": 0, "unchanged": 6}
    assert again.counts["schemas"] == {"created": 0, "updated": 0, "unchanged": 4}


@pytest.mark.django_db
def test_reimport_keeps_our_prose_and_positions_and_fills_empty_ones():
    asyncapi_db.import_text(fixture_text("shop.yaml"))
    EventType.objects.filter(name="order.placed").update(description="Ours, edited.", x=100.0, y=200.0)
    Topic.objects.filter(address="shop.orders").update(description="Our words.")
    EventType.objects.filter(name="email.requested").update(description="")
    report = asyncapi_db.import_text(fixture_text("shop.yaml"))
    placed = EventType.objects.get(name="order.placed")
    assert (placed.description, placed.x, placed.y) == ("Ours, edited.", 100.0, 200.0)
    assert Topic.objects.get(address="shop.orders").description == "Our words."
    assert EventType.objects.get(name="email.requested").description.startswith("Send the customer an e-mail.")
    assert report.counts["events"]["updated"] == 1


@pytest.mark.django_db
def test_document_decides_the_structure_it_states():
    asyncapi_db.import_text(fixture_text("shop.yaml"))
    changed = fixture_text("shop.yaml").replace("partitions: 6", "partitions: 12")
    report = asyncapi_db.import_text(changed)
    assert Topic.objects.get(address="shop.orders").partitions == 12
    assert report.counts["topics"] == {"created": 0, "updated": 1, "unchanged": 3}


@pytest.mark.django_db
def test_import_creates_rows_through_the_registry():
    report = asyncapi_db.import_text(fixture_text("shop.yaml"))
    service = Service.objects.get(name="Orders Service")
    assert service.slug == "orders-service"
    assert service.description == "Takes orders and tells the rest of the shop."
    placed = EventType.objects.get(name="order.placed")
    assert placed.owner == service and placed.topic.address == "shop.orders"
    version = placed.latest_version()
    assert version.version == 1 and version.examples[0]["order_id"] == "o-1"
    assert version.changelog == "Imported from the AsyncAPI document “Orders Service”."
    assert not EventType.objects.get(name="order.cancelled").versions.exists()
    consumer = Consumer.objects.get(event_type__name="quote.requested")
    assert (consumer.service, consumer.group) == (service, "orders-quotes")
    assert Producer.objects.filter(service=service, event_type__name="replies.quote").exists()
    replies = Topic.objects.get(name="replies")
    assert replies.address == "replies" and asyncapi_common.DYNAMIC_NOTE in replies.description
    assert Topic.objects.get(address="shop:notifications").bus == "redis"
    assert report.counts["producers"]["created"] == 4 and report.counts["consumers"]["created"] == 1


@pytest.mark.django_db
def test_incompatible_schema_is_kept_as_a_draft_once():
    asyncapi_db.import_text(fixture_text("shop.yaml"))
    breaking = fixture_text("shop.yaml").replace("required: [order_id, total]", "required: [order_id, total, lines]")
    report = asyncapi_db.import_text(breaking)
    event = EventType.objects.get(name="order.placed")
    assert event.versions.registered().count() == 1
    draft = event.versions.drafts().get()
    assert "lines" in draft.schema["required"]
    text = warnings_text(report.warnings)
    assert "order.placed: schema not registered: Not BACKWARD compatible with version 1" in text
    assert f"Kept as draft version {draft.version}." in text
    asyncapi_db.import_text(breaking)
    assert event.versions.count() == 2  # no second draft


@pytest.mark.django_db
def test_a_schema_equal_to_an_older_version_is_not_registered_again():
    asyncapi_db.import_text(fixture_text("shop.yaml"))
    # A changed description is a compatible change: version 2 is registered.
    newer = fixture_text("shop.yaml").replace("A line; a bundle", "One line; a bundle")
    asyncapi_db.import_text(newer)
    event = EventType.objects.get(name="order.placed")
    assert list(event.versions.values_list("version", flat=True)) == [1, 2]
    report = asyncapi_db.import_text(fixture_text("shop.yaml"))
    assert list(event.versions.values_list("version", flat=True)) == [1, 2]
    assert "order.placed: the schema is version 1; the latest is 2" in warnings_text(report.warnings)


@pytest.mark.django_db
def test_a_topic_name_taken_at_another_address_gets_its_address_in_the_name():
    Topic.objects.create(name="orders", address="legacy.orders")
    report = asyncapi_db.import_text(fixture_text("shop.yaml"))
    assert Topic.objects.get(address="shop.orders").name == "orders (shop.orders)"
    assert Topic.objects.get(address="legacy.orders").name == "orders"
    assert "A topic named 'orders' already exists at another address" in warnings_text(report.warnings)


@pytest.mark.django_db
def test_a_bad_document_changes_nothing():
    with pytest.raises(DocumentError):
        asyncapi_db.import_text(fixture_text("bad/broken-ref.yaml"))
    assert sum(_counts().values()) == 0


@pytest.mark.django_db
def test_json_documents_import():
    report = asyncapi_db.import_text(fixture_text("minimal.json"))
    consumer = Consumer.objects.get(event_type__name="entry.posted")
    assert (consumer.service.name, consumer.group) == ("Ledger", "ledger-audit")
    assert report.counts["consumers"]["created"] == 1


# =========================================================================== CLI
@pytest.mark.django_db
def test_cli_import_prints_the_report():
    out = io.StringIO()
    call_command("asyncapi_import", str(FIXTURES / "shop.yaml"), str(FIXTURES / "minimal.json"), stdout=out)
    text = out.getvalue()
    assert "Imported “Orders Service”:" in text and "Imported “Ledger”:" in text
    assert "events     created   6  updated   0  unchanged   0" in text
    assert "#/components/messages/orderCancelled/payload: order.cancelled" in text
    assert EventType.objects.filter(name="entry.posted").exists()


@pytest.mark.django_db
def test_cli_import_dry_run_rolls_back():
    out = io.StringIO()
    call_command("asyncapi_import", "--dry-run", str(FIXTURES / "shop.yaml"), stdout=out)
    assert "(dry run, rolled back)" in out.getvalue()
    assert "events     created   6" in out.getvalue()
    assert not EventType.objects.exists()


@pytest.mark.django_db
def test_cli_import_stops_before_writing_when_any_file_is_bad():
    bad = FIXTURES / "bad" / "broken-ref.yaml"
    with pytest.raises(CommandError) as caught:
        call_command("asyncapi_import", str(FIXTURES / "shop.yaml"), str(bad), stdout=io.StringIO())
    assert str(caught.value).startswith(f"{bad}: #/channels/orders/messages/placed/$ref: ")
    assert "\n" not in str(caught.value)
    assert not EventType.objects.exists()


def test_cli_import_exits_1_with_one_line_on_a_bad_document():
    bad = FIXTURES / "bad" / "asyncapi-2.yaml"
    done = subprocess.run(
        [sys.executable, "manage.py", "asyncapi_import", str(bad)],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("CommandError:")]
    assert errors == [
        f"CommandError: {bad}: #/asyncapi: AsyncAPI 2.6.0 is not supported: EventHub imports "
        "AsyncAPI 3 documents. Convert it first (asyncapi convert --target-version=3.0.0)."
    ]


@pytest.mark.django_db
def test_cli_export_to_stdout_and_file(tmp_path):
    demo.seed()
    out = io.StringIO()
    call_command("asyncapi_export", stdout=out)
    document = yaml.safe_load(out.getvalue())
    assert document["info"]["title"] == asyncapi_db.SYSTEM_TITLE
    assert "orders" in document["channels"]
    target = tmp_path / "payments.json"
    call_command("asyncapi_export", "--service", "payments", "--output", str(target))
    exported = json.loads(target.read_text())
    assert exported["info"]["title"] == "payments"
    assert exported == asyncapi_db.export_document(Service.objects.get(slug="payments"))
    forced = io.StringIO()
    call_command("asyncapi_export", "--format", "json", "--service", "payments", stdout=forced)
    assert json.loads(forced.getvalue()) == exported


@pytest.mark.django_db
def test_cli_export_unknown_service():
    with pytest.raises(CommandError, match="No service with slug 'nope'."):
        call_command("asyncapi_export", "--service", "nope", stdout=io.StringIO())


# =========================================================================== pages
def _upload(name: str, content: bytes | None = None) -> dict:
    data = content if content is not None else (FIXTURES / name).read_bytes()
    return {"file": SimpleUploadedFile(name, data, content_type="application/yaml")}


@pytest.mark.django_db
def test_import_page_for_a_designer(client_as, designer):
    Service.objects.create(name="Billing", slug="billing")
    response = client_as(designer).get(IMPORT_URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body and "csrfmiddlewaretoken" in body
    assert f'href="{EXPORT_URL}?service=billing&amp;format=json"' in body


@pytest.mark.django_db
def test_import_upload_shows_the_report_and_writes_rows(client_as, designer):
    response = client_as(designer).post(IMPORT_URL, _upload("shop.yaml"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Imported “Orders Service”" in body
    assert "<td>events</td><td>6</td><td>0</td><td>0</td>" in body
    assert "<code>#/components/messages/orderCancelled/payload</code>" in body
    assert EventType.objects.get(name="order.placed").latest_version().author == designer
    again = client_as(designer).post(IMPORT_URL, _upload("shop.yaml"))
    assert "Nothing changed: the catalog already matched this document." in again.content.decode()


@pytest.mark.django_db
def test_import_pasted_text(client_as, designer):
    response = client_as(designer).post(IMPORT_URL, {"text": fixture_text("minimal.json")})
    assert response.status_code == 200
    assert Consumer.objects.filter(group="ledger-audit").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"file": ("bad/not-yaml.yaml", None)}, "This document cannot be imported: line 8, column 1: Not valid YAML"),
        ({"file": ("bad/broken-ref.yaml", None)}, "#/channels/orders/messages/placed/$ref: $ref"),
        ({}, "Choose a file or paste a document."),
        ({"file": ("shop.yaml", None), "text": "asyncapi: 3.0.0"}, "Upload a file or paste a document, not both."),
    ],
)
def test_import_errors_are_shown_and_nothing_is_written(client_as, designer, data, message):
    payload = {}
    for key, value in data.items():
        payload.update(_upload(value[0]) if key == "file" else {key: value})
    response = client_as(designer).post(IMPORT_URL, payload)
    assert response.status_code == 400
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert not EventType.objects.exists()


@pytest.mark.django_db
def test_import_size_limit(client_as, designer, settings):
    settings.EVENTHUB_MAX_UPLOAD_BYTES = 1024
    response = client_as(designer).post(IMPORT_URL, _upload("shop.yaml"))
    assert response.status_code == 400
    size = (FIXTURES / "shop.yaml").stat().st_size
    assert f"The document is {size} bytes; the limit is 1024 bytes" in response.content.decode()
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_import_page_wrong_method(client_as, designer):
    assert client_as(designer).put(IMPORT_URL).status_code == 405


@pytest.mark.django_db
def test_import_page_anonymous_goes_to_login(client):
    response = client.post(IMPORT_URL, _upload("shop.yaml"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get(IMPORT_URL).status_code == 302
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_import_page_is_forbidden_to_viewers(client_as, viewer):
    client = client_as(viewer)
    assert client.get(IMPORT_URL).status_code == 403
    assert client.post(IMPORT_URL, _upload("shop.yaml")).status_code == 403
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_export_download_yaml_and_json(client_as, viewer):
    demo.seed()
    client = client_as(viewer)  # reading is for everyone logged in
    response = client.get(EXPORT_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="eventhub-asyncapi.yaml"'
    assert yaml.safe_load(response.content) == json.loads(json.dumps(asyncapi_db.export_document()))
    one = client.get(EXPORT_URL, {"service": "orders", "format": "json"})
    assert one.status_code == 200
    assert one["Content-Disposition"] == 'attachment; filename="orders-asyncapi.json"'
    assert json.loads(one.content)["info"]["title"] == "orders"


@pytest.mark.django_db
def test_export_bad_requests(client_as, designer):
    client = client_as(designer)
    assert client.get(EXPORT_URL, {"service": "nope"}).status_code == 404
    response = client.get(EXPORT_URL, {"format": "xml"})
    assert response.status_code == 400 and b"format: Select a valid choice" in response.content
    assert client.post(EXPORT_URL).status_code == 405


@pytest.mark.django_db
def test_export_anonymous_goes_to_login(client):
    response = client.get(EXPORT_URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
