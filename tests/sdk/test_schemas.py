"""Schema sources and payload validation: no bus, no database.

The registry tests run a real HTTP server on 127.0.0.1 speaking the registry's
API, so RegistrySchemas' urllib code, caching and error handling run for real.
"""

from __future__ import annotations

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
from eventhub.sdk.schemas import json_path

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
