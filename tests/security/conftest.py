"""Fixtures of the security sweep: one small world with an object behind every route, and a client per role.

The matrix, CSRF and schemathesis tests all need the same things: a domain,
services, a topic, an event with two registered versions, a producer and a
consumer, a flow with a step, a dead letter and a finished redrive job. They
are created per test (the test's transaction rolls them back), so a DELETE in
one case never hides the object from the next.

The browser harness of tests/browser (live Daphne + Chromium) is imported
here so that tests/security/test_xss_browser.py can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client

# The shared browser harness: fixtures and the hook it relies on (the report on the
# item, so a failed test leaves its screenshots).
from tests.browser.conftest import (  # noqa: F401
    _browser_slot,
    _template_db,
    browser,
    live_app,
    make_live_app,
    page_as,
    pytest_runtest_makereport,
)

ANONYMOUS, VIEWER, DESIGNER, OPERATOR, ADMIN = "anonymous", "viewer", "designer", "operator", "admin"
ROLES = (ANONYMOUS, VIEWER, DESIGNER, OPERATOR, ADMIN)

# Closed content model: adding an optional property is a backward-compatible change.
V1 = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["order_id"],
}
V2 = {**V1, "properties": {**V1["properties"], "currency": {"type": "string"}}}
V3 = {**V2, "properties": {**V2["properties"], "note": {"type": "string"}}}


@dataclass
class World:
    """The objects every route of the matrix points at."""

    domain: object
    service: object
    other_service: object
    topic: object
    event: object
    bare_event: object  # no versions: deletable by a designer
    producer: object
    consumer: object
    flow: object
    step: object
    dead_letter: object  # discarded: every action on it is refused as a conflict, after the access check
    job: object  # done: cancel and resume are refused as conflicts
    indexed_event: object = None  # in the event store, its payload kept (no bus read)
    observed: object = None  # a schema discovered from traffic, not approved yet
    flow_check: object = None  # a finished check of the flow


def build_world(author=None) -> World:
    from deadletters.models import DeadLetter, RedriveJob
    from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, SchemaVersion, Service, Topic
    from eventstore.models import FlowCheck, IndexedEvent, ObservedSchema

    domain = Domain.objects.create(name="Payments", slug="payments", description="Money in, money out.")
    service = Service.objects.create(name="Billing", slug="billing", domain=domain, owner_team="payments")
    other = Service.objects.create(name="Shipping", slug="shipping", domain=domain)
    topic = Topic.objects.create(name="orders", bus=Topic.KAFKA, address="sec-orders", domain=domain)
    event = EventType.objects.create(name="order.placed", owner=service, topic=topic, domain=domain)
    bare = EventType.objects.create(name="order.forgotten", owner=service, topic=topic, domain=domain)
    SchemaVersion.objects.create(event_type=event, version=1, schema=V1, examples=[{"order_id": "o-1"}], author=author)
    version = SchemaVersion.objects.create(event_type=event, version=2, schema=V2, author=author)
    producer = Producer.objects.create(service=service, event_type=event)
    consumer = Consumer.objects.create(service=other, event_type=event, fields_used=["order_id"])
    flow = Flow.objects.create(name="Checkout", trigger="Customer clicks Pay", domain=domain)
    step = FlowStep.objects.create(flow=flow, order=1, producer=service, event_type=event, consumer=other)
    now = datetime.now(UTC)
    dead_letter = DeadLetter.objects.create(
        bus="kafka",
        dlq_topic="sec-orders.dlq",
        dlq_offset="0",
        source_topic="sec-orders",
        source_offset="0",
        payload=b'{"order_id": "o-1", "amount": -1}',
        payload_size=33,
        payload_json={"order_id": "o-1", "amount": -1},
        payload_text='{"order_id": "o-1", "amount": -1}',
        group="shipping",
        service="shipping",
        error_class="ValueError",
        error_message="amount must not be negative",
        event_type=event,
        schema_version=version,
        first_failed_at=now,
        last_failed_at=now,
        status=DeadLetter.DISCARDED,
    )
    job = RedriveJob.objects.create(
        action=RedriveJob.RETRY,
        state=RedriveJob.DONE,
        selection={"ids": [dead_letter.pk]},
        item_ids=[dead_letter.pk],
        total=1,
        done=1,
        cursor=1,
        created_by=author,
    )
    world = World(domain, service, other, topic, event, bare, producer, consumer, flow, step, dead_letter, job)
    world.indexed_event = IndexedEvent.objects.create(
        bus="kafka",
        topic="sec-orders",
        partition=0,
        offset="0",
        timestamp=now,
        ce_id="sec-event-1",
        ce_type="order.placed",
        correlation_id="sec-chain-1",
        size=33,
        validity=IndexedEvent.INVALID,
        invalid_path="$.amount",
        invalid_rule="minimum",
        payload=b'{"order_id": "o-1", "amount": -1}',
    )
    world.flow_check = FlowCheck.objects.create(
        flow=flow, status=FlowCheck.PASSED, correlation_id="sec-check-1", started_at=now, finished_at=now
    )
    world.observed = ObservedSchema.objects.create(
        subject="type:parcel.shipped",
        kind=ObservedSchema.TYPE,
        event_type_name="parcel.shipped",
        bus="kafka",
        topic="sec-orders",
        schema={"type": "object", "properties": {"parcel": {"type": "string"}}},
        sample_count=3,
        first_seen=now,
        last_seen=now,
    )
    return world


@dataclass
class Shared:
    """A world, the five personas and their sessions, made once per test module."""

    world: World
    users: dict[str, object]  # role -> user (anonymous: None)
    sessions: dict[str, str | None]  # role -> session key
    _clients: dict[tuple[str, bool], Client] = field(default_factory=dict)

    def client(self, role: str, *, enforce_csrf_checks: bool = False, raise_request_exception: bool = True) -> Client:
        """The role's client with only its session cookie: what one request changed (a logout) is gone.

        Clients are kept per role: building one loads the middleware chain, and
        WhiteNoise then indexes every static file, which costs more than a request.
        """
        key = (role, enforce_csrf_checks)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = Client(enforce_csrf_checks=enforce_csrf_checks)
        client.raise_request_exception = raise_request_exception
        client.cookies.clear()
        if self.sessions[role]:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client


def pytest_collection_modifyitems(config, items):
    """A node id of its own for each operation of a schemathesis sweep."""
    if any(hasattr(item, "operation_label") for item in items):  # schemathesis sweeps collected
        from tests.security.fuzzing import name_items_by_operation

        name_items_by_operation(items)


_GROUPS = {VIEWER: "Viewer", DESIGNER: "Designer", OPERATOR: "Operator"}


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker):
    """setUpTestData for a module: the rows live in an outer transaction rolled back at the end.

    Each test's own `db` transaction nests inside it as a savepoint, so a test's
    writes vanish after it and the shared rows after the module.
    """
    from django.contrib.auth.models import Group, User

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            users: dict[str, object] = {ANONYMOUS: None}
            for role, group in _GROUPS.items():
                # No password: hashing one costs more than the whole request it is for.
                users[role] = User.objects.create_user(f"sec-{role}", f"sec-{role}@example.com", None)
                users[role].groups.add(Group.objects.get_or_create(name=group)[0])
            users[ADMIN] = User.objects.create_superuser("sec-admin", "sec-admin@example.com", None)
            sessions: dict[str, str | None] = {ANONYMOUS: None}
            for role in ROLES[1:]:
                client = Client()
                client.force_login(users[role])
                sessions[role] = session_cookie(client)
            yield Shared(build_world(users[ADMIN]), users, sessions)
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def world(db, shared) -> World:
    return shared.world


@pytest.fixture
def memory_channel_layer(settings):
    """Websocket tests fan out through an in-process channel layer, not Redis."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.EVENTHUB_CHANNEL_LAYER = "memory"
    return settings.CHANNEL_LAYERS


def session_cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value
