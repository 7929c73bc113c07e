"""The topic browser's record filters (eventhub/bus/filters.py): one row per case, no Django, no bus."""

from __future__ import annotations

import json

import pytest

from eventhub.bus import Record
from eventhub.bus.filters import FilterError, Filters, parse_field, parse_header, parse_key

CE_JSON = [("content-type", b"application/cloudevents+json")]


def rec(value: bytes | None = b"{}", key: bytes | None = None, headers=()) -> Record:
    return Record("t", 0, 0, key, value, list(headers))


def structured(event: dict) -> Record:
    return rec(json.dumps(event).encode(), headers=CE_JSON)


ORDER = json.dumps({"customer": {"id": "c-1", "vip": True}, "total": 12, "items": [{"sku": "A"}]}).encode()
BINARY_ORDER = rec(ORDER, key=b"order-1", headers=[("ce_type", b"shop.order.placed"), ("trace", b"abc")])

CASES = [
    # (case, filters, record, matches)
    ("no filter matches anything", Filters(), rec(b"\xff\x00 not json"), True),
    ("no filter matches a tombstone", Filters(), rec(None, key=b"k"), True),
    ("key exact", Filters(key=b"order-1"), BINARY_ORDER, True),
    ("key is not a prefix", Filters(key=b"order"), BINARY_ORDER, False),
    ("binary key", Filters(key=b"\x00\xff"), rec(key=b"\x00\xff"), True),
    ("key filter, record without key", Filters(key=b""), rec(key=None), False),
    ("header name:value", Filters(headers=(("trace", b"abc"),)), BINARY_ORDER, True),
    ("header other value", Filters(headers=(("trace", b"abd"),)), BINARY_ORDER, False),
    ("header missing", Filters(headers=(("nope", b"abc"),)), BINARY_ORDER, False),
    ("two headers both needed", Filters(headers=(("trace", b"abc"), ("ce_type", b"x"))), BINARY_ORDER, False),
    ("last header value wins", Filters(headers=(("d", b"2"),)), rec(headers=[("d", b"1"), ("d", b"2")]), True),
    ("non-UTF-8 header value", Filters(headers=(("bin", b"\xff\xfe"),)), rec(headers=[("bin", b"\xff\xfe")]), True),
    ("type, binary mode", Filters(type="shop.order.placed"), BINARY_ORDER, True),
    ("type, binary mode, other", Filters(type="shop.order.cancelled"), BINARY_ORDER, False),
    ("type, structured mode", Filters(type="shop.x"), structured({"type": "shop.x", "data": {}}), True),
    (
        "type, structured, content-type spelled otherwise",
        Filters(type="shop.x"),
        rec(
            json.dumps({"type": "shop.x"}).encode(),
            headers=[("Content-Type", b" Application/CloudEvents+JSON; charset=utf-8")],
        ),
        True,
    ),
    (
        "type, structured, content-type as text",
        Filters(type="shop.x"),
        rec(json.dumps({"type": "shop.x"}).encode(), headers=[("content-type", "application/cloudevents+json")]),
        True,
    ),
    ("type, structured mode, other", Filters(type="shop.x"), structured({"type": "shop.y", "data": {}}), False),
    (
        "type, structured, ce_type header ignored",
        Filters(type="shop.x"),
        rec(json.dumps({"type": "shop.y"}).encode(), headers=[*CE_JSON, ("ce_type", b"shop.x")]),
        False,
    ),
    ("type, structured, envelope not JSON", Filters(type="shop.x"), rec(b"{oops", headers=CE_JSON), False),
    ("type, structured, envelope is a list", Filters(type="shop.x"), rec(b"[1]", headers=CE_JSON), False),
    ("field string", Filters(fields=((("customer", "id"), "c-1"),)), BINARY_ORDER, True),
    ("field other string", Filters(fields=((("customer", "id"), "c-2"),)), BINARY_ORDER, False),
    ("field number as JSON text", Filters(fields=((("total",), "12"),)), BINARY_ORDER, True),
    ("field boolean as JSON text", Filters(fields=((("customer", "vip"), "true"),)), BINARY_ORDER, True),
    ("field list index", Filters(fields=((("items", "0", "sku"), "A"),)), BINARY_ORDER, True),
    ("field list index out of range", Filters(fields=((("items", "5", "sku"), "A"),)), BINARY_ORDER, False),
    ("field through a string", Filters(fields=((("customer", "id", "x"), "c"),)), BINARY_ORDER, False),
    ("field missing", Filters(fields=((("nope",), "1"),)), BINARY_ORDER, False),
    ("field in structured data", Filters(fields=((("a",), "1"),)), structured({"type": "t", "data": {"a": 1}}), True),
    (
        "field in data_base64",
        Filters(fields=((("a",), "1"),)),
        structured({"type": "t", "data_base64": "eyJhIjoxfQ=="}),
        True,
    ),
    ("field, value not JSON", Filters(fields=((("a",), "1"),)), rec(b'{"a": 1'), False),
    ("field, value not UTF-8", Filters(fields=((("a",), "1"),)), rec(b"\xff\xfe"), False),
    ("field, NUL bytes", Filters(fields=((("a",), "1"),)), rec(b"\x00\x00"), False),
    ("field, 5000 deep", Filters(fields=((("a",), "1"),)), rec(b"[" * 5000 + b"]" * 5000), False),
    ("field, tombstone", Filters(fields=((("a",), "1"),)), rec(None, key=b"k"), False),
    ("field, too big to decode", Filters(fields=((("a",), "1"),), max_bytes=10), rec(b'{"a": 1, "b": "long"}'), False),
    ("field spelled with escapes", Filters(fields=((("a",), "c-1"),)), rec(b'{"a": "\\u0063-1"}'), True),
    ("field decimal spelled otherwise", Filters(fields=((("a",), "100.0"),)), rec(b'{"a": 1e2}'), True),
    ("field value elsewhere in the bytes", Filters(fields=((("a",), "x"),)), rec(b'{"a": "y", "b": "x"}'), False),
    ("field empty string", Filters(fields=((("a",), ""),)), rec(b'{"a": ""}'), True),
    ("q in value", Filters(q="c-1"), BINARY_ORDER, True),
    ("q in key", Filters(q="der-1"), BINARY_ORDER, True),
    ("q in header value", Filters(q="abc"), BINARY_ORDER, True),
    ("q in header name", Filters(q="trac"), BINARY_ORDER, True),
    ("q nowhere", Filters(q="zzz"), BINARY_ORDER, False),
    ("q non-ASCII", Filters(q="é"), rec("café".encode()), True),
    ("q on a tombstone", Filters(q="k1"), rec(None, key=b"k1"), True),
    (
        "all filters together",
        Filters(
            key=b"order-1",
            headers=(("trace", b"abc"),),
            type="shop.order.placed",
            fields=((("customer", "id"), "c-1"),),
            q="sku",
        ),
        BINARY_ORDER,
        True,
    ),
    (
        "all but one",
        Filters(
            key=b"order-1",
            headers=(("trace", b"abc"),),
            type="shop.order.placed",
            fields=((("customer", "id"), "c-1"),),
            q="nope",
        ),
        BINARY_ORDER,
        False,
    ),
]


@pytest.mark.parametrize(("filters", "record", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches(filters, record, expected):
    assert filters.matches(record) is expected


PARSED = [
    (parse_key, "order-1", b"order-1"),
    (parse_key, "hex:00ff", b"\x00\xff"),
    (parse_key, "héllo", "héllo".encode()),
    (parse_header, "trace:abc", ("trace", b"abc")),
    (parse_header, "empty:", ("empty", b"")),
    (parse_header, "url:http://x", ("url", b"http://x")),
    (parse_header, "bin:hex:ff", ("bin", b"\xff")),
    (parse_field, "customer.id=c-1", (("customer", "id"), "c-1")),
    (parse_field, "a=b=c", (("a",), "b=c")),
    (parse_field, "total=", (("total",), "")),
]


@pytest.mark.parametrize(("parse", "text", "expected"), PARSED)
def test_parse(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_key, "hex:0"),
        (parse_key, "hex:zz"),
        (parse_key, "\ud800"),
        (parse_header, "no-colon"),
        (parse_header, ":value"),
        (parse_field, "no-equals"),
        (parse_field, "a..b=1"),
        (parse_field, "=1"),
        (parse_field, ".".join("a" * 40) + "=1"),
    ],
)
def test_parse_refuses(parse, text):
    with pytest.raises(FilterError):
        parse(text)
