"""CSRF on every unsafe method of every route, and the token-auth exception.

The unsafe (route, method) pairs come from the URL matrix's table, which
test_url_matrix checks against Django's resolver, so a new POST route is
covered here as soon as it is in the matrix.

- A logged-in admin (who passes every role check) without a CSRF token: 403,
  and the answer says CSRF; with the token: whatever the view answers, never
  a CSRF failure.
- `Authorization: Token ...` on the API needs no CSRF token (DRF only enforces
  CSRF for session authentication: a token is not sent by the browser on its own).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.security.conftest import ADMIN, ANONYMOUS
from tests.security.test_url_matrix import ROUTES, UNSAFE, rolled_back, send

CSRF_SECRET = "a" * 16 + "B" * 16  # a well-formed 32-character secret; the cookie and the header carry it


def _unsafe_cases() -> list:
    return [
        pytest.param(key, index, id=f"{key}:{probe.method}")
        for key, route in ROUTES.items()
        for index, probe in enumerate(route.probes)
        if probe.method in UNSAFE
    ]


def _is_csrf_failure(response) -> bool:
    return response.status_code == 403 and b"CSRF" in response.content


@pytest.mark.parametrize("key, index", _unsafe_cases())
def test_unsafe_method_needs_the_csrf_token(key, index, world, shared):
    route, probe = ROUTES[key], ROUTES[key].probes[index]

    client = shared.client(ADMIN, enforce_csrf_checks=True, raise_request_exception=False)
    with rolled_back():
        refused = send(client, route, probe, world)
    assert _is_csrf_failure(refused), (
        f"{probe.method} {route.url(world)} without a CSRF token answered {refused.status_code}: "
        f"{refused.content[:300]!r}"
    )

    client = shared.client(ADMIN, enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    with rolled_back():
        accepted = send(client, route, probe, world, HTTP_X_CSRFTOKEN=CSRF_SECRET)
    assert accepted.status_code != 403, (
        f"{probe.method} {route.url(world)} with the CSRF token answered 403: {accepted.content[:300]!r}"
    )


@pytest.mark.parametrize("key, index", [case for case in _unsafe_cases() if ROUTES[case.values[0]].api])
def test_token_auth_needs_no_csrf_token(key, index, world, shared):
    """DRF's design: CSRF guards the session cookie; a token header is never sent by a browser uninvited."""
    route, probe = ROUTES[key], ROUTES[key].probes[index]
    token = Token.objects.get_or_create(user=shared.users[ADMIN])[0].key
    client = shared.client(ANONYMOUS, enforce_csrf_checks=True, raise_request_exception=False)
    with rolled_back():
        response = send(client, route, probe, world, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code not in (401, 403), (
        f"{probe.method} {route.url(world)} with a token answered {response.status_code}: {response.content[:300]!r}"
    )
    # The session cookie alone, without the CSRF token, is still refused on the same route.
    session_only = shared.client(ADMIN, enforce_csrf_checks=True, raise_request_exception=False)
    with rolled_back():
        assert _is_csrf_failure(send(session_only, route, probe, world))


def test_login_form_is_csrf_protected(db):
    """Login CSRF: a foreign page cannot log a victim into the attacker's account."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "someone", "password": "something"})
    assert _is_csrf_failure(response)
