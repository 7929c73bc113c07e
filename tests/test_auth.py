"""Login required everywhere but the login page and /healthz; roles; tokens."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from eventhub import roles

PAGES = ["/", "/designer/", "/catalog/", "/monitor/", "/dead-letters/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.django_db
def test_login_page_is_open_and_logs_in(client, viewer):
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "vera-viewer", "password": "pw-vera-viewer"})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    for label in ("Designer", "Catalog", "Monitor", "Dead letters", "vera-viewer"):
        assert label in page.content.decode()


@pytest.mark.django_db
def test_wrong_password_is_refused(client, viewer):
    response = client.post("/login/", {"username": "vera-viewer", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


@pytest.mark.django_db
def test_logout_needs_post(client_as, viewer):
    client = client_as(viewer)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_roles_exist_as_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)


def test_roles_come_back_after_a_flush(transactional_db):
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "persona, design, operate",
    [("viewer", False, False), ("designer", True, False), ("operator", False, True), ("admin", True, True)],
)
def test_role_questions(request, persona, design, operate):
    user = request.getfixturevalue(persona)
    assert roles.can_design(user) is design
    assert roles.can_operate(user) is operate


@pytest.mark.django_db
def test_api_needs_authentication_and_accepts_tokens(client, viewer, capsys):
    assert client.get("/api/schema/").status_code in (401, 403)
    call_command("drf_create_token", "vera-viewer")
    token = Token.objects.get(user=viewer).key
    assert token in capsys.readouterr().out
    response = client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_ensure_admin_creates_once_and_prints_the_login(capsys, django_user_model):
    call_command("ensure_admin")
    first = capsys.readouterr().out
    assert "login: admin" in first and "password: " in first
    call_command("ensure_admin")
    assert "password: " not in capsys.readouterr().out
    assert django_user_model.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_login_is_throttled_after_repeated_failures(client, viewer, settings):
    statuses = [
        client.post("/login/", {"username": "vera-viewer", "password": "wrong"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    locked = client.post("/login/", {"username": "vera-viewer", "password": "pw-vera-viewer"})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert client.get("/").status_code == 302  # the right password did not get in
