"""The topic browser's API answers, held to its OpenAPI document on a real topic of hostile records.

The sweep (test_schemathesis_viewer.py) fuzzes the operation against the world's designed
topic, which no bus holds: it sees 400s and 404s. Here the same checks (no 5xx, status,
content type and body as documented: fuzzing.call_and_check) run on topics that exist on
both buses and hold every kind of record a hostile producer can write, with every filter.
"""

from __future__ import annotations

import json
import uuid

import pytest

from eventhub import connections
from eventhub.bus import UnknownTopic, open_bus
from tests.conftest import bus_options
from tests.security import fuzzing
from tests.security.conftest import VIEWER
from tests.security.fuzzing import in_process_requests  # noqa: F401

PATH = "/api/v1/bus/{bus}/topics/{name}/messages"
HOSTILE = [
    (b'{"order_id": "o-1", "customer": {"id": "c-1"}}', b"k", [("ce_type", b"order.placed"), ("bin", b"\xff\x00")]),
    (b"\x00\x01\xff binary", b"\x00\xff", []),
    (b"y" * 200_000, b"big", []),
    (b"[" * 5000 + b"]" * 5000, b"deep", [("ce_type", b"order.placed")]),
    (b'{"order_id": 12', b"broken", [("ce_type", b"order.placed"), ("x-eventhub-schema-version", b"1")]),
    (
        json.dumps({"type": ["not", "text"], "data": 1}).encode(),
        b"liar",
        [("content-type", b"application/cloudevents+json")],
    ),
    (b'{"data_base64": "%%%"}', b"liar2", [("content-type", b"application/cloudevents+json")]),
    (None, b"tombstone", [("x-eventhub-correlation-id", b"c\nline")]),
]
QUERIES = [
    {},
    {"newest": "false"},
    {"from_offset": "0"},
    {"from_time": "2000-01-01T00:00:00Z", "limit": "3"},
    {"type": "order.placed"},
    {"field": ["customer.id=c-1", "order_id=o-1"]},
    {"header": "bin:hex:ff00"},
    {"key": "hex:00ff"},
    {"q": "binary"},
    {"budget": "2"},
    {"partition": "0", "limit": "500"},
]


@pytest.fixture(scope="module", autouse=True)
def _fresh_bus_clients():
    """The views read through the shared adapters: close them, the brokers outlive no test module."""
    yield
    connections.reset()


@pytest.fixture(scope="module")
def hostile_topics():
    topics = {}
    buses = {kind: open_bus(kind, **bus_options(kind)) for kind in ("kafka", "redis")}
    try:
        for kind, bus in buses.items():
            name = f"sec-browse-{uuid.uuid4().hex[:8]}"
            bus.create_topic(name)
            for value, key, headers in HOSTILE:
                bus.publish(name, value, key=key, headers=headers)
            topics[kind] = name
        yield topics
    finally:
        for kind, bus in buses.items():
            try:
                if kind in topics:
                    bus.delete_topic(topics[kind])
            except UnknownTopic:
                pass
            bus.close()


@pytest.mark.parametrize("kind", ["kafka", "redis"])
@pytest.mark.usefixtures("in_process_requests")
def test_every_answer_on_hostile_records_is_as_documented(kind, hostile_topics, shared, world):
    operation = fuzzing.SCHEMA[PATH]["GET"]
    api_token = fuzzing.token(shared.users[VIEWER])
    for query in QUERIES:
        if kind == "redis" and "from_offset" in query:
            query = {**query, "from_offset": "0-0"}
        case = operation.Case(path_parameters={"bus": kind, "name": hostile_topics[kind]}, query=query)
        fuzzing.call_and_check(case, api_token, world)
