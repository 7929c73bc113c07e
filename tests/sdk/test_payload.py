"""The bus JSON decoder (eventhub/sdk/payload.py) and the SDK's header decoder, without a bus.

One row per kind of hostile value, then property tests: the depth check against a
plain reference, and fuzzing that no exception other than PayloadDecodeError escapes.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventhub.sdk import PayloadDecodeError, decode_json
from eventhub.sdk import headers as h
from eventhub.sdk.payload import MAX_BYTES, MAX_DEPTH, nesting_exceeds
from tests.waiting import returns_within

MB5 = 5 * 1024 * 1024


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "options", "expected"),
    [
        pytest.param(b'{"order_id": "o-1", "amount": 10}', {}, {"order_id": "o-1", "amount": 10}, id="object"),
        pytest.param(b"42", {}, 42, id="scalar"),
        pytest.param('{"name": "née"}', {}, {"name": "née"}, id="str-in"),
        pytest.param(bytearray(b"[1]"), {}, [1], id="bytearray"),
        pytest.param(memoryview(b"[1]"), {}, [1], id="memoryview"),
        pytest.param(b"[" * 64 + b"]" * 64, {}, nested(64), id="64-deep-is-the-default-limit"),
        pytest.param(b'["[[[[[[[[[[", "\\"[[[["]', {"max_depth": 1}, ["[[[[[[[[[[", '"[[[['], id="brackets-in-strings"),
        pytest.param(b'"\\ud83d\\ude00"', {}, "\N{GRINNING FACE}", id="surrogate-pair-escape"),
        pytest.param(b'"\\\\ud800"', {}, "\\ud800", id="escaped-backslash-is-not-an-escape"),
        pytest.param(b'{"a": "\\u0000"}', {}, {"a": "\x00"}, id="escaped-nul-is-json"),
        pytest.param(b"[1.5e308]", {}, [1.5e308], id="largest-finite"),
    ],
)
def test_values_it_takes(data, options, expected):
    assert decode_json(data, **options) == expected


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        pytest.param(None, {}, "the record has no value", id="tombstone"),
        pytest.param(b"", {}, "the value is empty", id="empty"),
        pytest.param(b"   ", {}, "the value is not JSON: Expecting value: line 1 column 4 (char 3)", id="blank"),
        pytest.param(
            b"[" * 200_000, {}, "the value nests arrays and objects deeper than 64 levels", id="200kb-nesting"
        ),
        pytest.param(
            b'{"a":' * 100_000, {}, "the value nests arrays and objects deeper than 64 levels", id="deep-objects"
        ),
        pytest.param(
            b"[" * 65 + b"]" * 65, {}, "the value nests arrays and objects deeper than 64 levels", id="65-deep"
        ),
        pytest.param(
            b"[[[]]]", {"max_depth": 2}, "the value nests arrays and objects deeper than 2 levels", id="own-limit"
        ),
        pytest.param(
            b'{"a": "caf\xe9"}', {}, "the value is not UTF-8: invalid continuation byte at byte 10", id="latin-1"
        ),
        pytest.param(
            b"\xff\xfe[\x001\x00]\x00", {}, "the value is not UTF-8: invalid start byte at byte 0", id="utf-16"
        ),
        pytest.param(b"\x00", {}, "the value is not JSON: Expecting value: line 1 column 1 (char 0)", id="nul-byte"),
        pytest.param(
            b'{"a": "x\x00y"}',
            {},
            "the value is not JSON: Invalid control character at: line 1 column 9 (char 8)",
            id="nul-in-string",
        ),
        pytest.param(b"[1] [2]", {}, "the value is not JSON: Extra data: line 1 column 5 (char 4)", id="two-values"),
        pytest.param(
            b"\xef\xbb\xbf[1]",
            {},
            "the value is not JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)",
            id="bom",
        ),
        pytest.param(b"[NaN]", {}, "the value is not JSON: NaN is not a JSON number", id="nan"),
        pytest.param(b"-Infinity", {}, "the value is not JSON: -Infinity is not a JSON number", id="infinity"),
        pytest.param(b"[1e999]", {}, "the value is not JSON: a number is out of range", id="overflow"),
        pytest.param(b"9" * 5000, {}, "the value is not JSON: an integer has too many digits", id="huge-integer"),
        pytest.param(
            b'{"\\udc00": 1}',
            {},
            "the value is not valid Unicode: a string holds a lone surrogate (\\ud800-\\udfff)",
            id="lone-surrogate-key",
        ),
        pytest.param(b"[1]", {"max_bytes": 2}, "the value is 3 bytes, over the limit of 2", id="over-the-limit"),
        pytest.param(
            b"[" + b"1," * (MB5 // 2) + b"1]",
            {},
            f"the value is {MB5 + 3} bytes, over the limit of {MAX_BYTES}",
            id="5mb",
        ),
        pytest.param(
            "\ud800", {}, "the value is not valid Unicode: surrogates not allowed at character 0", id="str-surrogate"
        ),
    ],
)
def test_values_it_refuses_and_why(data, options, message):
    with pytest.raises(PayloadDecodeError) as refused:
        returns_within(lambda: decode_json(data, **options), 30, "decode_json")
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)


def test_a_syntax_error_says_where():
    with pytest.raises(PayloadDecodeError) as refused:
        decode_json(b'{\n  "a": [1,\n}')
    assert (refused.value.line, refused.value.column, refused.value.detail) == (3, 1, "Expecting value")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"[" * MB5, id="5mb-of-openers"),
        pytest.param(b"[]" * (MB5 // 2), id="5mb-of-empty-arrays"),
        pytest.param(b"[" * 63 + b"[]" * (MB5 // 2) + b"]" * 63, id="5mb-at-depth-63"),
        pytest.param(b'["' + b'[{\\"' * (MB5 // 4) + b'"]', id="5mb-string-of-brackets-and-escapes"),
        pytest.param(b'"' + b'\\"' * (MB5 // 2), id="5mb-unterminated-escapes"),
        pytest.param(b"[" + b'{"a":[1,{"b":[2]}]},' * (MB5 // 20) + b"1]", id="5mb-of-objects"),
    ],
)
def test_five_megabytes_are_decided_without_recursion(data):
    """Big hostile values within a raised size limit: an answer, never RecursionError or a hang.

    (How fast: bench/. The deadline only guards against a hang.)
    """
    try:
        returns_within(lambda: decode_json(data, max_bytes=len(data)), 60, "decode_json on 5 MB")
    except PayloadDecodeError:
        pass


# --------------------------------------------------------------------------- properties
def reference_depth(data: bytes) -> int:
    """The deepest a JSON parser reading `data` gets, written the obvious (slow) way.

    It stops where a parser must stop: at a backslash outside a string.
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x5C:
            break
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


bracket_soup = st.lists(
    st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b",", b"1", b":"]), max_size=60
).map(b"".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(data=bracket_soup, limit=st.integers(0, 8))
def test_depth_check_never_counts_less_than_a_parser_reaches(data, limit):
    exceeds = nesting_exceeds(data, limit)
    if reference_depth(data) > limit:
        assert exceeds
    elif exceeds:  # more only where the parser stops at an error before it gets that deep
        with pytest.raises(ValueError):
            json.loads(data)


@settings(max_examples=300, deadline=None)
@given(value=json_values, extra=st.integers(0, 3))
def test_valid_json_is_decoded_exactly_when_within_the_depth(value, extra):
    data = json.dumps(value).encode()
    depth = reference_depth(data)
    if depth + extra <= MAX_DEPTH:
        assert decode_json(data, max_depth=depth + extra) == json.loads(data)
    if depth:
        with pytest.raises(PayloadDecodeError):
            decode_json(data, max_depth=depth - 1)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        bracket_soup,
        json_values.map(lambda v: json.dumps(v).encode()),
        st.tuples(json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode()), st.binary(max_size=4)).map(
            lambda pair: pair[0][: len(pair[0]) // 2] + pair[1] + pair[0][len(pair[0]) // 2 :]
        ),
        st.text(max_size=200).map(str.encode),
        st.integers(1, 3000).map(lambda n: b"[" * n),
    ),
    max_bytes=st.integers(0, 4096),
    max_depth=st.integers(0, 100),
)
def test_fuzz_decode_json_raises_only_payload_decode_error(data, max_bytes, max_depth):
    try:
        decode_json(data, max_bytes=max_bytes, max_depth=max_depth)
    except PayloadDecodeError as error:
        assert str(error) and "\x00" not in str(error)


header_names = st.text(max_size=30)
header_values = st.none() | st.binary(max_size=60) | st.text(max_size=30).map(str.encode)


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(header_names, header_values), max_size=12))
def test_fuzz_sdk_header_decoding_never_raises(headers):
    decoded = h.decode_headers(headers)
    assert set(decoded) == {name for name, _ in headers}
    for name, value in decoded.items():
        last = [raw for key, raw in headers if key == name][-1]  # a repeated name keeps its last value
        if isinstance(value, str):
            assert value.encode("utf-8") == last
        else:
            assert value == last  # not UTF-8 (or null): the bytes as they came
