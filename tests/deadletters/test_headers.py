"""Dead-letter headers, payload sniffing and DLQ topic names, one row per case."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadletters.headers import (
    CONFLUENT_RULE_ERROR_CLASS,
    EVENTHUB_HEADERS,
    DeadLetterMeta,
    Payload,
    decode,
    decode_payload,
)
from eventhub.sdk import headers as h
from eventhub.sdk.headers import dead_letter_source, is_dead_letter_topic


def be(number: int, size: int) -> bytes:
    return number.to_bytes(size, "big", signed=True)


LISTENER_FAILED = "org.springframework.kafka.listener.ListenerExecutionFailedException"
TRACE = "java.lang.IllegalStateException: boom\n\tat com.acme.Orders.handle(Orders.java:42)"

EVENTHUB_ROWS = [
    ("x-eventhub-original-topic", b"orders"),
    ("x-eventhub-original-partition", b"3"),
    ("x-eventhub-original-offset", b"1042"),
    ("x-eventhub-group", b"billing"),
    ("x-eventhub-attempts", b"5"),
    ("x-eventhub-error-class", b"billing.errors.CardDeclined"),
    ("x-eventhub-error-message", "carte refusée".encode()),
    ("x-eventhub-stacktrace", b"Traceback (most recent call last): ..."),
    ("x-eventhub-failed-at", b"2024-05-01T12:30:00Z"),
    ("x-eventhub-service", b"billing-api"),
]
SPRING_ROWS = [
    ("kafka_dlt-original-topic", b"orders"),
    ("kafka_dlt-original-partition", be(7, 4)),
    ("kafka_dlt-original-offset", be(123456789, 8)),
    ("kafka_dlt-original-timestamp", be(1714566600000, 8)),
    ("kafka_dlt-original-timestamp-type", b"CREATE_TIME"),
    ("kafka_dlt-original-consumer-group", b"shipping"),
    ("kafka_dlt-exception-fqcn", LISTENER_FAILED.encode()),
    ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
    ("kafka_dlt-exception-message", b"Listener failed; boom"),
    ("kafka_dlt-exception-stacktrace", TRACE.encode()),
]
CONNECT_ROWS = [
    ("__connect.errors.topic", b"orders"),
    ("__connect.errors.partition", b"2"),
    ("__connect.errors.offset", b"77"),
    ("__connect.errors.connector.name", b"orders-s3-sink"),
    ("__connect.errors.task.id", b"1"),
    ("__connect.errors.stage", b"VALUE_CONVERTER"),
    ("__connect.errors.class.name", b"io.confluent.connect.avro.AvroConverter"),
    (
        "__connect.errors.exception.class.name",
        b"org.apache.kafka.connect.errors.DataException",
    ),
    ("__connect.errors.exception.message", b"Unknown magic byte!"),
    ("__connect.errors.exception.stacktrace", TRACE.encode()),
]
STREAMS_ROWS = [
    (
        "__streams.errors.exception",
        b'java.lang.NumberFormatException: For input string: "x"',
    ),
    ("__streams.errors.message", b'For input string: "x"'),
    ("__streams.errors.stacktrace", TRACE.encode()),
    ("__streams.errors.topic", b"payments"),
    ("__streams.errors.partition", b"0"),
    ("__streams.errors.offset", b"9"),
]
# Confluent's DlqAction (data-contract rules): the rule's exception message only, no class.
CONFLUENT_ROWS = [
    ("__rule.name", b"checkSsnLen"),
    ("__rule.mode", b"WRITE"),
    ("__rule.subject", b"customers-value"),
    ("__rule.topic", b"customers"),
    ("__rule.exception", b"Expr failed: 'message.ssn.size() == 9'"),
]
CLOUDEVENT_ROWS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"evt-42"),
    ("ce_type", b"com.acme.order.created"),
    ("ce_source", b"/orders"),
    ("content-type", b"application/json"),
]


@pytest.mark.parametrize(
    ("headers", "expected", "problems"),
    [
        pytest.param(
            EVENTHUB_ROWS,
            {
                "convention": "eventhub",
                "original_topic": "orders",
                "original_partition": 3,
                "original_offset": 1042,
                "group": "billing",
                "attempts": 5,
                "error_class": "billing.errors.CardDeclined",
                "error_message": "carte refusée",
                "failed_at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
                "service": "billing-api",
            },
            [],
            id="eventhub-kafka",
        ),
        pytest.param(
            [
                ("x-eventhub-original-topic", b"orders:stream"),
                ("x-eventhub-original-entry-id", b"1714566600000-0"),
                ("x-eventhub-failed-at", b"2024-05-01T14:30:00+02:00"),
            ],
            {
                "convention": "eventhub",
                "original_entry_id": "1714566600000-0",
                "original_partition": None,
                "original_offset": None,
                "failed_at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
            },
            [],
            id="eventhub-redis-entry-and-offset-time",
        ),
        pytest.param(
            [
                ("x-eventhub-attempts", b"many"),
                ("x-eventhub-original-partition", b"-1"),
                ("x-eventhub-failed-at", b"2024-05-01 12:30:00"),
                ("x-eventhub-original-entry-id", b"abc"),
            ],
            {
                "convention": "eventhub",
                "attempts": None,
                "original_partition": None,
                "failed_at": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
                "original_entry_id": "abc",
            },
            [
                "x-eventhub-attempts: not a number",
                "negative value -1",
                "read as UTC",
                "not a Redis entry id",
            ],
            id="eventhub-malformed-values",
        ),
        pytest.param(
            [("x-eventhub-failed-at", b"yesterday")],
            {"failed_at": None},
            ["not an ISO-8601 time"],
            id="eventhub-bad-time",
        ),
        pytest.param(
            SPRING_ROWS,
            {
                "convention": "spring",
                "original_topic": "orders",
                "original_partition": 7,
                "original_offset": 123456789,
                "original_timestamp": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
                "group": "shipping",
                "error_class": LISTENER_FAILED,
                "error_cause": "java.lang.IllegalStateException",
                "error_message": "Listener failed; boom",
                "stacktrace": TRACE,
            },
            [],
            id="spring-binary-ints",
        ),
        pytest.param(
            [
                ("kafka_original-topic", b"orders"),
                ("kafka_original-partition", b"12"),
                ("kafka_original-offset", b"99"),
                ("kafka_exception-fqcn", b"java.lang.RuntimeException"),
                ("kafka_exception-message", b"nope"),
            ],
            {
                "convention": "spring",
                "original_topic": "orders",
                "original_partition": 12,
                "original_offset": 99,
                "error_class": "java.lang.RuntimeException",
                "error_message": "nope",
            },
            [],
            id="spring-older-family-ascii-digits",
        ),
        pytest.param(
            [
                ("kafka_dlt-original-topic", b"orders"),
                ("kafka_dlt-original-partition", b"\x01\x02\x03"),
                ("kafka_dlt-original-offset", b"\xff" * 5),
            ],
            {"original_partition": None, "original_offset": None},
            [
                "kafka_dlt-original-partition: not a number (4-byte or digits)",
                "kafka_dlt-original-offset: not a number (8-byte or digits)",
            ],
            id="spring-wrong-length-ints",
        ),
        pytest.param(
            [("x-eventhub-original-offset", b"9" * 5000)],
            {"original_offset": None},
            ["number too long"],
            id="absurdly-long-number",
        ),
        pytest.param(
            [("kafka_dlt-original-timestamp", be(-1, 8))],
            {"original_timestamp": None},
            ["negative value -1"],
            id="spring-no-timestamp",
        ),
        pytest.param(
            [
                ("kafka_dlt-original-topic", b"orders"),
                ("kafka_dlt-exception-fqcn", b"first.Error"),
                ("kafka_dlt-original-topic", b"orders-retry-0"),
                ("kafka_dlt-exception-fqcn", b"second.Error"),
            ],
            {"original_topic": "orders", "error_class": "second.Error"},
            [],
            id="spring-repeated-origin-first-exception-last",
        ),
        pytest.param(
            [
                ("kafka_dlt-key-exception-fqcn", b"KeyError"),
                ("kafka_dlt-key-exception-message", b"bad key"),
                ("kafka_deliveryAttempt", be(3, 4)),
            ],
            {
                "convention": "spring",
                "error_class": "KeyError",
                "error_message": "bad key",
                "attempts": 3,
            },
            [],
            id="spring-key-exception-and-attempts",
        ),
        pytest.param(
            [
                ("kafka_dlt-key-exception-fqcn", b"KeyError"),
                ("kafka_dlt-exception-fqcn", b"ValueError"),
            ],
            {"error_class": "ValueError"},
            [],
            id="spring-value-exception-wins-over-key",
        ),
        pytest.param(
            CONNECT_ROWS,
            {
                "convention": "connect",
                "original_topic": "orders",
                "original_partition": 2,
                "original_offset": 77,
                "connector": "orders-s3-sink",
                "task_id": 1,
                "stage": "VALUE_CONVERTER",
                "error_class": "org.apache.kafka.connect.errors.DataException",
                "error_message": "Unknown magic byte!",
            },
            [],
            id="connect",
        ),
        pytest.param(
            STREAMS_ROWS,
            {
                "convention": "streams",
                "original_topic": "payments",
                "original_partition": 0,
                "original_offset": 9,
                "error_class": "java.lang.NumberFormatException",
                "error_message": 'For input string: "x"',
                "stacktrace": TRACE,
            },
            [],
            id="streams",
        ),
        pytest.param(
            [
                ("__streams.errors.exception", b"java.lang.NullPointerException"),
                ("__streams.errors.message", None),
            ],
            {
                "convention": "streams",
                "error_class": "java.lang.NullPointerException",
                "error_message": None,
            },
            ["__streams.errors.message: no value"],
            id="streams-null-message",
        ),
        pytest.param(
            CONFLUENT_ROWS,
            {
                "convention": "confluent",
                "original_topic": "customers",
                "original_partition": None,
                "error_class": CONFLUENT_RULE_ERROR_CLASS,
                "error_message": "Expr failed: 'message.ssn.size() == 9'",
            },
            [],
            id="confluent",
        ),
        pytest.param(
            [*CONFLUENT_ROWS[:4], ("__rule.exception", b"java.lang.NullPointerException: ssn is null")],
            {"error_class": "java.lang.NullPointerException", "error_message": "ssn is null"},
            [],
            id="confluent-exception-naming-a-java-class",
        ),
        pytest.param(
            CONFLUENT_ROWS[:4],
            {"error_class": CONFLUENT_RULE_ERROR_CLASS, "error_message": "rule checkSsnLen failed"},
            [],
            id="confluent-without-exception",
        ),
        pytest.param(
            [("__rule.name", b""), ("__rule.mode", b"\xff"), ("__rule.topic", None), ("__rule.exception", b"")],
            {"convention": "confluent", "original_topic": None, "error_class": CONFLUENT_RULE_ERROR_CLASS},
            ["__rule.name: empty value", "__rule.mode: not valid UTF-8", "__rule.topic: no value"],
            id="confluent-bad-values",
        ),
        pytest.param(
            CONFLUENT_ROWS + CLOUDEVENT_ROWS,
            {"convention": "confluent", "event_id": "evt-42", "event_type": "com.acme.order.created"},
            [],
            id="confluent-with-cloudevents",
        ),
        pytest.param(
            CLOUDEVENT_ROWS,
            {
                "convention": "unknown",
                "event_id": "evt-42",
                "event_type": "com.acme.order.created",
            },
            [],
            id="cloudevents-only",
        ),
        pytest.param(
            SPRING_ROWS[:2] + CLOUDEVENT_ROWS,
            {"convention": "spring", "original_partition": 7, "event_id": "evt-42"},
            [],
            id="spring-with-cloudevents",
        ),
        pytest.param(
            [
                ("kafka_dlt-original-topic", b"orders"),
                ("x-eventhub-service", b"billing-api"),
                ("kafka_dlt-exception-fqcn", b"X"),
            ],
            {"convention": "spring", "service": "billing-api"},
            [],
            id="mixed-conventions-fill-gaps",
        ),
        pytest.param(
            [("x-eventhub-original-topic", None), ("x-eventhub-group", b"")],
            {"convention": "eventhub", "original_topic": None, "group": None},
            ["x-eventhub-original-topic: no value", "x-eventhub-group: empty value"],
            id="missing-values",
        ),
        pytest.param(
            [("x-eventhub-original-topic", b"ord\xffers")],
            {"original_topic": "ord\ufffders"},
            ["not valid UTF-8"],
            id="non-utf8-text",
        ),
        pytest.param(
            [("x-eventhub-group", b"\x00\x01bill")],
            {"group": "\x00\x01bill"},
            ["x-eventhub-group: binary, not text"],
            id="control-chars-in-text",
        ),
        pytest.param(
            [("traceparent", b"\x00\x01\xfe"), ("tenant", b"acme"), ("nothing", None)],
            {"convention": "unknown", "original_topic": None},
            [],
            id="unknown-headers-are-not-problems",
        ),
        pytest.param([], {"convention": "unknown"}, [], id="no-headers"),
        pytest.param(None, {"convention": "unknown"}, [], id="headers-none"),
        pytest.param(
            "not a list",
            {"convention": "unknown"},
            ["not a list"],
            id="headers-a-string",
        ),
        pytest.param(
            [("x-eventhub-group", b"billing"), 42, ("only-name",), None],
            {"group": "billing"},
            ["header #2", "header #3", "header #4"],
            id="malformed-items",
        ),
        pytest.param(
            [(b"X-EventHub-Group", "billing"), ("x-eventhub-attempts", 7)],
            {"group": "billing", "attempts": 7},
            ["value is a int"],
            id="bytes-names-str-values-any-case",
        ),
    ],
)
def test_decode(headers, expected, problems):
    _assert_decoded(decode(headers), expected, problems)


def _assert_decoded(meta, expected, problems):
    assert isinstance(meta, DeadLetterMeta)
    assert {name: getattr(meta, name) for name in expected} == expected
    assert len(meta.problems) == len(problems), meta.problems
    for fragment, problem in zip(problems, meta.problems, strict=True):
        assert fragment in problem


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            SPRING_ROWS[1:4],
            [
                ("kafka_dlt-original-partition", "7"),
                ("kafka_dlt-original-offset", "123456789"),
                ("kafka_dlt-original-timestamp", "1714566600000"),
            ],
            id="spring-ints-as-decimal",
        ),
        pytest.param(
            [("x-eventhub-error-message", "ünïcode".encode())],
            [("x-eventhub-error-message", "ünïcode")],
            id="utf8-text",
        ),
        pytest.param([("trace", b"\x00\xff")], [("trace", "0x00ff")], id="binary-as-hex"),
        pytest.param(
            [("kafka_dlt-original-partition", b"\x01\x02\x03")],
            [("kafka_dlt-original-partition", "0x010203")],
            id="bad-int-as-hex",
        ),
        pytest.param(
            CONFLUENT_ROWS[:3],
            [("__rule.name", "checkSsnLen"), ("__rule.mode", "WRITE"), ("__rule.subject", "customers-value")],
            id="confluent-rule-shown",
        ),
        pytest.param([("ce_id", None)], [("ce_id", "(null)")], id="null"),
        pytest.param([("empty", b"")], [("empty", "")], id="empty"),
    ],
)
def test_headers_decoded_for_display(headers, expected):
    assert decode(headers).headers_decoded == expected


STRUCTURED = [("content-type", b"application/cloudevents+json; charset=utf-8")]
ENVELOPE = {
    "specversion": "1.0",
    "id": "evt-7",
    "type": "order.placed",
    "source": "/shop",
    "data": {"order_id": "o-7"},
}


@pytest.mark.parametrize(
    ("headers", "value", "expected", "problems"),
    [
        pytest.param(
            STRUCTURED,
            json.dumps(ENVELOPE).encode(),
            {"event_id": "evt-7", "event_type": "order.placed"},
            [],
            id="structured",
        ),
        pytest.param(
            [("Content-Type", b"Application/CloudEvents+JSON"), ("ce_type", b"stale.header"), *EVENTHUB_ROWS],
            json.dumps(ENVELOPE).encode(),
            {"convention": "eventhub", "event_id": "evt-7", "event_type": "order.placed"},
            [],
            id="envelope-over-ce-headers",
        ),
        pytest.param(
            STRUCTURED + CLOUDEVENT_ROWS[1:3],
            b'{"specversion": "1.0", "data": 1}',
            {"event_id": "evt-42", "event_type": "com.acme.order.created"},
            [],
            id="envelope-without-id-keeps-headers",
        ),
        pytest.param(STRUCTURED, b"[1, 2]", {"event_type": None}, ["not an array"], id="envelope-not-object"),
        pytest.param(STRUCTURED, b'{"type": "x.y', {"event_type": None}, ["not read"], id="envelope-not-json"),
        pytest.param(STRUCTURED, None, {"event_type": None}, [], id="no-value"),
        pytest.param(
            [("content-type", b"application/cloudevents+avro")],
            b"\x00\x01",
            {"event_type": None},
            ["not supported"],
            id="other-format",
        ),
        pytest.param(
            [("content-type", b"application/json"), *CLOUDEVENT_ROWS[1:3]],
            json.dumps(ENVELOPE).encode(),
            {"event_id": "evt-42", "event_type": "com.acme.order.created", "cloudevent": None},
            [],
            id="binary-mode-value-is-data",
        ),
    ],
)
def test_decode_structured_cloudevent(headers, value, expected, problems):
    _assert_decoded(decode(headers, value), expected, problems)


def test_eventhub_header_contract():
    # The SDK writes these exact names; changing one breaks every producer in the field.
    assert dict(EVENTHUB_HEADERS) == {
        "original_topic": "x-eventhub-original-topic",
        "original_partition": "x-eventhub-original-partition",
        "original_offset": "x-eventhub-original-offset",
        "original_entry_id": "x-eventhub-original-entry-id",
        "group": "x-eventhub-group",
        "attempts": "x-eventhub-attempts",
        "error_class": "x-eventhub-error-class",
        "error_message": "x-eventhub-error-message",
        "stacktrace": "x-eventhub-stacktrace",
        "failed_at": "x-eventhub-failed-at",
        "service": "x-eventhub-service",
        "payload_size": "x-eventhub-payload-size",  # only on a value the SDK cut to fit the dead-letter topic
    }
    assert set(EVENTHUB_HEADERS) <= set(vars(DeadLetterMeta()))
    assert set(EVENTHUB_HEADERS.values()) == set(h.DEAD_LETTER_HEADERS)  # what the SDK writes


NOT_JSON_AT_1 = "the value is not JSON: Expecting value: line 1 column 1 (char 0)"
TOO_DEEP = "the value nests arrays and objects deeper than 64 levels"
LONE_SURROGATE = "the value is not valid Unicode: a string holds a lone surrogate (\\ud800-\\udfff)"


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "cap", "expected"),
    [
        pytest.param(None, 100, Payload(b"", False, 0, None, None, False, "no value"), id="tombstone"),
        pytest.param(
            b'{"id": 1}',
            100,
            Payload(b'{"id": 1}', False, 9, {"id": 1}, '{"id": 1}', False),
            id="json",
        ),
        pytest.param(b"hello", 100, Payload(b"hello", False, 5, None, "hello", False, NOT_JSON_AT_1), id="text"),
        pytest.param(b"42", 100, Payload(b"42", False, 2, 42, "42", False), id="json-scalar"),
        pytest.param(
            b'{"id": 1, "name": "x"}',
            5,
            Payload(b'{"id"', True, 22, None, '{"id"', False, "cut at 5 of 22 bytes: not read as JSON"),
            id="truncated-json-not-parsed",
        ),
        pytest.param(
            "née".encode(),
            2,
            Payload(b"n\xc3", True, 4, None, "n", False, "cut at 2 of 4 bytes: not read as JSON"),
            id="cut-inside-multibyte-char",
        ),
        pytest.param(
            b"\xff\xfe\x00\x01",
            100,
            Payload(
                b"\xff\xfe\x00\x01", False, 4, None, None, True, "the value is not UTF-8: invalid start byte at byte 0"
            ),
            id="binary",
        ),
        pytest.param(
            b"\x00\x00\x00\x00\x07\x02hi",
            100,
            Payload(b"\x00\x00\x00\x00\x07\x02hi", False, 8, None, None, True, NOT_JSON_AT_1),
            id="confluent-avro-framing-is-binary",
        ),
        pytest.param(
            b"line one\r\n\tline two",
            100,
            Payload(
                b"line one\r\n\tline two",
                False,
                19,
                None,
                "line one\r\n\tline two",
                False,
                NOT_JSON_AT_1,
            ),
            id="whitespace-controls-are-text",
        ),
        pytest.param(b"", 100, Payload(b"", False, 0, None, "", False, "the value is empty"), id="empty"),
        pytest.param(
            b"[" * 200_000,
            1024 * 1024,
            Payload(b"[" * 200_000, False, 200_000, None, "[" * 200_000, False, TOO_DEEP),
            id="200-kb-of-nesting",
        ),
        pytest.param(
            b"[" * 64 + b"]" * 64,
            1000,
            Payload(b"[" * 64 + b"]" * 64, False, 128, _nested(64), "[" * 64 + "]" * 64, False),
            id="64-deep-is-fine",
        ),
        pytest.param(
            b'{"a": "\x00"}',
            100,
            Payload(
                b'{"a": "\x00"}',
                False,
                10,
                None,
                None,
                True,
                "the value is not JSON: Invalid control character at: line 1 column 8 (char 7)",
            ),
            id="raw-nul-is-binary",
        ),
        pytest.param(
            b'{"n": 1e999}',
            100,
            Payload(
                b'{"n": 1e999}',
                False,
                12,
                None,
                '{"n": 1e999}',
                False,
                "the value is not JSON: a number is out of range",
            ),
            id="infinite-number",
        ),
        pytest.param(
            b'["\\ud800"]',
            100,
            Payload(b'["\\ud800"]', False, 10, None, '["\\ud800"]', False, LONE_SURROGATE),
            id="lone-surrogate",
        ),
        pytest.param(
            b'"a\x7fb"',
            100,
            Payload(b'"a\x7fb"', False, 5, None, None, True, "control characters: shown as binary"),
            id="json-with-delete-char-is-binary",
        ),
        pytest.param(
            b"abc", 0, Payload(b"", True, 3, None, "", False, "cut at 0 of 3 bytes: not read as JSON"), id="cap-zero"
        ),
        pytest.param(
            b"abc",
            -5,
            Payload(b"", True, 3, None, "", False, "cut at 0 of 3 bytes: not read as JSON"),
            id="negative-cap",
        ),
        pytest.param("[1]", 10, Payload(b"[1]", False, 3, [1], "[1]", False), id="str-tolerated"),
        pytest.param(
            bytearray(b"[1]"),
            10,
            Payload(b"[1]", False, 3, [1], "[1]", False),
            id="bytearray",
        ),
    ],
)
def test_decode_payload(value, cap, expected):
    assert decode_payload(value, cap) == expected


@pytest.mark.parametrize(
    ("topic", "source"),
    [
        ("orders.dlq", "orders"),
        ("orders.DLT", "orders"),
        ("orders-dlt", "orders"),
        ("orders:dlq", "orders"),
        ("orders_DLQ", "orders"),
        ("team.orders.v2.dlq", "team.orders.v2"),
        ("orders.DLT.DLT", "orders.DLT"),
        ("orders", None),
        ("dlq", None),
        (".dlq", None),
        ("orders.dlqx", None),
        ("orders-retry-0", None),
        ("", None),
    ],
)
def test_dead_letter_source(topic, source):
    assert dead_letter_source(topic) == source


@pytest.mark.parametrize(
    ("name", "patterns", "expected"),
    [
        ("orders.dlq", None, True),
        ("orders.DLT", None, True),
        ("orders-dlt", None, True),
        ("orders:dlq", None, True),
        ("orders.dlt", None, False),  # patterns are case-sensitive, like topic names
        ("orders", None, False),
        ("orders.failed", ["*.failed"], True),
        ("orders.dlq", ["*.failed"], False),
        ("orders.dlq", [], False),
    ],
)
def test_is_dead_letter_topic(name, patterns, expected):
    assert is_dead_letter_topic(name, patterns) is expected


# --------------------------------------------------------------------------- fuzz: hostile headers and payloads
_KNOWN_NAMES = sorted(
    {
        *EVENTHUB_HEADERS.values(),
        *h.SPRING_DEAD_LETTER_HEADERS,
        *(name for name, _ in CONFLUENT_ROWS),
        "kafka_deliveryattempt",
        "ce_id",
        "content-type",
    }
)
_names = st.sampled_from(_KNOWN_NAMES) | st.sampled_from(_KNOWN_NAMES).map(str.upper) | st.text(max_size=20)
_raw_values = st.none() | st.binary(max_size=40) | st.sampled_from([b"", b"-1", b"9" * 60, b"\x00" * 8, b"\xff" * 4])
# Anything a foreign producer or a broken adapter might hand over, not only (str, bytes) pairs.
_odd_values = st.text(max_size=10) | st.integers() | st.builds(bytearray, st.binary(max_size=8)) | st.just(object())
_items = (
    st.tuples(_names | st.binary(max_size=10), _raw_values | _odd_values) | st.just(("only-a-name",)) | st.integers()
)


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_names, _raw_values), max_size=15) | st.lists(_items, max_size=8) | st.binary())
def test_fuzz_header_decoding_never_raises(headers):
    meta = decode(headers)
    assert meta.convention in ("eventhub", "spring", "connect", "streams", "confluent", "unknown")
    assert all(isinstance(name, str) and isinstance(text, str) for name, text in meta.headers_decoded)
    assert all(isinstance(problem, str) for problem in meta.problems)


@settings(max_examples=300, deadline=None)
@given(
    content_type=st.sampled_from([b"application/cloudevents+json", b"application/cloudevents+json; charset=utf-8"]),
    value=st.none()
    | st.binary(max_size=200)
    | st.integers(1, 3000).map(lambda n: b"[" * n)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["id", "type", "data", "data_base64", "x"]), inner, max_size=4)
        ),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
)
def test_fuzz_structured_cloudevent_decoding_never_raises(content_type, value):
    meta = decode([("content-type", content_type)], value)
    assert meta.event_type is None or isinstance(meta.event_type, str)
    assert meta.event_id is None or isinstance(meta.event_id, str)


@settings(max_examples=300, deadline=None)
@given(
    value=st.none()
    | st.binary(max_size=200)
    | st.integers(1, 3000).map(lambda n: b"[" * n)
    | st.text(max_size=50).map(lambda t: json.dumps(t).encode()),
    cap=st.integers(-5, 300),
)
def test_fuzz_payload_decoding_never_raises(value, cap):
    payload = decode_payload(value, cap)
    assert len(payload.raw) <= max(0, cap)
    assert payload.json is None or payload.problem is None
