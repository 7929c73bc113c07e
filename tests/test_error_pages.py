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


PASSWORDS = ("s3cret-redis-pw", "s3cret-layer-pw", "s3cret-broker-pw", "s3cret-nested-pw", "s3cret-local-pw")


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_debug_page_masks_passwords_in_urls(settings, viewer, accept):
    """Django's technical 500 page (DEBUG on) shows settings, locals and the error: no password of a URL."""
    settings.DEBUG = True
    settings.ROOT_URLCONF = "tests.urls_boom"
    settings.REDIS_URL = "redis://app:s3cret-redis-pw@redis.internal:6379/0"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"hosts": [{"address": "rediss://:s3cret-layer-pw@redis.internal:6380/1"}]},
        }
    }
    settings.CELERY_BROKER_URL = "amqp://guest:s3cret-broker-pw@rabbit.internal:5672//"
    settings.EVENTHUB_EXAMPLE_SERVERS = {"kafka": ("sasl+ssl://kafka-user:s3cret-nested-pw@kafka.internal:9093",)}
    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    response = client.get("/leak/", headers={"accept": accept})
    assert response.status_code == 500
    body = response.content.decode()
    assert "could not connect to postgres://eventhub:" in body  # the technical page, not ours
    assert "redis.internal:6379" in body and "kafka.internal:9093" in body  # settings are shown...
    for password in PASSWORDS:
        assert password not in body, password  # ...without the passwords in them
    assert "app:********************@redis.internal" in body


@pytest.mark.parametrize(
    "text, shown",
    [
        ("redis://app:pw@redis:6379/0", "redis://app:********************@redis:6379/0"),
        ("redis://:pw@redis:6379/0", "redis://:********************@redis:6379/0"),
        ("https://token@git.example.com/x", "https://********************@git.example.com/x"),
        (
            "at postgres://u:p/w@db/x and amqp://g:q@mq//",
            "at postgres://u:********************@db/x and amqp://g:********************@mq//",
        ),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("mail me at ops@example.com", "mail me at ops@example.com"),
    ],
)
def test_mask_credentials(text, shown):
    from eventhub.error_reports import mask_credentials

    assert mask_credentials(text) == shown
