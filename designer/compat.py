"""JSON Schema compatibility engine with Confluent Schema Registry's semantics.

Plain Python, no Django. The rules follow Confluent's JSON Schema checker
(``io.confluent.kafka.schemaregistry.json.diff.SchemaDiff`` and friends): a diff
walks the *original* (older, already registered) and the *update* (candidate)
schema side by side and reports typed differences such as
``PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL #/properties/foo``. A policy then says
which difference types are compatible.

How a document is read mirrors the Everit model Confluent diffs, because the
differences depend on it:

1. ``$ref`` is followed (up to draft-07 it hides its sibling keywords).
2. ``enum``, ``allOf``/``anyOf``/``oneOf``, ``not``, ``const``, ``type`` and
   keyword groups (string, number, object, array keywords without a ``type``) each
   produce one schema; two or more become a synthetic ``allOf``.
3. A ``type`` list becomes an ``anyOf`` of one schema per type.

Everything Confluent does not compare (``format``, ``contains``, ``if``/``then``,
``propertyNames``...) is ignored here too, so verdicts match the registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property
from typing import Any

import jsonschema
import jsonschema_rs
import referencing.jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.exceptions import Unresolvable

from eventhub.sdk.schemas import UnsupportedPattern, check_schema_is_safe, compile_pattern

MODES = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
POLICIES = ("STRICT", "LENIENT")

# --------------------------------------------------------------------------- change types
# Confluent's difference types -> (compatible under STRICT, compatible under LENIENT).
# LENIENT adds only property-level relaxations (open/closed content models,
# additional and unevaluated properties narrowed or removed).
_COMPATIBLE: dict[str, tuple[bool, bool]] = {
    "ID_CHANGED": (True, True),
    "DESCRIPTION_CHANGED": (True, True),
    "TITLE_CHANGED": (True, True),
    "DEFAULT_CHANGED": (True, True),
    "SCHEMA_ADDED": (False, False),
    "SCHEMA_REMOVED": (True, True),
    "TYPE_EXTENDED": (True, True),
    "TYPE_NARROWED": (False, False),
    "TYPE_CHANGED": (False, False),
    "MAX_LENGTH_ADDED": (False, False),
    "MAX_LENGTH_REMOVED": (True, True),
    "MAX_LENGTH_INCREASED": (True, True),
    "MAX_LENGTH_DECREASED": (False, False),
    "MIN_LENGTH_ADDED": (False, False),
    "MIN_LENGTH_REMOVED": (True, True),
    "MIN_LENGTH_INCREASED": (False, False),
    "MIN_LENGTH_DECREASED": (True, True),
    "PATTERN_ADDED": (False, False),
    "PATTERN_REMOVED": (True, True),
    "PATTERN_CHANGED": (False, False),
    "MAXIMUM_ADDED": (False, False),
    "MAXIMUM_REMOVED": (True, True),
    "MAXIMUM_INCREASED": (True, True),
    "MAXIMUM_DECREASED": (False, False),
    "MINIMUM_ADDED": (False, False),
    "MINIMUM_REMOVED": (True, True),
    "MINIMUM_INCREASED": (False, False),
    "MINIMUM_DECREASED": (True, True),
    "EXCLUSIVE_MAXIMUM_ADDED": (False, False),
    "EXCLUSIVE_MAXIMUM_REMOVED": (True, True),
    "EXCLUSIVE_MAXIMUM_INCREASED": (True, True),
    "EXCLUSIVE_MAXIMUM_DECREASED": (False, False),
    "EXCLUSIVE_MINIMUM_ADDED": (False, False),
    "EXCLUSIVE_MINIMUM_REMOVED": (True, True),
    "EXCLUSIVE_MINIMUM_INCREASED": (False, False),
    "EXCLUSIVE_MINIMUM_DECREASED": (True, True),
    "MULTIPLE_OF_ADDED": (False, False),
    "MULTIPLE_OF_REMOVED": (True, True),
    "MULTIPLE_OF_EXPANDED": (False, False),
    "MULTIPLE_OF_REDUCED": (True, True),
    "MULTIPLE_OF_CHANGED": (False, False),
    "REQUIRED_ATTRIBUTE_ADDED": (False, False),
    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED": (True, True),
    "REQUIRED_ATTRIBUTE_REMOVED": (True, True),
    "MAX_PROPERTIES_ADDED": (False, False),
    "MAX_PROPERTIES_REMOVED": (True, True),
    "MAX_PROPERTIES_INCREASED": (True, True),
    "MAX_PROPERTIES_DECREASED": (False, False),
    "MIN_PROPERTIES_ADDED": (False, False),
    "MIN_PROPERTIES_REMOVED": (True, True),
    "MIN_PROPERTIES_INCREASED": (False, False),
    "MIN_PROPERTIES_DECREASED": (True, True),
    "ADDITIONAL_PROPERTIES_ADDED": (True, True),
    "ADDITIONAL_PROPERTIES_REMOVED": (False, True),
    "ADDITIONAL_PROPERTIES_EXTENDED": (True, True),
    "ADDITIONAL_PROPERTIES_NARROWED": (False, True),
    "DEPENDENCY_ARRAY_ADDED": (False, False),
    "DEPENDENCY_ARRAY_REMOVED": (True, True),
    "DEPENDENCY_ARRAY_EXTENDED": (False, False),
    "DEPENDENCY_ARRAY_NARROWED": (True, True),
    "DEPENDENCY_ARRAY_CHANGED": (False, False),
    "DEPENDENCY_SCHEMA_ADDED": (False, False),
    "DEPENDENCY_SCHEMA_REMOVED": (True, True),
    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (False, True),
    "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (False, False),
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL": (False, True),
    "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": (False, True),
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL": (True, True),
    "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": (False, False),
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL": (True, True),
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": (True, True),
    "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL": (True, True),
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL": (True, True),
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL": (False, True),
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (True, True),
    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (False, True),
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (True, True),
    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (False, True),
    "UNEVALUATED_PROPERTIES_ADDED": (True, True),
    "UNEVALUATED_PROPERTIES_REMOVED": (False, True),
    "UNEVALUATED_PROPERTIES_EXTENDED": (True, True),
    "UNEVALUATED_PROPERTIES_NARROWED": (False, True),
    "MAX_ITEMS_ADDED": (False, False),
    "MAX_ITEMS_REMOVED": (True, True),
    "MAX_ITEMS_INCREASED": (True, True),
    "MAX_ITEMS_DECREASED": (False, False),
    "MIN_ITEMS_ADDED": (False, False),
    "MIN_ITEMS_REMOVED": (True, True),
    "MIN_ITEMS_INCREASED": (False, False),
    "MIN_ITEMS_DECREASED": (True, True),
    "MAX_CONTAINS_ADDED": (False, False),
    "MAX_CONTAINS_REMOVED": (True, True),
    "MAX_CONTAINS_INCREASED": (True, True),
    "MAX_CONTAINS_DECREASED": (False, False),
    "MIN_CONTAINS_ADDED": (False, False),
    "MIN_CONTAINS_REMOVED": (True, True),
    "MIN_CONTAINS_INCREASED": (False, False),
    "MIN_CONTAINS_DECREASED": (True, True),
    "UNIQUE_ITEMS_ADDED": (False, False),
    "UNIQUE_ITEMS_REMOVED": (True, True),
    "ADDITIONAL_ITEMS_ADDED": (True, True),
    "ADDITIONAL_ITEMS_REMOVED": (False, False),
    "ADDITIONAL_ITEMS_EXTENDED": (True, True),
    "ADDITIONAL_ITEMS_NARROWED": (False, False),
    "UNEVALUATED_ITEMS_ADDED": (True, True),
    "UNEVALUATED_ITEMS_REMOVED": (False, False),
    "UNEVALUATED_ITEMS_EXTENDED": (True, True),
    "UNEVALUATED_ITEMS_NARROWED": (False, False),
    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL": (False, False),
    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL": (True, True),
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL": (True, True),
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL": (True, True),
    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL": (True, True),
    "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL": (False, False),
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (True, True),
    "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (False, False),
    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (True, True),
    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": (False, False),
    "ENUM_ARRAY_EXTENDED": (True, True),
    "ENUM_ARRAY_NARROWED": (False, False),
    "ENUM_ARRAY_CHANGED": (False, False),
    "COMBINED_TYPE_EXTENDED": (True, True),
    "COMBINED_TYPE_CHANGED": (False, False),
    "PRODUCT_TYPE_EXTENDED": (False, False),
    "PRODUCT_TYPE_NARROWED": (True, True),
    "SUM_TYPE_EXTENDED": (True, True),
    "SUM_TYPE_NARROWED": (False, False),
    "COMBINED_TYPE_SUBSCHEMAS_CHANGED": (False, False),
    "NOT_TYPE_EXTENDED": (False, False),
    "NOT_TYPE_NARROWED": (True, True),
}

# Plain-language reasons, written from the BACKWARD point of view: the original
# schema wrote the data and the update must still read it. {where} names the
# schema concerned, {name} the property, tuple index or dependency.
_REASONS: dict[str, str] = {
    "ID_CHANGED": "The $id of {where} changed; data is unaffected.",
    "DESCRIPTION_CHANGED": "The description of {where} changed; data is unaffected.",
    "TITLE_CHANGED": "The title of {where} changed; data is unaffected.",
    "DEFAULT_CHANGED": "The default value of {where} changed; existing data is unaffected.",
    "SCHEMA_ADDED": "A schema now constrains {where}, which accepted anything before; old data may be rejected.",
    "SCHEMA_REMOVED": "The schema for {where} was removed, so anything is accepted there now.",
    "TYPE_EXTENDED": "{Where} now accepts a wider type (integer to number); old data still fits.",
    "TYPE_NARROWED": "{Where} now accepts a narrower type (number to integer); old data with fractions is rejected.",
    "TYPE_CHANGED": "The type of {where} changed; old data of the previous type is rejected.",
    "MAX_LENGTH_ADDED": "A maxLength was added to {where}; longer strings in old data are rejected.",
    "MAX_LENGTH_REMOVED": "The maxLength of {where} was removed; any length is accepted now.",
    "MAX_LENGTH_INCREASED": "The maxLength of {where} was raised; old strings still fit.",
    "MAX_LENGTH_DECREASED": "The maxLength of {where} was lowered; longer strings in old data are rejected.",
    "MIN_LENGTH_ADDED": "A minLength was added to {where}; shorter strings in old data are rejected.",
    "MIN_LENGTH_REMOVED": "The minLength of {where} was removed; any length is accepted now.",
    "MIN_LENGTH_INCREASED": "The minLength of {where} was raised; shorter strings in old data are rejected.",
    "MIN_LENGTH_DECREASED": "The minLength of {where} was lowered; old strings still fit.",
    "PATTERN_ADDED": "A pattern was added to {where}; old strings that do not match it are rejected.",
    "PATTERN_REMOVED": "The pattern of {where} was removed; any string is accepted now.",
    "PATTERN_CHANGED": "The pattern of {where} changed; old strings may no longer match.",
    "MAXIMUM_ADDED": "A maximum was added to {where}; larger numbers in old data are rejected.",
    "MAXIMUM_REMOVED": "The maximum of {where} was removed.",
    "MAXIMUM_INCREASED": "The maximum of {where} was raised; old numbers still fit.",
    "MAXIMUM_DECREASED": "The maximum of {where} was lowered; larger numbers in old data are rejected.",
    "MINIMUM_ADDED": "A minimum was added to {where}; smaller numbers in old data are rejected.",
    "MINIMUM_REMOVED": "The minimum of {where} was removed.",
    "MINIMUM_INCREASED": "The minimum of {where} was raised; smaller numbers in old data are rejected.",
    "MINIMUM_DECREASED": "The minimum of {where} was lowered; old numbers still fit.",
    "EXCLUSIVE_MAXIMUM_ADDED": "An exclusiveMaximum was added to {where}; larger numbers in old data are rejected.",
    "EXCLUSIVE_MAXIMUM_REMOVED": "The exclusiveMaximum of {where} was removed.",
    "EXCLUSIVE_MAXIMUM_INCREASED": "The exclusiveMaximum of {where} was raised; old numbers still fit.",
    "EXCLUSIVE_MAXIMUM_DECREASED": "The exclusiveMaximum of {where} was lowered; larger numbers in old data are rejected.",
    "EXCLUSIVE_MINIMUM_ADDED": "An exclusiveMinimum was added to {where}; smaller numbers in old data are rejected.",
    "EXCLUSIVE_MINIMUM_REMOVED": "The exclusiveMinimum of {where} was removed.",
    "EXCLUSIVE_MINIMUM_INCREASED": "The exclusiveMinimum of {where} was raised; smaller numbers in old data are rejected.",
    "EXCLUSIVE_MINIMUM_DECREASED": "The exclusiveMinimum of {where} was lowered; old numbers still fit.",
    "MULTIPLE_OF_ADDED": "A multipleOf was added to {where}; old numbers that are not multiples are rejected.",
    "MULTIPLE_OF_REMOVED": "The multipleOf of {where} was removed.",
    "MULTIPLE_OF_EXPANDED": "The multipleOf of {where} became a multiple of the old one; some old numbers are rejected.",
    "MULTIPLE_OF_REDUCED": "The multipleOf of {where} became a divisor of the old one; old numbers still fit.",
    "MULTIPLE_OF_CHANGED": "The multipleOf of {where} changed; old numbers may be rejected.",
    "REQUIRED_ATTRIBUTE_ADDED": "Property '{name}' became required without a default; old data without it is rejected.",
    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED": "Property '{name}' became required but has a default; old data still works.",
    "REQUIRED_ATTRIBUTE_REMOVED": "Property '{name}' is no longer required; readers must cope with it missing.",
    "MAX_PROPERTIES_ADDED": "A maxProperties was added to {where}; larger old objects are rejected.",
    "MAX_PROPERTIES_REMOVED": "The maxProperties of {where} was removed.",
    "MAX_PROPERTIES_INCREASED": "The maxProperties of {where} was raised; old objects still fit.",
    "MAX_PROPERTIES_DECREASED": "The maxProperties of {where} was lowered; larger old objects are rejected.",
    "MIN_PROPERTIES_ADDED": "A minProperties was added to {where}; smaller old objects are rejected.",
    "MIN_PROPERTIES_REMOVED": "The minProperties of {where} was removed.",
    "MIN_PROPERTIES_INCREASED": "The minProperties of {where} was raised; smaller old objects are rejected.",
    "MIN_PROPERTIES_DECREASED": "The minProperties of {where} was lowered; old objects still fit.",
    "ADDITIONAL_PROPERTIES_ADDED": "{Where} now allows additional properties; old data still fits.",
    "ADDITIONAL_PROPERTIES_REMOVED": "{Where} no longer allows additional properties; old data with extra properties is rejected.",
    "ADDITIONAL_PROPERTIES_EXTENDED": "The schema for additional properties at {where} was relaxed to accept anything.",
    "ADDITIONAL_PROPERTIES_NARROWED": "Additional properties at {where} must now match a schema; old extra properties may be rejected.",
    "DEPENDENCY_ARRAY_ADDED": "A dependency for '{name}' was added; old data that sets it without the others is rejected.",
    "DEPENDENCY_ARRAY_REMOVED": "The dependency for '{name}' was removed.",
    "DEPENDENCY_ARRAY_EXTENDED": "The dependency for '{name}' now requires more properties; old data may be rejected.",
    "DEPENDENCY_ARRAY_NARROWED": "The dependency for '{name}' now requires fewer properties.",
    "DEPENDENCY_ARRAY_CHANGED": "The dependency for '{name}' changed; old data may be rejected.",
    "DEPENDENCY_SCHEMA_ADDED": "A dependent schema for '{name}' was added; old data may be rejected.",
    "DEPENDENCY_SCHEMA_REMOVED": "The dependent schema for '{name}' was removed.",
    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": "Property '{name}' was added to an open object; old data may carry '{name}' with another shape.",
    "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": "Required property '{name}' was added without a default; old data without it is rejected.",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL": "Required property '{name}' (with a default) was added to an open object; old data may carry '{name}' with another shape.",
    "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL": "Optional property '{name}' was added to an open object; old data may carry '{name}' with another shape.",
    "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL": "Property '{name}' was added and accepts anything, so old data still fits.",
    "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": "Required property '{name}' was added without a default; old data without it is rejected.",
    "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL": "Required property '{name}' was added with a default; old data still works.",
    "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL": "Optional property '{name}' was added to a closed object; old data cannot contain it, so it still fits.",
    "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL": "Property '{name}' was removed; the object stays open so old data still validates, but readers relying on it break.",
    "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL": "Forbidden property '{name}' was removed from a closed object; old data never had it.",
    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL": "Property '{name}' was removed from a closed object; old data that contains it is rejected.",
    "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Property '{name}' was removed, but the pattern or additional-property schema still accepts its old values.",
    "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Property '{name}' was removed and the remaining pattern or additional-property schema rejects its old values.",
    "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Property '{name}' was added and accepts everything the old pattern or additional-property schema allowed.",
    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Property '{name}' was added but rejects values the old pattern or additional-property schema allowed.",
    "UNEVALUATED_PROPERTIES_ADDED": "{Where} now allows unevaluated properties; old data still fits.",
    "UNEVALUATED_PROPERTIES_REMOVED": "{Where} no longer allows unevaluated properties; old data with extra properties is rejected.",
    "UNEVALUATED_PROPERTIES_EXTENDED": "The schema for unevaluated properties at {where} was relaxed to accept anything.",
    "UNEVALUATED_PROPERTIES_NARROWED": "Unevaluated properties at {where} must now match a schema; old extra properties may be rejected.",
    "MAX_ITEMS_ADDED": "A maxItems was added to {where}; longer old arrays are rejected.",
    "MAX_ITEMS_REMOVED": "The maxItems of {where} was removed.",
    "MAX_ITEMS_INCREASED": "The maxItems of {where} was raised; old arrays still fit.",
    "MAX_ITEMS_DECREASED": "The maxItems of {where} was lowered; longer old arrays are rejected.",
    "MIN_ITEMS_ADDED": "A minItems was added to {where}; shorter old arrays are rejected.",
    "MIN_ITEMS_REMOVED": "The minItems of {where} was removed.",
    "MIN_ITEMS_INCREASED": "The minItems of {where} was raised; shorter old arrays are rejected.",
    "MIN_ITEMS_DECREASED": "The minItems of {where} was lowered; old arrays still fit.",
    "MAX_CONTAINS_ADDED": "A maxContains was added to {where}; old arrays with more matches are rejected.",
    "MAX_CONTAINS_REMOVED": "The maxContains of {where} was removed.",
    "MAX_CONTAINS_INCREASED": "The maxContains of {where} was raised; old arrays still fit.",
    "MAX_CONTAINS_DECREASED": "The maxContains of {where} was lowered; old arrays with more matches are rejected.",
    "MIN_CONTAINS_ADDED": "A minContains was added to {where}; old arrays with fewer matches are rejected.",
    "MIN_CONTAINS_REMOVED": "The minContains of {where} was removed.",
    "MIN_CONTAINS_INCREASED": "The minContains of {where} was raised; old arrays with fewer matches are rejected.",
    "MIN_CONTAINS_DECREASED": "The minContains of {where} was lowered; old arrays still fit.",
    "UNIQUE_ITEMS_ADDED": "{Where} now requires unique items; old arrays with duplicates are rejected.",
    "UNIQUE_ITEMS_REMOVED": "{Where} no longer requires unique items.",
    "ADDITIONAL_ITEMS_ADDED": "{Where} now allows additional items; old arrays still fit.",
    "ADDITIONAL_ITEMS_REMOVED": "{Where} no longer allows additional items; longer old arrays are rejected.",
    "ADDITIONAL_ITEMS_EXTENDED": "The schema for additional items at {where} was relaxed to accept anything.",
    "ADDITIONAL_ITEMS_NARROWED": "Additional items at {where} must now match a schema; old arrays may be rejected.",
    "UNEVALUATED_ITEMS_ADDED": "{Where} now allows unevaluated items; old arrays still fit.",
    "UNEVALUATED_ITEMS_REMOVED": "{Where} no longer allows unevaluated items; longer old arrays are rejected.",
    "UNEVALUATED_ITEMS_EXTENDED": "The schema for unevaluated items at {where} was relaxed to accept anything.",
    "UNEVALUATED_ITEMS_NARROWED": "Unevaluated items at {where} must now match a schema; old arrays may be rejected.",
    "ITEM_ADDED_TO_OPEN_CONTENT_MODEL": "Tuple item {name} was added to an open array; old arrays may hold other values at that position.",
    "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL": "Tuple item {name} was added and accepts anything, so old arrays still fit.",
    "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL": "Tuple item {name} was added to a closed array; old arrays never reached that position.",
    "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL": "Tuple item {name} was removed; the array stays open so old arrays still validate.",
    "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL": "Forbidden tuple item {name} was removed from a closed array; old arrays never had it.",
    "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL": "Tuple item {name} was removed from a closed array; old arrays that reach that position are rejected.",
    "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Tuple item {name} was removed, but the additional-items schema still accepts its old values.",
    "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Tuple item {name} was removed and the additional-items schema rejects its old values.",
    "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Tuple item {name} was added and accepts everything the old additional-items schema allowed.",
    "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL": "Tuple item {name} was added but rejects values the old additional-items schema allowed.",
    "ENUM_ARRAY_EXTENDED": "The allowed values of {where} were extended; old values still fit.",
    "ENUM_ARRAY_NARROWED": "Allowed values were removed from {where}; old data using them is rejected.",
    "ENUM_ARRAY_CHANGED": "The allowed values of {where} changed; old data may be rejected.",
    "COMBINED_TYPE_EXTENDED": "The combination at {where} was relaxed (for example oneOf to anyOf).",
    "COMBINED_TYPE_CHANGED": "The combination at {where} changed (for example anyOf to allOf); old data may be rejected.",
    "PRODUCT_TYPE_EXTENDED": "An allOf branch was added at {where}; old data must now match one more schema.",
    "PRODUCT_TYPE_NARROWED": "An allOf branch (or enum) was dropped at {where}; old data still fits.",
    "SUM_TYPE_EXTENDED": "A oneOf/anyOf branch was added at {where}; old data still fits.",
    "SUM_TYPE_NARROWED": "A oneOf/anyOf branch was removed at {where}; old data of that branch is rejected.",
    "COMBINED_TYPE_SUBSCHEMAS_CHANGED": "The branches of the combination at {where} changed so old branches have no compatible match.",
    "NOT_TYPE_EXTENDED": "The 'not' schema of {where} now excludes more values; old data may be rejected.",
    "NOT_TYPE_NARROWED": "The 'not' schema of {where} now excludes fewer values; old data still fits.",
}

_ALLOWED = {
    "STRICT": frozenset(t for t, (strict, _) in _COMPATIBLE.items() if strict),
    "LENIENT": frozenset(t for t, (_, lenient) in _COMPATIBLE.items() if lenient),
}


@dataclass(frozen=True)
class Difference:
    """One change found between two schemas, in Confluent's vocabulary."""

    type: str
    path: str

    @property
    def reason(self) -> str:
        """A sentence for operators, e.g. "Property 'foo' was removed from a closed object; ..."."""
        template = _REASONS.get(self.type, "{Where} changed ({type}).")
        segments = self.path.removeprefix("#").strip("/").split("/")
        name = segments[-1]
        # Keyword-level changes point at the keyword itself; talk about its schema instead.
        if segments and segments[-1] in _KEYWORD_SEGMENTS:
            segments = segments[:-1]
        target = "/".join(s for s in segments if s)
        where = f"'#/{target}'" if target else "the root schema"
        return template.format(where=where, Where=where[0].upper() + where[1:], name=name, type=self.type)

    def __str__(self) -> str:
        return f"{self.type} {self.path}"


_KEYWORD_SEGMENTS = frozenset(
    (
        "maxLength",
        "minLength",
        "pattern",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "multipleOf",
        "maxProperties",
        "minProperties",
        "maxItems",
        "minItems",
        "maxContains",
        "minContains",
        "uniqueItems",
        "enum",
        "const",
        "not",
        "additionalProperties",
        "additionalItems",
        "unevaluatedProperties",
        "unevaluatedItems",
    )
)


def is_compatible(differences: Iterable[Difference], policy: str = "STRICT") -> bool:
    """True when every difference is in the policy's allowlist (unknown types are not)."""
    allowed = _ALLOWED[_policy(policy)]
    return all(d.type in allowed for d in differences)


# --------------------------------------------------------------------------- dialects
_DIALECTS = {
    # $schema without trailing '#' -> (dialect name, jsonschema validator, referencing spec)
    "http://json-schema.org/draft-04/schema": (
        "draft4",
        jsonschema.Draft4Validator,
        referencing.jsonschema.DRAFT4,
    ),
    "http://json-schema.org/draft-06/schema": (
        "draft6",
        jsonschema.Draft6Validator,
        referencing.jsonschema.DRAFT6,
    ),
    "http://json-schema.org/draft-07/schema": (
        "draft7",
        jsonschema.Draft7Validator,
        referencing.jsonschema.DRAFT7,
    ),
    "https://json-schema.org/draft/2019-09/schema": (
        "2019-09",
        jsonschema.Draft201909Validator,
        referencing.jsonschema.DRAFT201909,
    ),
    "https://json-schema.org/draft/2020-12/schema": (
        "2020-12",
        jsonschema.Draft202012Validator,
        referencing.jsonschema.DRAFT202012,
    ),
}
# Confluent reads a schema without $schema as draft-07.
_DEFAULT_DIALECT = _DIALECTS["http://json-schema.org/draft-07/schema"]


def _dialect_entry(schema: Any) -> tuple[str, Any, Any] | None:
    """The dialect a document declares; None for an unknown $schema."""
    if not isinstance(schema, dict) or "$schema" not in schema:
        return _DEFAULT_DIALECT
    uri = schema["$schema"]
    if not isinstance(uri, str):
        return None
    return _DIALECTS.get(uri.strip().rstrip("#"))


# --------------------------------------------------------------------------- validation
class SchemaError(ValueError):
    """The document is not a valid JSON Schema. ``path`` is a JSON pointer like ``#/properties/x``."""

    def __init__(self, message: str, path: str = "#") -> None:
        super().__init__(f"{message} (at {path})")
        self.path = path


def validate_schema(schema: Any) -> None:
    """Raise SchemaError unless ``schema`` is a valid JSON Schema document.

    Checks the declared (or default draft-07) metaschema with ``jsonschema``, that the
    document is safe to run (``check_schema_is_safe``: every ``$ref`` starts with '#',
    every pattern runs on RE2) and that every ``$ref`` resolves inside the document.
    """
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"a schema must be a JSON object or boolean, not {type(schema).__name__}")
    entry = _dialect_entry(schema)
    if entry is None:
        known = ", ".join(sorted(_DIALECTS))
        raise SchemaError(
            f"unknown $schema {schema['$schema']!r}; expected one of {known}",
            "#/$schema",
        )
    _, validator_cls, spec = entry
    # No format checker: "pattern" is ECMA 262, and Python's re would reject valid
    # ones such as \p{L} that the registry (Java regex) accepts.
    # The verdict comes from jsonschema-rs (a compiled metaschema, ~50x faster); only
    # an invalid schema goes through jsonschema, whose best_match picks the message.
    error = None
    if not _metaschema_validator(validator_cls).is_valid(schema):
        error = best_match(validator_cls(validator_cls.META_SCHEMA).iter_errors(schema))
    while error is not None and error.context:
        error = best_match(error.context)  # "'strin' is not one of [...]" beats "not valid under any"
    if error is not None:
        raise SchemaError(f"not a valid JSON Schema: {error.message}", _pointer(error.absolute_path))
    unsafe = check_schema_is_safe(schema)
    if unsafe:
        where, problem = unsafe[0]
        raise SchemaError(problem, where)
    if isinstance(schema, dict):
        _check_local_refs(schema, spec)


@cache
def _metaschema_validator(validator_cls: Any) -> Any:
    """The metaschema of `validator_cls`'s draft compiled by jsonschema-rs, formats unchecked.

    Same verdicts as jsonschema on the metaschemas (checked on the Confluent cases
    and thousands of mutations of them); formats off for the reason above.
    """
    rs_cls = getattr(jsonschema_rs, validator_cls.__name__)  # Draft7Validator -> Draft7Validator
    return rs_cls(validator_cls.META_SCHEMA, validate_formats=False)


def _pointer(parts: Iterable[Any]) -> str:
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "#/" + "/".join(escaped) if escaped else "#"


def _check_local_refs(root: dict, spec: Any) -> None:
    resolver = _root_resolver(root, spec)
    for ref, where, scope in _walk_refs(root, resolver, spec, []):
        if not ref.startswith("#"):
            continue  # check_schema_is_safe has refused it already
        try:
            scope.lookup(ref)
        except Unresolvable:
            raise SchemaError(f"$ref {ref!r} does not resolve", _pointer([*where, "$ref"])) from None


# Keywords whose value is a schema, a list of schemas, or a map of schemas.
_SCHEMA_KEYWORDS = (
    "additionalItems",
    "additionalProperties",
    "items",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_MAP_KEYWORDS = (
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
    "dependencies",
)


def _walk_refs(node: Any, resolver: Any, spec: Any, where: list) -> Iterator[tuple[str, list, Any]]:
    """Yield (ref, location, resolver in scope) for every $ref, following schema keywords only."""
    if not isinstance(node, dict):
        return
    if where:
        resolver = _enter_resource(resolver, spec, node)
    if isinstance(node.get("$ref"), str):
        yield node["$ref"], where, resolver
    for key in _SCHEMA_KEYWORDS:
        if isinstance(node.get(key), dict):
            yield from _walk_refs(node[key], resolver, spec, [*where, key])
    for key in _SCHEMA_LIST_KEYWORDS:
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key]):
                yield from _walk_refs(sub, resolver, spec, [*where, key, i])
    for key in _SCHEMA_MAP_KEYWORDS:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                yield from _walk_refs(sub, resolver, spec, [*where, key, name])


_BASE_URI = "urn:eventhub:schema"


def _enter_resource(resolver: Any, spec: Any, node: dict) -> Any:
    """A subschema with its own $id starts a new base URI for the refs inside it."""
    keyword = "id" if spec is referencing.jsonschema.DRAFT4 else "$id"
    if not isinstance(node.get(keyword), str) or not spec.id_of(node):
        return resolver  # no $id, an anchor-only "#name", or a malformed one
    return resolver.in_subresource(spec.create_resource(node))


def _root_resolver(root: Any, spec: Any) -> Any:
    resource = spec.create_resource(root)
    return Registry().with_resource(_BASE_URI, resource).resolver(_BASE_URI)


# --------------------------------------------------------------------------- schema model
_MISSING = object()


@dataclass(eq=False)
class _Schema:
    """One node of the loaded schema; the class plays the role of Everit's schema class."""

    raw: Any = None
    id: str | None = None
    title: str | None = None
    description: str | None = None
    default: Any = _MISSING


class _EmptySchema(_Schema):
    pass


class _TrueSchema(_EmptySchema):
    pass


class _FalseSchema(_Schema):
    pass


class _BooleanSchema(_Schema):
    pass


class _NullSchema(_Schema):
    pass


class _ConditionalSchema(_Schema):
    """if/then/else: Confluent compares only its metadata, and so do we."""


@dataclass(eq=False)
class _StringSchema(_Schema):
    min_length: Any = None
    max_length: Any = None
    pattern: str | None = None


@dataclass(eq=False)
class _NumberSchema(_Schema):
    integer: bool = False
    minimum: Any = None
    maximum: Any = None
    exclusive_minimum: Any = None
    exclusive_maximum: Any = None
    multiple_of: Any = None


@dataclass(eq=False)
class _EnumSchema(_Schema):
    values: list = field(default_factory=list)


@dataclass(eq=False)
class _ConstSchema(_Schema):
    value: Any = None


@dataclass(eq=False)
class _CombinedSchema(_Schema):
    criterion: str = "allOf"
    subschemas: list = field(default_factory=list)


@dataclass(eq=False)
class _NotSchema(_Schema):
    schema: _Schema | None = None


@dataclass(eq=False)
class _ObjectSchema(_Schema):
    properties: dict = field(default_factory=dict)
    required: list = field(default_factory=list)
    permits_additional: bool = True
    additional_schema: _Schema | None = None
    additional_is_true: bool = False
    pattern_properties: list = field(default_factory=list)
    property_dependencies: dict = field(default_factory=dict)
    schema_dependencies: dict = field(default_factory=dict)
    unevaluated: _Schema | None = None
    min_properties: Any = None
    max_properties: Any = None

    @cached_property
    def compiled_patterns(self) -> list[tuple[Any, _Schema]]:
        """pattern_properties compiled once (RE2) for every name tried against them. A pattern
        RE2 cannot run, only in versions registered before that was refused, is left out."""
        compiled = []
        for pattern, schema in self.pattern_properties:
            try:
                compiled.append((compile_pattern(pattern), schema))
            except UnsupportedPattern:
                continue
        return compiled


@dataclass(eq=False)
class _ArraySchema(_Schema):
    all_items: _Schema | None = None
    item_schemas: list | None = None
    permits_additional: bool = True
    additional_schema: _Schema | None = None
    unevaluated: _Schema | None = None
    unique_items: bool = False
    min_items: Any = None
    max_items: Any = None
    min_contains: Any = None
    max_contains: Any = None


@dataclass(eq=False)
class _RefSchema(_Schema):
    """A $ref, resolved on first use so recursive schemas load without looping."""

    ref: str = ""
    loader: Any = None
    resolver: Any = None
    _target: _Schema | None = None

    def target(self) -> _Schema:
        if self._target is None:
            try:
                resolved = self.resolver.lookup(self.ref)
            except Unresolvable:
                # A reference to another document: we cannot see it, so accept anything.
                self._target = _EmptySchema(raw={"$ref": self.ref})
            else:
                self._target = self.loader.load(resolved.contents, resolved.resolver)
        return self._target


_STRING_KEYWORDS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_KEYWORDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
)
_OBJECT_KEYWORDS = (
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "dependencies",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
)
_OBJECT_KEYWORDS_2019 = (
    *_OBJECT_KEYWORDS,
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
)
_ARRAY_KEYWORDS = (
    "items",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
)
_ARRAY_KEYWORDS_2019 = (
    *_ARRAY_KEYWORDS,
    "minContains",
    "maxContains",
    "unevaluatedItems",
)
_ARRAY_KEYWORDS_2020 = (
    *(k for k in _ARRAY_KEYWORDS_2019 if k != "additionalItems"),
    "prefixItems",
)
_CONDITIONAL_KEYWORDS = ("if", "then", "else")


def _numeric(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _Loader:
    """Turns a JSON document into _Schema nodes, one node per JSON object (refs share nodes)."""

    def __init__(self, root: Any) -> None:
        self.dialect, _, self.spec = _dialect_entry(root) or _DEFAULT_DIALECT
        self.modern = self.dialect in ("2019-09", "2020-12")
        self._nodes: dict[int, _Schema] = {}
        self._keep_alive: list[Any] = []
        self.root = self.load(root, _root_resolver(root, self.spec))

    def load(self, doc: Any, resolver: Any) -> _Schema:
        if doc is True:
            return _TrueSchema(raw=True)
        if doc is False:
            return _FalseSchema(raw=False)
        if not isinstance(doc, dict):
            return _EmptySchema(raw=doc)
        node = self._nodes.get(id(doc))
        if node is None:
            resolver = _enter_resource(resolver, self.spec, doc)
            node = self._build(doc, resolver)
            self._nodes[id(doc)] = node
            self._keep_alive.append(doc)  # ids stay unique only while the object lives
        return node

    def _build(self, doc: dict, resolver: Any) -> _Schema:
        parts = self._parts(doc, resolver)
        if len(parts) == 1 and isinstance(parts[0], _RefSchema) and not self.modern:
            return parts[0]  # up to draft-07 a $ref hides its siblings
        if not parts:
            node: _Schema = _EmptySchema(raw=doc)
        elif len(parts) == 1:
            node = parts[0]
            node.raw = doc
        else:
            node = _CombinedSchema(raw=doc, criterion="allOf", subschemas=parts)
        # 2019-09+ schemas reach Confluent through another parser that drops $id.
        if not self.modern:
            node.id = _text(doc.get("id" if self.dialect == "draft4" else "$id"))
        node.title = _text(doc.get("title"))
        node.description = _text(doc.get("description"))
        node.default = doc.get("default", _MISSING)
        return node

    def _parts(self, doc: dict, resolver: Any) -> list[_Schema]:
        """The schemas Everit's extractors would produce, in their order."""
        parts: list[_Schema] = []
        consumed: set[str] = set()
        if isinstance(doc.get("$ref"), str):
            ref = _RefSchema(
                raw={"$ref": doc["$ref"]},
                ref=doc["$ref"],
                loader=self,
                resolver=resolver,
            )
            if not self.modern:
                return [ref]
            parts.append(ref)
        if isinstance(doc.get("enum"), list):
            parts.append(_EnumSchema(raw={"enum": doc["enum"]}, values=doc["enum"]))
        for criterion in ("allOf", "anyOf", "oneOf"):
            if isinstance(doc.get(criterion), list):
                subs = [self.load(s, resolver) for s in doc[criterion]]
                parts.append(
                    _CombinedSchema(
                        raw={criterion: doc[criterion]},
                        criterion=criterion,
                        subschemas=subs,
                    )
                )
        if "not" in doc:
            parts.append(_NotSchema(raw={"not": doc["not"]}, schema=self.load(doc["not"], resolver)))
        if "const" in doc and self.dialect != "draft4":
            parts.append(_ConstSchema(raw={"const": doc["const"]}, value=doc["const"]))
        kind = doc.get("type")
        if isinstance(kind, str):
            parts.append(self._typed(kind, doc, resolver, consumed))
        elif isinstance(kind, list):
            typed = [self._typed(k, doc, resolver, consumed) for k in kind if isinstance(k, str)]
            parts.append(_CombinedSchema(raw={"type": kind}, criterion="anyOf", subschemas=typed))
        parts.extend(self._sniffed(doc, resolver, consumed))
        return parts

    def _typed(self, kind: str, doc: dict, resolver: Any, consumed: set[str]) -> _Schema:
        builders = {
            "string": (self._string_schema, _STRING_KEYWORDS),
            "integer": (self._integer_schema, _NUMBER_KEYWORDS),
            "number": (self._number_schema, _NUMBER_KEYWORDS),
            "object": (self._object_schema, self._object_keywords()),
            "array": (self._array_schema, self._array_keywords()),
        }
        if kind == "boolean":
            return _BooleanSchema(raw={"type": kind})
        if kind == "null":
            return _NullSchema(raw={"type": kind})
        if kind not in builders:
            return _EmptySchema(raw={"type": kind})
        build, keywords = builders[kind]
        consumed.update(keywords)
        node = build(doc, resolver)
        node.raw = {"type": kind, **{k: doc[k] for k in keywords if k in doc}}
        return node

    def _sniffed(self, doc: dict, resolver: Any, consumed: set[str]) -> list[_Schema]:
        """Keyword groups present without a matching ``type`` still constrain their kind."""
        groups = [
            (self._array_keywords(), self._array_schema),
            (self._object_keywords(), self._object_schema),
            (_NUMBER_KEYWORDS, self._number_schema),
            (_STRING_KEYWORDS, self._string_schema),
        ]
        found = []
        for keywords, build in groups:
            present = [k for k in keywords if k in doc and k not in consumed and not self._is_noop(k, doc[k])]
            if present:
                node = build(doc, resolver)
                node.raw = {k: doc[k] for k in keywords if k in doc}
                found.append(node)
        if self.dialect not in ("draft4", "draft6") and any(k in doc for k in _CONDITIONAL_KEYWORDS):
            found.append(_ConditionalSchema(raw={k: doc[k] for k in _CONDITIONAL_KEYWORDS if k in doc}))
        return found

    def _is_noop(self, keyword: str, value: Any) -> bool:
        # Confluent's 2019-09+ parser drops keywords that constrain nothing, so
        # {"properties": {}} is an empty schema there (draft-07 keeps an object schema).
        return self.modern and keyword in ("properties", "patternProperties", "required") and not value

    def _object_keywords(self) -> tuple[str, ...]:
        return _OBJECT_KEYWORDS_2019 if self.modern else _OBJECT_KEYWORDS

    def _array_keywords(self) -> tuple[str, ...]:
        if self.dialect == "2020-12":
            return _ARRAY_KEYWORDS_2020
        return _ARRAY_KEYWORDS_2019 if self.modern else _ARRAY_KEYWORDS

    @staticmethod
    def _string_schema(doc: dict, resolver: Any) -> _Schema:
        return _StringSchema(
            min_length=_numeric(doc.get("minLength")),
            max_length=_numeric(doc.get("maxLength")),
            pattern=_text(doc.get("pattern")),
        )

    def _integer_schema(self, doc: dict, resolver: Any) -> _Schema:
        node = self._number_schema(doc, resolver)
        node.integer = True
        return node

    @staticmethod
    def _number_schema(doc: dict, resolver: Any) -> _NumberSchema:
        # draft-04 booleans exclusiveMinimum/Maximum only flip maximum/minimum; Confluent ignores them.
        return _NumberSchema(
            minimum=_numeric(doc.get("minimum")),
            maximum=_numeric(doc.get("maximum")),
            exclusive_minimum=_numeric(doc.get("exclusiveMinimum")),
            exclusive_maximum=_numeric(doc.get("exclusiveMaximum")),
            multiple_of=_numeric(doc.get("multipleOf")),
        )

    def _object_schema(self, doc: dict, resolver: Any) -> _Schema:
        def schemas(value: Any) -> dict[str, _Schema]:
            if not isinstance(value, dict):
                return {}
            return {k: self.load(v, resolver) for k, v in value.items()}

        extra = doc.get("additionalProperties")
        node = _ObjectSchema(
            properties=schemas(doc.get("properties")),
            required=[r for r in doc.get("required", []) if isinstance(r, str)]
            if isinstance(doc.get("required"), list)
            else [],
            permits_additional=extra is not False,
            additional_schema=self.load(extra, resolver) if isinstance(extra, dict) else None,
            additional_is_true=extra is True,
            pattern_properties=list(schemas(doc.get("patternProperties")).items()),
            min_properties=_numeric(doc.get("minProperties")),
            max_properties=_numeric(doc.get("maxProperties")),
        )
        # draft-07 "dependencies" mixes both forms; 2019-09 split it in two keywords.
        dependencies = doc.get("dependencies") if isinstance(doc.get("dependencies"), dict) else {}
        if self.modern:
            dependencies = {**dependencies}
            for key in ("dependentRequired", "dependentSchemas"):
                if isinstance(doc.get(key), dict):
                    dependencies.update(doc[key])
            if "unevaluatedProperties" in doc:
                node.unevaluated = self.load(doc["unevaluatedProperties"], resolver)
        for name, value in dependencies.items():
            if isinstance(value, list):
                node.property_dependencies[name] = value
            else:
                node.schema_dependencies[name] = self.load(value, resolver)
        return node

    def _array_schema(self, doc: dict, resolver: Any) -> _Schema:
        node = _ArraySchema(
            unique_items=doc.get("uniqueItems") is True,
            min_items=_numeric(doc.get("minItems")),
            max_items=_numeric(doc.get("maxItems")),
            min_contains=_numeric(doc.get("minContains")),
            max_contains=_numeric(doc.get("maxContains")),
        )
        items = doc.get("items")
        if self.dialect == "2020-12":
            # prefixItems is the tuple; a boolean items opens or closes the array and
            # a schema items is the tail schema (or every item's schema without a tuple).
            if isinstance(doc.get("prefixItems"), list):
                node.item_schemas = [self.load(s, resolver) for s in doc["prefixItems"]]
            if isinstance(items, bool):
                node.permits_additional = items
            elif isinstance(items, dict):
                if node.item_schemas is None:
                    node.all_items = self.load(items, resolver)
                else:
                    node.additional_schema = self.load(items, resolver)
        else:
            if isinstance(items, list):
                node.item_schemas = [self.load(s, resolver) for s in items]
            elif isinstance(items, (dict, bool)):
                node.all_items = self.load(items, resolver)
            extra = doc.get("additionalItems")
            node.permits_additional = extra is not False
            if isinstance(extra, dict):
                node.additional_schema = self.load(extra, resolver)
        if self.modern:
            if "unevaluatedItems" in doc:
                node.unevaluated = self.load(doc["unevaluatedItems"], resolver)
            if "contains" in doc:
                node.min_contains = 1 if node.min_contains is None else node.min_contains
            else:
                node.min_contains = node.max_contains = None
        return node


# --------------------------------------------------------------------------- diff
class _Run:
    """State shared by one diff: the allowlist, the memo and the pairs being compared."""

    def __init__(self, policy: str) -> None:
        self.allowed = _ALLOWED[policy]
        # The pair is stored with its result so the ids in the key cannot be reused.
        self.memo: dict[tuple[int, int], tuple[_Schema, _Schema, list[Difference]]] = {}
        self.in_progress: set[tuple[int, int]] = set()


class _Context:
    """Where we are in the document and the differences found so far."""

    def __init__(self, run: _Run, path: list[str] | None = None) -> None:
        self.run = run
        self.path = list(path or [])
        self.diffs: list[Difference] = []

    def sub(self) -> _Context:
        return _Context(self.run, self.path)

    @contextmanager
    def at(self, segment: str) -> Iterator[None]:
        self.path.append(segment)
        try:
            yield
        finally:
            self.path.pop()

    def add(self, change: str, segment: str | None = None) -> None:
        path = self.path + ([segment] if segment is not None else [])
        self.diffs.append(Difference(change, "#/" + "/".join(path)))

    def extend(self, diffs: list[Difference]) -> None:
        self.diffs.extend(diffs)

    def compatible(self) -> bool:
        return all(d.type in self.run.allowed for d in self.diffs)


def diff(original: dict | bool, update: dict | bool, *, policy: str = "STRICT") -> list[Difference]:
    """Differences from ``original`` to ``update`` in Confluent's order.

    The policy matters only where Confluent asks "is this part compatible?" while
    diffing (oneOf branches, partially open content models).
    """
    run = _Run(_policy(policy))
    ctx = _Context(run)
    _compare(ctx, _Loader(original).root, _Loader(update).root)
    return ctx.diffs


def _deref(node: _Schema) -> _Schema:
    seen = set()
    while isinstance(node, _RefSchema):
        if id(node) in seen:
            return _EmptySchema()  # {"$ref": "#"} pointing at itself constrains nothing
        seen.add(id(node))
        node = node.target()
    return node


def _compare(ctx: _Context, original: _Schema | None, update: _Schema | None) -> None:
    """Steps: missing sides, refs, combined-vs-plain shortcuts, kind change, then per kind."""
    if original is None and update is None:
        return
    if original is None:
        ctx.add("SCHEMA_ADDED")
        return
    if update is None:
        ctx.add("SCHEMA_REMOVED")
        return
    original, update = _deref(original), _deref(update)
    if _compare_against_combination(ctx, original, update):
        return
    if type(original) is not type(update):
        # false accepts nothing and {} / true accept everything: such moves never break.
        if not isinstance(original, _FalseSchema) and not isinstance(update, _EmptySchema):
            ctx.add("TYPE_CHANGED")
        return
    ctx.extend(_rebase(ctx.path, _compare_pair(ctx.run, original, update)))


def _compare_pair(run: _Run, original: _Schema, update: _Schema) -> list[Difference]:
    """Compare two nodes of the same kind, memoised; paths are relative to the pair."""
    key = (id(original), id(update))
    if key in run.memo:
        return run.memo[key][2]
    if key in run.in_progress:
        return []  # a recursive $ref came back to a pair we are already comparing
    run.in_progress.add(key)
    try:
        ctx = _Context(run)
        _compare_metadata(ctx, original, update)
        compare_kind = _BY_KIND.get(type(original))
        if compare_kind is not None:
            compare_kind(ctx, original, update)
    finally:
        run.in_progress.discard(key)
    run.memo[key] = (original, update, ctx.diffs)
    return ctx.diffs


def _rebase(path: list[str], diffs: list[Difference]) -> list[Difference]:
    if not path:
        return list(diffs)
    prefix = "#/" + "/".join(path)
    return [Difference(d.type, prefix if d.path == "#/" else f"{prefix}/{d.path[2:]}") for d in diffs]


def _compare_against_combination(ctx: _Context, original: _Schema, update: _Schema) -> bool:
    """Confluent's shortcuts when exactly one side is a combination; True when settled."""
    if not isinstance(original, _CombinedSchema) and isinstance(update, _CombinedSchema):
        subs = update.subschemas
        if len(subs) == 1:
            return _settle_with(ctx, original, subs[0])
        if update.criterion in ("anyOf", "oneOf"):
            # Wrapping a schema into a union with a compatible branch widens it.
            return any(_settle_with(ctx, original, sub, "SUM_TYPE_EXTENDED") for sub in subs)
    elif isinstance(original, _CombinedSchema) and not isinstance(update, _CombinedSchema):
        subs = original.subschemas
        if len(subs) == 1 and _settle_with(ctx, subs[0], update):
            return True
        if original.criterion == "allOf":
            # Dropping allOf branches (e.g. an enum next to a type) only loosens.
            return any(_settle_with(ctx, sub, update, "PRODUCT_TYPE_NARROWED") for sub in subs)
    return False


def _settle_with(ctx: _Context, original: _Schema, update: _Schema, extra: str | None = None) -> bool:
    sub = ctx.sub()
    _compare(sub, original, update)
    if not sub.compatible():
        return False
    ctx.extend(sub.diffs)
    if extra:
        ctx.add(extra)
    return True


def _compare_metadata(ctx: _Context, original: _Schema, update: _Schema) -> None:
    if original.id != update.id:
        ctx.add("ID_CHANGED")
    if original.title != update.title:
        ctx.add("TITLE_CHANGED")
    if original.description != update.description:
        ctx.add("DESCRIPTION_CHANGED")
    if not _same_json(original.default, update.default):
        ctx.add("DEFAULT_CHANGED")


def _bound(ctx: _Context, keyword: str, prefix: str, original: Any, update: Any) -> None:
    """Report ``<prefix>_ADDED/REMOVED/INCREASED/DECREASED`` for a numeric keyword."""
    if original is None and update is None:
        return
    if original is None:
        ctx.add(f"{prefix}_ADDED", keyword)
    elif update is None:
        ctx.add(f"{prefix}_REMOVED", keyword)
    elif original < update:
        ctx.add(f"{prefix}_INCREASED", keyword)
    elif original > update:
        ctx.add(f"{prefix}_DECREASED", keyword)


def _compare_strings(ctx: _Context, original: _StringSchema, update: _StringSchema) -> None:
    _bound(ctx, "maxLength", "MAX_LENGTH", original.max_length, update.max_length)
    _bound(ctx, "minLength", "MIN_LENGTH", original.min_length, update.min_length)
    if original.pattern is None and update.pattern is not None:
        ctx.add("PATTERN_ADDED", "pattern")
    elif original.pattern is not None and update.pattern is None:
        ctx.add("PATTERN_REMOVED", "pattern")
    elif original.pattern != update.pattern:
        ctx.add("PATTERN_CHANGED", "pattern")


def _compare_numbers(ctx: _Context, original: _NumberSchema, update: _NumberSchema) -> None:
    _bound(ctx, "maximum", "MAXIMUM", original.maximum, update.maximum)
    _bound(ctx, "minimum", "MINIMUM", original.minimum, update.minimum)
    _bound(
        ctx,
        "exclusiveMaximum",
        "EXCLUSIVE_MAXIMUM",
        original.exclusive_maximum,
        update.exclusive_maximum,
    )
    _bound(
        ctx,
        "exclusiveMinimum",
        "EXCLUSIVE_MINIMUM",
        original.exclusive_minimum,
        update.exclusive_minimum,
    )
    _compare_multiple_of(ctx, original.multiple_of, update.multiple_of)
    if original.integer != update.integer:
        ctx.add("TYPE_EXTENDED" if original.integer else "TYPE_NARROWED")


def _compare_multiple_of(ctx: _Context, original: Any, update: Any) -> None:
    if original is None and update is None:
        return
    if original is None:
        ctx.add("MULTIPLE_OF_ADDED", "multipleOf")
        return
    if update is None:
        ctx.add("MULTIPLE_OF_REMOVED", "multipleOf")
        return
    try:  # decimals, so 0.1 and 0.3 divide exactly
        old, new = Decimal(str(original)), Decimal(str(update))
        if old == new:
            return
        if new % old == 0:
            ctx.add("MULTIPLE_OF_EXPANDED", "multipleOf")
        elif old % new == 0:
            ctx.add("MULTIPLE_OF_REDUCED", "multipleOf")
        else:
            ctx.add("MULTIPLE_OF_CHANGED", "multipleOf")
    except (InvalidOperation, ZeroDivisionError):
        ctx.add("MULTIPLE_OF_CHANGED", "multipleOf")


def _compare_enums(ctx: _Context, original: _EnumSchema, update: _EnumSchema) -> None:
    old = {_canonical(v) for v in original.values}
    new = {_canonical(v) for v in update.values}
    if old == new:
        return
    if new >= old:
        ctx.add("ENUM_ARRAY_EXTENDED", "enum")
    elif old >= new:
        ctx.add("ENUM_ARRAY_NARROWED", "enum")
    else:
        ctx.add("ENUM_ARRAY_CHANGED", "enum")


def _compare_consts(ctx: _Context, original: _ConstSchema, update: _ConstSchema) -> None:
    if not _same_json(original.value, update.value):
        ctx.add("ENUM_ARRAY_CHANGED", "const")


def _compare_nots(ctx: _Context, original: _NotSchema, update: _NotSchema) -> None:
    with ctx.at("not"):
        sub = ctx.sub()
        # "not A" -> "not B" widens exactly when B -> A would: compare the other way round.
        _compare(sub, update.schema, original.schema)
        ctx.add("NOT_TYPE_NARROWED" if sub.compatible() else "NOT_TYPE_EXTENDED")


def _compare_combined(ctx: _Context, original: _CombinedSchema, update: _CombinedSchema) -> None:
    """Steps: criterion change, branch count, then a maximum matching of compatible branch pairs."""
    change = _criterion_change(original, update)
    if change:
        ctx.add(change)
        if change == "COMBINED_TYPE_CHANGED":
            return
    old_subs, new_subs = _distinct(original.subschemas), _distinct(update.subschemas)
    if len(old_subs) < len(new_subs):
        ctx.add("PRODUCT_TYPE_EXTENDED" if update.criterion == "allOf" else "SUM_TYPE_EXTENDED")
    elif len(old_subs) > len(new_subs):
        ctx.add("PRODUCT_TYPE_NARROWED" if original.criterion == "allOf" else "SUM_TYPE_NARROWED")
    edges: dict[tuple[int, int], list[Difference]] = {}
    for i, old in enumerate(old_subs):
        with ctx.at(f"{original.criterion}/{i}"):
            for j, new in enumerate(new_subs):
                sub = ctx.sub()
                _compare(sub, old, new)
                if sub.compatible():
                    edges[(i, j)] = sub.diffs
    matching = _maximum_matching(len(old_subs), len(new_subs), edges)
    for pair in sorted(matching):
        ctx.extend(edges[pair])
    if len(matching) < min(len(old_subs), len(new_subs)):
        ctx.add("COMBINED_TYPE_SUBSCHEMAS_CHANGED")


def _criterion_change(original: _CombinedSchema, update: _CombinedSchema) -> str | None:
    old, new = original.criterion, update.criterion
    if old == new:
        return None
    if new == "anyOf":
        return "COMBINED_TYPE_EXTENDED"
    if new == "oneOf" and len(original.subschemas) == 1:
        return "COMBINED_TYPE_EXTENDED"
    if new == "oneOf" and old == "allOf" and len(update.subschemas) == 1:
        # Data that matched every allOf branch matches a lone oneOf branch exactly once.
        return "COMBINED_TYPE_EXTENDED"
    if new == "allOf" and len(original.subschemas) == 1 and len(update.subschemas) == 1:
        return "COMBINED_TYPE_EXTENDED"
    return "COMBINED_TYPE_CHANGED"


def _distinct(subschemas: list[_Schema]) -> list[_Schema]:
    """Drop repeated branches (same JSON), keeping the first; Confluent collapses them too."""
    seen: dict[str, _Schema] = {}
    for sub in subschemas:
        seen.setdefault(_canonical(sub.raw), sub)
    return list(seen.values())


def _maximum_matching(left: int, right: int, edges: dict[tuple[int, int], list]) -> set[tuple[int, int]]:
    """Kuhn's augmenting paths; candidates with fewer differences are tried first."""
    options = {i: sorted((j for (a, j) in edges if a == i), key=lambda j: (len(edges[(i, j)]), j)) for i in range(left)}
    owner: dict[int, int] = {}

    def augment(i: int, visited: set[int]) -> bool:
        for j in options[i]:
            if j in visited:
                continue
            visited.add(j)
            if j not in owner or augment(owner[j], visited):
                owner[j] = i
                return True
        return False

    for i in range(left):
        augment(i, set())
    return {(i, j) for j, i in owner.items()}


def _compare_objects(ctx: _Context, original: _ObjectSchema, update: _ObjectSchema) -> None:
    _compare_required(ctx, original, update)
    _compare_properties(ctx, original, update)
    _compare_dependencies(ctx, original, update)
    _compare_additional(ctx, "additionalProperties", "ADDITIONAL_PROPERTIES", original, update)
    _compare_unevaluated(ctx, "unevaluatedProperties", "UNEVALUATED_PROPERTIES", original, update)
    _bound(
        ctx,
        "maxProperties",
        "MAX_PROPERTIES",
        original.max_properties,
        update.max_properties,
    )
    _bound(
        ctx,
        "minProperties",
        "MIN_PROPERTIES",
        original.min_properties,
        update.min_properties,
    )


def _compare_required(ctx: _Context, original: _ObjectSchema, update: _ObjectSchema) -> None:
    with ctx.at("required"):
        for name in _java_order(original.properties):
            if name not in update.properties:
                continue
            was, now = name in original.required, name in update.required
            if was and not now:
                ctx.add("REQUIRED_ATTRIBUTE_REMOVED", name)
            elif now and not was:
                with_default = _has_default(update.properties[name])
                ctx.add(
                    "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED" if with_default else "REQUIRED_ATTRIBUTE_ADDED",
                    name,
                )


def _compare_properties(ctx: _Context, original: _ObjectSchema, update: _ObjectSchema) -> None:
    with ctx.at("properties"):
        for name in _java_set_order(original.properties, update.properties):
            old, new = original.properties.get(name), update.properties.get(name)
            with ctx.at(name):
                if new is None:
                    _property_removed(ctx, name, old, update)
                elif old is None:
                    _property_added(ctx, name, new, original, update)
                else:
                    _compare(ctx, old, new)


def _property_removed(ctx: _Context, name: str, old: _Schema, update: _ObjectSchema) -> None:
    # Whether old data still fits depends on what the *update* does with unknown names.
    if _object_is_open(update):
        ctx.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL")
        return
    covering = _object_catch_all(update, name)
    if covering is not None:
        covered = _covered(ctx, old, covering)
        ctx.add(
            "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
        )
    elif isinstance(_deref(old), _FalseSchema):
        ctx.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
    else:
        ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL")


def _property_added(
    ctx: _Context,
    name: str,
    new: _Schema,
    original: _ObjectSchema,
    update: _ObjectSchema,
) -> None:
    # Whether old data can clash depends on what the *original* let through under that name.
    required = name in update.required
    if _object_is_open(original):
        if required:
            ctx.add(
                "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
                if _has_default(new)
                else "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            )
        elif isinstance(_deref(new), _EmptySchema):
            ctx.add("PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL")
        else:
            ctx.add("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")
        return
    covering = _object_catch_all(original, name)
    if covering is not None:
        covered = _covered(ctx, covering, new)
        ctx.add(
            "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
        )
    if required:
        ctx.add(
            "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
            if _has_default(new)
            else "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
        )
    else:
        ctx.add("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL")


def _covered(ctx: _Context, original: _Schema, update: _Schema) -> bool:
    """Compare a property or item with the catch-all schema; keep the details, return the verdict."""
    sub = ctx.sub()
    _compare(sub, original, update)
    ctx.extend(sub.diffs)
    return sub.compatible()


def _has_default(node: _Schema) -> bool:
    return node.default is not _MISSING or _deref(node).default is not _MISSING


def _absent_or_true(node: _Schema | None) -> bool:
    return node is None or isinstance(_deref(node), _EmptySchema)


def _object_is_open(node: _ObjectSchema) -> bool:
    """Any unknown property name is accepted with any value."""
    if node.pattern_properties or not node.permits_additional or node.additional_schema is not None:
        return False
    return node.additional_is_true or _absent_or_true(node.unevaluated)


def _object_catch_all(node: _ObjectSchema, name: str) -> _Schema | None:
    """The schema an undeclared property ``name`` must match in a partially open object."""
    for regex, schema in node.compiled_patterns:
        if regex.search(name):  # RE2: linear in the name, whatever the pattern
            return schema
    if node.additional_schema is not None:
        return node.additional_schema
    if node.permits_additional and not node.additional_is_true and node.unevaluated is not None:
        tail = _deref(node.unevaluated)
        if not isinstance(tail, (_FalseSchema, _EmptySchema)):
            return node.unevaluated
    return None


def _compare_dependencies(ctx: _Context, original: _ObjectSchema, update: _ObjectSchema) -> None:
    with ctx.at("dependencies"):
        old_deps, new_deps = (
            original.property_dependencies,
            update.property_dependencies,
        )
        for name in _java_set_order(old_deps, new_deps):
            if name not in new_deps:
                ctx.add("DEPENDENCY_ARRAY_REMOVED", name)
            elif name not in old_deps:
                ctx.add("DEPENDENCY_ARRAY_ADDED", name)
            else:
                old, new = set(map(str, old_deps[name])), set(map(str, new_deps[name]))
                if old == new:
                    continue
                if new >= old:
                    ctx.add("DEPENDENCY_ARRAY_EXTENDED", name)
                elif old >= new:
                    ctx.add("DEPENDENCY_ARRAY_NARROWED", name)
                else:
                    ctx.add("DEPENDENCY_ARRAY_CHANGED", name)
        old_schemas, new_schemas = (
            original.schema_dependencies,
            update.schema_dependencies,
        )
        for name in _java_set_order(old_schemas, new_schemas):
            if name not in new_schemas:
                ctx.add("DEPENDENCY_SCHEMA_REMOVED", name)
            elif name not in old_schemas:
                ctx.add("DEPENDENCY_SCHEMA_ADDED", name)
            else:
                with ctx.at(name):
                    _compare(ctx, old_schemas[name], new_schemas[name])


def _compare_additional(ctx: _Context, keyword: str, prefix: str, original: Any, update: Any) -> None:
    """additionalProperties / additionalItems: a permit flag plus an optional schema."""
    with ctx.at(keyword):
        if original.permits_additional != update.permits_additional:
            ctx.add(f"{prefix}_ADDED" if update.permits_additional else f"{prefix}_REMOVED")
        elif original.additional_schema is None and update.additional_schema is not None:
            ctx.add(f"{prefix}_NARROWED")
        elif original.additional_schema is not None and update.additional_schema is None:
            ctx.add(f"{prefix}_EXTENDED")
        else:
            _compare(ctx, original.additional_schema, update.additional_schema)


def _compare_unevaluated(ctx: _Context, keyword: str, prefix: str, original: Any, update: Any) -> None:
    # true and {} say nothing, so they count as absent (Confluent would call absent -> true a narrowing).
    old = None if _absent_or_true(original.unevaluated) else _deref(original.unevaluated)
    new = None if _absent_or_true(update.unevaluated) else _deref(update.unevaluated)
    if old is None and new is None:
        return
    with ctx.at(keyword):
        if old is None:
            ctx.add(f"{prefix}_REMOVED" if isinstance(new, _FalseSchema) else f"{prefix}_NARROWED")
        elif new is None:
            ctx.add(f"{prefix}_ADDED" if isinstance(old, _FalseSchema) else f"{prefix}_EXTENDED")
        elif isinstance(old, _FalseSchema) and not isinstance(new, _FalseSchema):
            ctx.add(f"{prefix}_ADDED")
        elif not isinstance(old, _FalseSchema) and isinstance(new, _FalseSchema):
            ctx.add(f"{prefix}_REMOVED")
        else:
            _compare(ctx, old, new)


def _compare_arrays(ctx: _Context, original: _ArraySchema, update: _ArraySchema) -> None:
    with ctx.at("items"):
        _compare(ctx, original.all_items, update.all_items)
    _compare_tuples(ctx, original, update)
    _compare_additional(ctx, "additionalItems", "ADDITIONAL_ITEMS", original, update)
    _compare_unevaluated(ctx, "unevaluatedItems", "UNEVALUATED_ITEMS", original, update)
    _bound(ctx, "maxItems", "MAX_ITEMS", original.max_items, update.max_items)
    _bound(ctx, "minItems", "MIN_ITEMS", original.min_items, update.min_items)
    if original.unique_items != update.unique_items:
        ctx.add(
            "UNIQUE_ITEMS_REMOVED" if original.unique_items else "UNIQUE_ITEMS_ADDED",
            "uniqueItems",
        )
    _bound(ctx, "maxContains", "MAX_CONTAINS", original.max_contains, update.max_contains)
    _bound(ctx, "minContains", "MIN_CONTAINS", original.min_contains, update.min_contains)


def _compare_tuples(ctx: _Context, original: _ArraySchema, update: _ArraySchema) -> None:
    old_items, new_items = original.item_schemas or [], update.item_schemas or []
    for index in range(max(len(old_items), len(new_items))):
        with ctx.at(f"items/{index}"):
            if index < len(old_items) and index < len(new_items):
                _compare(ctx, old_items[index], new_items[index])
            elif index < len(old_items):
                _item_removed(ctx, old_items[index], update)
            else:
                _item_added(ctx, new_items[index], original)


def _item_removed(ctx: _Context, old: _Schema, update: _ArraySchema) -> None:
    if _array_is_open(update):
        ctx.add("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL")
        return
    covering = _array_catch_all(update)
    if covering is not None:
        covered = _covered(ctx, old, covering)
        ctx.add(
            "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
        )
    elif isinstance(_deref(old), _FalseSchema):
        ctx.add("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL")
    else:
        ctx.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL")


def _item_added(ctx: _Context, new: _Schema, original: _ArraySchema) -> None:
    if _array_is_open(original):
        if isinstance(_deref(new), _EmptySchema):
            ctx.add("ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL")
        else:
            ctx.add("ITEM_ADDED_TO_OPEN_CONTENT_MODEL")
        return
    covering = _array_catch_all(original)
    if covering is not None:
        covered = _covered(ctx, covering, new)
        ctx.add(
            "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
            if covered
            else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
        )
    else:
        ctx.add("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL")


def _array_is_open(node: _ArraySchema) -> bool:
    if not node.permits_additional or node.additional_schema is not None:
        return False
    return _absent_or_true(node.unevaluated)


def _array_catch_all(node: _ArraySchema) -> _Schema | None:
    if node.additional_schema is not None:
        return node.additional_schema
    if node.permits_additional and node.unevaluated is not None:
        tail = _deref(node.unevaluated)
        if not isinstance(tail, (_FalseSchema, _EmptySchema)):
            return node.unevaluated
    return None


_BY_KIND = {
    _StringSchema: _compare_strings,
    _NumberSchema: _compare_numbers,
    _EnumSchema: _compare_enums,
    _ConstSchema: _compare_consts,
    _CombinedSchema: _compare_combined,
    _NotSchema: _compare_nots,
    _ObjectSchema: _compare_objects,
    _ArraySchema: _compare_arrays,
}


# --------------------------------------------------------------------------- helpers
def _canonical(value: Any) -> str:
    """JSON text that is equal exactly when the JSON values are equal (1 == 1.0, key order ignored)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, default=repr)


def _same_json(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return _canonical(a) == _canonical(b)


def _java_hash(name: str) -> int:
    """java.lang.String.hashCode() spread the way java.util.HashMap does."""
    h = 0
    data = name.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _java_order(names: Iterable[str], capacity: int = 16) -> list[str]:
    """Iteration order of a java.util.HashMap holding ``names`` (inserted in this order).

    Confluent walks properties and dependencies through Java hash sets, so its
    reports list them in bucket order, not document order. Reproducing that keeps
    our change lists identical to the registry's.
    """
    names = list(dict.fromkeys(names))
    while len(names) > capacity * 3 // 4:
        capacity *= 2
    return sorted(names, key=lambda n: _java_hash(n) & (capacity - 1))  # stable: bucket order, then insertion


def _java_set_order(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Order of ``new HashSet<>(first); addAll(second)``."""
    first = list(first)
    capacity = 1
    while capacity < max(int(len(first) / 0.75) + 1, 16):
        capacity *= 2
    return _java_order([*first, *second], capacity)


def _policy(policy: str) -> str:
    value = str(policy).upper()
    if value not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    return value


def _mode(mode: str) -> str:
    value = str(mode).upper()
    if value not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return value


# --------------------------------------------------------------------------- registry check
@dataclass
class CompatResult:
    """Outcome of checking a candidate against earlier versions.

    ``change_versions[i]`` is the earlier version ``changes[i]`` was found against and
    ``change_directions[i]`` is "backward" (old data, new reader) or "forward" (new data,
    old reader).
    """

    compatible: bool
    mode: str
    policy: str
    changes: list[Difference]
    against_versions: list[int]
    change_versions: list[int] = field(default_factory=list)
    change_directions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for i, change in enumerate(self.changes):
            version = self.change_versions[i] if i < len(self.change_versions) else None
            direction = self.change_directions[i] if i < len(self.change_directions) else "backward"
            reason = change.reason
            if direction == "forward":
                reason = f"Forward check (data written with the new schema, read with version {version}): {reason}"
            rows.append(
                {
                    "type": change.type,
                    "path": change.path,
                    "reason": reason,
                    "version": version,
                }
            )
        return {"compatible": self.compatible, "changes": rows}


def check(
    candidate: dict | bool,
    previous: list[tuple[int, dict | bool]],
    mode: str = "BACKWARD",
    policy: str = "STRICT",
) -> CompatResult:
    """Check ``candidate`` against ``previous`` [(version, schema)], oldest first.

    BACKWARD diffs (latest previous -> candidate), FORWARD the other way, FULL both;
    *_TRANSITIVE repeat that against every previous version, newest first. NONE
    accepts anything. Raises SchemaError when the candidate is not a valid schema.
    """
    mode, policy = _mode(mode), _policy(policy)
    validate_schema(candidate)
    if mode == "NONE" or not previous:
        return CompatResult(True, mode, policy, [], [])
    targets = list(reversed(previous)) if mode.endswith("_TRANSITIVE") else [previous[-1]]
    directions = []
    if mode.startswith(("BACKWARD", "FULL")):
        directions.append("backward")
    if mode.startswith(("FORWARD", "FULL")):
        directions.append("forward")
    result = CompatResult(True, mode, policy, [], [version for version, _ in targets])
    for version, schema in targets:
        for direction in directions:
            pair = (schema, candidate) if direction == "backward" else (candidate, schema)
            found = diff(*pair, policy=policy)
            result.compatible = result.compatible and is_compatible(found, policy)
            result.changes.extend(found)
            result.change_versions.extend([version] * len(found))
            result.change_directions.extend([direction] * len(found))
    return result
