"""Every URL route x every role: the status each persona gets, written down and checked.

The routes are enumerated from Django's resolver (DRF router routes included),
so a route nobody wrote an expectation for fails `test_every_route_has_an_expectation`
with the line to add. Each row of ROUTES says how to build a URL for the route
(objects from the `world` fixture), which methods to try with which body, and
the status for anonymous, viewer, designer, operator and admin.

Conventions (docs/security.md):
- pages: anonymous -> 302 to /login/?next=...; every logged-in user reads;
- design changes need the Designer role, dead-letter actions the Operator role
  (others 403); admin (superuser) holds every role;
- the API (/api/...) never redirects: anonymous gets 401/403 from DRF.

Writes that pass the access check run for real inside a savepoint that is
rolled back after each role, so every role acts on the same world. Actions on
dead letters and jobs target a discarded dead letter and a finished job: the
access check comes first, then the action is refused with 409, so no test here
publishes to a bus.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.conftest import ADMIN, ANONYMOUS, DESIGNER, OPERATOR, ROLES, V3, VIEWER, World

LOGIN = "302 -> /login/"  # redirected to the login page with ?next=
DENIED_API = (401, 403)  # DRF: 403 while SessionAuthentication comes first, 401 if a token scheme leads
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

Expected = int | tuple[int, ...] | str


# --------------------------------------------------------------------------- expectation shapes
def page(ok: Expected = 200, *, anonymous: Expected = LOGIN) -> dict[str, Expected]:
    """A page every logged-in user may open."""
    return {ANONYMOUS: anonymous, VIEWER: ok, DESIGNER: ok, OPERATOR: ok, ADMIN: ok}


def design_page(ok: Expected, admin: Expected | None = None) -> dict[str, Expected]:
    """A page or form that changes the design: Designer (and admin) only."""
    return {ANONYMOUS: LOGIN, VIEWER: 403, DESIGNER: ok, OPERATOR: 403, ADMIN: ok if admin is None else admin}


def operate_page(ok: Expected) -> dict[str, Expected]:
    """A dead-letter action: Operator (and admin) only."""
    return {ANONYMOUS: LOGIN, VIEWER: 403, DESIGNER: 403, OPERATOR: ok, ADMIN: ok}


def api_read(ok: Expected = 200) -> dict[str, Expected]:
    return {ANONYMOUS: DENIED_API, VIEWER: ok, DESIGNER: ok, OPERATOR: ok, ADMIN: ok}


def api_design(ok: Expected, admin: Expected | None = None) -> dict[str, Expected]:
    return {ANONYMOUS: DENIED_API, VIEWER: 403, DESIGNER: ok, OPERATOR: 403, ADMIN: ok if admin is None else admin}


def api_operate(ok: Expected) -> dict[str, Expected]:
    return {ANONYMOUS: DENIED_API, VIEWER: 403, DESIGNER: 403, OPERATOR: ok, ADMIN: ok}


@dataclass(frozen=True)
class Probe:
    """One request: method, body (a function of the world), expected status per role."""

    method: str
    expect: dict[str, Expected]
    body: Callable[[World], dict[str, Any]] | None = None
    query: str = ""


@dataclass(frozen=True)
class Route:
    url: Callable[[World], str]
    probes: tuple[Probe, ...]
    api: bool = False  # bodies as JSON (DRF) instead of a form post
    # Methods other than the probes' that answer something else than 405 for an admin.
    other_methods: dict[str, Expected] = field(default_factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.method for p in self.probes))


def GET(expect: dict[str, Expected], query: str = "") -> Probe:  # noqa: N802 - reads like the table it is
    return Probe("GET", expect, query=query)


def _event(w: World) -> str:
    return w.event.name


def _flow_check(w: World) -> int:
    """A finished check of the world's flow (made on first use: the world has none)."""
    from django.utils import timezone

    from eventstore.models import FlowCheck

    check, _ = FlowCheck.objects.get_or_create(
        flow=w.flow, correlation_id="sec-check", defaults={"started_at": timezone.now(), "status": "passed"}
    )
    return check.pk


# --------------------------------------------------------------------------- the table
ROUTES: dict[str, Route] = {
    # ---- project
    "home": Route(lambda w: "/", (GET(page()),)),
    "healthz": Route(
        lambda w: "/healthz",
        # No login: load balancers ask it. 503 is its honest answer when a part is down.
        (GET({role: (200, 503) for role in ROLES}),),
    ),
    "login": Route(
        lambda w: "/login/",
        (
            # Logged-in users are sent on (redirect_authenticated_user).
            GET({ANONYMOUS: 200, VIEWER: 302, DESIGNER: 302, OPERATOR: 302, ADMIN: 302}),
            Probe("POST", {ANONYMOUS: 200, VIEWER: 302, DESIGNER: 302, OPERATOR: 302, ADMIN: 302}, body=lambda w: {}),
        ),
        other_methods={"PUT": 302, "PATCH": 302, "DELETE": 302},  # the authenticated redirect comes first
    ),
    "logout": Route(
        lambda w: "/logout/",
        (Probe("POST", {**{role: 302 for role in ROLES}, ANONYMOUS: LOGIN}, body=lambda w: {}),),
    ),
    "api-schema": Route(lambda w: "/api/schema/", (GET(api_read()),), api=True),
    "api-docs": Route(lambda w: "/api/docs/", (GET(api_read()),), api=True),
    # ---- designer REST API: plain resources (router)
    "api-domain-list": Route(
        lambda w: "/api/v1/domains/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"name": "Risk"})),
        api=True,
    ),
    "api-domain-detail": Route(
        lambda w: f"/api/v1/domains/{w.domain.pk}/",
        (
            GET(api_read()),
            Probe("PUT", api_design(200), body=lambda w: {"name": "Payments", "description": "Renamed."}),
            Probe("PATCH", api_design(200), body=lambda w: {"description": "Patched."}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    "api-service-list": Route(
        lambda w: "/api/v1/services/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"name": "Ledger"})),
        api=True,
    ),
    "api-service-detail": Route(
        lambda w: f"/api/v1/services/{w.service.pk}/",
        (
            GET(api_read()),
            Probe("PUT", api_design(200), body=lambda w: {"name": "Billing", "owner_team": "money"}),
            Probe("PATCH", api_design(200), body=lambda w: {"tags": ["core"]}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    "api-topic-list": Route(
        lambda w: "/api/v1/topics/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"name": "sec-refunds", "bus": "kafka"})),
        api=True,
    ),
    "api-topic-detail": Route(
        lambda w: f"/api/v1/topics/{w.topic.pk}/",
        (
            GET(api_read()),
            Probe("PUT", api_design(200), body=lambda w: {"name": "orders", "bus": "kafka", "address": "sec-orders"}),
            Probe("PATCH", api_design(200), body=lambda w: {"partitions": 3}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    "api-event-list": Route(
        lambda w: "/api/v1/events/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"name": "order.refunded"})),
        api=True,
    ),
    "api-event-detail": Route(
        lambda w: f"/api/v1/events/{w.event.pk}/",
        (
            GET(api_read()),
            Probe("PUT", api_design(200), body=lambda w: {"name": "order.placed", "key_field": "order_id"}),
            Probe("PATCH", api_design(200), body=lambda w: {"description": "Placed orders."}),
            # Registered versions: only an admin may delete the event (designer: 409).
            Probe("DELETE", api_design(409, admin=204)),
        ),
        api=True,
    ),
    "api-producer-list": Route(
        lambda w: "/api/v1/producers/",
        (
            GET(api_read()),
            Probe("POST", api_design(201), body=lambda w: {"service": w.other_service.pk, "event_type": w.event.pk}),
        ),
        api=True,
    ),
    "api-producer-detail": Route(
        lambda w: f"/api/v1/producers/{w.producer.pk}/",
        (
            GET(api_read()),
            Probe("PUT", api_design(200), body=lambda w: {"service": w.service.pk, "event_type": w.bare_event.pk}),
            Probe("PATCH", api_design(200), body=lambda w: {"event_type": w.bare_event.pk}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    "api-consumer-list": Route(
        lambda w: "/api/v1/consumers/",
        (
            GET(api_read()),
            Probe("POST", api_design(201), body=lambda w: {"service": w.service.pk, "event_type": w.event.pk}),
        ),
        api=True,
    ),
    "api-consumer-detail": Route(
        lambda w: f"/api/v1/consumers/{w.consumer.pk}/",
        (
            GET(api_read()),
            Probe(
                "PUT", api_design(200), body=lambda w: {"service": w.other_service.pk, "event_type": w.bare_event.pk}
            ),
            Probe("PATCH", api_design(200), body=lambda w: {"fields_used": ["order_id", "amount"]}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    "api-flow-list": Route(
        lambda w: "/api/v1/flows/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"name": "Refund", "trigger": "Support"})),
        api=True,
    ),
    "api-flow-detail": Route(
        lambda w: f"/api/v1/flows/{w.flow.pk}/",
        (
            GET(api_read()),
            Probe("PUT", api_design(200), body=lambda w: {"name": "Checkout", "trigger": "Pay"}),
            Probe("PATCH", api_design(200), body=lambda w: {"description": "The happy path."}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    "api-flow-steps": Route(
        lambda w: f"/api/v1/flows/{w.flow.pk}/steps/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"event_type": w.event.pk, "order": 2})),
        api=True,
    ),
    "api-flow-step": Route(
        lambda w: f"/api/v1/flows/{w.flow.pk}/steps/{w.step.pk}/",
        (
            GET(api_read()),
            Probe("PATCH", api_design(200), body=lambda w: {"logic": "ships the parcel"}),
            Probe("DELETE", api_design(204)),
        ),
        api=True,
    ),
    # ---- designer REST API: graph, lints, registry
    "api-graph": Route(lambda w: "/api/v1/graph/", (GET(api_read()),), api=True),
    "api-lints": Route(lambda w: "/api/v1/lints/", (GET(api_read()),), api=True),
    "api-registry-versions": Route(
        lambda w: f"/api/v1/registry/events/{_event(w)}/versions/",
        (GET(api_read()), Probe("POST", api_design(201), body=lambda w: {"schema": V3, "changelog": "Adds note."})),
        api=True,
    ),
    "api-registry-latest": Route(
        lambda w: f"/api/v1/registry/events/{_event(w)}/versions/latest", (GET(api_read()),), api=True
    ),
    "api-registry-version": Route(
        lambda w: f"/api/v1/registry/events/{_event(w)}/versions/1", (GET(api_read()),), api=True
    ),
    "api-registry-compatibility": Route(
        lambda w: f"/api/v1/registry/events/{_event(w)}/compatibility",
        # It changes nothing: a viewer's CI token may ask too.
        (Probe("POST", api_read(200), body=lambda w: {"schema": V3}),),
        api=True,
    ),
    # ---- designer pages
    "designer-canvas": Route(lambda w: "/designer/", (GET(page()),)),
    "designer-flowchart": Route(lambda w: "/designer/flowchart/", (GET(page()),)),
    "designer-flowchart-mmd": Route(lambda w: "/designer/flowchart.mmd", (GET(page()),)),
    "designer-catalog": Route(lambda w: "/catalog/", (GET(page()),)),
    "designer-event-detail": Route(lambda w: f"/catalog/events/{_event(w)}/", (GET(page()),)),
    "designer-event-compare": Route(lambda w: f"/catalog/events/{_event(w)}/compare", (GET(page(), query="a=1&b=2"),)),
    "designer-event-register": Route(
        lambda w: f"/catalog/events/{_event(w)}/versions/new/",
        (
            GET(design_page(200)),
            Probe(
                "POST",
                design_page(302),  # registered, then redirected to the event page
                body=lambda w: {"schema": json.dumps(V3), "examples": "[]", "changelog": "x", "action": "register"},
            ),
        ),
    ),
    "designer-service-detail": Route(lambda w: f"/catalog/services/{w.service.slug}/", (GET(page()),)),
    "designer-topic-detail": Route(lambda w: f"/catalog/topics/{w.topic.pk}/", (GET(page()),)),
    "designer-asyncapi-import": Route(
        lambda w: "/catalog/import/",
        (
            GET(design_page(200)),
            Probe("POST", design_page(400), body=lambda w: {"text": "not: [an asyncapi document"}),
        ),
    ),
    "designer-asyncapi-export": Route(lambda w: "/catalog/export/asyncapi.yaml", (GET(page()),)),
    # ---- monitor pages and API
    "monitor-dashboard": Route(lambda w: "/monitor/", (GET(page()),)),
    "monitor-api-snapshot": Route(lambda w: "/api/v1/monitor/snapshot", (GET(api_read()),), api=True),
    "monitor-api-adopt": Route(
        lambda w: "/api/v1/monitor/observed/adopt",
        (
            Probe(
                "POST",
                api_design(201),
                body=lambda w: {"bus": "kafka", "topic": "sec-seen", "event_type": "seen.event", "producer": "seen"},
            ),
        ),
        api=True,
    ),
    "monitor-api-history": Route(
        lambda w: "/api/v1/monitor/history", (GET(api_read(), query="bus=kafka&topic=sec-orders"),), api=True
    ),
    "monitor-api-history-busiest": Route(
        lambda w: "/api/v1/monitor/history/busiest",
        (GET(api_read(), query="since=2026-01-01T00:00Z&until=2026-01-01T00:30Z"),),
        api=True,
    ),
    # Without EVENTHUB_METRICS_TOKEN a login (test_metrics_bearer_token covers the token).
    "monitor-metrics": Route(lambda w: "/metrics", (GET(page()),)),
    # ---- event store pages
    "event-store": Route(lambda w: "/events/", (GET(page()),)),
    "event-store-event": Route(lambda w: f"/events/{w.indexed_event.pk}/", (GET(page()),)),
    "discovered-schemas": Route(lambda w: "/events/discovered/", (GET(page()),)),
    "discovered-schema": Route(
        lambda w: f"/events/discovered/{w.observed.pk}/",
        (GET(page()), Probe("POST", design_page(302), body=lambda w: {"schema": '{"type": "object"}'})),
    ),
    "event-drift": Route(lambda w: f"/events/drift/{_event(w)}", (GET(page()),)),
    "api-discovered-list": Route(lambda w: "/api/v1/discovered/", (GET(api_read()),), api=True),
    "api-discovered-detail": Route(lambda w: f"/api/v1/discovered/{w.observed.pk}", (GET(api_read()),), api=True),
    "api-discovered-approve": Route(
        lambda w: f"/api/v1/discovered/{w.observed.pk}/approve",
        (Probe("POST", api_design(201), body=lambda w: {}),),
        api=True,
    ),
    "event-store-setting": Route(
        lambda w: "/events/settings",
        (
            Probe(
                "POST",
                operate_page(302),
                body=lambda w: {"bus": "kafka", "topic": "sec-orders", "sample_rate": "1", "retention_days": "7"},
            ),
        ),
    ),
    # ---- traces (eventstore/traces.py): pages and REST API, read by every logged-in user
    "traces": Route(lambda w: "/traces/", (GET(page()), GET(page(400), query="since=not-a-time"))),
    "trace": Route(lambda w: f"/traces/{w.indexed_event.correlation_id}/", (GET(page()),)),
    "api-traces": Route(
        lambda w: "/api/v1/traces/", (GET(api_read()), GET(api_read(400), query="has_dead_letter=maybe")), api=True
    ),
    "api-trace": Route(lambda w: f"/api/v1/traces/{w.indexed_event.correlation_id}", (GET(api_read()),), api=True),
    "api-trace-event-payload": Route(
        lambda w: f"/api/v1/traces/events/{w.indexed_event.pk}/payload", (GET(api_read()),), api=True
    ),
    # ---- flow checks (eventstore/flow_checks.py): the page, and the API (Operators start one;
    # the world's trigger event has no example in its latest version, so the start is refused)
    "flow-checks": Route(lambda w: f"/flows/{w.flow.slug}/", (GET(page()),)),
    "api-flow-checks": Route(
        lambda w: f"/api/v1/flows/{w.flow.pk}/checks",
        (GET(api_read()), Probe("POST", api_operate(400), body=lambda w: {})),
        api=True,
    ),
    "api-flow-check": Route(lambda w: f"/api/v1/flow-checks/{_flow_check(w)}", (GET(api_read()),), api=True),
    # ---- the topic browser (reads the real buses; no topic of this name exists there)
    "topic-browser": Route(lambda w: "/browse/", (GET(page()),)),
    "topic-browser-topic": Route(lambda w: "/browse/kafka/sec-browse-missing/", (GET(page(404)),)),
    "api-bus-topics": Route(lambda w: "/api/v1/bus/redis/topics/", (GET(api_read()),), api=True),
    "api-bus-messages": Route(
        lambda w: "/api/v1/bus/kafka/topics/sec-browse-missing/messages",
        (GET(api_read(404)), GET(api_read(400), query="limit=0")),
        api=True,
    ),
    # ---- dead-letter pages
    "dead-letters": Route(lambda w: "/dead-letters/", (GET(page()),)),
    "dead-letter-rows": Route(lambda w: "/dead-letters/rows", (GET(page(), query="ids={w.dead_letter.pk}"),)),
    "dead-letter-detail": Route(lambda w: f"/dead-letters/{w.dead_letter.pk}/", (GET(page()),)),
    "dead-letter-state": Route(lambda w: f"/dead-letters/{w.dead_letter.pk}/state", (GET(page()),)),
    "dead-letter-receivers": Route(lambda w: f"/dead-letters/{w.dead_letter.pk}/receivers", (GET(page()),)),
    "dead-letter-retry": Route(
        lambda w: f"/dead-letters/{w.dead_letter.pk}/retry",
        (Probe("POST", operate_page(409), body=lambda w: {}),),
    ),
    "dead-letter-edit": Route(
        lambda w: f"/dead-letters/{w.dead_letter.pk}/edit",
        (
            GET(operate_page(200)),
            Probe("POST", operate_page(409), body=lambda w: {"mode": "json", "payload": '{"order_id": "o-1"}'}),
        ),
    ),
    "dead-letter-discard": Route(
        lambda w: f"/dead-letters/{w.dead_letter.pk}/discard",
        (Probe("POST", operate_page(409), body=lambda w: {"reason": "duplicate"}),),
    ),
    "dead-letter-jobs": Route(lambda w: "/dead-letters/jobs/", (GET(page()),)),
    "dead-letter-job-new": Route(
        lambda w: "/dead-letters/jobs/new",
        (
            GET(operate_page(200), query="action=discard&ids={w.dead_letter.pk}"),
            # The preview step: a dry run, nothing starts.
            Probe(
                "POST",
                operate_page(200),
                body=lambda w: {
                    "action": "discard",
                    "ids": str(w.dead_letter.pk),
                    "rate_per_s": "5",
                    "step": "preview",
                },
            ),
        ),
    ),
    "dead-letter-job": Route(lambda w: f"/dead-letters/jobs/{w.job.pk}/", (GET(page()),)),
    "dead-letter-job-state": Route(lambda w: f"/dead-letters/jobs/{w.job.pk}/state", (GET(page()),)),
    "dead-letter-job-cancel": Route(
        lambda w: f"/dead-letters/jobs/{w.job.pk}/cancel", (Probe("POST", operate_page(409), body=lambda w: {}),)
    ),
    "dead-letter-job-resume": Route(
        lambda w: f"/dead-letters/jobs/{w.job.pk}/resume", (Probe("POST", operate_page(409), body=lambda w: {}),)
    ),
    # ---- dead-letter REST API
    "api-dead-letters": Route(lambda w: "/api/v1/dead-letters/", (GET(api_read()),), api=True),
    "api-dead-letter-groups": Route(lambda w: "/api/v1/dead-letters/groups/", (GET(api_read()),), api=True),
    "api-dead-letter": Route(lambda w: f"/api/v1/dead-letters/{w.dead_letter.pk}/", (GET(api_read()),), api=True),
    "api-dead-letter-retry": Route(
        lambda w: f"/api/v1/dead-letters/{w.dead_letter.pk}/retry",
        (Probe("POST", api_operate(409), body=lambda w: {}),),
        api=True,
    ),
    "api-dead-letter-edit": Route(
        lambda w: f"/api/v1/dead-letters/{w.dead_letter.pk}/edit-and-retry",
        (Probe("POST", api_operate(409), body=lambda w: {"payload": {"order_id": "o-1"}}),),
        api=True,
    ),
    "api-dead-letter-discard": Route(
        lambda w: f"/api/v1/dead-letters/{w.dead_letter.pk}/discard",
        (Probe("POST", api_operate(409), body=lambda w: {"reason": "duplicate"}),),
        api=True,
    ),
    "api-redrive-jobs": Route(
        lambda w: "/api/v1/redrive-jobs/",
        (
            GET(api_read()),
            Probe(
                "POST", api_operate(200), body=lambda w: {"action": "retry", "ids": [w.dead_letter.pk], "dry_run": True}
            ),
        ),
        api=True,
    ),
    "api-redrive-job": Route(lambda w: f"/api/v1/redrive-jobs/{w.job.pk}/", (GET(api_read()),), api=True),
    "api-redrive-job-cancel": Route(
        lambda w: f"/api/v1/redrive-jobs/{w.job.pk}/cancel", (Probe("POST", api_operate(409)),), api=True
    ),
    "api-redrive-job-resume": Route(
        lambda w: f"/api/v1/redrive-jobs/{w.job.pk}/resume", (Probe("POST", api_operate(409)),), api=True
    ),
}


# --------------------------------------------------------------------------- enumeration
def iter_routes(patterns=None, prefix: str = "", namespace: str | None = None) -> Iterator[tuple[str, str, str | None]]:
    """(key, pattern, namespace) of every route: its name, or its pattern when it has none."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from iter_routes(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            yield entry.name or pattern, pattern, namespace


def app_routes() -> dict[str, str]:
    """{key: pattern} of the routes the matrix must cover: everything but the admin site's internals."""
    return {key: pattern for key, pattern, namespace in iter_routes() if namespace != "admin"}


def test_every_route_has_an_expectation():
    routes = app_routes()
    missing = {key: pattern for key, pattern in routes.items() if key not in ROUTES}
    stale = sorted(set(ROUTES) - set(routes))
    message = []
    if missing:
        message.append(
            "New routes without an entry in tests/security/test_url_matrix.py ROUTES; add one per route "
            "with its URL, the methods it answers and the status for each role:\n"
            + "\n".join(
                f"    {key!r}: Route(lambda w: '/{pattern}', (...)),  # {pattern}" for key, pattern in missing.items()
            )
        )
    if stale:
        message.append(f"ROUTES names routes that no longer exist (remove them): {stale}")
    assert not message, "\n\n".join(message)


def test_every_route_url_resolves_to_its_route(world):
    """The table's URL builders point at the route they claim to test."""
    from django.urls import resolve

    wrong = {}
    for key, route in ROUTES.items():
        path = route.url(world)
        match = resolve(path)
        if (match.url_name or match.route) != key:
            wrong[key] = f"{path} resolves to {match.url_name or match.route}"
    assert not wrong, wrong


# --------------------------------------------------------------------------- requests
def send(client: Client, route: Route, probe: Probe, world: World, method: str | None = None, **extra):
    method = method or probe.method
    url = route.url(world)
    query = probe.query.format(w=world)
    path = f"{url}?{query}" if query else url
    body = probe.body(world) if probe.body else {}
    if method == "GET":
        return client.get(path, **extra)
    if route.api:
        return client.generic(method, path, json.dumps(body), content_type="application/json", **extra)
    if method == "POST":
        return client.post(path, body, **extra)
    return client.generic(method, path, "", **extra)


def outcome(response) -> str | int:
    if response.status_code == 302 and response.get("Location", "").startswith("/login/?next="):
        return LOGIN
    return response.status_code


def matches(got: str | int, expected: Expected) -> bool:
    if isinstance(expected, tuple):
        return got in expected
    return got == expected


@contextmanager
def rolled_back() -> Iterator[None]:
    """A savepoint rolled back at the end: the next role sees the same world."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _cases() -> list:
    return [
        pytest.param(key, index, id=f"{key}:{probe.method}")
        for key, route in ROUTES.items()
        for index, probe in enumerate(route.probes)
    ]


@pytest.mark.parametrize("key, index", _cases())
def test_route_by_role(key, index, world, shared):
    route = ROUTES[key]
    probe = route.probes[index]
    got = {}
    for role in ROLES:
        # A crash is a 500 in the table, not an abort of the other roles.
        client = shared.client(role, raise_request_exception=False)
        with rolled_back():
            got[role] = outcome(send(client, route, probe, world))
    wrong = {
        role: f"got {got[role]}, expected {probe.expect[role]}"
        for role in ROLES
        if not matches(got[role], probe.expect[role])
    }
    assert not wrong, f"{probe.method} {route.url(world)}: {wrong}"


@pytest.mark.parametrize("key", list(ROUTES))
def test_methods_outside_the_table_are_refused(key, world, shared):
    """A method nobody listed answers 405 (to an admin, who passes every role check)."""
    route = ROUTES[key]
    probe = route.probes[0]
    wrong = {}
    for method in ALL_METHODS:
        if method in route.methods:
            continue
        client = shared.client(ADMIN, raise_request_exception=False)
        with rolled_back():
            got = outcome(send(client, route, probe, world, method=method))
        expected = route.other_methods.get(method, 405)
        if not matches(got, expected):
            wrong[method] = f"got {got}, expected {expected}"
    assert not wrong, f"{route.url(world)}: {wrong} (list the method in ROUTES if it is meant to work)"


@pytest.mark.parametrize(
    "key, index", [case for case in _cases() if ROUTES[case.values[0]].probes[case.values[1]].method in UNSAFE[:3]]
)
def test_oversized_bodies_are_refused(key, index, world, shared, settings):
    """A body over EVENTHUB_MAX_UPLOAD_BYTES (DATA_UPLOAD_MAX_MEMORY_SIZE) is refused, never a crash or a write."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096  # the setting's rule, at a size that keeps the test fast
    route, probe = ROUTES[key], ROUTES[key].probes[index]
    client = shared.client(ADMIN, raise_request_exception=False)
    filler = "x" * 5000
    if route.api:
        body = json.dumps({**(probe.body(world) if probe.body else {}), "filler": filler})
        with rolled_back():
            response = client.generic(probe.method, route.url(world), body, content_type="application/json")
    else:
        with rolled_back():
            response = client.post(route.url(world), {**(probe.body(world) if probe.body else {}), "filler": filler})
    # Views that never read the body (job cancel and resume) answer as usual: 409 for a finished job.
    assert 400 <= response.status_code < 500, (
        f"{probe.method} {route.url(world)} with a {len(filler)}-byte body answered {response.status_code}"
    )


# --------------------------------------------------------------------------- outside the table
def test_admin_site_needs_staff(world, shared):
    """/admin/ itself: anonymous to a login page, non-staff users never in, the superuser in."""
    for role in (ANONYMOUS, VIEWER, DESIGNER, OPERATOR):
        for path in ("/admin/", "/admin/designer/service/", "/admin/auth/user/"):
            response = shared.client(role).get(path)
            assert response.status_code == 302, (role, path, response.status_code)
            assert "login/?next=" in response["Location"], (role, path, response["Location"])
    assert shared.client(ADMIN).get("/admin/").status_code == 200
    assert shared.client(ADMIN).get("/admin/designer/service/").status_code == 200


def test_metrics_bearer_token(client, settings, viewer):
    """With EVENTHUB_METRICS_TOKEN set, Prometheus gets in with the token, nobody without it."""
    settings.EVENTHUB_METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token s3cret-scrape-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 200
    client.force_login(viewer)
    assert client.get("/metrics").status_code == 200


def test_api_token_does_not_open_pages(client, admin):
    """A REST token is for /api/ only: HTML pages still need a session."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=admin)
    for path in ("/", "/catalog/", "/dead-letters/", "/admin/"):
        response = client.get(path, HTTP_AUTHORIZATION=f"Token {token.key}")
        assert response.status_code == 302, path
    assert client.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    assert client.get("/api/v1/services/", HTTP_AUTHORIZATION="Token not-a-real-token").status_code in DENIED_API
