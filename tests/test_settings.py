"""Settings come from the environment; a bad value stops start-up with one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _check(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in overrides}
    env.update({k: v for k, v in overrides.items() if v is not None})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("DEBUG", "maybe", "DEBUG must be true or false"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a URL starting with"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL"),
        ("KAFKA_BOOTSTRAP_SERVERS", "nohostport", "KAFKA_BOOTSTRAP_SERVERS must be host:port"),
        ("EVENTHUB_BUS", "rabbit", "EVENTHUB_BUS must be one of kafka, redis"),
        ("EVENTHUB_TICK_SECONDS", "fast", "EVENTHUB_TICK_SECONDS must be a number"),
        ("EVENTHUB_MAX_SCHEMA_BYTES", "12", "EVENTHUB_MAX_SCHEMA_BYTES must be at least 1024"),
        ("CSRF_TRUSTED_ORIGINS", "example.com", "CSRF_TRUSTED_ORIGINS entries need a scheme"),
    ],
)
def test_bad_value_stops_startup_with_one_line_naming_the_variable(name, value, says):
    result = _check(**{name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[-1]], result.stderr  # one line, no traceback
    assert says in lines[-1]


def test_secret_key_is_required_when_debug_is_off():
    result = _check(DEBUG="false", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_defaults_work_on_a_bare_machine_and_connect_to_nothing_at_import():
    # Point every service at closed ports: importing settings and running checks must not care.
    result = _check(
        REDIS_URL="redis://127.0.0.1:1/0",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        DATABASE_URL=None,
    )
    assert result.returncode == 0, result.stderr
