"""schemathesis over the OpenAPI document, shared by the per-role sweeps (test_schemathesis_<role>.py).

The document is the one /api/schema/ serves (drf-spectacular's generator and
eventhub/openapi.py; test_schemathesis.py checks they agree). Every operation is
sent by every role, with the role's token, to the Django WSGI app in process:

- in depth (`deep(role)`) where the role gets past the permission check and
  takes its own path through the code: the coverage phase (boundary and
  wrong-type values for every parameter and body property, other methods,
  other content types), then MAX_EXAMPLES examples drawn by Hypothesis, valid
  and invalid; at DEPTH "light" (`make test`) the drawn examples only;
- a quick pass (`quick(role)`, QUICK_EXAMPLES drawn examples, no coverage
  phase) elsewhere: where the role is refused before its input is read (DRF
  checks permissions before it parses a body), or takes the very path the
  Viewer takes (reads but for dead letters, the compatibility check). In depth
  there, every role would triple the sweep's time and reach no more code.

IN_DEPTH says which role goes in depth where; test_schemathesis.py checks that
every operation is in depth for some role and that the role gets past the
permission check there.

Path parameters point at real objects (the `shared` world): three drawn examples
in four, and every coverage case but those probing the path parameter itself, so
the calls reach serializers and the registry instead of stopping at 404. Each
call runs in a savepoint rolled back after it: a DELETE or an update never hides
the world from the next call. Actions on dead letters target a discarded one and
jobs a finished one: the payload is still validated before the 409, and a new
redrive job would start only after a commit that never comes, so nothing is
published to a bus.

Checks: no server error (5xx), every status code documented, and the answer's
content type and body as documented, with no exceptions.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.settings import spectacular_settings
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import DESIGNER, OPERATOR, VIEWER, World

# How deep the in-depth pass goes. "full" (the default; `make test-postgres`): the coverage
# phase, then 50 drawn examples per operation. "light" (`make test`, the Makefile says why):
# 10 drawn examples, no coverage phase, whose cases are also what makes collecting this
# package slow (about 4 CPU-s in every pytest-xdist worker). Drawn examples are the same each
# run (derandomized, so a failure reproduces); EVENTHUB_FUZZ_EXAMPLES=500 sweeps deeper (README).
DEPTH = os.environ.get("EVENTHUB_FUZZ_DEPTH", "full")
if DEPTH not in ("full", "light"):
    raise pytest.UsageError(f"EVENTHUB_FUZZ_DEPTH is {DEPTH!r}: say full or light")
COVERAGE = DEPTH == "full"
MAX_EXAMPLES = int(os.environ.get("EVENTHUB_FUZZ_EXAMPLES", "50" if COVERAGE else "10"))
QUICK_EXAMPLES = 10  # drawn examples per operation in a quick pass, no coverage phase

# The design writes are the biggest share; they are split in two files that xdist runs side by side.
CATALOG = (
    "/api/v1/domains/",
    "/api/v1/services/",
    "/api/v1/topics/",
    "/api/v1/events/",
    "/api/v1/registry/",
    "/api/v1/discovered/",
    "/api/v1/monitor/observed/",
)
FLOWS = ("/api/v1/producers/", "/api/v1/consumers/", "/api/v1/flows/")
_DESIGN = CATALOG + FLOWS
_COMPATIBILITY = "/compatibility"  # any logged-in user: it changes nothing
_FLOW_CHECKS = "/checks"  # running a flow check is an Operator's

# role -> (method, path) -> in depth? Reads are the same for every role but for
# dead letters, where the Operator holds view_sensitive (unmasked payloads, audited
# reads, payload search over every event type).
IN_DEPTH: dict[str, Callable[[str, str], bool]] = {
    VIEWER: lambda method, path: method == "GET" or path.endswith(_COMPATIBILITY),
    DESIGNER: lambda method, path: (
        method != "GET" and path.startswith(_DESIGN) and not path.endswith((_COMPATIBILITY, _FLOW_CHECKS))
    ),
    OPERATOR: lambda method, path: (
        path.startswith("/api/v1/dead-letters/")
        or (method != "GET" and path.startswith("/api/v1/redrive-jobs/"))
        or (method != "GET" and path.endswith(_FLOW_CHECKS))
    ),
}


def _document() -> dict:
    """The OpenAPI document exactly as /api/schema/ renders it (JSON flavour)."""
    generator = spectacular_settings.DEFAULT_GENERATOR_CLASS()
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True)))


DOCUMENT = _document()

# The world of the running test, read by the hook below while Hypothesis generates.
_CURRENT: dict[str, World] = {}


def real_path_parameters(path: str, world: World) -> dict | None:
    """Path parameters naming objects of the world, for the operation at `path` (None: leave them random)."""
    by_prefix = {
        "/api/v1/domains/": {"id": world.domain.pk},
        "/api/v1/services/": {"id": world.service.pk},
        "/api/v1/topics/": {"id": world.topic.pk},
        "/api/v1/events/": {"id": world.event.pk},
        "/api/v1/producers/": {"id": world.producer.pk},
        "/api/v1/consumers/": {"id": world.consumer.pk},
        "/api/v1/flows/": {"id": world.flow.pk, "step_id": world.step.pk},
        "/api/v1/registry/events/": {"name": world.event.name, "version": 1},
        "/api/v1/discovered/": {"id": world.observed.pk},
        "/api/v1/flow-checks/": {"id": world.flow_check.pk},
        "/api/v1/dead-letters/": {"id": world.dead_letter.pk},
        "/api/v1/redrive-jobs/": {"id": world.job.pk},
        "/api/v1/traces/": {"ident": world.indexed_event.correlation_id, "id": world.indexed_event.pk},
        # The topic browser: the designed topic's address (a 404 unless a test created it on the bus).
        "/api/v1/bus/": {"bus": world.topic.bus, "name": world.topic.address},
    }
    for prefix, values in by_prefix.items():
        if path.startswith(prefix):
            names = set(re.findall(r"{(\w+)}", path))
            return {name: value for name, value in values.items() if name in names} or None
    return None


def flatmap_path_parameters(context, path_parameters):
    """Drawn examples: three in four use the world's objects; the rest keep what Hypothesis drew."""
    real = real_path_parameters(context.operation.path, _CURRENT["world"]) if _CURRENT else None
    if not real or not path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([{**path_parameters, **real}] * 3 + [path_parameters])


def _schema(*, coverage: bool, max_examples: int):
    config = schemathesis.Config.from_dict(
        {"phases": {"coverage": {"enabled": coverage}}, "generation": {"max-examples": max_examples}}
    )
    schema = schemathesis.openapi.from_dict(DOCUMENT, config=config)
    schema.app = WSGIHandler()
    schema.hook(flatmap_path_parameters)
    return schema


SCHEMA = _schema(coverage=COVERAGE, max_examples=MAX_EXAMPLES)
_QUICK = _schema(coverage=False, max_examples=QUICK_EXAMPLES)


def _in_depth(role: str) -> Callable:
    return lambda context: IN_DEPTH[role](context.operation.method.upper(), context.operation.path)


def deep(role: str, under: tuple[str, ...] = ("/",)):
    """The operations `role` is fuzzed on in depth (those with a path under one of `under`)."""
    return SCHEMA.include(lambda context: _in_depth(role)(context) and context.operation.path.startswith(under))


def quick(role: str):
    """The operations `role` gets a quick pass on."""
    return _QUICK.exclude(_in_depth(role))


def name_items_by_operation(items: list[pytest.Item]) -> None:
    """Give each operation's test item a node id of its own: `test_x[GET /api/v1/...]`.

    Under pytest 9.2 the items of `schema.parametrize()` all get the bare function's
    node id, and xdist's `--dist loadfile` (make test) then runs the first operation
    only. Called from tests/security/conftest.py's pytest_collection_modifyitems.
    """
    for item in items:
        label = getattr(item, "operation_label", None)
        if label is None or f"[{label}]" in item.nodeid:
            continue
        if getattr(item, "_id", None) is None:
            raise pytest.UsageError(f"cannot name {item.nodeid} after {label}: pytest changed how node ids are kept")
        item._id = item._id.with_params(label)


_HYPOTHESIS = {
    "deadline": None,
    "database": None,  # no .hypothesis/ folder in the work tree; every run starts fresh
    "derandomize": True,  # the same examples on every run: a failure reproduces
    "phases": [Phase.explicit, Phase.generate],  # coverage cases are explicit examples
    "suppress_health_check": list(HealthCheck),
}
DEEP_SETTINGS = settings(max_examples=MAX_EXAMPLES, **_HYPOTHESIS)
QUICK_SETTINGS = settings(max_examples=QUICK_EXAMPLES, **_HYPOTHESIS)


def _aim_coverage_case_at_the_world(case, world: World) -> None:
    """Coverage cases are built before any test runs: point their path at the world, but for the parameter probed."""
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.COVERAGE or not case.path_parameters:
        return
    real = real_path_parameters(case.operation.path, world) or {}
    probed = meta.phase.data.parameter if meta.phase.data.parameter_location == ParameterLocation.PATH else None
    case.path_parameters = {**case.path_parameters, **{k: v for k, v in real.items() if k != probed}}


@pytest.fixture
def in_process_requests(world) -> Iterator[None]:
    """Keep the test's transaction across requests, as Django's test client does.

    A WSGI server closes "old" database connections at the start and end of each
    request; in a test that would throw away the transaction holding the world.
    """
    _CURRENT["world"] = world
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    _CURRENT.clear()


def token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def call_and_check(case, api_token: str, world: World) -> None:
    """Send the case with the token, in a savepoint rolled back after it, and check the answer.

    Reads too: an Operator's read of a dead letter writes an audit entry.
    """
    _aim_coverage_case_at_the_world(case, world)
    with transaction.atomic():
        response = case.call(headers={"Authorization": f"Token {api_token}"})
        transaction.set_rollback(True)
    case.validate_response(response, checks=[not_a_server_error, *CONFORMANCE])
