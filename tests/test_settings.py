"""Settings come from the environment; a bad value stops start-up with one line."""

import json
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


def _settings_of(*names: str, **overrides) -> dict:
    """The named settings as a fresh process reads them from its environment (plus overrides)."""
    env = {k: v for k, v in os.environ.items() if k not in overrides}
    env.update({k: v for k, v in overrides.items() if v is not None})
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_debug_is_off_unless_asked_for():
    assert _settings_of("DEBUG", DEBUG=None) == {"DEBUG": False}
    assert _settings_of("DEBUG", DEBUG="true") == {"DEBUG": True}


def test_without_debug_or_secret_key_nothing_starts():
    result = _check(DEBUG=None, SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_make_run_turns_debug_on_unless_the_user_set_it():
    from eventhub.launcher import development_env

    assert development_env({"PORT": "8000"}) == {"PORT": "8000", "DEBUG": "true"}
    assert development_env({"DEBUG": "false"})["DEBUG"] == "false"
    assert development_env({"DEBUG": ""})["DEBUG"] == ""  # set, to off: the user's choice


HTTPS_SETTINGS = (
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
)


def test_eventhub_https_turns_on_secure_cookies_the_proxy_header_and_hsts():
    on = _settings_of(*HTTPS_SETTINGS, EVENTHUB_HTTPS="true", SESSION_COOKIE_SECURE="false")
    assert on == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600,
    }
    off = _settings_of(*HTTPS_SETTINGS, EVENTHUB_HTTPS=None, SESSION_COOKIE_SECURE=None)
    assert off == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_HSTS_SECONDS": 0,
    }


def test_session_cookie_secure_alone_still_marks_the_cookies():
    alone = _settings_of(*HTTPS_SETTINGS, EVENTHUB_HTTPS=None, SESSION_COOKIE_SECURE="true")
    assert alone["SESSION_COOKIE_SECURE"] is alone["CSRF_COOKIE_SECURE"] is True
    assert alone["SECURE_PROXY_SSL_HEADER"] is None and alone["SECURE_HSTS_SECONDS"] == 0


@pytest.mark.django_db
def test_behind_the_https_proxy_responses_carry_hsts_and_secure_cookies(client, settings):
    """The settings EVENTHUB_HTTPS=true gives (test above), seen on a response to a proxied request."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 365 * 24 * 3600
    proxied = client.get("/login/", headers={"x-forwarded-proto": "https"})
    assert proxied.status_code == 200
    assert proxied.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert proxied.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True
    # Plain HTTP (no proxy header): no HSTS, as the HSTS spec requires.
    assert "Strict-Transport-Security" not in client.get("/login/").headers
