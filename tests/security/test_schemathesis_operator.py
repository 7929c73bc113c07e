"""schemathesis as an Operator: dead letters (read with view_sensitive) and redrive actions in depth, a quick pass elsewhere.

See tests/security/fuzzing.py.
"""

import pytest

from tests.security import fuzzing
from tests.security.conftest import OPERATOR
from tests.security.fuzzing import in_process_requests  # noqa: F401


@pytest.fixture
def api_token(shared) -> str:
    return fuzzing.token(shared.users[OPERATOR])


@fuzzing.deep(OPERATOR).parametrize()
@fuzzing.DEEP_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_in_depth(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)


@fuzzing.quick(OPERATOR).parametrize()
@fuzzing.QUICK_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_quick_pass(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)
