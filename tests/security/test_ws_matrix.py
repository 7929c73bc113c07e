"""Every websocket route x every role, through the real ASGI application.

Routes are enumerated from eventhub.routing, so a new socket without a row in
SOCKETS fails `test_every_socket_has_an_expectation`. Anonymous handshakes are
refused before accept (close code 4401); any logged-in user is accepted; a
page on another origin is refused even with a valid session cookie (the
AllowedHostsOriginValidator: no cross-site websocket hijacking).

Transactional database: the session is looked up in database_sync_to_async
helpers, which may run outside the test's transaction.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from eventhub.asgi import application
from eventhub.routing import websocket_urlpatterns
from tests.security.conftest import ADMIN, ANONYMOUS, DESIGNER, OPERATOR, ROLES, VIEWER, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("memory_channel_layer")]

ACCEPTED, REFUSED = "accepted", "refused"
LOGGED_IN_ONLY = {ANONYMOUS: REFUSED, VIEWER: ACCEPTED, DESIGNER: ACCEPTED, OPERATOR: ACCEPTED, ADMIN: ACCEPTED}

# path -> expected handshake outcome per role
SOCKETS: dict[str, dict[str, str]] = {
    "/ws/monitor/": LOGGED_IN_ONLY,
    "/ws/dead-letters/": LOGGED_IN_ONLY,
    "/ws/browse/": LOGGED_IN_ONLY,
}
SAME_ORIGIN = b"http://127.0.0.1"


def socket_paths() -> list[str]:
    return ["/" + str(route.pattern) for route in websocket_urlpatterns]


def test_every_socket_has_an_expectation():
    missing = [path for path in socket_paths() if path not in SOCKETS]
    stale = [path for path in SOCKETS if path not in socket_paths()]
    assert not missing, (
        f"New websocket routes {missing}: add them to SOCKETS in tests/security/test_ws_matrix.py "
        "with the handshake outcome for each role."
    )
    assert not stale, f"SOCKETS names routes that no longer exist: {stale}"


@pytest.fixture
def sessions(django_user_model) -> dict[str, str | None]:
    """{role: session key}. Groups are made here: a transactional test starts without the migrations' rows."""
    from django.contrib.auth.models import Group

    keys: dict[str, str | None] = {ANONYMOUS: None}
    for role in ROLES[1:]:
        if role == ADMIN:
            user = django_user_model.objects.create_superuser("ws-admin", "ws-admin@example.com", None)
        else:
            user = django_user_model.objects.create_user(f"ws-{role}", None, None)
            user.groups.add(Group.objects.get_or_create(name=role.capitalize())[0])
        client = Client()
        client.force_login(user)
        keys[role] = session_cookie(client)
    return keys


def handshake(path: str, session_key: str | None, origin: bytes = SAME_ORIGIN) -> tuple[str, int | None]:
    """(accepted|refused, close code) of one websocket handshake."""
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if session_key:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()))

    async def run():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return (ACCEPTED if connected else REFUSED), (None if connected else code)

    return async_to_sync(run)()


@pytest.mark.parametrize("path", list(SOCKETS))
def test_socket_by_role(path, sessions):
    got = {role: handshake(path, sessions[role]) for role in ROLES}
    wrong = {role: got[role] for role in ROLES if got[role][0] != SOCKETS[path][role]}
    assert not wrong, f"{path}: {wrong} (expected {SOCKETS[path]})"
    # Refused before accept, with the app's "login required" code, not a crash.
    assert got[ANONYMOUS] == (REFUSED, 4401)


@pytest.mark.parametrize("path", list(SOCKETS))
def test_socket_from_another_origin_is_refused(path, sessions):
    """A page on evil.example cannot ride a logged-in user's cookie into the socket."""
    assert handshake(path, sessions[ADMIN], origin=b"https://evil.example")[0] == REFUSED
    assert handshake(path, sessions[ADMIN], origin=b"null")[0] == REFUSED
    assert handshake(path, sessions[ADMIN])[0] == ACCEPTED


def test_forged_session_cookie_is_anonymous(sessions):
    assert handshake("/ws/monitor/", "not-a-session-key") == (REFUSED, 4401)
