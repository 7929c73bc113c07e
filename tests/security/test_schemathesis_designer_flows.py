"""schemathesis as a Designer: the writes on producers, consumers, flows and their steps, in depth.

Half of test_schemathesis_designer.py, in a file of its own so that xdist runs both halves side by side.
"""

import pytest

from tests.security import fuzzing
from tests.security.conftest import DESIGNER
from tests.security.fuzzing import in_process_requests  # noqa: F401


@pytest.fixture
def api_token(shared) -> str:
    return fuzzing.token(shared.users[DESIGNER])


@fuzzing.deep(DESIGNER, under=fuzzing.FLOWS).parametrize()
@fuzzing.DEEP_SETTINGS
@pytest.mark.usefixtures("in_process_requests")
def test_operation_in_depth(case, api_token, world):
    fuzzing.call_and_check(case, api_token, world)
