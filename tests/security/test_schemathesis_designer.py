"""schemathesis as a Designer: the catalog's writes in depth, a quick pass elsewhere (tests/security/fuzzing.py).

The flows' writes, in depth too, are in test_schemathesis_designer_flows.py.
"""

import pytest

from tests.security import fuzzing
from tests.security.conftest import DESIGNER
from tests.security.fuzzing import in_process_requests  # noqa: F401


@pytest.fixture
def api_token(shared) -> str:
    return fuzzing.token(shared.users[DESIGNER])


@fuzzing.deep(DESIGNER, under=fuzzing.CATALOG).parametrize()
@fuzzing.DEEP_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_in_depth(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)


@fuzzing.quick(DESIGNER).parametrize()
@fuzzing.QUICK_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_quick_pass(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)
