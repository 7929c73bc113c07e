"""designer.fieldtree: a JSON Schema as the fields a reader sees. Plain logic, no database."""

import pytest

from designer import fieldtree


def by_path(schema) -> dict[str, fieldtree.Field]:
    return {f.path: f for f in fieldtree.iter_fields(fieldtree.build(schema))}


ORDER = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["order_id", "total"],
    "additionalProperties": False,
    "properties": {
        "order_id": {"type": "string", "format": "uuid", "description": "The order."},
        "status": {"type": "string", "enum": ["placed", "paid"], "default": "placed"},
        "total": {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 0}, "currency": {"type": "string"}},
        },
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
        "note": {"type": ["string", "null"], "maxLength": 200},
    },
}


def test_fields_paths_types_required_and_details():
    fields = by_path(ORDER)
    order_id = fields["#/properties/order_id"]
    assert (order_id.name, order_id.data_path, order_id.types, order_id.required) == (
        "order_id",
        "order_id",
        ["string"],
        True,
    )
    assert order_id.format == "uuid" and order_id.description == "The order."
    status = fields["#/properties/status"]
    assert status.enum == ["placed", "paid"] and status.has_default and status.default == "placed"
    assert not status.required
    amount = fields["#/properties/total/properties/amount"]
    assert amount.data_path == "total.amount" and amount.required and amount.constraints == {"minimum": 0}
    assert not fields["#/properties/total/properties/currency"].required
    assert fields["#/properties/lines/items/properties/sku"].data_path == "lines[].sku"
    assert fields["#/properties/note"].type_label == "string | null"
    assert fieldtree.build(ORDER).root.closed


def test_rows_are_depth_first_with_indentation():
    rows = fieldtree.rows(fieldtree.build(ORDER))
    assert [(r.field.name, r.depth) for r in rows] == [
        ("order_id", 0), ("status", 0), ("total", 0), ("amount", 1), ("currency", 1),
        ("lines", 0), ("[]", 1), ("sku", 2), ("note", 0),
    ]  # fmt: skip


def test_refs_resolve_inside_the_document():
    schema = {
        "definitions": {"money": {"type": "object", "properties": {"amount": {"type": "integer"}}}},
        "$defs": {"a/b": {"type": "string", "description": "escaped pointer"}},
        "properties": {
            "price": {"$ref": "#/definitions/money"},
            "weird": {"$ref": "#/$defs/a~1b"},
            "described": {"$ref": "#/definitions/money", "description": "local text wins"},
        },
    }
    fields = by_path(schema)
    assert fields["#/properties/price"].types == ["object"]
    assert fields["#/properties/price"].ref == "#/definitions/money"
    assert fields["#/properties/price/properties/amount"].data_path == "price.amount"
    assert fields["#/properties/weird"].description == "escaped pointer"
    assert fields["#/properties/described"].description == "local text wins"


def test_anchor_refs_resolve():
    schema = {
        "$defs": {"id": {"$anchor": "ident", "type": "string", "format": "uuid"}},
        "properties": {"id": {"$ref": "#ident"}},
    }
    assert by_path(schema)["#/properties/id"].format == "uuid"


def test_recursive_refs_stop_instead_of_looping():
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
            }
        },
        "$ref": "#/$defs/node",
    }
    fields = by_path(schema)
    item = fields["#/properties/children/items"]
    assert item.recursive and item.ref == "#/$defs/node" and not item.children
    assert item.types == ["object"]
    assert len(fields) == 3


def test_mutual_and_self_refs_terminate():
    mutual = {
        "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
        "properties": {"x": {"$ref": "#/$defs/a"}},
    }
    assert by_path(mutual)["#/properties/x"].recursive
    itself = {"properties": {"again": {"$ref": "#"}}}
    assert by_path(itself)["#/properties/again"].recursive


def test_unresolved_and_remote_refs_are_marked_not_fatal():
    schema = {"properties": {"gone": {"$ref": "#/definitions/nope"}, "remote": {"$ref": "https://x.example/s.json"}}}
    fields = by_path(schema)
    assert fields["#/properties/gone"].unresolved and fields["#/properties/remote"].unresolved


def test_combinators_become_alternatives():
    schema = {
        "properties": {
            "payment": {
                "oneOf": [
                    {"type": "object", "title": "Card", "properties": {"last4": {"type": "string"}}},
                    {"type": "object", "title": "Bank", "properties": {"iban": {"type": "string"}}},
                ]
            },
            "both": {"allOf": [{"type": "string"}], "anyOf": [{"minLength": 1}, {"maxLength": 3}]},
        }
    }
    tree = fieldtree.build(schema)
    payment = tree.fields[0]
    assert payment.combinator == "oneOf" and payment.combinator_label == "exactly one of"
    assert [a.title for a in payment.alternatives] == ["Card", "Bank"]
    assert payment.alternatives[0].children[0].data_path == "payment.last4"
    assert payment.alternatives[1].path == "#/properties/payment/oneOf/1"
    both = tree.fields[1]
    assert both.combinator == "anyOf" or both.combinator == "allOf"
    assert {both.combinator, *(a.combinator for a in both.alternatives if a.combinator)} == {"allOf", "anyOf"}
    rows = fieldtree.rows(tree)
    assert [(r.field.name, r.option) for r in rows][:4] == [
        ("payment", False),
        ("option 1", True),
        ("last4", False),
        ("option 2", True),
    ]


def test_tuples_pattern_and_additional_properties():
    schema = {
        "properties": {
            "point": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]},
            "legacy": {"type": "array", "items": [{"type": "string"}]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "codes": {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}},
        }
    }
    fields = by_path(schema)
    assert fields["#/properties/point/prefixItems/1"].data_path == "point[1]"
    assert fields["#/properties/legacy/items/0"].name == "[0]"
    assert fields["#/properties/labels/additionalProperties"].types == ["string"]
    assert fields["#/properties/codes/patternProperties/^x-"].name == "/^x-/"


@pytest.mark.parametrize(
    ("schema", "types"),
    [
        ({"const": 3}, ["integer"]),
        ({"enum": ["a", None]}, ["string", "null"]),
        ({"properties": {}}, ["object"]),
        ({"items": {}}, ["array"]),
        ({}, []),
        (False, ["never"]),
    ],
)
def test_types_are_inferred_when_not_declared(schema, types):
    assert fieldtree.build({"properties": {"x": schema}}).fields[0].types == types


def test_boolean_and_empty_documents():
    assert fieldtree.build(True).fields == [] and fieldtree.build({}).fields == []


def test_huge_schemas_are_cut_short():
    wide = {"properties": {f"f{i}": {"type": "string"} for i in range(fieldtree.MAX_NODES + 50)}}
    tree = fieldtree.build(wide)
    assert tree.truncated
    assert len(list(fieldtree.iter_fields(tree))) == fieldtree.MAX_NODES - 1  # the root counts too
    # An exponential fan-out through shared refs still stops.
    fan = {"$defs": {"l0": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/l12"}}}
    for level in range(1, 13):
        fan["$defs"][f"l{level}"] = {
            "properties": {"a": {"$ref": f"#/$defs/l{level - 1}"}, "b": {"$ref": f"#/$defs/l{level - 1}"}}
        }
    tree = fieldtree.build(fan)
    assert tree.truncated and len(list(fieldtree.iter_fields(tree))) < fieldtree.MAX_NODES


def test_field_paths_lists_named_fields_once():
    assert fieldtree.field_paths(ORDER) == [
        "order_id", "status", "total", "total.amount", "total.currency", "lines", "lines[].sku", "note",
    ]  # fmt: skip
    one_of = {"properties": {"p": {"oneOf": [{"properties": {"a": {}}}, {"properties": {"a": {}, "b": {}}}]}}}
    assert fieldtree.field_paths(one_of) == ["p", "p.a", "p.b"]
