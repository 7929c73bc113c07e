"""What the long-running loops (collector, ingester, indexer, history writer, flow checks) do between steps."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from eventhub import background

# Outside a test transaction, as the loops run: close_old_connections drops a connection
# whose autocommit is off, which on PostgreSQL would be the test's own.
pytestmark = pytest.mark.django_db(transaction=True)


def test_between_steps_forgets_the_queries_debug_logged_so_far(settings):
    """Under DEBUG Django logs every query and empties the log only when a request starts:
    a loop's log would keep 9,000 queries per thread. Between steps it is emptied."""
    settings.DEBUG = True
    for _ in range(5):
        get_user_model().objects.count()
    assert len(connection.queries) == 5
    background.between_steps()
    assert connection.queries == []
    assert get_user_model().objects.count() == 0  # the connection still answers
    assert len(connection.queries) == 1
