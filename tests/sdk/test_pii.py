"""Sensitive fields (x-eventhub-pii): found in the schema, masked in payloads. No database."""

from __future__ import annotations

import copy

import pytest

from eventhub.sdk.pii import (
    ANY,
    MASK,
    HiddenValueMissing,
    hidden_values,
    json_path,
    locations,
    mask,
    pii_paths,
    restore,
    scrub,
)
from tests.waiting import returns_within

PII = {"x-eventhub-pii": True}
STR = {"type": "string"}


def obj(**properties) -> dict:
    return {"type": "object", "properties": properties}


ORDER = obj(
    order_id=STR,
    customer=obj(name=STR, email={**STR, **PII}),
    lines={"type": "array", "items": obj(sku=STR, card={**STR, **PII})},
)
PAYLOAD = {
    "order_id": "o-1",
    "customer": {"name": "Ann", "email": "ann@example.com"},
    "lines": [{"sku": "a", "card": "4111 1111"}, {"sku": "b"}, {"sku": "c", "card": None}],
}

# (id, schema, expected paths)
PATH_CASES = [
    ("no mark", obj(a=STR), []),
    ("a mark that is not true", obj(a={**STR, "x-eventhub-pii": "yes"}), []),
    ("nested and in arrays", ORDER, [("customer", "email"), ("lines", ANY, "card")]),
    ("the root", {**obj(a=STR), **PII}, [()]),
    ("a marked object hides what is inside", obj(c={**obj(email={**STR, **PII}), **PII}), [("c",)]),
    (
        "through $ref",
        {**obj(card={"$ref": "#/$defs/card"}), "$defs": {"card": {**STR, **PII}}},
        [("card",)],
    ),
    (
        "through a draft-07 definitions $ref with an escaped name",
        {**obj(c={"$ref": "#/definitions/a~1b"}), "definitions": {"a/b": obj(ssn={**STR, **PII})}},
        [("c", "ssn")],
    ),
    ("a remote $ref is not followed", obj(c={"$ref": "https://example.com/s.json"}, d={**STR, **PII}), [("d",)]),
    ("a branch of anyOf", obj(contact={"anyOf": [obj(phone={**STR, **PII}), STR]}), [("contact", "phone")]),
    ("allOf and then", {"allOf": [obj(a={**STR, **PII})], "if": STR, "then": obj(b=PII)}, [("a",), ("b",)]),
    ("tuple items", obj(pair={"type": "array", "items": [STR, {**STR, **PII}]}), [("pair", 1)]),
    ("prefixItems", obj(pair={"type": "array", "prefixItems": [PII]}), [("pair", 0)]),
    ("additionalProperties", obj(m={"type": "object", "additionalProperties": PII}), [("m", ANY)]),
    ("patternProperties", obj(m={"type": "object", "patternProperties": {"^x": PII}}), [("m", ANY)]),
    ("nested arrays", obj(g={"type": "array", "items": {"type": "array", "items": PII}}), [("g", ANY, ANY)]),
]


@pytest.mark.parametrize(("schema", "expected"), [row[1:] for row in PATH_CASES], ids=[row[0] for row in PATH_CASES])
def test_pii_paths(schema, expected):
    assert pii_paths(schema) == expected


def test_a_recursive_schema_is_followed_a_few_levels_then_masked_whole():
    node = obj(name={**STR, **PII}, children={"type": "array", "items": {"$ref": "#/$defs/node"}})
    paths = pii_paths({"$ref": "#/$defs/node", "$defs": {"node": node}})
    assert paths == [
        ("name",),
        ("children", ANY, "name"),
        ("children", ANY, "children", ANY, "name"),
        ("children", ANY, "children", ANY, "children", ANY),  # deeper: all of it
    ]
    deep = {"name": "a", "children": [{"name": "b", "children": [{"name": "c", "children": [{"name": "d"}]}]}]}
    assert mask(deep, paths) == {
        "name": MASK,
        "children": [{"name": MASK, "children": [{"name": MASK, "children": [MASK]}]}],
    }


def test_a_recursive_schema_without_marks_below_is_not_masked_whole():
    node = obj(id=STR, children={"type": "array", "items": {"$ref": "#/$defs/node"}})
    schema = {**obj(secret=PII, root={"$ref": "#/$defs/node"}), "$defs": {"node": node}}
    assert pii_paths(schema) == [("secret",)]


def test_an_exploding_schema_gives_up_quickly_and_masks_everything():
    # Each definition refers to the previous one twice: 2**40 walks if nothing stopped it.
    defs = {"d0": {**STR, **PII}}
    for n in range(1, 41):
        defs[f"d{n}"] = {"allOf": [{"$ref": f"#/$defs/d{n - 1}"}, {"$ref": f"#/$defs/d{n - 1}"}]}
    schema = {"$ref": "#/$defs/d40", "$defs": defs}
    assert returns_within(lambda: pii_paths(schema), 5, "pii_paths on 2**40 refs") == [()]
    assert mask({"anything": 1}, [()]) == MASK


def test_a_deep_schema_does_not_overflow_the_stack():
    schema = PII
    for _ in range(5000):
        schema = {"type": "array", "items": schema}
    assert pii_paths(schema) == [()]  # deeper than any payload: the walk gives up, masking all


# --------------------------------------------------------------------------- masking
def test_mask_replaces_marked_values_nested_and_in_arrays_and_leaves_the_rest():
    before = copy.deepcopy(PAYLOAD)
    masked = mask(PAYLOAD, pii_paths(ORDER))
    assert masked == {
        "order_id": "o-1",
        "customer": {"name": "Ann", "email": MASK},
        "lines": [{"sku": "a", "card": MASK}, {"sku": "b"}, {"sku": "c", "card": MASK}],
    }
    assert PAYLOAD == before  # a copy: the stored payload is untouched


# (id, payload, paths, expected)
MASK_CASES = [
    ("nothing marked", {"a": 1}, [], {"a": 1}),
    ("an absent key stays absent", {"a": 1}, [("b",)], {"a": 1}),
    (
        "null, objects and arrays whole",
        {"a": None, "b": {"c": 1}, "d": [1]},
        [("a",), ("b",), ("d",)],
        {"a": MASK, "b": MASK, "d": MASK},
    ),
    (
        "another shape than the schema's",
        {"customer": "Ann", "lines": {"card": 1}},
        [("customer", "email"), ("lines", 0)],
        {"customer": "Ann", "lines": {"card": 1}},
    ),
    ("ANY on an object's values", {"m": {"x": 1, "y": 2}}, [("m", ANY)], {"m": {"x": MASK, "y": MASK}}),
    ("a position", {"p": [1, 2]}, [("p", 1), ("p", 5)], {"p": [1, MASK]}),
    ("a key is not a position", {"p": {"0": 1}}, [("p", 0)], {"p": {"0": 1}}),
    ("the root", [1, 2], [()], MASK),
    ("inside a masked value", {"c": {"e": 1}}, [("c", "e"), ("c",)], {"c": MASK}),
]


@pytest.mark.parametrize(
    ("payload", "paths", "expected"), [row[1:] for row in MASK_CASES], ids=[row[0] for row in MASK_CASES]
)
def test_mask(payload, paths, expected):
    assert mask(payload, paths) == expected


def test_locations_and_hidden_values():
    paths = pii_paths(ORDER)
    assert [json_path(place) for place in locations(PAYLOAD, paths)] == [
        "$.customer.email",
        "$.lines[0].card",
        "$.lines[2].card",
    ]
    assert hidden_values(PAYLOAD, paths) == ["ann@example.com", "4111 1111", None]


# --------------------------------------------------------------------------- editing a masked payload
def test_restore_puts_back_what_came_back_masked_and_keeps_what_was_typed():
    paths = pii_paths(ORDER)
    edited = mask(PAYLOAD, paths)
    edited["order_id"] = "o-2"  # the fix
    edited["lines"][0]["card"] = "5555 4444"  # typed anew: writing is not reading
    restored = restore(edited, PAYLOAD, paths)
    assert restored == {
        "order_id": "o-2",
        "customer": {"name": "Ann", "email": "ann@example.com"},
        "lines": [{"sku": "a", "card": "5555 4444"}, {"sku": "b"}, {"sku": "c", "card": None}],
    }
    assert MASK not in str(restored)


def test_restore_leaves_a_removed_field_out():
    edited = {"order_id": "o-1", "customer": {"name": "Ann"}}
    assert restore(edited, PAYLOAD, pii_paths(ORDER)) == edited


def test_restore_refuses_a_mask_that_stands_for_nothing():
    edited = mask(PAYLOAD, pii_paths(ORDER))
    edited["lines"].append({"sku": "d", "card": MASK})  # copied from a masked line
    with pytest.raises(HiddenValueMissing) as refused:
        restore(edited, PAYLOAD, pii_paths(ORDER))
    assert refused.value.locations == [("lines", 3, "card")]
    assert str(refused.value).startswith("$.lines[3].card: ••• stands for a hidden value")


def test_restore_refuses_a_mask_when_the_original_was_not_json():
    with pytest.raises(HiddenValueMissing):
        restore(MASK, None, [()], original_is_json=False)


def test_restore_of_the_whole_payload():
    assert restore(MASK, PAYLOAD, [()]) == PAYLOAD


# --------------------------------------------------------------------------- messages
# (id, message, hidden values, expected)
SCRUB_CASES = [
    ("a quoted string", "'4111 1111' does not match '^[0-9]{16}$'", ["4111 1111"], "••• does not match '^[0-9]{16}$'"),
    (
        "inside an object's repr",
        "{'email': 'ann@example.com', 'name': 'Ann'} is not valid",
        ["ann@example.com"],
        "{'email': •••, 'name': 'Ann'} is not valid",
    ),
    ("as JSON", 'got "ann@example.com"', ["ann@example.com"], "got •••"),
    ("a bare number whole only", "5 is less than the minimum of 50", [5], "••• is less than the minimum of 50"),
    ("nothing hidden", "'x' is too short", [], "'x' is too short"),
    ("a mask is not a value", "'•••' is not a 'email'", [MASK], "'•••' is not a 'email'"),
]


@pytest.mark.parametrize(
    ("message", "values", "expected"), [row[1:] for row in SCRUB_CASES], ids=[row[0] for row in SCRUB_CASES]
)
def test_scrub(message, values, expected):
    assert scrub(message, values) == expected


@pytest.mark.parametrize(
    ("location", "text"),
    [
        ((), "$"),
        (("a", 0, "b"), "$.a[0].b"),
        (("lines", ANY, "card"), "$.lines[*].card"),
        (("first name",), "$['first name']"),
    ],
)
def test_json_path(location, text):
    assert json_path(location) == text
