"""validate_schema decides with jsonschema-rs and explains with jsonschema: the two must agree.

One row per schema: the verdict of validate_schema against python-jsonschema's own
metaschema check (the behaviour before the fast path), on every dialect we accept.
"""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path

import pytest
from jsonschema.exceptions import best_match

from designer.compat import _DIALECTS, SchemaError, _dialect_entry, validate_schema
from tests.requirements import require

CASES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "confluent-json-schema-diff"
DIALECTS = sorted(_DIALECTS)

EDGES = [
    True,
    False,
    {"type": "strin"},
    {"type": []},
    {"type": ["string", "string"]},
    {"required": "id"},
    {"required": ["a", "a"]},
    {"minLength": -1},
    {"minLength": 1.0},
    {"minLength": 1.5},
    {"minLength": 2**70},
    {"multipleOf": 0},
    {"enum": []},
    {"enum": [1, 1.0]},
    {"items": []},
    {"items": 3},
    {"properties": []},
    {"properties": {"a": True, "b": False}},
    {"additionalProperties": "no"},
    {"pattern": 5},
    {"pattern": "\\p{L}+"},  # ECMA 262, not Python re: valid
    {"format": "nonsense"},
    {"exclusiveMaximum": True},
    {"exclusiveMinimum": 3},
    {"dependencies": {"a": 3}},
    {"$ref": 3},
    {"anyOf": {}},
    {"allOf": []},
    {"title": 1},
    {"$defs": []},
    {"prefixItems": {}},
    {"dependentRequired": {"a": [1]}},
    {"type": "object", "properties": {"id": {"type": "string", "maxLength": 36}}, "required": ["id"]},
]
BAD_VALUES = [
    ("type", "strin"),
    ("required", "x"),
    ("minLength", -1),
    ("properties", []),
    ("items", 3),
    ("enum", []),
    ("maximum", "1"),
    ("uniqueItems", "yes"),
    ("allOf", []),
    ("const", None),
]


def _python_verdict(schema) -> bool:
    validator_cls = _dialect_entry(schema)[1]
    return best_match(validator_cls(validator_cls.META_SCHEMA).iter_errors(schema)) is None


def _verdict(schema) -> bool:
    try:
        validate_schema(schema)
    except SchemaError as error:
        return "not a valid JSON Schema" not in str(error)  # a bad local $ref is another check
    return True


def _in_dialect(schema, dialect: str):
    return {**schema, "$schema": dialect} if isinstance(schema, dict) else schema


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("schema", EDGES, ids=lambda s: json.dumps(s)[:40])
def test_edge_cases_agree(schema, dialect):
    schema = _in_dialect(schema, dialect)
    assert _verdict(schema) == _python_verdict(schema)


def _mutations(schema, rng: random.Random, count: int):
    """Copies of `schema` with one keyword somewhere set to an invalid value."""
    for _ in range(count):
        mutated = copy.deepcopy(schema)
        nodes = [mutated]
        for node in nodes:
            for value in node.values():
                if isinstance(value, dict):
                    nodes.append(value)
                elif isinstance(value, list):
                    nodes += [v for v in value if isinstance(v, dict)]
        keyword, value = rng.choice(BAD_VALUES)
        rng.choice(nodes)[keyword] = value
        yield mutated


def test_confluent_cases_and_their_mutations_agree():
    require(CASES_DIR.is_dir(), f"Confluent conformance cases not found at {CASES_DIR}")
    rng = random.Random(7)
    schemas = []
    for path in sorted(CASES_DIR.glob("diff-*.json")):
        text = re.sub(r",(\s*[}\]])", r"\1", path.read_text(encoding="utf-8"))
        for case in json.loads(text):
            schemas += [case["original_schema"], case["update_schema"]]
    checked = invalid = 0
    for schema in schemas:
        if not isinstance(schema, dict) or _dialect_entry(schema) is None:
            continue
        for candidate in [schema, *_mutations(schema, rng, 3)]:
            expected = _python_verdict(candidate)
            assert _verdict(candidate) == expected, json.dumps(candidate)[:300]
            checked += 1
            invalid += not expected
    assert checked > 1000 and invalid > 500  # the mutations did produce invalid schemas
