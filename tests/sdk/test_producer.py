"""Producer on both real buses: validation gates the send; CloudEvents headers on the record."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventhub.sdk import InvalidPayload, InvalidSchema, LocalSchemas, NoTopic, Producer
from eventhub.sdk.producer import encode_payload
from tests.listening import CountingServer
from tests.sdk import ORDER_SCHEMA, read_records, total_end_offset
from tests.waiting import returns_within


@pytest.fixture
def topic(bus, unique):
    name = unique("orders")
    bus.create_topic(name)
    return name


@pytest.fixture
def producer(bus, topic):
    schemas = LocalSchemas({"order.placed": {"schema": ORDER_SCHEMA, "version": 4, "topic": topic}})
    with Producer(bus, "checkout", schemas, heartbeat_interval_s=None) as producer:
        yield producer


def test_invalid_payload_is_refused_and_nothing_is_sent(bus, topic, producer):
    with pytest.raises(InvalidPayload) as caught:
        producer.publish("order.placed", {"order_id": "o-1", "amount": -3})
    assert caught.value.path == "$.amount"
    assert "$.amount" in str(caught.value) and "minimum of 0" in str(caught.value)
    with pytest.raises(InvalidPayload, match=r"\$\.order_id"):
        producer.publish_nowait("order.placed", {"amount": 1})
    producer.flush()

    assert total_end_offset(bus, topic) == 0


def test_a_number_json_cannot_hold_is_refused_with_its_place_and_nothing_is_sent(bus, topic, producer):
    # The schema says nothing of the lines: only the encoding can see these.
    for bad in (float("nan"), float("-inf"), Decimal("Infinity"), Decimal("NaN")):
        with pytest.raises(ValueError, match=r"^\$\.lines\[1\]\.price is not a JSON number"):
            producer.publish(
                "order.placed", {"order_id": "o-1", "amount": 1, "note": None, "lines": [{"price": 1}, {"price": bad}]}
            )
        with pytest.raises(ValueError, match=r"^\$\.lines\[0\] is not a JSON number"):
            producer.publish_nowait("order.placed", {"order_id": "o-1", "amount": 1, "lines": [bad]})
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="refers to itself"):
        producer.publish("order.placed", {"order_id": "o-1", "amount": 1, "lines": cycle})
    producer.flush()
    assert total_end_offset(bus, topic) == 0

    # A null that is only a null and a Decimal go out as JSON has them; a time the schema
    # does not describe, as RFC 3339 text; a subclass of str or int, as its plain value.
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    producer.publish(
        "order.placed",
        {"order_id": "null", "amount": Decimal("12.50"), "note": None, "lines": [at, _Text("t"), _Count(2)]},
    )
    [record] = read_records(bus, topic, 1)
    assert record.value == b'{"order_id":"null","amount":12.50,"note":null,"lines":["2026-01-02T03:04:05Z","t",2]}'
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        producer.publish("order.placed", {"order_id": "o-1", "amount": 1, "lines": [object()]})


class _Text(str):
    pass


class _Count(int):
    pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(value=json_values)
def test_a_payload_is_the_json_the_standard_library_writes(value):
    encoded = encode_payload(value)
    standard = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(encoded) == json.loads(standard)
    if not _holds_a_float(value):
        assert encoded == standard  # byte for byte: only a float may be written another way


def _holds_a_float(value) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return any(_holds_a_float(item) for item in value)
    return isinstance(value, float)


def test_valid_payload_is_a_cloudevent(bus, topic, producer):
    published = producer.publish(
        "order.placed",
        {"order_id": "o-1", "amount": 12.5, "note": "café"},
        key="o-1",
        headers={"traceparent": "00-abc-def-01", "ce_type": "spoofed"},
        correlation_id="corr-7",
    )
    assert published.topic == topic
    assert total_end_offset(bus, topic) == 1

    [record] = read_records(bus, topic, 1)
    assert record.key == b"o-1"
    assert record.value == '{"order_id":"o-1","amount":12.5,"note":"café"}'.encode()
    headers = dict(record.headers)
    assert uuid.UUID(headers["ce_id"].decode()).version == 4
    assert headers["ce_type"] == b"order.placed"
    assert record.header("ce_type") == b"order.placed"  # the caller cannot override it
    assert [name for name, _ in record.headers].count("ce_type") == 1
    assert headers["ce_source"] == b"/services/checkout"
    assert headers["ce_specversion"] == b"1.0"
    ce_time = headers["ce_time"].decode()
    assert ce_time.endswith("Z")
    sent_at = datetime.fromisoformat(ce_time)
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 60
    assert headers["content-type"] == b"application/json"
    assert headers["x-eventhub-schema-version"] == b"4"
    assert headers["x-eventhub-correlation-id"] == b"corr-7"
    assert headers["traceparent"] == b"00-abc-def-01"


def test_publish_nowait_buffers_until_flush(bus, topic, producer):
    ids = [producer.publish_nowait("order.placed", {"order_id": f"o-{n}", "amount": n}) for n in range(200)]
    producer.flush()
    assert total_end_offset(bus, topic) == 200
    assert len(set(ids)) == 200

    records = read_records(bus, topic, 200)
    first = records[0]
    # Without an explicit correlation id, a new chain starts at the event itself.
    assert first.header("x-eventhub-correlation-id") == first.header("ce_id")
    assert {json.loads(r.value)["order_id"] for r in records} == {f"o-{n}" for n in range(200)}


def test_topic_argument_and_missing_topic(bus, topic, unique):
    schemas = LocalSchemas(
        {
            "order.placed": {"schema": ORDER_SCHEMA, "version": 1},
            "order.shipped": {"schema": {"type": "object"}, "version": 1},
        }
    )
    producer = Producer(bus, "checkout", schemas, source="urn:shop:checkout", heartbeat_interval_s=None)
    with pytest.raises(NoTopic, match="order.shipped"):
        producer.publish("order.shipped", {})
    producer.publish("order.placed", {"order_id": "o", "amount": 0}, topic=topic)
    [record] = read_records(bus, topic, 1)
    assert record.header("ce_source") == b"urn:shop:checkout"
    producer.close()


def test_a_schema_with_a_remote_ref_is_refused_and_nothing_is_fetched_or_sent(bus, topic):
    with CountingServer() as remote:
        schema = {"type": "object", "properties": {"customer": {"$ref": remote.url("customer.json")}}}
        schemas = LocalSchemas({"order.placed": {"schema": schema, "topic": topic}})
        with Producer(bus, "checkout", schemas, heartbeat_interval_s=None) as producer:
            with pytest.raises(
                InvalidSchema, match=r"#/properties/customer/\$ref: \$ref 'http://127.0.0.1:\d+/customer"
            ):
                producer.publish("order.placed", {"customer": 5})
        assert remote.connections == 0
    assert total_end_offset(bus, topic) == 0


def test_a_backtracking_pattern_answers_and_gates_the_send(bus, topic):
    schema = {"type": "object", "patternProperties": {"^(a|a)*b$": {}}, "additionalProperties": False}
    schemas = LocalSchemas({"order.placed": {"schema": schema, "topic": topic}})
    with Producer(bus, "checkout", schemas, heartbeat_interval_s=None) as producer:
        # 40 a's: about 2^40 steps for a backtracking engine to give up.
        with pytest.raises(InvalidPayload, match=r"\$: Additional properties are not allowed \('a{40}' was unexpected"):
            returns_within(lambda: producer.publish("order.placed", {"a" * 40: 1}), 10, "publish")
        producer.publish("order.placed", {"a" * 40 + "b": 1})
    assert total_end_offset(bus, topic) == 1
