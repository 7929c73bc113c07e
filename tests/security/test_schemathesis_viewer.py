"""schemathesis as a Viewer: every read and the compatibility check in depth, a quick pass elsewhere (tests/security/fuzzing.py)."""

import pytest

from tests.security import fuzzing
from tests.security.conftest import VIEWER
from tests.security.fuzzing import in_process_requests  # noqa: F401


@pytest.fixture
def api_token(shared) -> str:
    return fuzzing.token(shared.users[VIEWER])


@fuzzing.deep(VIEWER).parametrize()
@fuzzing.DEEP_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_in_depth(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)


@fuzzing.quick(VIEWER).parametrize()
@fuzzing.QUICK_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_quick_pass(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)
