"""The plain functions that turn a record into columns: table-driven, no database, no bus."""

from __future__ import annotations

import pytest

from eventhub.bus import Record
from eventstore import columns

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("traceparent", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f" 00-{TRACE}-00f067aa0ba902b7-00 ", TRACE),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future-fields", TRACE),
        (f"ff-{TRACE}-00f067aa0ba902b7-01", ""),  # version ff is invalid
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", ""),  # all-zero trace id
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", ""),  # upper case is not allowed
        (f"00-{TRACE[:-1]}-00f067aa0ba902b7-01", ""),
        ("", ""),
        ("garbage", ""),
    ],
)
def test_trace_id(traceparent, expected):
    assert columns.trace_id(traceparent) == expected


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (None, ""),
        (b"", ""),
        (b"o-1", "o-1"),
        (b"tab\there", "tab\ufffdhere"),
        (b"\xff\x00a", "\ufffd\ufffda"),
        (b"x" * 500, "x" * 100),
        ("é".encode() * 150, "é" * 100),
    ],
)
def test_key_text_is_short_and_printable(key, text):
    assert columns.key_text(key) == text


def test_key_hash():
    assert columns.key_hash(None) == ""
    assert columns.key_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert columns.key_hash(b"o-1") != columns.key_hash(b"o-2")


@pytest.mark.parametrize(
    ("headers", "text", "number"),
    [
        ([], "", None),
        ([("x-eventhub-schema-version", b"3")], "3", 3),
        ([("x-eventhub-schema-version", b" 12 ")], "12", 12),
        ([("x-eventhub-schema-version", b"-1")], "-1", None),
        ([("x-eventhub-schema-version", b"\xff")], "\ufffd", None),
        ([("x-eventhub-schema-version", b"9" * 30)], "9" * 20, None),
        ([("x-eventhub-schema-version", b"1\x002")], "1\ufffd2", None),
        ([("x-eventhub-schema-version", b"1"), ("x-eventhub-schema-version", b"2")], "2", 2),  # the last wins
        ([("X-EventHub-Schema-Version", b"2")], "", None),  # case-sensitive, as the SDK writes it
    ],
)
def test_headers(headers, text, number):
    record = Record("t", 0, 0, None, None, headers)
    assert columns.header_text(record, "x-eventhub-schema-version", 20) == text
    assert columns.header_int(record, "x-eventhub-schema-version") == number


def test_sampling_is_deterministic_and_near_the_rate():
    for rate in (0.1, 0.5, 0.9):
        kept = [columns.sampled("orders", 0, offset, rate) for offset in range(10_000)]
        assert abs(sum(kept) / len(kept) - rate) < 0.03
        assert kept == [columns.sampled("orders", 0, offset, rate) for offset in range(10_000)]
    assert all(columns.sampled("orders", 0, offset, 1.0) for offset in range(100))
    assert not any(columns.sampled("orders", 0, offset, 0.0) for offset in range(100))
    # A lower rate keeps a subset of what a higher one keeps.
    assert all(columns.sampled("o", 0, f"1-{n}", 0.5) for n in range(2000) if columns.sampled("o", 0, f"1-{n}", 0.2))


def test_matches_is_case_sensitive():
    assert columns.matches("orders.dlq", ["*.dlq"]) and not columns.matches("orders.DLQ", ["*.dlq"])
    assert not columns.matches("orders", [])
