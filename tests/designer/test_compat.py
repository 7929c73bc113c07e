"""The compatibility engine, one row per case. Plain functions, no database."""

import io
import json
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from designer import compat
from designer.compat import (
    Difference,
    SchemaError,
    check,
    diff,
    is_compatible,
    validate_schema,
)
from tests.waiting import returns_within

ROOT = Path(__file__).resolve().parents[2]
S2020 = "https://json-schema.org/draft/2020-12/schema"
S04 = "http://json-schema.org/draft-04/schema#"


def d2020(schema: dict) -> dict:
    return {"$schema": S2020, **schema}


def closed(**properties) -> dict:
    return {"type": "object", "properties": properties, "additionalProperties": False}


def tuple_of(*items, **extra) -> dict:
    return {"type": "array", "items": list(items), **extra}


STR = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}
RECURSIVE = {
    "type": "object",
    "properties": {"root": {"$ref": "#/definitions/node"}},
    "definitions": {
        "node": {
            "type": "object",
            "properties": {
                "value": INT,
                "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
            },
        }
    },
}
EMBEDDED_ID = {
    "$id": "http://example.com/a.json",
    "items": {"$ref": "b.json"},
    "definitions": {"b": {"$id": "b.json", **STR}},
}
RECURSIVE_CHANGED = json.loads(
    json.dumps(RECURSIVE).replace('"value": {"type": "integer"}', '"value": {"type": "string"}')
)


# (id, original, update, expected changes as "TYPE #/path", in order)
DIFF_CASES = [
    # metadata and kinds
    ("same schema", STR, STR, []),
    ("id", {"$id": "a"}, {"$id": "b"}, ["ID_CHANGED #/"]),
    ("id ignored in 2020-12", d2020({"$id": "a"}), d2020({"$id": "b"}), []),
    ("title", {"title": "a"}, {"title": "b"}, ["TITLE_CHANGED #/"]),
    (
        "description",
        {"description": "a"},
        {"description": "b"},
        ["DESCRIPTION_CHANGED #/"],
    ),
    (
        "default",
        {**STR, "default": "a"},
        {**STR, "default": "b"},
        ["DEFAULT_CHANGED #/"],
    ),
    ("default 1 equals 1.0", {**NUM, "default": 1}, {**NUM, "default": 1.0}, []),
    (
        "schema added",
        {"type": "array"},
        {"type": "array", "items": STR},
        ["SCHEMA_ADDED #/items"],
    ),
    (
        "schema removed",
        {"type": "array", "items": STR},
        {"type": "array"},
        ["SCHEMA_REMOVED #/items"],
    ),
    ("type extended", INT, NUM, ["TYPE_EXTENDED #/"]),
    ("type narrowed", NUM, INT, ["TYPE_NARROWED #/"]),
    ("type changed", STR, {"type": "object"}, ["TYPE_CHANGED #/"]),
    ("boolean type stays", {"type": "boolean"}, {"type": "boolean"}, []),
    ("anything to empty schema", STR, {}, []),
    ("anything to true", STR, True, []),
    ("false to anything", False, STR, []),
    ("anything to false", STR, False, ["TYPE_CHANGED #/"]),
    (
        "keywords without type",
        {"maxLength": 3},
        {"maxLength": 4},
        ["MAX_LENGTH_INCREASED #/maxLength"],
    ),
    # strings
    ("maxLength added", STR, {**STR, "maxLength": 5}, ["MAX_LENGTH_ADDED #/maxLength"]),
    (
        "maxLength removed",
        {**STR, "maxLength": 5},
        STR,
        ["MAX_LENGTH_REMOVED #/maxLength"],
    ),
    (
        "maxLength increased",
        {**STR, "maxLength": 5},
        {**STR, "maxLength": 6},
        ["MAX_LENGTH_INCREASED #/maxLength"],
    ),
    (
        "maxLength decreased",
        {**STR, "maxLength": 5},
        {**STR, "maxLength": 4},
        ["MAX_LENGTH_DECREASED #/maxLength"],
    ),
    ("minLength added", STR, {**STR, "minLength": 1}, ["MIN_LENGTH_ADDED #/minLength"]),
    (
        "minLength removed",
        {**STR, "minLength": 1},
        STR,
        ["MIN_LENGTH_REMOVED #/minLength"],
    ),
    (
        "minLength increased",
        {**STR, "minLength": 1},
        {**STR, "minLength": 2},
        ["MIN_LENGTH_INCREASED #/minLength"],
    ),
    (
        "minLength decreased",
        {**STR, "minLength": 2},
        {**STR, "minLength": 1},
        ["MIN_LENGTH_DECREASED #/minLength"],
    ),
    ("pattern added", STR, {**STR, "pattern": "^a"}, ["PATTERN_ADDED #/pattern"]),
    ("pattern removed", {**STR, "pattern": "^a"}, STR, ["PATTERN_REMOVED #/pattern"]),
    (
        "pattern changed",
        {**STR, "pattern": "^a"},
        {**STR, "pattern": "^b"},
        ["PATTERN_CHANGED #/pattern"],
    ),
    (
        "format is not compared",
        {**STR, "format": "email"},
        {**STR, "format": "uri"},
        [],
    ),
    # numbers
    ("maximum added", NUM, {**NUM, "maximum": 9}, ["MAXIMUM_ADDED #/maximum"]),
    ("maximum removed", {**NUM, "maximum": 9}, NUM, ["MAXIMUM_REMOVED #/maximum"]),
    (
        "maximum increased",
        {**NUM, "maximum": 9},
        {**NUM, "maximum": 9.5},
        ["MAXIMUM_INCREASED #/maximum"],
    ),
    (
        "maximum decreased",
        {**NUM, "maximum": 9},
        {**NUM, "maximum": 8},
        ["MAXIMUM_DECREASED #/maximum"],
    ),
    ("minimum added", NUM, {**NUM, "minimum": 0}, ["MINIMUM_ADDED #/minimum"]),
    ("minimum removed", {**NUM, "minimum": 0}, NUM, ["MINIMUM_REMOVED #/minimum"]),
    (
        "minimum increased",
        {**NUM, "minimum": 0},
        {**NUM, "minimum": 1},
        ["MINIMUM_INCREASED #/minimum"],
    ),
    (
        "minimum decreased",
        {**NUM, "minimum": 0},
        {**NUM, "minimum": -1},
        ["MINIMUM_DECREASED #/minimum"],
    ),
    (
        "exclusiveMaximum added",
        NUM,
        {**NUM, "exclusiveMaximum": 9},
        ["EXCLUSIVE_MAXIMUM_ADDED #/exclusiveMaximum"],
    ),
    (
        "exclusiveMaximum removed",
        {**NUM, "exclusiveMaximum": 9},
        NUM,
        ["EXCLUSIVE_MAXIMUM_REMOVED #/exclusiveMaximum"],
    ),
    (
        "exclusiveMaximum increased",
        {**NUM, "exclusiveMaximum": 9},
        {**NUM, "exclusiveMaximum": 10},
        ["EXCLUSIVE_MAXIMUM_INCREASED #/exclusiveMaximum"],
    ),
    (
        "exclusiveMaximum decreased",
        {**NUM, "exclusiveMaximum": 9},
        {**NUM, "exclusiveMaximum": 8},
        ["EXCLUSIVE_MAXIMUM_DECREASED #/exclusiveMaximum"],
    ),
    (
        "exclusiveMinimum added",
        NUM,
        {**NUM, "exclusiveMinimum": 0},
        ["EXCLUSIVE_MINIMUM_ADDED #/exclusiveMinimum"],
    ),
    (
        "exclusiveMinimum removed",
        {**NUM, "exclusiveMinimum": 0},
        NUM,
        ["EXCLUSIVE_MINIMUM_REMOVED #/exclusiveMinimum"],
    ),
    (
        "exclusiveMinimum increased",
        {**NUM, "exclusiveMinimum": 0},
        {**NUM, "exclusiveMinimum": 1},
        ["EXCLUSIVE_MINIMUM_INCREASED #/exclusiveMinimum"],
    ),
    (
        "exclusiveMinimum decreased",
        {**NUM, "exclusiveMinimum": 0},
        {**NUM, "exclusiveMinimum": -1},
        ["EXCLUSIVE_MINIMUM_DECREASED #/exclusiveMinimum"],
    ),
    (
        "draft-04 boolean exclusiveMaximum is not compared",
        {"$schema": S04, **NUM, "maximum": 9, "exclusiveMaximum": True},
        {"$schema": S04, **NUM, "maximum": 9},
        [],
    ),
    (
        "multipleOf added",
        NUM,
        {**NUM, "multipleOf": 2},
        ["MULTIPLE_OF_ADDED #/multipleOf"],
    ),
    (
        "multipleOf removed",
        {**NUM, "multipleOf": 2},
        NUM,
        ["MULTIPLE_OF_REMOVED #/multipleOf"],
    ),
    (
        "multipleOf expanded",
        {**NUM, "multipleOf": 2},
        {**NUM, "multipleOf": 6},
        ["MULTIPLE_OF_EXPANDED #/multipleOf"],
    ),
    (
        "multipleOf reduced",
        {**NUM, "multipleOf": 6},
        {**NUM, "multipleOf": 2},
        ["MULTIPLE_OF_REDUCED #/multipleOf"],
    ),
    (
        "multipleOf changed",
        {**NUM, "multipleOf": 2},
        {**NUM, "multipleOf": 3},
        ["MULTIPLE_OF_CHANGED #/multipleOf"],
    ),
    (
        "multipleOf decimals",
        {**NUM, "multipleOf": 0.1},
        {**NUM, "multipleOf": 0.3},
        ["MULTIPLE_OF_EXPANDED #/multipleOf"],
    ),
    # required
    (
        "required added",
        {"properties": {"a": STR}},
        {"properties": {"a": STR}, "required": ["a"]},
        ["REQUIRED_ATTRIBUTE_ADDED #/required/a"],
    ),
    (
        "required added with default",
        {"properties": {"a": STR}},
        {"properties": {"a": {**STR, "default": "x"}}, "required": ["a"]},
        [
            "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED #/required/a",
            "DEFAULT_CHANGED #/properties/a",
        ],
    ),
    (
        "required removed",
        {"properties": {"a": STR}, "required": ["a"]},
        {"properties": {"a": STR}},
        ["REQUIRED_ATTRIBUTE_REMOVED #/required/a"],
    ),
    # property counts
    ("maxProperties unchanged", {"maxProperties": 2}, {"maxProperties": 2}, []),
    (
        "maxProperties added",
        {"minProperties": 0},
        {"minProperties": 0, "maxProperties": 2},
        ["MAX_PROPERTIES_ADDED #/maxProperties"],
    ),
    (
        "maxProperties removed",
        {"properties": {}, "maxProperties": 2},
        {"properties": {}},
        ["MAX_PROPERTIES_REMOVED #/maxProperties"],
    ),
    (
        "maxProperties increased",
        {"maxProperties": 2},
        {"maxProperties": 3},
        ["MAX_PROPERTIES_INCREASED #/maxProperties"],
    ),
    (
        "maxProperties decreased",
        {"maxProperties": 2},
        {"maxProperties": 1},
        ["MAX_PROPERTIES_DECREASED #/maxProperties"],
    ),
    (
        "minProperties added",
        {"maxProperties": 5},
        {"maxProperties": 5, "minProperties": 1},
        ["MIN_PROPERTIES_ADDED #/minProperties"],
    ),
    (
        "minProperties removed",
        {"properties": {}, "minProperties": 1},
        {"properties": {}},
        ["MIN_PROPERTIES_REMOVED #/minProperties"],
    ),
    (
        "minProperties increased",
        {"minProperties": 1},
        {"minProperties": 2},
        ["MIN_PROPERTIES_INCREASED #/minProperties"],
    ),
    (
        "minProperties decreased",
        {"minProperties": 2},
        {"minProperties": 1},
        ["MIN_PROPERTIES_DECREASED #/minProperties"],
    ),
    (
        "empty properties is no constraint in 2020-12",
        d2020({"properties": {}, "minProperties": 1}),
        d2020({"properties": {}}),
        [],
    ),
    # additionalProperties
    (
        "additionalProperties added",
        {"properties": {}, "additionalProperties": False},
        {"properties": {}},
        ["ADDITIONAL_PROPERTIES_ADDED #/additionalProperties"],
    ),
    (
        "additionalProperties removed",
        {"additionalProperties": True},
        {"additionalProperties": False},
        ["ADDITIONAL_PROPERTIES_REMOVED #/additionalProperties"],
    ),
    (
        "additionalProperties extended",
        {"additionalProperties": STR},
        {"additionalProperties": True},
        ["ADDITIONAL_PROPERTIES_EXTENDED #/additionalProperties"],
    ),
    (
        "additionalProperties narrowed",
        {"additionalProperties": True},
        {"additionalProperties": STR},
        ["ADDITIONAL_PROPERTIES_NARROWED #/additionalProperties"],
    ),
    (
        "additionalProperties schema changed",
        {"additionalProperties": STR},
        {"additionalProperties": NUM},
        ["TYPE_CHANGED #/additionalProperties"],
    ),
    # dependencies
    (
        "dependency array added",
        {"dependencies": {}},
        {"dependencies": {"a": ["b"]}},
        ["DEPENDENCY_ARRAY_ADDED #/dependencies/a"],
    ),
    (
        "dependency array removed",
        {"dependencies": {"a": ["b"]}},
        {"dependencies": {}},
        ["DEPENDENCY_ARRAY_REMOVED #/dependencies/a"],
    ),
    (
        "dependency array extended",
        {"dependencies": {"a": ["b"]}},
        {"dependencies": {"a": ["b", "c"]}},
        ["DEPENDENCY_ARRAY_EXTENDED #/dependencies/a"],
    ),
    (
        "dependency array narrowed",
        {"dependencies": {"a": ["b", "c"]}},
        {"dependencies": {"a": ["c"]}},
        ["DEPENDENCY_ARRAY_NARROWED #/dependencies/a"],
    ),
    (
        "dependency array changed",
        {"dependencies": {"a": ["b"]}},
        {"dependencies": {"a": ["c"]}},
        ["DEPENDENCY_ARRAY_CHANGED #/dependencies/a"],
    ),
    (
        "dependentRequired in 2020-12",
        d2020({"dependentRequired": {"a": ["b"]}}),
        d2020({"dependentRequired": {"a": ["b", "c"]}}),
        ["DEPENDENCY_ARRAY_EXTENDED #/dependencies/a"],
    ),
    (
        "dependency schema added",
        {"dependencies": {}},
        {"dependencies": {"a": STR}},
        ["DEPENDENCY_SCHEMA_ADDED #/dependencies/a"],
    ),
    (
        "dependency schema removed",
        {"dependencies": {"a": STR}},
        {"dependencies": {}},
        ["DEPENDENCY_SCHEMA_REMOVED #/dependencies/a"],
    ),
    (
        "dependentSchemas changed in 2020-12",
        d2020({"dependentSchemas": {"a": {"required": ["b"]}}}),
        d2020({"dependentSchemas": {"a": {"required": ["b"], "maxProperties": 3}}}),
        ["MAX_PROPERTIES_ADDED #/dependencies/a/maxProperties"],
    ),
    # properties and content models
    (
        "optional property added to open model",
        {"properties": {"a": STR}},
        {"properties": {"a": STR, "b": NUM}},
        ["OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "required property added to open model",
        {"properties": {"a": STR}},
        {"properties": {"a": STR, "b": NUM}, "required": ["b"]},
        ["REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "required property with default added to open model",
        {"properties": {"a": STR}},
        {"properties": {"a": STR, "b": {**NUM, "default": 0}}, "required": ["b"]},
        ["REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "empty property added to open model",
        {"properties": {"a": STR}},
        {"properties": {"a": STR, "b": {}}},
        ["PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "optional property added to closed model",
        closed(a=STR),
        closed(a=STR, b=NUM),
        ["OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "required property added to closed model",
        closed(a=STR),
        {**closed(a=STR, b=NUM), "required": ["b"]},
        ["REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "required property with default added to closed model",
        closed(a=STR),
        {**closed(a=STR, b={**NUM, "default": 1}), "required": ["b"]},
        ["REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "property removed from open model",
        {"properties": {"a": STR, "b": NUM}},
        {"properties": {"a": STR}},
        ["PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "property removed from closed model",
        closed(a=STR, b=NUM),
        closed(a=STR),
        ["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b"],
    ),
    (
        "false property removed from closed model",
        closed(a=STR, b=False),
        closed(a=STR),
        ["PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL #/properties/b"],
    ),
    (
        "property removed, covered by additionalProperties",
        closed(a=STR, b=INT),
        {"properties": {"a": STR}, "additionalProperties": NUM},
        [
            "TYPE_EXTENDED #/properties/b",
            "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/b",
            "ADDITIONAL_PROPERTIES_ADDED #/additionalProperties",
        ],
    ),
    (
        "property removed, not covered by patternProperties",
        closed(a=STR, n_1=STR),
        {**closed(a=STR), "patternProperties": {"^n_": INT}},
        [
            "TYPE_CHANGED #/properties/n_1",
            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/n_1",
        ],
    ),
    (
        "property added, covered by patternProperties",
        {**closed(a=STR), "patternProperties": {"^n_": INT}},
        {**closed(a=STR, n_1=INT), "patternProperties": {"^n_": INT}},
        [
            "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/n_1",
            "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/n_1",
        ],
    ),
    (
        "property added, not covered by additionalProperties",
        {"properties": {"a": STR}, "additionalProperties": STR},
        {"properties": {"a": STR, "b": NUM}, "additionalProperties": STR},
        [
            "TYPE_CHANGED #/properties/b",
            "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/properties/b",
            "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b",
        ],
    ),
    (
        "properties listed in Confluent's (Java hash) order",
        {"properties": {"foo": STR}},
        {"properties": {"bar": STR}},
        [
            "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/bar",
            "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL #/properties/foo",
        ],
    ),
    (
        "nested property path",
        {"properties": {"a": {"properties": {"b": STR}}}},
        {"properties": {"a": {"properties": {"b": NUM}}}},
        ["TYPE_CHANGED #/properties/a/properties/b"],
    ),
    # unevaluatedProperties (2019-09 and later)
    (
        "unevaluatedProperties added",
        d2020({"properties": {"a": STR}, "unevaluatedProperties": False}),
        d2020({"properties": {"a": STR}}),
        ["UNEVALUATED_PROPERTIES_ADDED #/unevaluatedProperties"],
    ),
    (
        "unevaluatedProperties removed",
        d2020({"properties": {"a": STR}}),
        d2020({"properties": {"a": STR}, "unevaluatedProperties": False}),
        ["UNEVALUATED_PROPERTIES_REMOVED #/unevaluatedProperties"],
    ),
    (
        "unevaluatedProperties extended",
        d2020({"properties": {"a": STR}, "unevaluatedProperties": STR}),
        d2020({"properties": {"a": STR}, "unevaluatedProperties": True}),
        ["UNEVALUATED_PROPERTIES_EXTENDED #/unevaluatedProperties"],
    ),
    (
        "unevaluatedProperties narrowed",
        d2020({"properties": {"a": STR}}),
        d2020({"properties": {"a": STR}, "unevaluatedProperties": STR}),
        ["UNEVALUATED_PROPERTIES_NARROWED #/unevaluatedProperties"],
    ),
    (
        "unevaluatedProperties false closes the model",
        d2020({"properties": {"a": STR}, "unevaluatedProperties": False}),
        d2020({"properties": {"a": STR, "b": NUM}, "unevaluatedProperties": False}),
        ["OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/b"],
    ),
    (
        "unevaluatedProperties means nothing in draft-07",
        {"properties": {"a": STR}},
        {"properties": {"a": STR}, "unevaluatedProperties": False},
        [],
    ),
    # arrays
    (
        "maxItems added",
        {"type": "array"},
        {"type": "array", "maxItems": 3},
        ["MAX_ITEMS_ADDED #/maxItems"],
    ),
    (
        "maxItems removed",
        {"type": "array", "maxItems": 3},
        {"type": "array"},
        ["MAX_ITEMS_REMOVED #/maxItems"],
    ),
    (
        "maxItems increased",
        {"maxItems": 3},
        {"maxItems": 4},
        ["MAX_ITEMS_INCREASED #/maxItems"],
    ),
    (
        "maxItems decreased",
        {"maxItems": 3},
        {"maxItems": 2},
        ["MAX_ITEMS_DECREASED #/maxItems"],
    ),
    (
        "minItems added",
        {"type": "array"},
        {"type": "array", "minItems": 1},
        ["MIN_ITEMS_ADDED #/minItems"],
    ),
    (
        "minItems removed",
        {"type": "array", "minItems": 1},
        {"type": "array"},
        ["MIN_ITEMS_REMOVED #/minItems"],
    ),
    (
        "minItems increased",
        {"minItems": 1},
        {"minItems": 2},
        ["MIN_ITEMS_INCREASED #/minItems"],
    ),
    (
        "minItems decreased",
        {"minItems": 2},
        {"minItems": 1},
        ["MIN_ITEMS_DECREASED #/minItems"],
    ),
    (
        "uniqueItems added",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        ["UNIQUE_ITEMS_ADDED #/uniqueItems"],
    ),
    (
        "uniqueItems removed",
        {"type": "array", "uniqueItems": True},
        {"type": "array"},
        ["UNIQUE_ITEMS_REMOVED #/uniqueItems"],
    ),
    (
        "maxContains added",
        d2020({"contains": NUM}),
        d2020({"contains": NUM, "maxContains": 2}),
        ["MAX_CONTAINS_ADDED #/maxContains"],
    ),
    (
        "maxContains removed",
        d2020({"contains": NUM, "maxContains": 2}),
        d2020({"contains": NUM}),
        ["MAX_CONTAINS_REMOVED #/maxContains"],
    ),
    (
        "maxContains increased",
        d2020({"contains": NUM, "maxContains": 2}),
        d2020({"contains": NUM, "maxContains": 3}),
        ["MAX_CONTAINS_INCREASED #/maxContains"],
    ),
    (
        "maxContains decreased",
        d2020({"contains": NUM, "maxContains": 2}),
        d2020({"contains": NUM, "maxContains": 1}),
        ["MAX_CONTAINS_DECREASED #/maxContains"],
    ),
    (
        "minContains added",
        d2020({"maxItems": 5}),
        d2020({"maxItems": 5, "contains": NUM, "minContains": 2}),
        ["MIN_CONTAINS_ADDED #/minContains"],
    ),
    (
        "minContains removed",
        d2020({"contains": NUM, "minContains": 2}),
        d2020({"maxItems": 5}),
        ["MAX_ITEMS_ADDED #/maxItems", "MIN_CONTAINS_REMOVED #/minContains"],
    ),
    (
        "minContains 1 is the default",
        d2020({"contains": NUM, "minContains": 1}),
        d2020({"contains": NUM}),
        [],
    ),
    (
        "minContains increased",
        d2020({"contains": NUM, "minContains": 1}),
        d2020({"contains": NUM, "minContains": 2}),
        ["MIN_CONTAINS_INCREASED #/minContains"],
    ),
    (
        "minContains decreased",
        d2020({"contains": NUM, "minContains": 2}),
        d2020({"contains": NUM, "minContains": 0}),
        ["MIN_CONTAINS_DECREASED #/minContains"],
    ),
    (
        "additionalItems added",
        tuple_of(STR, additionalItems=False),
        tuple_of(STR),
        ["ADDITIONAL_ITEMS_ADDED #/additionalItems"],
    ),
    (
        "additionalItems removed",
        tuple_of(STR),
        tuple_of(STR, additionalItems=False),
        ["ADDITIONAL_ITEMS_REMOVED #/additionalItems"],
    ),
    (
        "additionalItems extended",
        tuple_of(STR, additionalItems=NUM),
        tuple_of(STR, additionalItems=True),
        ["ADDITIONAL_ITEMS_EXTENDED #/additionalItems"],
    ),
    (
        "additionalItems narrowed",
        tuple_of(STR),
        tuple_of(STR, additionalItems=NUM),
        ["ADDITIONAL_ITEMS_NARROWED #/additionalItems"],
    ),
    (
        "items false in 2020-12 closes the array",
        d2020({"prefixItems": [STR], "items": True}),
        d2020({"prefixItems": [STR], "items": False}),
        ["ADDITIONAL_ITEMS_REMOVED #/additionalItems"],
    ),
    (
        "unevaluatedItems added",
        d2020({"prefixItems": [STR], "unevaluatedItems": False}),
        d2020({"prefixItems": [STR]}),
        ["UNEVALUATED_ITEMS_ADDED #/unevaluatedItems"],
    ),
    (
        "unevaluatedItems removed",
        d2020({"prefixItems": [STR]}),
        d2020({"prefixItems": [STR], "unevaluatedItems": False}),
        ["UNEVALUATED_ITEMS_REMOVED #/unevaluatedItems"],
    ),
    (
        "unevaluatedItems extended",
        d2020({"prefixItems": [STR], "unevaluatedItems": NUM}),
        d2020({"prefixItems": [STR]}),
        ["UNEVALUATED_ITEMS_EXTENDED #/unevaluatedItems"],
    ),
    (
        "unevaluatedItems narrowed",
        d2020({"prefixItems": [STR], "unevaluatedItems": True}),
        d2020({"prefixItems": [STR], "unevaluatedItems": NUM}),
        ["UNEVALUATED_ITEMS_NARROWED #/unevaluatedItems"],
    ),
    ("tuple item changed", tuple_of(STR), tuple_of(NUM), ["TYPE_CHANGED #/items/0"]),
    (
        "item added to open array",
        tuple_of(STR),
        tuple_of(STR, NUM),
        ["ITEM_ADDED_TO_OPEN_CONTENT_MODEL #/items/1"],
    ),
    (
        "empty item added to open array",
        tuple_of(STR),
        tuple_of(STR, True),
        ["ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL #/items/1"],
    ),
    (
        "item added to closed array",
        tuple_of(STR, additionalItems=False),
        tuple_of(STR, NUM, additionalItems=False),
        ["ITEM_ADDED_TO_CLOSED_CONTENT_MODEL #/items/1"],
    ),
    (
        "item removed from open array",
        tuple_of(STR, NUM),
        tuple_of(STR),
        ["ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL #/items/1"],
    ),
    (
        "item removed from closed array",
        tuple_of(STR, NUM, additionalItems=False),
        tuple_of(STR, additionalItems=False),
        ["ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL #/items/1"],
    ),
    (
        "false item removed from closed array",
        tuple_of(STR, False, additionalItems=False),
        tuple_of(STR, additionalItems=False),
        ["ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL #/items/1"],
    ),
    (
        "item removed, covered by additionalItems",
        tuple_of(STR, STR, additionalItems=STR),
        tuple_of(STR, additionalItems=STR),
        ["ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1"],
    ),
    (
        "item removed, not covered by additionalItems",
        tuple_of(STR, NUM, additionalItems=STR),
        tuple_of(STR, additionalItems=STR),
        [
            "TYPE_CHANGED #/items/1",
            "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1",
        ],
    ),
    (
        "item added, covered by additionalItems",
        tuple_of(STR, additionalItems=INT),
        tuple_of(STR, NUM, additionalItems=INT),
        [
            "TYPE_EXTENDED #/items/1",
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1",
        ],
    ),
    (
        "item added, not covered by additionalItems",
        tuple_of(STR, additionalItems=STR),
        tuple_of(STR, NUM, additionalItems=STR),
        [
            "TYPE_CHANGED #/items/1",
            "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1",
        ],
    ),
    (
        "item added, covered by unevaluatedItems (2020-12)",
        d2020({"prefixItems": [STR], "unevaluatedItems": STR}),
        d2020({"prefixItems": [STR, STR], "unevaluatedItems": STR}),
        ["ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL #/items/1"],
    ),
    # enum and const
    (
        "enum extended",
        {"enum": ["a"]},
        {"enum": ["a", "b"]},
        ["ENUM_ARRAY_EXTENDED #/enum"],
    ),
    (
        "enum narrowed",
        {"enum": ["a", "b"]},
        {"enum": ["a"]},
        ["ENUM_ARRAY_NARROWED #/enum"],
    ),
    ("enum changed", {"enum": ["a"]}, {"enum": ["b"]}, ["ENUM_ARRAY_CHANGED #/enum"]),
    ("enum order is irrelevant", {"enum": ["a", 1]}, {"enum": [1.0, "a"]}, []),
    ("const changed", {"const": "a"}, {"const": "b"}, ["ENUM_ARRAY_CHANGED #/const"]),
    (
        "const equal objects",
        {"const": {"x": 1, "y": 2}},
        {"const": {"y": 2, "x": 1}},
        [],
    ),
    # combinations
    (
        "oneOf to anyOf",
        {"oneOf": [STR, NUM]},
        {"anyOf": [STR, NUM]},
        ["COMBINED_TYPE_EXTENDED #/"],
    ),
    (
        "anyOf to allOf",
        {"anyOf": [STR, NUM]},
        {"allOf": [STR, NUM]},
        ["COMBINED_TYPE_CHANGED #/"],
    ),
    (
        "allOf branch added",
        {"allOf": [STR]},
        {"allOf": [STR, {"maxLength": 3}]},
        ["PRODUCT_TYPE_EXTENDED #/"],
    ),
    (
        "allOf branch dropped",
        {"allOf": [STR, {"maxLength": 3}]},
        {"allOf": [STR]},
        ["PRODUCT_TYPE_NARROWED #/"],
    ),
    (
        "oneOf branch added",
        {"oneOf": [STR]},
        {"oneOf": [NUM, STR]},
        ["SUM_TYPE_EXTENDED #/"],
    ),
    (
        "oneOf branch dropped",
        {"oneOf": [NUM, STR]},
        {"oneOf": [STR]},
        ["SUM_TYPE_NARROWED #/"],
    ),
    (
        "branches changed",
        {"anyOf": [STR, NUM]},
        {"anyOf": [STR, {"type": "boolean"}]},
        ["COMBINED_TYPE_SUBSCHEMAS_CHANGED #/"],
    ),
    (
        "branch details keep the original index",
        {"anyOf": [NUM, {**STR, "maxLength": 3}]},
        {"anyOf": [{**STR, "maxLength": 5}, NUM]},
        ["MAX_LENGTH_INCREASED #/anyOf/1/maxLength"],
    ),
    ("duplicate branches collapse", {"allOf": [STR, STR]}, {"allOf": [STR]}, []),
    (
        "schema wrapped in a union",
        {**STR, "maxLength": 3},
        {"anyOf": [NUM, STR]},
        ["MAX_LENGTH_REMOVED #/maxLength", "SUM_TYPE_EXTENDED #/"],
    ),
    ("schema wrapped in a singleton allOf", STR, {"allOf": [STR]}, []),
    ("schema into a two-branch allOf", STR, {"allOf": [NUM, STR]}, ["TYPE_CHANGED #/"]),
    (
        "type list extended",
        {"type": ["string"]},
        {"type": ["string", "null"]},
        ["SUM_TYPE_EXTENDED #/"],
    ),
    (
        "type list narrowed",
        {"type": ["string", "null"]},
        {"type": "string"},
        ["TYPE_CHANGED #/"],
    ),
    (
        "enum dropped next to its type",
        {**STR, "enum": ["a"]},
        STR,
        ["PRODUCT_TYPE_NARROWED #/"],
    ),
    ("not narrowed", {"not": NUM}, {"not": INT}, ["NOT_TYPE_NARROWED #/not"]),
    ("not extended", {"not": INT}, {"not": NUM}, ["NOT_TYPE_EXTENDED #/not"]),
    # references
    (
        "ref target changed",
        {"properties": {"a": {"$ref": "#/definitions/t"}}, "definitions": {"t": STR}},
        {"properties": {"a": {"$ref": "#/definitions/t"}}, "definitions": {"t": NUM}},
        ["TYPE_CHANGED #/properties/a"],
    ),
    (
        "moved behind a ref",
        STR,
        {"$ref": "#/definitions/t", "definitions": {"t": STR}},
        [],
    ),
    (
        "draft-07 ref hides its siblings",
        {"$ref": "#/definitions/t", "definitions": {"t": STR}},
        {"$ref": "#/definitions/t", "maxLength": 1, "definitions": {"t": STR}},
        [],
    ),
    (
        "$defs and an anchor in 2020-12",
        d2020({"$ref": "#name", "$defs": {"t": {"$anchor": "name", **STR}}}),
        d2020({"$ref": "#/$defs/t", "$defs": {"t": {**STR, "maxLength": 2}}}),
        ["MAX_LENGTH_ADDED #/maxLength"],
    ),
    (
        "ref into an embedded $id",
        EMBEDDED_ID,
        {**EMBEDDED_ID, "definitions": {"b": {"$id": "b.json", **NUM}}},
        ["TYPE_CHANGED #/items"],
    ),
    ("remote ref accepts anything", STR, {"$ref": "http://example.com/other.json"}, []),
    ("recursive schema against itself", RECURSIVE, RECURSIVE, []),
    (
        "change inside a recursive schema",
        RECURSIVE,
        RECURSIVE_CHANGED,
        ["TYPE_CHANGED #/properties/root/properties/value"],
    ),
    (
        "ref to the root",
        {"properties": {"next": {"$ref": "#"}}},
        {"properties": {"next": {"$ref": "#"}}},
        [],
    ),
    ("ref to itself", {"$ref": "#"}, {"$ref": "#"}, []),
]


@pytest.mark.parametrize(
    ("original", "update", "expected"),
    [row[1:] for row in DIFF_CASES],
    ids=[row[0] for row in DIFF_CASES],
)
def test_diff(original, update, expected):
    assert [str(d) for d in diff(original, update)] == expected


def test_every_emitted_change_type_has_a_row():
    covered = {change.split()[0] for *_, changes in DIFF_CASES for change in changes}
    # Confluent still lists the type but no longer reports it (split into OPTIONAL_/REQUIRED_...).
    deprecated = {"PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"}
    assert set(compat._COMPATIBLE) - deprecated - covered == set()


# Confluent's STRICT allowlist, written out again so an edit to the engine's table shows up here.
STRICT_COMPATIBLE = {
    "ID_CHANGED", "DESCRIPTION_CHANGED", "TITLE_CHANGED", "DEFAULT_CHANGED", "SCHEMA_REMOVED",
    "TYPE_EXTENDED", "MAX_LENGTH_INCREASED", "MAX_LENGTH_REMOVED", "MIN_LENGTH_DECREASED",
    "MIN_LENGTH_REMOVED", "PATTERN_REMOVED", "MAXIMUM_INCREASED", "MAXIMUM_REMOVED",
    "MINIMUM_DECREASED", "MINIMUM_REMOVED", "EXCLUSIVE_MAXIMUM_INCREASED",
    "EXCLUSIVE_MAXIMUM_REMOVED", "EXCLUSIVE_MINIMUM_DECREASED", "EXCLUSIVE_MINIMUM_REMOVED",
    "MULTIPLE_OF_REDUCED", "MULTIPLE_OF_REMOVED", "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED",
    "REQUIRED_ATTRIBUTE_REMOVED", "DEPENDENCY_ARRAY_NARROWED", "DEPENDENCY_ARRAY_REMOVED",
    "DEPENDENCY_SCHEMA_REMOVED", "MAX_PROPERTIES_INCREASED", "MAX_PROPERTIES_REMOVED",
    "MIN_PROPERTIES_DECREASED", "MIN_PROPERTIES_REMOVED", "ADDITIONAL_PROPERTIES_ADDED",
    "ADDITIONAL_PROPERTIES_EXTENDED", "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL",
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "UNEVALUATED_PROPERTIES_ADDED",
    "UNEVALUATED_PROPERTIES_EXTENDED", "MAX_ITEMS_INCREASED", "MAX_ITEMS_REMOVED",
    "MIN_ITEMS_DECREASED", "MIN_ITEMS_REMOVED", "MAX_CONTAINS_INCREASED", "MAX_CONTAINS_REMOVED",
    "MIN_CONTAINS_DECREASED", "MIN_CONTAINS_REMOVED", "UNIQUE_ITEMS_REMOVED",
    "ADDITIONAL_ITEMS_ADDED", "ADDITIONAL_ITEMS_EXTENDED", "UNEVALUATED_ITEMS_ADDED",
    "UNEVALUATED_ITEMS_EXTENDED", "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL",
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL", "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", "ENUM_ARRAY_EXTENDED",
    "COMBINED_TYPE_EXTENDED", "PRODUCT_TYPE_NARROWED", "SUM_TYPE_EXTENDED", "NOT_TYPE_NARROWED",
}  # fmt: skip
LENIENT_ADDITIONS = {
    "ADDITIONAL_PROPERTIES_NARROWED", "ADDITIONAL_PROPERTIES_REMOVED",
    "UNEVALUATED_PROPERTIES_NARROWED", "UNEVALUATED_PROPERTIES_REMOVED",
    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
}  # fmt: skip


@pytest.mark.parametrize("change_type", sorted(compat._COMPATIBLE))
def test_policies(change_type):
    change = [Difference(change_type, "#/x")]
    assert is_compatible(change, "STRICT") is (change_type in STRICT_COMPATIBLE)
    assert is_compatible(change, "LENIENT") is (change_type in STRICT_COMPATIBLE | LENIENT_ADDITIONS)


# (id, changes, STRICT verdict, LENIENT verdict)
VERDICT_CASES = [
    ("nothing changed", [], True, True),
    ("all allowed", ["TITLE_CHANGED", "SUM_TYPE_EXTENDED"], True, True),
    ("one breaking change wins", ["TITLE_CHANGED", "TYPE_CHANGED"], False, False),
    (
        "lenient-only change",
        ["OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"],
        False,
        True,
    ),
    ("unknown type is breaking", ["SOMETHING_NEW"], False, False),
]


@pytest.mark.parametrize(
    ("types", "strict", "lenient"),
    [r[1:] for r in VERDICT_CASES],
    ids=[r[0] for r in VERDICT_CASES],
)
def test_is_compatible(types, strict, lenient):
    changes = [Difference(t, "#/") for t in types]
    assert is_compatible(changes) is strict
    assert is_compatible(changes, "STRICT") is strict
    assert is_compatible(changes, "lenient") is lenient


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="policy"):
        is_compatible([], "LOOSE")


def test_policy_steers_nested_decisions():
    # The union branch only counts as compatible when the policy accepts the nested change.
    original = {"properties": {"a": STR}}
    update = {"oneOf": [{"type": "null"}, {"properties": {"a": STR, "b": NUM}}]}
    assert [str(d) for d in diff(original, update)] == ["TYPE_CHANGED #/"]
    assert [str(d) for d in diff(original, update, policy="LENIENT")] == [
        "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/b",
        "SUM_TYPE_EXTENDED #/",
    ]


def max_len(n: int, **extra) -> dict:
    return {"type": "string", "maxLength": n, **extra}


# (id, mode, policy, previous, candidate, compatible, [(type, version)], against_versions)
MODE_CASES = [
    ("none accepts anything", "NONE", "STRICT", [(1, STR)], NUM, True, [], []),
    ("no previous version", "BACKWARD", "STRICT", [], NUM, True, [], []),
    (
        "backward checks the latest only",
        "BACKWARD",
        "STRICT",
        [(1, max_len(30)), (2, max_len(10))],
        max_len(20),
        True,
        [("MAX_LENGTH_INCREASED", 2)],
        [2],
    ),
    (
        "backward transitive checks all, newest first",
        "BACKWARD_TRANSITIVE",
        "STRICT",
        [(1, max_len(30)), (2, max_len(10))],
        max_len(20),
        False,
        [("MAX_LENGTH_INCREASED", 2), ("MAX_LENGTH_DECREASED", 1)],
        [2, 1],
    ),
    (
        "forward diffs candidate to latest",
        "FORWARD",
        "STRICT",
        [(1, max_len(10)), (2, max_len(30))],
        max_len(20),
        True,
        [("MAX_LENGTH_INCREASED", 2)],
        [2],
    ),
    (
        "forward transitive",
        "FORWARD_TRANSITIVE",
        "STRICT",
        [(1, max_len(10)), (2, max_len(30))],
        max_len(20),
        False,
        [("MAX_LENGTH_INCREASED", 2), ("MAX_LENGTH_DECREASED", 1)],
        [2, 1],
    ),
    (
        "full needs both directions",
        "FULL",
        "STRICT",
        [(1, max_len(10))],
        max_len(20),
        False,
        [("MAX_LENGTH_INCREASED", 1), ("MAX_LENGTH_DECREASED", 1)],
        [1],
    ),
    (
        "full with a metadata change",
        "FULL",
        "STRICT",
        [(1, max_len(10)), (2, max_len(20))],
        max_len(20, description="d"),
        True,
        [("DESCRIPTION_CHANGED", 2), ("DESCRIPTION_CHANGED", 2)],
        [2],
    ),
    (
        "full transitive",
        "FULL_TRANSITIVE",
        "STRICT",
        [(1, max_len(10)), (2, max_len(20))],
        max_len(20, description="d"),
        False,
        [
            ("DESCRIPTION_CHANGED", 2),
            ("DESCRIPTION_CHANGED", 2),
            ("DESCRIPTION_CHANGED", 1),
            ("MAX_LENGTH_INCREASED", 1),
            ("DESCRIPTION_CHANGED", 1),
            ("MAX_LENGTH_DECREASED", 1),
        ],
        [2, 1],
    ),
    (
        "lenient accepts a property added to an open model",
        "BACKWARD",
        "LENIENT",
        [(1, {"properties": {"a": STR}})],
        {"properties": {"a": STR, "b": NUM}},
        True,
        [("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", 1)],
        [1],
    ),
    (
        "strict refuses it",
        "BACKWARD",
        "STRICT",
        [(1, {"properties": {"a": STR}})],
        {"properties": {"a": STR, "b": NUM}},
        False,
        [("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", 1)],
        [1],
    ),
    (
        "mode names are case-insensitive",
        "backward",
        "strict",
        [(1, STR)],
        STR,
        True,
        [],
        [1],
    ),
]


@pytest.mark.parametrize(
    ("mode", "policy", "previous", "candidate", "compatible", "changes", "against"),
    [row[1:] for row in MODE_CASES],
    ids=[row[0] for row in MODE_CASES],
)
def test_check(mode, policy, previous, candidate, compatible, changes, against):
    result = check(candidate, previous, mode=mode, policy=policy)
    assert result.compatible is compatible
    assert result.mode == mode.upper() and result.policy == policy.upper()
    assert [(c["type"], c["version"]) for c in result.to_dict()["changes"]] == changes
    assert result.against_versions == against


def test_check_result_as_dict():
    result = check(closed(a=STR), [(4, closed(a=STR, b=NUM))], mode="FULL")
    assert result.to_dict() == {
        "compatible": False,
        "changes": [
            {
                "type": "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                "path": "#/properties/b",
                "reason": "Property 'b' was removed from a closed object; old data that contains it is rejected.",
                "version": 4,
            },
            {
                "type": "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
                "path": "#/properties/b",
                "reason": "Forward check (data written with the new schema, read with version 4): "
                "Optional property 'b' was added to a closed object; old data cannot contain it, so it still fits.",
                "version": 4,
            },
        ],
    }


@pytest.mark.parametrize(("mode", "policy"), [("SIDEWAYS", "STRICT"), ("BACKWARD", "LOOSE")])
def test_check_refuses_unknown_mode_or_policy(mode, policy):
    with pytest.raises(ValueError):
        check(STR, [(1, STR)], mode=mode, policy=policy)


def test_check_refuses_an_invalid_candidate():
    with pytest.raises(SchemaError):
        check({"type": "text"}, [(1, STR)])


# (id, change, words the reason must contain)
REASON_CASES = [
    (
        "property name",
        Difference("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/properties/foo"),
        "Property 'foo' was removed",
    ),
    (
        "root keyword",
        Difference("MAX_LENGTH_DECREASED", "#/maxLength"),
        "The maxLength of the root schema was lowered",
    ),
    (
        "nested keyword",
        Difference("MINIMUM_INCREASED", "#/properties/age/minimum"),
        "'#/properties/age'",
    ),
    (
        "capitalised root",
        Difference("ADDITIONAL_PROPERTIES_REMOVED", "#/additionalProperties"),
        "The root schema no longer",
    ),
    (
        "tuple item",
        Difference("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", "#/items/2"),
        "Tuple item 2",
    ),
    ("unknown type", Difference("SOMETHING_NEW", "#/a"), "SOMETHING_NEW"),
]


@pytest.mark.parametrize(("change", "words"), [r[1:] for r in REASON_CASES], ids=[r[0] for r in REASON_CASES])
def test_reason(change, words):
    assert words in change.reason


@pytest.mark.parametrize("change_type", sorted(compat._COMPATIBLE))
def test_every_type_has_a_reason(change_type):
    reason = Difference(change_type, "#/properties/x").reason
    assert reason.endswith(".") and "{" not in reason and change_type not in reason


# (id, schema, JSON pointer of the problem, words in the message)
INVALID_SCHEMAS = [
    ("not an object", [1, 2], "#", "JSON object or boolean"),
    ("misspelt type", {"type": "strin"}, "#/type", "'strin' is not one of"),
    ("negative minLength", {"properties": {"a": {"minLength": -1}}}, "#/properties/a/minLength", "minimum of 0"),
    ("required not a list", {"required": "a"}, "#/required", "not of type 'array'"),
    ("unknown $schema", {"$schema": "http://example.com/schema"}, "#/$schema", "unknown $schema"),
    ("$schema not a string", {"$schema": 7}, "#/$schema", "unknown $schema"),
    ("dangling pointer", {"$ref": "#/definitions/missing"}, "#/$ref", "does not resolve"),
    ("dangling nested pointer", {"items": [{"$ref": "#/definitions/x"}]}, "#/items/0/$ref", "does not resolve"),
    ("missing anchor", {"$schema": S2020, "$ref": "#nowhere"}, "#/$ref", "does not resolve"),
    ("boolean schema in draft-04", {"$schema": S04, "properties": {"a": True}}, "#/properties/a", "not of type 'object'"),
    ("2020-12 prefixItems not a list", {"$schema": S2020, "prefixItems": {}}, "#/prefixItems", "not of type 'array'"),
    ("2019-09 dependentRequired", {"$schema": "https://json-schema.org/draft/2019-09/schema", "dependentRequired": {"a": "b"}}, "#/dependentRequired/a", "not of type 'array'"),
    # Nothing is fetched: a $ref must start with '#', even one an embedded $id would resolve.
    ("remote ref", {"$ref": "http://example.com/other.json#/x"}, "#/$ref", "points outside the document"),
    ("ref through an embedded $id", EMBEDDED_ID, "#/items/$ref", "'b.json' points outside the document"),
    # Every pattern runs on RE2, which has no lookaround or backreferences.
    ("lookahead pattern", {"properties": {"name": {"type": "string", "pattern": "^(?!admin)"}}}, "#/properties/name/pattern", "cannot run on RE2"),
    ("backreference in patternProperties", {"patternProperties": {"^(a)\\1$": {}}}, "#/patternProperties/^(a)\\1$", "invalid escape sequence"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "path", "words"),
    [r[1:] for r in INVALID_SCHEMAS],
    ids=[r[0] for r in INVALID_SCHEMAS],
)
def test_validate_schema_rejects(schema, path, words):
    with pytest.raises(SchemaError) as caught:
        validate_schema(schema)
    assert caught.value.path == path
    assert words in str(caught.value)


VALID_SCHEMAS = [
    ("true", True),
    ("false", False),
    ("empty", {}),
    ("recursive", RECURSIVE),
    (
        "draft-07 with trailing #",
        {"$schema": "http://json-schema.org/draft-07/schema#", **STR},
    ),
    (
        "draft-04 id anchor",
        {"$schema": S04, "definitions": {"a": {"id": "#a"}}, "items": {"$ref": "#a"}},
    ),
    ("2020-12 anchor", d2020({"$defs": {"a": {"$anchor": "a"}}, "$ref": "#a"})),
    ("ECMA regex", {**STR, "pattern": "^\\p{L}+$"}),
    ("ECMA \\u escape", {**STR, "pattern": "^[\\u0020-\\u007E]+$"}),
    ("backtracking-prone pattern, linear on RE2", {"patternProperties": {"^(a|a)*b$": STR}}),
    ("$ref-looking data in enum", {"enum": [{"$ref": "#/nowhere"}]}),
]


@pytest.mark.parametrize("schema", [r[1] for r in VALID_SCHEMAS], ids=[r[0] for r in VALID_SCHEMAS])
def test_validate_schema_accepts(schema):
    validate_schema(schema)


# (id, old, new, extra arguments, exit code, compatible or a stderr fragment)
COMMAND_CASES = [
    ("compatible", closed(a=STR), closed(a=STR, b=NUM), [], 0, True),
    ("incompatible", closed(a=STR, b=NUM), closed(a=STR), [], 1, False),
    (
        "lenient policy",
        closed(a=STR, b=NUM),
        closed(a=STR),
        ["--policy", "lenient"],
        0,
        True,
    ),
    (
        "forward mode",
        closed(a=STR),
        closed(a=STR, b=NUM),
        ["--mode", "FORWARD"],
        1,
        False,
    ),
    ("invalid JSON", "{not json", STR, [], 2, "is not valid JSON"),
    ("not a schema", {"type": 5}, STR, [], 2, "not a valid JSON Schema"),
    ("missing file", None, STR, [], 2, "cannot read"),
    ("lookahead pattern", STR, {**STR, "pattern": "(?=a)"}, [], 2, "cannot run on RE2, the linear-time engine EventHub runs every pattern on: invalid perl operator: (?= (RE2 has no backreferences or lookaround) (at #/pattern)"),
    ("remote ref", closed(a=STR), closed(a={"$ref": "https://x.example/a.json"}), [], 2, "$ref 'https://x.example/a.json' points outside the document; only references inside it (starting with '#') are allowed, nothing is fetched (at #/properties/a/$ref)"),
]  # fmt: skip


def write_schemas(tmp_path, old, new) -> list[str]:
    files = []
    for name, content in (("old.json", old), ("new.json", new)):
        path = tmp_path / name
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        files.append(str(path))
    return files


@pytest.mark.parametrize(
    ("old", "new", "args", "code", "outcome"),
    [r[1:] for r in COMMAND_CASES],
    ids=[r[0] for r in COMMAND_CASES],
)
def test_schema_compat_command(tmp_path, old, new, args, code, outcome):
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "schema_compat",
            *write_schemas(tmp_path, old, new),
            *args,
            stdout=out,
            stderr=err,
        )
        exit_code = 0
    except SystemExit as exit:
        exit_code = exit.code
    assert exit_code == code, err.getvalue()
    if code == 2:
        assert outcome in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1
        assert out.getvalue() == ""
    else:
        report = json.loads(out.getvalue())
        assert report["compatible"] is outcome
        assert all(set(change) == {"type", "path", "reason"} for change in report["changes"])


@pytest.mark.skipif(not (ROOT / "manage.py").exists(), reason="project skeleton without manage.py")
def test_schema_compat_exit_codes_in_a_real_process(tmp_path):
    """One real ``manage.py`` run per exit code, started together to pay Django's start-up once."""
    runs = {}
    for case_id, old, new, args, code, _ in COMMAND_CASES:
        if case_id in ("compatible", "incompatible", "invalid JSON"):
            folder = tmp_path / case_id.replace(" ", "-")
            folder.mkdir()
            command = [
                sys.executable,
                "manage.py",
                "schema_compat",
                *write_schemas(folder, old, new),
                *args,
            ]
            runs[case_id] = (
                code,
                subprocess.Popen(command, cwd=ROOT, stdout=PIPE, stderr=PIPE, text=True),
            )
    for case_id, (code, process) in runs.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == code, (case_id, stderr)
        assert (stdout == "") is (code == 2), case_id


def test_schema_compat_command_refuses_an_unknown_mode(tmp_path):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="invalid choice"):
        call_command("schema_compat", *write_schemas(tmp_path, STR, STR), "--mode", "SIDEWAYS")


# --------------------------------------------------------------------------- backtracking patterns
# The case of the issue: on a backtracking engine, matching ^(a|a)*b$ against 28 a's takes
# about 2^28 steps (18 s of CPU with Python's re). How fast it answers is bench/compat.py's.
LONG_NAME = "a" * 28
PARTIALLY_OPEN = {"type": "object", "patternProperties": {"^(a|a)*b$": STR}}


@pytest.mark.parametrize(
    ("name", "change", "code"),
    [
        (LONG_NAME, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", 1),
        (LONG_NAME + "b", "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", 0),
    ],
    ids=["not covered", "covered"],
)
def test_schema_compat_command_answers_on_a_backtracking_pattern(tmp_path, name, change, code):
    from django.core.management import call_command

    out = io.StringIO()

    def run() -> int:
        try:
            call_command(
                "schema_compat",
                *write_schemas(tmp_path, {"type": "object", "properties": {name: STR}}, PARTIALLY_OPEN),
                stdout=out,
            )
        except SystemExit as exit:
            return exit.code
        return 0

    assert returns_within(run, 10, "schema_compat with ^(a|a)*b$") == code
    assert [(c["type"], c["path"]) for c in json.loads(out.getvalue())["changes"]] == [(change, f"#/properties/{name}")]


# --------------------------------------------------------------------------- annotations
# A version that only marks fields sensitive ("x-eventhub-pii": true, read by eventhub.sdk.pii)
# changes nothing: an unknown keyword is an annotation. (id, original, update)
PII = {"x-eventhub-pii": True}
PII_MARK_CASES = [
    ("a property", closed(email=STR), closed(email={**STR, **PII})),
    ("a nested property", closed(customer=closed(email=STR)), closed(customer=closed(email={**STR, **PII}))),
    (
        "array items",
        closed(lines={"type": "array", "items": closed(card=STR)}),
        closed(lines={"type": "array", "items": closed(card={**STR, **PII})}),
    ),
    ("a whole object", {"properties": {"c": closed(a=STR)}}, {"properties": {"c": {**closed(a=STR), **PII}}}),
    ("an empty schema", {"properties": {"c": {}}}, {"properties": {"c": PII}}),
    (
        "a branch of anyOf",
        {"properties": {"c": {"anyOf": [STR, NUM]}}},
        {"properties": {"c": {"anyOf": [{**STR, **PII}, NUM]}}},
    ),
    (
        "a $ref target",
        {"properties": {"c": {"$ref": "#/definitions/c"}}, "definitions": {"c": STR}},
        {"properties": {"c": {"$ref": "#/definitions/c"}}, "definitions": {"c": {**STR, **PII}}},
    ),
    (
        "beside a $ref (2020-12)",
        d2020({"properties": {"c": {"$ref": "#/$defs/c"}}, "$defs": {"c": STR}}),
        d2020({"properties": {"c": {"$ref": "#/$defs/c", **PII}}, "$defs": {"c": STR}}),
    ),
    ("an enum", closed(c={"enum": ["a", "b"]}), closed(c={"enum": ["a", "b"], **PII})),
    ("removed again", closed(email={**STR, **PII}), closed(email=STR)),
]


@pytest.mark.parametrize(("original", "update"), [row[1:] for row in PII_MARK_CASES], ids=[row[0] for row in PII_MARK_CASES])  # fmt: skip
@pytest.mark.parametrize("mode", ["FULL_TRANSITIVE", "BACKWARD", "FORWARD"])
def test_a_pii_mark_is_an_annotation(original, update, mode):
    assert diff(original, update) == [] and diff(update, original) == []
    result = check(update, [(1, original)], mode=mode, policy="STRICT")
    assert result.compatible and result.changes == []
    validate_schema(update)  # the metaschemas allow unknown keywords
