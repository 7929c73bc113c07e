"""Fixtures of the fault tests; they live in tests/fault/__init__.py so tests/scaleout can share them."""

from tests.fault import app_db, observed, procs, scratch_topics  # noqa: F401 - fixtures, found by name
