"""Schema sources and payload validation: no bus, no database.

The registry tests run a real HTTP server on 127.0.0.1 speaking the registry's
API, so RegistrySchemas' urllib code, caching and error handling run for real.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eventhub.sdk import (
    InvalidPayload,
    InvalidSchema,
    LocalSchemas,
    RegistrySchemas,
    SchemaRegistryUnavailable,
    UnknownEventType,
    Validators,
)
from eventhub.sdk.schemas import check_schema_is_safe, json_path, python_validator, rust_validator
from tests.listening import CountingServer
from tests.waiting import returns_within

ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "lines": {
            "type": "array",
            "items": {"type": "object", "properties": {"qty": {"type": "integer"}}},
        },
    },
}
DRAFT7_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"}},
}
# Draft 3 (`required: true` on the property): jsonschema_rs has no draft 3, so
# this one exercises the fallback to the jsonschema package.
DRAFT3_SCHEMA = {
    "$schema": "http://json-schema.org/draft-03/schema#",
    "type": "object",
    "properties": {"name": {"type": "string", "required": True}},
}


@pytest.fixture
def validators() -> Validators:
    return Validators(
        LocalSchemas(
            {
                "order.placed": {
                    "schema": ORDER_SCHEMA,
                    "version": 3,
                    "topic": "orders",
                },
                "stock.moved": {"schema": DRAFT7_SCHEMA, "version": 1},
                "legacy.thing": {"schema": DRAFT3_SCHEMA, "version": 1},
            }
        )
    )


@pytest.mark.parametrize(
    ("event_type", "payload", "path", "words"),
    [
        ("order.placed", {"order_id": "o-1", "amount": -5}, "$.amount", "minimum"),
        ("order.placed", {"order_id": "o-1"}, "$.amount", "required"),
        ("order.placed", {"order_id": 7, "amount": 1}, "$.order_id", "type"),
        (
            "order.placed",
            {"order_id": "o", "amount": 1, "lines": [{"qty": 1}, {"qty": "2"}]},
            "$.lines[1].qty",
            "type",
        ),
        ("order.placed", [], "$", "type"),
        ("stock.moved", {"sku": "abc"}, "$.sku", "does not match"),
        ("legacy.thing", {}, "$.name", "required"),
    ],
)
def test_invalid_payload_names_path_and_message(validators, event_type, payload, path, words):
    with pytest.raises(InvalidPayload) as caught:
        validators.validate(event_type, payload)
    assert caught.value.path == path
    assert path in str(caught.value)
    assert words in str(caught.value)
    assert caught.value.event_type == event_type


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("order.placed", {"order_id": "o-1", "amount": 0}),
        ("order.placed", {"order_id": "o-1", "amount": 2.5, "lines": [{"qty": 3}]}),
        ("stock.moved", {"sku": "ABC-12"}),
        ("legacy.thing", {"name": "x"}),
    ],
)
def test_valid_payload_returns_its_schema(validators, event_type, payload):
    schema = validators.validate(event_type, payload)
    assert schema.event_type == event_type


def test_every_error_is_listed(validators):
    with pytest.raises(InvalidPayload) as caught:
        validators.validate("order.placed", {"order_id": 1, "amount": -1})
    assert {e.path for e in caught.value.errors} == {"$.order_id", "$.amount"}
    assert "(and 1 more)" in str(caught.value)


def test_validator_compiled_once_per_type_and_version(validators):
    for _ in range(3):
        validators.validate("order.placed", {"order_id": "o", "amount": 1})
    validators.validate("stock.moved", {})
    assert set(validators._compiled) == {("order.placed", 3), ("stock.moved", 1)}


def test_local_schemas_topic_and_unknown_type():
    schemas = LocalSchemas({"a.b": {"schema": {}, "version": 2, "topic": "t"}})
    assert (schemas.get("a.b").version, schemas.get("a.b").topic) == (2, "t")
    with pytest.raises(UnknownEventType, match="no.such"):
        schemas.get("no.such")


def test_uncompilable_schema_is_refused():
    validators = Validators(LocalSchemas({"bad": {"schema": {"type": "nonsense"}}}))
    with pytest.raises(InvalidSchema, match="bad v1"):
        validators.validate("bad", {})


@pytest.mark.parametrize(
    ("parts", "path"),
    [([], "$"), (["a", 0, "b"], "$.a[0].b"), (["odd key"], '$["odd key"]')],
)
def test_json_path(parts, path):
    assert json_path(parts) == path


# --- Hostile schemas: nothing fetched, every pattern on a linear-time engine ----------

S2019 = "https://json-schema.org/draft/2019-09/schema"
S2020 = "https://json-schema.org/draft/2020-12/schema"
S03 = "http://json-schema.org/draft-03/schema#"
# Exponential on a backtracking engine: Python's re needs ~2^n steps to fail on n a's.
REDOS = "^(a|a)*b$"
LONG_NAME = "a" * 5000
LOOKAHEAD = "^(?!admin)"

# (id, schema, [(JSON pointer, words in the message)])
SAFETY_CASES = [
    ("local refs and anchors", {"properties": {"a": {"$ref": "#/$defs/a"}, "b": {"$ref": "#b"}}, "$defs": {"a": {}, "b": {"$anchor": "b"}}}, []),
    ("remote $ref", {"properties": {"a": {"$ref": "https://x.example/a.json"}}}, [("#/properties/a/$ref", "points outside the document")]),
    ("relative $ref", {"items": {"$ref": "other.json#/a"}}, [("#/items/$ref", "'other.json#/a' points outside")]),
    ("remote $dynamicRef", {"$schema": S2020, "$dynamicRef": "https://x.example/meta"}, [("#/$dynamicRef", "points outside")]),
    ("lookahead pattern", {"properties": {"name": {"type": "string", "pattern": LOOKAHEAD}}}, [("#/properties/name/pattern", "invalid perl operator: (?!")]),
    ("backreference in patternProperties", {"patternProperties": {"(a)\\1": {}}}, [("#/patternProperties/(a)\\1", "RE2 has no backreferences")]),
    ("a slash in a name is escaped", {"patternProperties": {"^a/(?<=b)": {}}}, [("#/patternProperties/^a~1(?<=b)", "cannot run on RE2")]),
    ("over 1000 repetitions", {"pattern": "a{2,5000}"}, [("#/pattern", "invalid repetition size")]),
    ("backtracking-prone but linear on RE2", {"patternProperties": {REDOS: {}}, "pattern": "(x+x+)+y"}, []),
    ("ECMA escapes and Unicode classes", {"pattern": "^[\\u0020-\\u007E\\p{L}]*$"}, []),
    ("data keywords hold data", {"enum": [{"$ref": "http://x.example/"}], "const": {"pattern": LOOKAHEAD}, "default": {"$ref": "x"}, "examples": [{"pattern": LOOKAHEAD}]}, []),
    ("a property named like a data keyword", {"properties": {"enum": {"pattern": LOOKAHEAD}}}, [("#/properties/enum/pattern", "cannot run on RE2")]),
    ("under an unknown key a $ref can reach", {"$ref": "#/x-shared", "x-shared": {"pattern": "(?<=a)b"}}, [("#/x-shared/pattern", "cannot run on RE2")]),
    ("every problem, in document order", {"allOf": [{"$ref": "http://x.example/a"}, {"pattern": LOOKAHEAD}]}, [("#/allOf/0/$ref", "outside"), ("#/allOf/1/pattern", "RE2")]),
    ("a boolean schema", True, []),
    ("one pattern over RE2's memory budget", {"pattern": "\\p{L}{300}"}, [("#/pattern", "pattern too large")]),
    # 120,000 RE2 instructions each: the ninth crosses the 1,000,000 of one schema.
    ("patterns too large together", {"allOf": [{"pattern": f"\\p{{L}}{{100}}{i}"} for i in range(12)]}, [("#/allOf/8/pattern", "too large together")]),
    ("too many patterns", {"properties": {f"p{i}": {"pattern": f"^{i}$"} for i in range(1001)}}, [("#/properties/p1000/pattern", "at most 1000 distinct ones")]),
    ("one refused pattern stops the compiling", {"allOf": [{"pattern": "(?=a)"}, {"pattern": "(?=b)"}]}, [("#/allOf/0/pattern", "(?=")]),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "expected"), [c[1:] for c in SAFETY_CASES], ids=[c[0] for c in SAFETY_CASES])
def test_check_schema_is_safe(schema, expected):
    problems = check_schema_is_safe(schema)
    assert [path for path, _ in problems] == [path for path, _ in expected]
    for (_, message), (_, words) in zip(problems, expected, strict=True):
        assert words in message


def test_a_deeply_nested_schema_is_checked_without_recursion():
    schema: dict = {"pattern": LOOKAHEAD}
    for _ in range(5000):
        schema = {"items": schema}
    [(path, _)] = check_schema_is_safe(schema)
    assert path == "#" + "/items" * 5000 + "/pattern"


# (id, schema, instance, valid): every keyword that runs a user pattern, in each draft.
REDOS_CASES = [
    ("pattern", {"type": "string", "pattern": REDOS}, LONG_NAME, False),
    ("pattern matches", {"pattern": REDOS}, LONG_NAME + "b", True),
    ("patternProperties", {"patternProperties": {REDOS: {"type": "string"}}}, {LONG_NAME + "b": 1}, False),
    ("additionalProperties", {"patternProperties": {REDOS: {}}, "additionalProperties": False}, {LONG_NAME: 1}, False),
    ("propertyNames", {"propertyNames": {"pattern": REDOS}}, {LONG_NAME: 1}, False),
    ("unevaluatedProperties 2020-12", {"$schema": S2020, "patternProperties": {REDOS: {}}, "unevaluatedProperties": False}, {LONG_NAME: 1}, False),
    ("unevaluatedProperties 2019-09", {"$schema": S2019, "patternProperties": {REDOS: {}}, "unevaluatedProperties": False}, {LONG_NAME: 1}, False),
    ("draft 3", {"$schema": S03, "patternProperties": {REDOS: {}}, "additionalProperties": False}, {LONG_NAME: 1}, False),
    ("ECMA \\u escape", {"pattern": "^\\u00e9+$"}, "ééé", True),
    # jsonschema joins these with "|" into one program, over the budget of one pattern.
    ("additionalProperties, large patterns", {"patternProperties": {"\\p{L}{100}$": {}, "^\\p{Lu}{100}": {}, "\\p{Ll}{90}x": {}}, "additionalProperties": False}, {"É" * 100: 1}, True),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "instance", "valid"), [c[1:] for c in REDOS_CASES], ids=[c[0] for c in REDOS_CASES])
def test_python_validator_runs_patterns_on_re2(schema, instance, valid):
    validator = python_validator(schema)
    assert returns_within(lambda: validator.is_valid(instance), 10, "a backtracking pattern") is valid


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [c[1:] for c in REDOS_CASES if c[0] != "draft 3"],
    ids=[c[0] for c in REDOS_CASES if c[0] != "draft 3"],
)
def test_rust_validator_runs_patterns_on_the_regex_crate(schema, instance, valid):
    validator = rust_validator(schema)
    assert returns_within(lambda: validator.is_valid(instance), 10, "a backtracking pattern") is valid


def test_only_the_rebound_jsonschema_functions_use_re():
    """The RE2 validators replace every jsonschema function that calls `re` on a user pattern;
    a jsonschema upgrade that adds one fails here rather than freezing a process."""
    from jsonschema import _keywords, _legacy_keywords, _utils

    using_re = {
        f"{module.__name__}.{name}"
        for module in (_keywords, _legacy_keywords, _utils)
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and "re" in value.__code__.co_names
    }
    assert using_re == {
        "jsonschema._keywords.pattern",
        "jsonschema._keywords.patternProperties",
        "jsonschema._utils.find_additional_properties",
        "jsonschema._utils.find_evaluated_property_keys_by_schema",
        "jsonschema._legacy_keywords.find_evaluated_property_keys_by_schema",
    }


def test_an_unsupported_pattern_is_refused_with_its_path():
    validators = Validators(
        LocalSchemas({"user.created": {"schema": {"properties": {"name": {"pattern": LOOKAHEAD}}}}})
    )
    with pytest.raises(InvalidSchema) as caught:
        validators.validate("user.created", {"name": "x"})
    assert str(caught.value).startswith(
        "user.created v1: #/properties/name/pattern: The regular expression '^(?!admin)'"
    )


@pytest.mark.parametrize("dialect", [S2020, S03], ids=["jsonschema_rs", "jsonschema fallback"])
def test_a_remote_ref_is_refused_and_never_fetched(dialect):
    with CountingServer() as remote:
        schema = {"$schema": dialect, "properties": {"customer": {"$ref": remote.url("customer.json")}}}
        validators = Validators(LocalSchemas({"order.placed": {"schema": schema}}))
        with pytest.raises(InvalidSchema, match=r"order.placed v1: #/properties/customer/\$ref: \$ref 'http://127"):
            validators.validate("order.placed", {"customer": 5})
        assert remote.connections == 0


def test_validators_that_fetch_are_seen_by_the_counting_server():
    """The control: jsonschema left to its defaults fetches the $ref (and takes `{}` as valid)."""
    import jsonschema

    with CountingServer() as remote:
        schema = {"properties": {"customer": {"$ref": remote.url("customer.json")}}}
        with pytest.warns(DeprecationWarning, match="remote references"):
            assert jsonschema.validators.validator_for(schema)(schema).is_valid({"customer": 5})
        assert remote.connections == 1
        with pytest.raises(Exception, match="customer.json"):  # referencing's Unresolvable
            python_validator(schema).is_valid({"customer": 5})
        assert remote.connections == 1


# --- RegistrySchemas against a real HTTP server -----------------------------------


class _Registry:
    """The registry's latest-version endpoint, with a request log and a switch."""

    def __init__(self):
        self.requests: list[tuple[str, str | None]] = []
        self.version = 3
        self.status = 200
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                registry.requests.append((self.path, self.headers.get("Authorization")))
                prefix, suffix = "/api/v1/registry/events/", "/versions/latest"
                name = self.path.removeprefix(prefix).removesuffix(suffix)
                if registry.status != 200 or name != "order.placed":
                    self.send_response(registry.status if registry.status != 200 else 404)
                    self.end_headers()
                    return
                body = {
                    "event_type": name,
                    "version": registry.version,
                    "schema": ORDER_SCHEMA,
                    "topic": "orders",
                    "bus": "kafka",
                }
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry():
    server = _Registry()
    yield server
    server.stop()


def test_registry_fetches_latest_with_token(registry):
    schemas = RegistrySchemas(registry.url + "/", "s3cret", ttl_s=300)
    event = schemas.get("order.placed")
    assert (event.version, event.topic, event.bus) == (3, "orders", "kafka")
    assert registry.requests == [("/api/v1/registry/events/order.placed/versions/latest", "Token s3cret")]
    # Validation uses the fetched schema.
    with pytest.raises(InvalidPayload, match=r"\$\.amount"):
        Validators(schemas).validate("order.placed", {"order_id": "o", "amount": -1})


def test_registry_caches_for_ttl(registry):
    cached = RegistrySchemas(registry.url, "t", ttl_s=300)
    cached.get("order.placed")
    registry.version = 4
    assert cached.get("order.placed").version == 3
    assert len(registry.requests) == 1

    expiring = RegistrySchemas(registry.url, "t", ttl_s=0)
    expiring.get("order.placed")
    assert expiring.get("order.placed").version == 4


def test_registry_404_is_unknown_event_type(registry):
    with pytest.raises(UnknownEventType, match="nope"):
        RegistrySchemas(registry.url, "t").get("nope")


def test_registry_refusing_the_token_does_not_echo_it(registry):
    registry.status = 401
    with pytest.raises(SchemaRegistryUnavailable, match="refused the token") as caught:
        RegistrySchemas(registry.url, "s3cret").get("order.placed")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(RegistrySchemas(registry.url, "s3cret"))


def test_registry_unreachable_is_a_clear_error(registry, caplog):
    url = registry.url
    registry.stop()
    schemas = RegistrySchemas(url, "s3cret", timeout_s=2)
    with pytest.raises(SchemaRegistryUnavailable, match="unreachable"):
        schemas.get("order.placed")


def test_registry_outage_serves_the_stale_copy(registry, caplog):
    schemas = RegistrySchemas(registry.url, "s3cret", ttl_s=0)
    schemas.get("order.placed")
    registry.status = 503
    with caplog.at_level(logging.WARNING):
        assert schemas.get("order.placed").version == 3
    assert "using cached order.placed v3" in caplog.text
    assert "s3cret" not in caplog.text
