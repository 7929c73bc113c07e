"""The document the schemathesis sweeps fuzz against, and how they share the operations out.

The sweeps themselves are test_schemathesis_<role>.py (one file per role, the
Designer's in two halves, so that xdist runs them side by side); what they share
is tests/security/fuzzing.py.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from tests.security import fuzzing
from tests.security.conftest import DESIGNER, OPERATOR, VIEWER
from tests.security.fuzzing import in_process_requests  # noqa: F401

OPERATIONS = [
    (method.upper(), path)
    for path, item in fuzzing.DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


def test_served_document_is_the_one_fuzzed(client, admin):
    client.force_login(admin)
    served = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert served.status_code == 200
    assert json.loads(served.content) == fuzzing.DOCUMENT
    assert len(OPERATIONS) > 60  # the whole API, not an empty document


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_error_answers_are_documented(method, path):
    """eventhub/openapi.py: what DRF and Django answer on their own is in the document for every operation."""
    operation = fuzzing.DOCUMENT["paths"][path][method.lower()]
    expected = {"403"}
    if "{" in path:
        expected.add("404")
    if "requestBody" in operation:
        expected |= {"400", "415"}
    assert expected <= set(operation["responses"])
    for code in expected:
        assert operation["responses"][code]["content"]["application/json"]["schema"]


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@pytest.mark.usefixtures("in_process_requests")
def test_each_operation_goes_in_depth_as_a_role_that_gets_past_the_permission_check(method, path, shared, world):
    """fuzzing.IN_DEPTH names a role for every operation, and that role's request reaches the view's own code."""
    roles = [role for role in (VIEWER, DESIGNER, OPERATOR) if fuzzing.IN_DEPTH[role](method, path)]
    assert roles, f"{method} {path} is fuzzed in depth by no role"
    operation = fuzzing.SCHEMA[path][method]
    for role in roles:
        kwargs = {"path_parameters": fuzzing.real_path_parameters(path, world)} if "{" in path else {}
        if "requestBody" in fuzzing.DOCUMENT["paths"][path][method.lower()]:
            kwargs.update(body={}, media_type="application/json")
        with transaction.atomic():
            response = operation.Case(**kwargs).call(
                headers={"Authorization": f"Token {fuzzing.token(shared.users[role])}"}
            )
            transaction.set_rollback(True)
        assert response.status_code != 403, (role, response.text)
