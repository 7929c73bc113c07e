"""What a test needs from outside the repository: skip without it, except under CI, where it fails.

    require(CASES_DIR.is_dir(), f"Confluent conformance cases not found at {CASES_DIR}")

On a developer's machine a missing program or file (redis-server, Chromium, the
conformance cases in ../shared) skips the test and says why. Under CI (the
environment variable CI is "true" or "1") the same call fails the test: CI
installs all of it, so a missing one there means the run checks less than it
claims, and a skip would let it pass green.
"""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def require(condition: object, reason: str) -> None:
    """Go on when `condition` holds; otherwise skip with `reason`, or fail under CI."""
    if condition:
        return
    if under_ci():
        pytest.fail(f"{reason}; CI is set, so this is an error, not a skip", pytrace=False)
    pytest.skip(f"{reason} (set CI=1 to make this an error)")
