"""404 and 500 pages in the app's style."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_404_in_app_style(client_as, viewer, settings):
    settings.DEBUG = False
    response = client_as(viewer).get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Nothing here" in body and "EventHub" in body and "/no/such/page/" in body


@pytest.mark.django_db
def test_500_in_app_style(settings, viewer):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.urls_boom"
    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "Something broke on our side" in response.content.decode()
