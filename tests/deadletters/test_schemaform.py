"""deadletters.schemaform: JSON Schema -> form fields -> payload, and problems located on fields. No database."""

from __future__ import annotations

import pytest

from deadletters import schemaform as sf
from tests.listening import CountingServer
from tests.waiting import returns_within

ORDER = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string", "description": "The order."},
        "amount": {"type": "number", "minimum": 0},
        "count": {"type": "integer"},
        "paid": {"type": "boolean"},
        "currency": {"enum": ["EUR", "USD"]},
        "customer": {"$ref": "#/$defs/customer"},
        "lines": {"type": "array", "items": {"type": "string"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "$defs": {
        "customer": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "tier": {"type": ["string", "null"]}},
            "additionalProperties": False,
        }
    },
}


def kinds(schema) -> list[tuple[str, str, bool, bool, str]]:
    return [(s.name, s.kind, s.required, s.nullable, s.reason) for s in sf.walk(sf.build(schema).fields)]


# --------------------------------------------------------------------------- schema -> specs
def test_an_order_schema_becomes_fields():
    assert kinds(ORDER) == [
        ("f/order_id", "string", True, False, ""),
        ("f/amount", "number", True, False, ""),
        ("f/count", "integer", False, False, ""),
        ("f/paid", "boolean", False, False, ""),
        ("f/currency", "enum", False, False, ""),
        ("f/customer", "object", False, False, ""),
        ("f/customer/name", "string", True, False, ""),
        ("f/customer/tier", "string", False, True, ""),
        ("f/lines", "json", False, False, "a list"),
        ("f/note", "string", False, True, ""),
    ]


@pytest.mark.parametrize(
    ("node", "kind", "nullable", "reason"),
    [
        ({"type": "string", "format": "date-time"}, "string", False, ""),
        ({"type": ["integer", "null"]}, "integer", True, ""),
        ({"enum": ["a", None]}, "enum", True, ""),
        ({"const": 3}, "enum", False, ""),
        ({"type": "array"}, "json", False, "a list"),
        ({"type": "object"}, "json", False, "an object with free-form keys"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "json", False, "an object with free-form keys"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "json", False, "several shapes are allowed (oneOf/anyOf/allOf)"),
        ({"oneOf": [{"$ref": "#/$defs/s"}, {"type": "null"}]}, "string", True, ""),
        ({"type": ["string", "integer"]}, "json", False, "one of string, integer"),
        ({}, "json", False, "any type"),
        (True, "json", False, "any value"),
        ({"$ref": "#/$defs/missing"}, "json", False, "$ref #/$defs/missing cannot be followed here"),
        ({"$ref": "https://example.com/x.json"}, "json", False, "$ref https://example.com/x.json cannot be followed here"),
        ({"type": "bytes"}, "json", False, "unknown type bytes"),
    ],
)  # fmt: skip
def test_each_kind_of_property(node, kind, nullable, reason):
    schema = {"type": "object", "properties": {"x": node}, "$defs": {"s": {"type": "string"}}}
    [spec] = sf.build(schema).fields
    assert (spec.kind, spec.nullable, spec.reason) == (kind, nullable, reason)


def test_recursive_refs_stop_at_the_loop():
    schema = {
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/node"}}}},
    }  # fmt: skip
    assert kinds(schema) == [
        ("f/tree", "object", False, False, ""),
        ("f/tree/name", "string", False, False, ""),
        ("f/tree/child", "json", False, False, "refers back to itself (#/$defs/node)"),
    ]


def test_depth_and_size_limits_fall_back_to_json():
    deep: dict = {"type": "string"}
    for level in range(sf.MAX_DEPTH + 2):
        deep = {"type": "object", "properties": {f"l{level}": deep}}
    specs = list(sf.walk(sf.build(deep).fields))
    assert specs[-1].kind == "json" and specs[-1].reason == "nested too deep for a form"
    wide = {"type": "object", "properties": {f"p{n}": {"type": "string"} for n in range(sf.MAX_FIELDS + 5)}}
    assert sf.build(wide).reason.startswith("The schema describes nested too deep")


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "array"}, "The schema describes a list; edit the payload as JSON."),
        ({"type": "object"}, "The schema describes an object with free-form keys; edit the payload as JSON."),
        ({"type": "string"}, "The schema describes the payload is not an object; edit the payload as JSON."),
    ],
)
def test_a_root_that_is_not_an_object_with_properties_has_no_form(schema, reason):
    form = sf.build(schema)
    assert (form.available, form.reason) == (False, reason)


def test_names_round_trip_any_property_name():
    schema = {"type": "object", "properties": {"a/b": {"type": "object", "properties": {"~x y": {"type": "string"}}}}}
    [outer] = sf.build(schema).fields
    assert (outer.name, outer.children[0].name) == ("f/a~1b", "f/a~1b/~0x y")
    assert outer.children[0].json_path == "$['a/b']['~x y']"


# --------------------------------------------------------------------------- payload <-> values
PAYLOAD = {
    "order_id": "o-1",
    "amount": "twelve",  # the failing value: shown as it is
    "count": 3,
    "paid": True,
    "currency": "GBP",
    "customer": {"name": "Ann", "tier": None, "extra": 1},
    "lines": ["a", "b"],
    "note": None,
    "source": "web",  # not in the schema
}


def test_initial_values_show_the_payload_as_text():
    values = sf.initial(sf.build(ORDER), PAYLOAD)
    assert values == {
        "f/order_id": "o-1",
        "f/amount": "twelve",
        "f/count": "3",
        "f/paid": "true",
        "f/currency": '"GBP"',
        "f/customer/name": "Ann",
        "null:f/customer/tier": True,
        "f/lines": '[\n  "a",\n  "b"\n]',
        "null:f/note": True,
    }


def test_unchanged_values_give_back_the_payload_minus_nothing():
    form = sf.build(ORDER)
    values = sf.initial(form, PAYLOAD)
    values["f/amount"] = "12.5"
    payload, errors = sf.to_payload(form, values, PAYLOAD)
    assert errors == {}
    assert payload == {**PAYLOAD, "amount": 12.5}
    assert sf.extra_keys(form, PAYLOAD) == ["$.customer.extra", "$.source"]


@pytest.mark.parametrize(
    ("name", "text", "value", "error"),
    [
        ("f/amount", "12", 12, None),
        ("f/amount", " -0.5 ", -0.5, None),
        ("f/amount", "1e3", 1000.0, None),
        ("f/amount", "twelve", None, "Enter a number."),
        ("f/amount", "nan", None, "Enter a finite number (JSON has no NaN or Infinity)."),
        ("f/count", "7", 7, None),
        ("f/count", "7.0", None, "Enter a whole number."),
        ("f/paid", "false", False, None),
        ("f/paid", "yes", None, "Choose true or false."),
        ("f/currency", '"USD"', "USD", None),
        ("f/currency", '"GBP"', "GBP", None),  # kept on purpose; the schema check says why it is wrong
        ("f/currency", "USD", None, "Pick one of the listed values."),
        ("f/lines", '["x"]', ["x"], None),
        ("f/lines", "[1,", None, "Invalid JSON at line 1, column 4: Expecting value."),
        ("f/lines", "[" * 200_000, None, "The JSON nests arrays and objects deeper than 64 levels."),
        ("f/lines", "[NaN]", None, "Invalid JSON: NaN is not a JSON number."),
        ("f/count", "9" * 5000, None, "Enter a whole number."),  # int() would raise past 4300 digits
        ("f/amount", "9" * 5000, None, "Enter a finite number (JSON has no NaN or Infinity)."),
        ("f/order_id", "  spaced  ", "  spaced  ", None),
    ],
)
def test_each_value_is_read_by_its_kind(name, text, value, error):
    form = sf.build(ORDER)
    payload, errors = sf.to_payload(form, {name: text}, {})
    key = name.split("/")[-1]
    assert errors.get(name) == error
    assert payload.get(key) == value and (key in payload) == (error is None)


def test_empty_boxes_leave_keys_out_and_objects_appear_when_needed():
    form = sf.build(ORDER)
    assert sf.to_payload(form, {"f/order_id": "", "f/paid": ""}, {}) == ({}, {})
    # An optional object with nothing in it stays out; one the payload had stays (empty).
    assert sf.to_payload(form, {}, {"customer": {"name": "Ann"}})[0] == {"customer": {}}
    assert sf.to_payload(form, {"f/customer/name": "Bo"}, {})[0] == {"customer": {"name": "Bo"}}
    # The null checkbox wins over the box.
    assert sf.to_payload(form, {"f/note": "x", "null:f/note": "on"}, {})[0] == {"note": None}


# --------------------------------------------------------------------------- problems on fields
def test_problems_point_at_their_fields():
    form = sf.build(ORDER)
    payload = {"amount": -1, "customer": {"tier": 3, "zzz": 1}, "lines": ["a", 2]}
    found = sf.problems(ORDER, payload)
    located = sorted(
        (problem.json_path, (sf.field_for(form, problem.path) or sf.FieldSpec("-", (), "")).name, problem.message)
        for problem in found
    )
    assert located == [
        ("$.amount", "f/amount", "-1 is less than the minimum of 0"),
        ("$.customer", "f/customer", "Additional properties are not allowed ('zzz' was unexpected)"),
        ("$.customer.name", "f/customer/name", "'name' is a required property"),
        ("$.customer.tier", "f/customer/tier", "3 is not of type 'string', 'null'"),
        ("$.lines[1]", "f/lines", "2 is not of type 'string'"),
        ("$.order_id", "f/order_id", "'order_id' is a required property"),
    ]


def test_problems_checks_formats_and_reports_a_broken_schema():
    schema = {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}}
    [problem] = sf.problems(schema, {"to": "nobody"})
    assert (problem.json_path, problem.message) == ("$.to", "'nobody' is not a 'email'")
    [broken] = sf.problems({"type": "object", "properties": {"x": {"type": 5}}}, {})
    assert broken.path == () and broken.message.startswith("The schema itself is invalid:")
    assert sf.problems(ORDER, {"order_id": "o", "amount": 1}) == []


def test_problems_answer_on_a_backtracking_pattern():
    schema = {"type": "object", "patternProperties": {"^(a|a)*b$": {}}, "additionalProperties": False}
    found = returns_within(lambda: sf.problems(schema, {"a" * 40: 1}), 10, "problems with ^(a|a)*b$")
    assert found == [sf.SchemaProblem((), f"'{'a' * 40}' does not match any of the regexes: '^(a|a)*b$'")]


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ({"$ref": "REMOTE"}, "#/properties/customer/$ref"),
        ({"type": "string", "pattern": "(?<!x)y"}, "#/properties/customer/pattern"),
    ],
    ids=["remote $ref", "lookbehind"],
)
def test_a_schema_that_cannot_run_safely_is_reported_not_fetched(node, path):
    """Stored before registration refused it: said once, at the root; nothing fetched."""
    with CountingServer() as remote:
        node = {key: remote.url("customer.json") if value == "REMOTE" else value for key, value in node.items()}
        schema = {"type": "object", "properties": {"customer": node}}
        [problem] = sf.problems(schema, {"customer": 5})
        assert remote.connections == 0
    assert problem.path == ()
    assert problem.message.startswith(f"The schema cannot be checked here: {path}: ")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("$", ()),
        ("$.amount", ("amount",)),
        ("$['first name'].x[0]", ("first name", "x", 0)),
        ("$['it\\'s']", ("it's",)),
        ("amount", None),
        ("$.", None),
    ],
)
def test_json_paths_round_trip(text, parts):
    assert sf.parse_json_path(text) == parts
    if parts is not None:
        assert sf.json_path(parts) == text


def test_choice_options_offer_the_current_value_when_it_is_not_allowed():
    currency = next(s for s in sf.build(ORDER).fields if s.name == "f/currency")
    assert sf.options(currency, '"EUR"') == [("", "(not set)"), ('"EUR"', "EUR"), ('"USD"', "USD")]
    assert sf.options(currency, '"GBP"')[-1] == ('"GBP"', '"GBP" (current, not allowed)')
    paid = next(s for s in sf.build(ORDER).fields if s.name == "f/paid")
    assert sf.options(paid) == [("", "(not set)"), ("true", "true"), ("false", "false")]
