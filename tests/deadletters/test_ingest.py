"""The dead-letter ingester on the real buses: conventions, exactly-once, bad input, poison entries.

The ingester is driven by its step function; the SDK consumer by `run_once`.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from deadletters.ingest import Ingester, default_group
from deadletters.models import DeadLetter, UnstoredDeadLetter
from designer.models import Consumer as DesignedConsumer
from designer.models import EventType, SchemaVersion, Service, Topic
from eventhub.bus import open_bus
from eventhub.sdk import Consumer, LocalSchemas, Producer, dead_letter_topic
from eventhub.sdk import headers as h
from tests.conftest import bus_options
from tests.deadletters.support import ORDER_SCHEMA, Listener, end_offset, replays, step_until, wait_until
from tests.sdk import HOSTILE_HEADERS, POISON_VALUES, create_topic_for_big_records, publish_raw

ORDER = {"order_id": "o-1", "amount": 10}


def make_ingester(bus, unique, **options) -> Ingester:
    options = {"patterns": [], "discover_every_s": 0.2, "resolve_every_s": 0.2, **options}
    return Ingester([bus.kind], buses={bus.kind: bus}, group=unique("ingester"), **options)


@pytest.fixture
def design(db, bus, unique):
    """order.placed (v1, v2) on a designed topic, consumed by billing in its own group."""
    topic = unique("orders")
    bus.create_topic(topic)
    designed = Topic.objects.create(name=topic, bus=bus.kind, address=topic)
    event = EventType.objects.create(name="order.placed", topic=designed)
    SchemaVersion.objects.create(event_type=event, version=1, schema=ORDER_SCHEMA)
    SchemaVersion.objects.create(event_type=event, version=2, schema=ORDER_SCHEMA)
    billing = Service.objects.create(name="billing")
    group = unique("billing")
    DesignedConsumer.objects.create(service=billing, event_type=event, group=group, max_attempts=1)
    return {"topic": topic, "dlq": designed.dead_letter_topic, "event": event, "group": group}


def run_until(consumer: Consumer, condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the SDK consumer did not get there in time"
        consumer.run_once(0.2)


def test_sdk_failure_to_row_to_retry_handled_once_and_resolved(
    bus, design, unique, client_as, viewer, operator, record_property
):
    """A failing handler dead-letters; the row appears in the API; a retry that fails again comes
    back linked; once the handler is fixed the retry is handled exactly once and resolved."""
    started = time.monotonic()
    topic, group = design["topic"], design["group"]
    schemas = LocalSchemas({"order.placed": {"schema": ORDER_SCHEMA, "version": 2, "topic": topic}})
    with Producer(bus, "checkout", schemas, heartbeat_interval_s=None) as producer:
        producer.publish("order.placed", ORDER, key="o-1")
    consumer = Consumer(bus, "billing", group, [topic], max_attempts=1, backoff_s=0.01, heartbeat_interval_s=None)
    handled: list[str] = []
    broken = True

    @consumer.handler("order.placed")
    def charge(event) -> None:
        if broken:
            raise ValueError("card declined")
        handled.append(event.headers.get(h.REPLAY_OF))

    ingester = make_ingester(bus, unique)
    try:
        run_until(consumer, lambda: end_offset(bus, design["dlq"]) == 1)
        row = step_until(ingester, lambda: DeadLetter.objects.filter(dlq_topic=design["dlq"]).first(), what="a row")
        assert (row.source_topic, row.group, row.service, row.status) == (topic, group, "billing", "new")
        assert (row.error_class, row.error_message, row.attempts) == ("ValueError", "card declined", 1)
        assert row.convention == "eventhub" and "ValueError: card declined" in row.stacktrace
        assert row.event_type == design["event"] and row.schema_version.version == 2
        assert row.payload_json == ORDER and bytes(row.key) == b"o-1" and row.event_id
        assert row.source_offset == "0" if bus.kind == "kafka" else re.fullmatch(r"\d+-\d+", row.source_offset)

        listed = client_as(viewer).get(f"/api/v1/dead-letters/?topic={topic}").json()
        assert [item["id"] for item in listed["results"]] == [row.pk]
        assert listed["results"][0]["error_class"] == "ValueError"

        # Retry while still broken: the replay fails too and comes back, linked.
        response = client_as(operator).post(f"/api/v1/dead-letters/{row.pk}/retry", {}, content_type="application/json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "retried" and response.json()["replay_count"] == 1
        run_until(consumer, lambda: end_offset(bus, design["dlq"]) == 2)
        back = step_until(ingester, lambda: DeadLetter.objects.filter(replay_of=row).first(), what="the failed replay")
        assert back.replay_count == 1 and back.status == "new" and back.group == group
        for _ in range(5):
            ingester.check_resolved()
        row.refresh_from_db()
        assert row.status == "retried"  # it came back, so it is not resolved
        assert row.audit.filter(action="replay_failed").exists()

        # Fixed: the second replay is handled exactly once and the row becomes resolved.
        broken = False
        response = client_as(operator).post(f"/api/v1/dead-letters/{row.pk}/retry", {}, content_type="application/json")
        assert response.status_code == 200 and response.json()["replay_count"] == 2
        run_until(consumer, lambda: handled)
        step_until(ingester, lambda: DeadLetter.objects.get(pk=row.pk).status == "resolved", what="resolution")
        run_until(consumer, lambda: all(p.lag == 0 for p in bus.lag(group, topic)))
        assert handled == [str(row.pk)]
        assert replays(bus, topic) == {row.pk: 2}  # two replays in all, each sent once
        assert end_offset(bus, design["dlq"]) == 2
    finally:
        consumer.close()
        ingester.close()
    record_property("seconds", round(time.monotonic() - started, 2))


def _int32(n: int) -> bytes:
    return struct.pack(">i", n)


def _int64(n: int) -> bytes:
    return struct.pack(">q", n)


@pytest.mark.parametrize("bus", ["kafka"], indirect=True)
def test_spring_connect_and_streams_records_are_parsed(bus, db, unique):
    prefix = unique("conv")
    spring, spring_dash, connect, streams = (
        f"{prefix}.DLT",
        f"{prefix}-payments-dlt",
        f"{prefix}.connect",
        f"{prefix}.streams",
    )
    for topic in (spring, spring_dash, connect, streams):
        bus.create_topic(topic)
    failed_ms = 1_700_000_000_123
    bus.publish(
        spring,
        b'{"id": 7}',
        key=b"k-7",
        headers=[
            ("kafka_dlt-original-topic", b"payments"),
            ("kafka_dlt-original-partition", _int32(2)),
            ("kafka_dlt-original-offset", _int64(12_345)),
            ("kafka_dlt-original-timestamp", _int64(failed_ms)),
            ("kafka_dlt-original-consumer-group", b"payments-svc"),
            ("kafka_dlt-exception-fqcn", b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
            ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
            ("kafka_dlt-exception-message", b"Listener failed; amount < 0"),
            (
                "kafka_dlt-exception-stacktrace",
                b"java.lang.IllegalStateException: amount < 0\n\tat Pay.on(Pay.java:42)",
            ),
            ("ce_type", b"payment.failed"),
            ("ce_id", b"evt-7"),
        ],
    )
    # Only the exception headers: the source comes from the topic name.
    bus.publish(spring_dash, b"plain text", headers=[("kafka_dlt-exception-fqcn", b"java.lang.RuntimeException")])
    bus.publish(
        connect,
        b"\x00\x00\x00\x00\x01avro-ish",
        headers=[
            ("__connect.errors.topic", b"clicks"),
            ("__connect.errors.partition", b"3"),
            ("__connect.errors.offset", b"42"),
            ("__connect.errors.connector.name", b"s3-sink"),
            ("__connect.errors.task.id", b"0"),
            ("__connect.errors.stage", b"VALUE_CONVERTER"),
            ("__connect.errors.class.name", b"io.confluent.connect.avro.AvroConverter"),
            ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
            ("__connect.errors.exception.message", b"Unknown magic byte!"),
            ("__connect.errors.exception.stacktrace", b"org.apache.kafka.connect.errors.DataException: ..."),
        ],
    )
    bus.publish(
        streams,
        b'{"x": 1}',
        headers=[
            ("__streams.errors.topic", b"views"),
            ("__streams.errors.partition", b"1"),
            ("__streams.errors.offset", b"99"),
            ("__streams.errors.exception", b"java.lang.NullPointerException: view was null"),
            ("__streams.errors.message", b"view was null"),
            ("__streams.errors.stacktrace", b"java.lang.NullPointerException\n\tat V.process"),
        ],
    )
    ingester = make_ingester(bus, unique, patterns=[f"{prefix}*"])
    try:
        step_until(ingester, lambda: DeadLetter.objects.count() == 4, what="4 rows")
    finally:
        ingester.close()

    row = DeadLetter.objects.get(dlq_topic=spring)
    assert (row.convention, row.source_topic, row.source_partition, row.source_offset) == (
        "spring",
        "payments",
        2,
        "12345",
    )
    assert (row.group, row.error_class, row.error_cause) == (
        "payments-svc",
        "org.springframework.kafka.listener.ListenerExecutionFailedException",
        "java.lang.IllegalStateException",
    )
    assert row.error_message == "Listener failed; amount < 0" and "Pay.java:42" in row.stacktrace
    assert row.event_id == "evt-7" and row.event_type is None  # not in the design: no link, still stored
    assert ["kafka_dlt-original-partition", "2"] in row.headers and [
        "kafka_dlt-original-offset",
        "12345",
    ] in row.headers

    row = DeadLetter.objects.get(dlq_topic=spring_dash)
    assert (row.convention, row.source_topic, row.error_class) == (
        "spring",
        f"{prefix}-payments",
        "java.lang.RuntimeException",
    )
    assert row.payload_json is None and row.payload_text == "plain text"

    row = DeadLetter.objects.get(dlq_topic=connect)
    assert (row.convention, row.source_topic, row.source_partition, row.source_offset) == ("connect", "clicks", 3, "42")
    assert (row.group, row.error_class, row.error_message) == (
        "connect-s3-sink",
        "org.apache.kafka.connect.errors.DataException",
        "Unknown magic byte!",
    )
    assert bytes(row.payload) == b"\x00\x00\x00\x00\x01avro-ish" and row.payload_text == ""

    row = DeadLetter.objects.get(dlq_topic=streams)
    assert (row.convention, row.source_topic, row.source_partition, row.source_offset) == ("streams", "views", 1, "99")
    assert (row.error_class, row.error_message) == ("java.lang.NullPointerException", "view was null")


@pytest.mark.parametrize("bus", ["kafka"], indirect=True)
def test_confluent_data_contract_dead_letters_are_parsed(bus, db, unique):
    """Confluent's DLQ action: the source topic, error class and message from the __rule.* headers."""
    prefix = unique("confluent")
    dlq, named_dlq = f"{prefix}.dlq", f"{prefix}.customers.dlq"
    for topic in (dlq, named_dlq):
        bus.create_topic(topic)
    rule = [("__rule.name", b"checkSsnLen"), ("__rule.mode", b"WRITE"), ("__rule.subject", b"customers-value")]
    bus.publish(
        dlq,
        b'{"ssn": "12"}',
        key=b"c-1",
        headers=[
            *rule,
            ("__rule.topic", b"customers"),
            ("__rule.exception", b"Expr failed: 'message.ssn.size() == 9'"),
        ],
    )
    # No topic header (the serde had none): the source comes from the DLQ name, as for the others.
    bus.publish(
        named_dlq, b'{"ssn": null}', headers=[*rule, ("__rule.exception", b"java.lang.NullPointerException: ssn")]
    )
    ingester = make_ingester(bus, unique, patterns=[f"{prefix}*"])
    try:
        step_until(ingester, lambda: DeadLetter.objects.count() == 2, what="2 rows")
    finally:
        ingester.close()

    row = DeadLetter.objects.get(dlq_topic=dlq)
    assert (row.convention, row.source_topic, row.error_class, row.error_message) == (
        "confluent",
        "customers",
        "confluent.RuleFailed",
        "Expr failed: 'message.ssn.size() == 9'",
    )
    assert ["__rule.name", "checkSsnLen"] in row.headers and ["__rule.subject", "customers-value"] in row.headers
    assert row.payload_json == {"ssn": "12"} and row.decode_problems == []

    row = DeadLetter.objects.get(dlq_topic=named_dlq)
    assert (row.convention, row.source_topic, row.error_class, row.error_message) == (
        "confluent",
        f"{prefix}.customers",
        "java.lang.NullPointerException",
        "ssn",
    )


def test_a_structured_cloudevent_dead_letter_shows_its_type_and_data(bus, design, unique):
    """The SDK consumer dead-letters a structured event; the row is named by its envelope and
    its payload is the event's data, while the raw value stays whole for replay."""
    topic, group = design["topic"], design["group"]
    envelope = {
        "specversion": "1.0",
        "id": "ce-9",
        "type": "order.placed",
        "source": "/shop",
        "datacontenttype": "application/json",
        "data": ORDER,
    }
    raw = json.dumps(envelope).encode()
    bus.publish(topic, raw, key=b"o-1", headers=[(h.CONTENT_TYPE, b"application/cloudevents+json; charset=utf-8")])
    consumer = Consumer(bus, "billing", group, [topic], max_attempts=1, heartbeat_interval_s=None)
    seen = []

    @consumer.handler("order.placed")
    def charge(event) -> None:
        seen.append(event.payload)
        raise ValueError("card declined")

    ingester = make_ingester(bus, unique, patterns=[design["dlq"]])
    try:
        run_until(consumer, lambda: seen)
        step_until(ingester, lambda: DeadLetter.objects.exists(), what="the dead letter")
    finally:
        consumer.close()
        ingester.close()

    row = DeadLetter.objects.get()
    assert seen == [ORDER]
    assert (row.event_type, row.event_id, row.source_topic, row.error_class) == (
        design["event"],
        "ce-9",
        topic,
        "ValueError",
    )
    assert row.payload_json == ORDER and row.payload_problem == ""
    assert bytes(row.payload) == raw and row.payload_size == len(raw)


def _failure_headers(n: int) -> list[tuple[str, bytes]]:
    return [(h.ORIGINAL_TOPIC, b"orders"), (h.ERROR_CLASS, b"KeyError"), (h.ERROR_MESSAGE, f"#{n}".encode())]


def test_restart_gives_no_duplicates_and_no_gaps(bus, db, unique):
    """A first ingester stores a batch but dies before committing it; the next one resumes
    from the committed position: every record exactly once."""
    dlq = dead_letter_topic(unique("restart"), bus.kind)
    bus.create_topic(dlq, partitions=3)
    for n in range(40):
        bus.send(dlq, json.dumps({"n": n}).encode(), key=f"k{n}".encode(), headers=_failure_headers(n))
    bus.flush()
    group = unique("ingester")
    first = Ingester([bus.kind], buses={bus.kind: bus}, group=group, patterns=[dlq], batch=15, client_id=unique("c"))
    step_until(first, lambda: DeadLetter.objects.count() >= 15, what="a first batch")
    first.discover()  # same topics: the consumer is kept
    records = wait_until(lambda: first.tails[bus.kind].consumer.poll(0.5, 15), what="a second batch")
    first.store(bus.kind, records)  # stored, then "crash": never committed
    stored_before_crash = DeadLetter.objects.count()
    first.close()

    for n in range(40, 60):
        bus.send(dlq, json.dumps({"n": n}).encode(), headers=_failure_headers(n))
    bus.flush()
    second = Ingester([bus.kind], buses={bus.kind: bus}, group=group, patterns=[dlq], batch=15, client_id=unique("c"))
    try:
        step_until(second, lambda: DeadLetter.objects.count() >= 60, what="all 60")
        for _ in range(3):
            second.step(0.2)  # nothing more comes
    finally:
        second.close()
    assert stored_before_crash > 15
    assert DeadLetter.objects.count() == 60
    assert sorted(row.payload_json["n"] for row in DeadLetter.objects.all()) == list(range(60))
    positions = set(DeadLetter.objects.values_list("dlq_partition", "dlq_offset"))
    assert len(positions) == 60
    if bus.kind == "kafka":  # contiguous offsets on each partition: no gap
        ends = bus.end_offsets(dlq)
        assert positions == {(p, str(o)) for p, end in ends.items() for o in range(end)}
    assert all(lag.lag == 0 for lag in bus.lag(group, dlq))


def test_installations_sharing_a_broker_each_store_every_dead_letter(bus, db, unique, settings):
    """Two EventHub installations (monitor namespaces) on one broker: each ingester reads the
    dead-letter topic from its own group's position, so each stores the dead letter, once."""
    dlq = dead_letter_topic(unique("shared"), bus.kind)
    bus.create_topic(dlq)
    bus.publish(dlq, b'{"n": 1}', key=b"k1", headers=_failure_headers(1))

    def install(namespace: str) -> Ingester:
        settings.EVENTHUB_MONITOR_NAMESPACE = namespace
        return Ingester([bus.kind], buses={bus.kind: bus}, patterns=[dlq], discover_every_s=0.2)

    staging, production = install(unique("eh:staging")), install(unique("eh:production"))
    try:
        step_until(staging, lambda: DeadLetter.objects.filter(dlq_topic=dlq).exists(), what="staging's row")
        assert all(lag.lag == 0 for lag in bus.lag(staging.group, dlq))  # committed: staging is done with it
        DeadLetter.objects.all().delete()  # production has a database of its own
        row = step_until(production, lambda: DeadLetter.objects.filter(dlq_topic=dlq).first(), what="production's row")
        for _ in range(3):
            assert staging.step(0.2) == 0  # and staging does not read it again
    finally:
        staging.close()
        production.close()
    assert (bytes(row.key), row.payload_json, row.error_class) == (b"k1", {"n": 1}, "KeyError")
    assert DeadLetter.objects.count() == 1
    assert all(lag.lag == 0 for lag in bus.lag(production.group, dlq))


@pytest.mark.parametrize(
    ("namespace", "group"),
    [
        ("eventhub:monitor", "eventhub-dlq-ingester"),  # the default: the name before namespaces
        ("eventhub:staging", "eventhub-dlq-ingester.eventhub.staging"),
        ("acme/prod eu", "eventhub-dlq-ingester.acme.prod.eu"),
    ],
)
def test_ingester_group_follows_the_monitor_namespace(settings, namespace, group):
    settings.EVENTHUB_MONITOR_NAMESPACE = namespace
    assert default_group() == group


def test_bad_input_is_ingested_and_nothing_dropped(bus, db, unique, settings):
    """Non-JSON, binary, non-UTF-8, no headers, malformed headers, unknown conventions and
    payloads far above the cap: all stored, the big ones cut at the cap."""
    cap = 64 * 1024
    big = 3 * 1024 * 1024 if bus.kind == "redis" else 900 * 1024  # Kafka clients refuse > 1 MB records
    dlq = dead_letter_topic(unique("bad"), bus.kind)
    bus.create_topic(dlq)
    huge = ("é" * (big // 2)).encode()  # two bytes each: the cut may fall inside one
    cases = [
        (b"not json at all", [(h.ERROR_CLASS, b"Boom")]),
        (b"\x00\xff\xfe binary", [(h.ORIGINAL_TOPIC, b"orders")]),
        (b"caf\xe9 latin-1", []),
        (b'{"ok": true}', [(h.ORIGINAL_PARTITION, b"\x00\x01"), (h.ATTEMPTS, b"many"), (h.FAILED_AT, b"yesterday")]),
        (b'{"nul": "a\\u0000b"}', [("x-vendor-trace", b"\x00\x01\x02"), ("ce_type", b"\xff\xfe")]),
        (b"{}", [("some-other-tool", b"who knows"), (h.ORIGINAL_TOPIC, "ordres-ü".encode())]),
        (huge, [(h.ORIGINAL_TOPIC, b"orders"), (h.ERROR_CLASS, b"TooBig")]),
    ]
    for value, headers in cases:
        bus.publish(dlq, value, key=b"\xff\x00", headers=headers)
    ingester = make_ingester(bus, unique, patterns=[dlq], cap=cap)
    try:
        step_until(ingester, lambda: DeadLetter.objects.count() == len(cases), what="every bad record")
    finally:
        ingester.close()

    rows = list(DeadLetter.objects.order_by("id"))
    assert [bytes(row.payload) for row in rows[:-1]] == [value for value, _ in cases[:-1]]
    assert all(bytes(row.key) == b"\xff\x00" for row in rows)
    not_json, binary, latin, malformed, nul, unknown, too_big = rows
    assert not_json.payload_json is None and not_json.payload_text == "not json at all"
    assert binary.payload_text == "" and binary.source_topic == "orders"
    assert latin.payload_text == "" and latin.convention == "unknown"
    assert latin.source_topic == dlq.rsplit(".", 1)[0].rsplit(":", 1)[0]  # from the DLQ name
    assert malformed.payload_json == {"ok": True} and malformed.attempts is None
    assert len(malformed.decode_problems) == 3
    assert nul.payload_json is None and bytes(nul.payload) == cases[4][0]  # jsonb cannot hold \u0000
    assert ["x-vendor-trace", "0x000102"] in nul.headers
    assert unknown.source_topic == "ordres-ü" and ["some-other-tool", "who knows"] in unknown.headers
    assert too_big.truncated and too_big.payload_size == len(huge) and bytes(too_big.payload) == huge[:cap]
    assert too_big.payload_json is None and too_big.error_class == "TooBig"


# What the ingester notes on each poison value (payload_problem): {name in POISON_VALUES: note}.
POISON_NOTES = {
    "200kb-nesting": "the value nests arrays and objects deeper than 64 levels",
    "not-utf8": "the value is not UTF-8: invalid start byte at byte 11",
    "nul-bytes": "the value is not JSON: Invalid control character at: line 1 column 8 (char 7)",
    "5mb": f"cut at {1024 * 1024} of {len(POISON_VALUES['5mb'][0])} bytes: not read as JSON",
    "empty": "the value is empty",
    "no-value": "no value",
}


def test_poison_dead_letters_are_stored_with_a_note_and_the_next_one_too(bus, db, unique, client_as, viewer):
    """Hostile values and headers on a dead-letter topic, each followed by a good record: every
    one becomes a row (the raw bytes, binary when not text, and why there is no JSON), and the
    ingester goes on to the next; the batch is committed."""
    dlq = dead_letter_topic(unique("hostile"), bus.kind)
    create_topic_for_big_records(bus, dlq)
    failure = [(h.ERROR_CLASS, b"eventhub.sdk.PayloadDecodeError"), (h.ORIGINAL_TOPIC, b"orders")]
    records = []
    for n, (name, (value, _)) in enumerate(POISON_VALUES.items()):
        records.append((value, name.encode(), HOSTILE_HEADERS + failure))
        records.append((json.dumps({"n": n}).encode(), f"good-{n}".encode(), HOSTILE_HEADERS + failure))
    publish_raw(bus, dlq, records)
    ingester = make_ingester(bus, unique, patterns=[dlq], cap=1024 * 1024)
    try:
        step_until(ingester, lambda: DeadLetter.objects.count() == len(records), 60, "every record stored")
        step_until(ingester, lambda: all(lag.lag == 0 for lag in bus.lag(ingester.group, dlq)), what="the commit")
    finally:
        ingester.close()

    rows = {bytes(row.key): row for row in DeadLetter.objects.all()}
    for n, (name, (value, _)) in enumerate(POISON_VALUES.items()):
        row, good = rows[name.encode()], rows[f"good-{n}".encode()]
        assert (row.payload_json, row.payload_problem) == (None, POISON_NOTES[name]), name
        assert bytes(row.payload) == (value or b"")[: 1024 * 1024]
        assert row.payload_size == len(value or b"") and row.truncated is (name == "5mb")
        assert (row.error_class, row.source_topic) == ("eventhub.sdk.PayloadDecodeError", "orders")
        assert (good.payload_json, good.payload_problem) == ({"n": n}, "")
    binary = rows[b"not-utf8"]
    assert binary.payload_text == "" and rows[b"nul-bytes"].payload_text == ""  # shown as binary
    raw = [[name, base64.b64decode(value)] for name, value in binary.raw_headers[: len(HOSTILE_HEADERS)]]
    assert raw == [[name, value] for name, value in HOSTILE_HEADERS]  # kept byte for byte, for a redrive
    assert ["x-trace", "0xfffe00"] in binary.headers and ["x-dup", "first"] in binary.headers
    assert ["x-dup", "second"] in binary.headers and ["x-empty", ""] in binary.headers
    deep = rows[b"200kb-nesting"]
    page = client_as(viewer).get(f"/dead-letters/{deep.pk}/").content.decode()
    assert f"Not read as JSON: {POISON_NOTES['200kb-nesting']}." in page
    detail = client_as(viewer).get(f"/api/v1/dead-letters/{deep.pk}/").json()
    assert detail["payload"]["problem"] == POISON_NOTES["200kb-nesting"] and detail["payload"]["encoding"] == "text"


def test_a_value_the_sdk_cut_to_fit_is_stored_as_truncated(bus, db, unique):
    """A dead letter too large for its dead-letter topic is sent cut, with x-eventhub-payload-size."""
    dlq = dead_letter_topic(unique("cut"), bus.kind)
    bus.create_topic(dlq)
    bus.publish(dlq, b'{"blob": "xxxx', headers=[(h.ERROR_CLASS, b"E"), (h.PAYLOAD_SIZE, b"5242890")])
    ingester = make_ingester(bus, unique, patterns=[dlq])
    try:
        row = step_until(ingester, lambda: DeadLetter.objects.filter(dlq_topic=dlq).first(), what="the row")
    finally:
        ingester.close()
    assert (row.truncated, row.payload_size, bytes(row.payload)) == (True, 5242890, b'{"blob": "xxxx')
    assert row.payload_problem == "cut by the consumer at 14 of 5242890 bytes"


@pytest.fixture
def refusing_database(db):
    """A trigger that makes the database refuse dead letters whose event id is "refuse-me" (the
    test's transaction drops it again), as a constraint or a value it cannot hold would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                "IF NEW.event_id = 'refuse-me' THEN "
                "RAISE EXCEPTION 'refused by a test trigger' USING ERRCODE = 'check_violation'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON monitor_deadletter "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON monitor_deadletter "
                "WHEN NEW.event_id = 'refuse-me' BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
            )


def test_a_record_the_database_refuses_is_parked_and_the_next_one_stored(
    bus, refusing_database, unique, client_as, operator
):
    """The refused record is parked with its position and the error, visible on the dead-letter
    list; the one after it is stored; the batch is committed and never read again."""
    dlq = dead_letter_topic(unique("refused"), bus.kind)
    bus.create_topic(dlq)
    failure = [(h.ERROR_CLASS, b"KeyError")]
    refused = bus.publish(dlq, b'{"n": 1}', key=b"refused", headers=[("ce_id", b"refuse-me"), *failure])
    bus.publish(dlq, b'{"n": 2}', key=b"next", headers=[("ce_id", b"fine"), *failure])
    ingester = make_ingester(bus, unique, patterns=[dlq])
    try:
        step_until(
            ingester,
            lambda: DeadLetter.objects.filter(dlq_topic=dlq).exists() and UnstoredDeadLetter.objects.exists(),
            what="the next record stored and the refused one parked",
        )
        step_until(ingester, lambda: all(lag.lag == 0 for lag in bus.lag(ingester.group, dlq)), what="the commit")
        for _ in range(3):
            ingester.step(0.2)  # nothing comes again
    finally:
        ingester.close()

    assert [bytes(row.key) for row in DeadLetter.objects.filter(dlq_topic=dlq)] == [b"next"]
    parked = UnstoredDeadLetter.objects.get()
    assert (parked.bus, parked.dlq_topic, parked.dlq_partition) == (bus.kind, dlq, refused.partition)
    assert parked.dlq_offset == str(refused.offset) and parked.payload_size == 8
    assert "refused by a test trigger" in parked.error
    page = client_as(operator).get("/dead-letters/")
    assert page.status_code == 200
    assert "1 dead-letter record could not be stored" in page.content.decode()


@pytest.mark.parametrize("bus", ["kafka"], indirect=True)
def test_new_dead_letter_topics_are_discovered_and_broadcast(bus, db, unique, django_capture_on_commit_callbacks):
    prefix = unique("late")
    listener = Listener("deadletters")
    ingester = make_ingester(bus, unique, patterns=[f"{prefix}*.DLT"])
    try:
        ingester.step(0.2)
        assert ingester.tails["kafka"].consumer is None  # nothing to read yet
        late = f"{prefix}-orders.DLT"
        bus.create_topic(late)
        bus.publish(late, b'{"late": true}', headers=[("kafka_dlt-exception-fqcn", b"java.lang.Error")])
        with django_capture_on_commit_callbacks(execute=True):
            step_until(ingester, lambda: DeadLetter.objects.filter(dlq_topic=late).exists(), what="the late topic")
        message = listener.receive()
    finally:
        ingester.close()
        listener.close()
    row = DeadLetter.objects.get(dlq_topic=late)
    assert message == {"type": "deadletters.new", "ids": [row.pk], "count": 1}
    assert row.source_topic == f"{prefix}-orders"


@pytest.mark.parametrize("bus", ["redis"], indirect=True)
def test_redis_poison_entry_is_moved_and_acked_only_in_the_failing_group(bus, db, unique):
    stream = unique("stock")
    bus.create_topic(stream)
    client = bus.client
    designed = Topic.objects.create(name=stream, bus="redis", address=stream)
    event = EventType.objects.create(name="stock.reserved", topic=designed)
    keeper = Service.objects.create(name="keeper")
    failing, other = unique("keeper"), unique("audit")
    DesignedConsumer.objects.create(service=keeper, event_type=event, group=failing, max_attempts=2)

    poison = bus.publish(stream, b'{"sku": "bad"}', key=b"sku-1", headers=[("ce_type", b"stock.reserved")]).offset
    healthy = bus.publish(stream, b'{"sku": "ok"}').offset
    for group in (failing, other):
        client.xgroup_create(stream, group, id="0")
    # The failing group: consumer c1 took both and died; c2 took the poison one over and died too.
    client.xreadgroup(failing, "c1", {stream: ">"})
    client.xclaim(stream, failing, "c2", 0, [poison])
    client.xreadgroup(other, "a1", {stream: ">"}, count=1)  # the other group holds it too, pending

    ingester = make_ingester(bus, unique, poison_idle_ms=0)
    try:
        row = step_until(
            ingester,
            lambda: DeadLetter.objects.filter(dlq_topic=f"{stream}:dlq").first(),
            what="the moved entry ingested",
        )
    finally:
        ingester.close()

    failing_pending = {e["message_id"].decode() for e in client.xpending_range(stream, failing, "-", "+", 10)}
    other_pending = {e["message_id"].decode() for e in client.xpending_range(stream, other, "-", "+", 10)}
    assert failing_pending == {healthy}  # acked in the failing group only; the healthy one untouched
    assert other_pending == {poison}
    assert (row.error_class, row.group, row.service, row.attempts) == (h.POISON_ERROR_CLASS, failing, "keeper", 2)
    assert (row.source_topic, row.source_offset, row.convention) == (stream, poison, "eventhub")
    assert bytes(row.payload) == b'{"sku": "bad"}' and bytes(row.key) == b"sku-1" and row.event_type == event
    assert client.xlen(f"{stream}:dlq") == 1
    # Moving is exactly once: a second pass finds nothing more.
    assert ingester.move_poison_entries() == 0 and client.xlen(f"{stream}:dlq") == 1


@pytest.mark.parametrize("bus", ["redis"], indirect=True)
def test_a_broken_poison_rule_never_stops_redis_ingestion(bus, db, unique, caplog):
    """A rule whose stream is no stream (WRONGTYPE) or whose group does not exist is skipped, logged
    once; the next rule still moves its poison entry and dead letters are still ingested."""
    client = bus.client
    keeper = Service.objects.create(name="keeper")
    broken, missing_group, good = unique("not-a-stream"), unique("no-group"), unique("stock")
    client.set(broken, "a plain string")  # WRONGTYPE for XPENDING
    bus.create_topic(missing_group)
    bus.create_topic(good)
    for name in (broken, missing_group, good):
        event = EventType.objects.create(
            name=f"{name}.event", topic=Topic.objects.create(name=name, bus="redis", address=name)
        )
        DesignedConsumer.objects.create(service=keeper, event_type=event, group="keeper", max_attempts=1)
    poison = bus.publish(good, b'{"sku": "bad"}').offset
    client.xgroup_create(good, "keeper", id="0")
    client.xreadgroup("keeper", "k1", {good: ">"})  # delivered once = max_attempts

    ingester = make_ingester(bus, unique, poison_idle_ms=0)
    try:
        with caplog.at_level("WARNING", logger="deadletters.ingest"):
            row = step_until(
                ingester,
                lambda: DeadLetter.objects.filter(dlq_topic=f"{good}:dlq").first(),
                what="the good rule's entry moved and ingested although another rule is broken",
            )
            ingester.move_poison_entries()
            ingester.move_poison_entries()
    finally:
        ingester.close()
    assert row.source_offset == poison
    skipped = [r for r in caplog.records if "poison rule" in r.getMessage() and broken in r.getMessage()]
    assert len(skipped) == 1 and "WRONGTYPE" in skipped[0].getMessage()
    assert not [r for r in caplog.records if missing_group in r.getMessage()]  # no group: nothing to do


@pytest.mark.parametrize("bus", ["redis"], indirect=True)
def test_a_designed_dead_letter_topic_not_named_like_one_is_not_ingested(bus, db, unique):
    """Saved before the rule (or by hand): the ingester still never copies a live topic."""
    live = unique("payments")
    bus.create_topic(live)
    bus.publish(live, b'{"card": "4111"}')
    orders = Topic.objects.create(name=unique("orders"), bus="redis", address=unique("orders"))
    Topic.objects.filter(pk=orders.pk).update(dead_letter_topic=live)  # as a row saved before the rule
    allowed = Topic.objects.create(name=unique("refunds"), bus="redis", address=unique("refunds"))
    bus.create_topic(allowed.dead_letter_topic)
    ingester = make_ingester(bus, unique)
    try:
        found = ingester.dead_letter_topics("redis")
        assert live not in found and allowed.dead_letter_topic in found
    finally:
        ingester.close()


def test_build_row_never_raises_on_garbage(settings):
    """Plain logic: the row builder on records no tool would write (no database needed)."""
    from deadletters.ingest import build_row
    from eventhub.bus import Record

    odd = Record(
        "x.dlq",
        0,
        5,
        None,
        None,
        headers=[
            (h.REPLAY_OF, b"abc"),
            (h.REPLAY_COUNT, b"-3"),
            ("\x00name", b"v"),
            (h.FAILED_AT, b"2024-05-01T00:00:00"),
        ],
        timestamp_ms=None,
    )
    row = build_row("kafka", odd, 1024)
    assert (row.replay_of_id, row.replay_count, row.source_topic, row.payload_size) == (None, 0, "x", 0)
    assert row.first_failed_at == datetime(2024, 5, 1, tzinfo=UTC)
    assert all("\x00" not in name for name, _ in row.headers)


def test_ingester_survives_a_dead_bus(db, unique):
    """A bus that does not answer is logged and skipped; the other keeps being read."""
    dead = open_bus("kafka", bootstrap_servers="127.0.0.1:1", connect_timeout_ms=200, request_timeout_ms=500)
    redis_bus = open_bus("redis", **bus_options("redis"))
    dlq = f"{unique('alive')}:dlq"
    redis_bus.create_topic(dlq)
    redis_bus.publish(dlq, b"{}", headers=[(h.ERROR_CLASS, b"E")])
    ingester = Ingester(
        ("kafka", "redis"), buses={"kafka": dead, "redis": redis_bus}, group=unique("i"), patterns=[dlq]
    )
    try:
        step_until(ingester, lambda: DeadLetter.objects.filter(dlq_topic=dlq).exists(), what="the Redis row")
        assert "kafka" in ingester._down
    finally:
        ingester.close()
        dead.close()
        redis_bus.close()


def test_unique_position_is_enforced_by_the_database(db):
    row = DeadLetter.objects.create(bus="kafka", dlq_topic="t.dlq", dlq_partition=0, dlq_offset="1")
    DeadLetter.objects.bulk_create(
        [DeadLetter(bus="kafka", dlq_topic="t.dlq", dlq_partition=0, dlq_offset="1", error_class=str(uuid.uuid4()))],
        ignore_conflicts=True,
    )
    assert list(DeadLetter.objects.values_list("id", flat=True)) == [row.pk]
