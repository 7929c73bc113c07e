"""Where passwords and tokens can be tried, what throttles them, and that none of them reaches a log.

tests/test_auth.py shows the login form's throttling (django-axes). Here:
the other doors. The API takes no password at all (no Basic auth), so axes
guarding the two login forms (ours and the admin site's) covers every place a
password is accepted; API tokens are random 160-bit keys that axes does not
count, and a locked-out user's token keeps working until an admin deletes it
or deactivates the user (docs/security.md says so).
"""

from __future__ import annotations

import base64
import logging

import pytest
from rest_framework.authtoken.models import Token

from eventhub.launcher import without_credentials

pytestmark = pytest.mark.django_db

PASSWORD = "pw-vera-viewer"  # the viewer persona's (tests/conftest.py)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_api_accepts_no_password(client, viewer):
    """Basic auth is not enabled: a right password on the API gets nothing, so it cannot be guessed there."""
    response = client.get("/api/v1/services/", HTTP_AUTHORIZATION=_basic("vera-viewer", PASSWORD))
    assert response.status_code in (401, 403)
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=_basic("vera-viewer", PASSWORD)).status_code in (401, 403)


def test_admin_site_login_is_throttled_too(client, admin, settings):
    statuses = [
        client.post("/admin/login/", {"username": "ada-admin", "password": "wrong"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429, statuses
    locked = client.post("/admin/login/", {"username": "ada-admin", "password": "pw-ada-admin"})
    assert locked.status_code == 429
    assert client.get("/admin/").status_code == 302  # not in


def test_lockout_does_not_revoke_tokens_deactivation_does(client, viewer, settings):
    token = Token.objects.create(user=viewer).key
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "vera-viewer", "password": "wrong"})
    assert client.post("/login/", {"username": "vera-viewer", "password": PASSWORD}).status_code == 429
    # Axes throttles password guessing; a token is not a password and is not guessable.
    assert client.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    viewer.is_active = False
    viewer.save(update_fields=["is_active"])
    assert client.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Token {token}").status_code in (401, 403)


def test_passwords_and_tokens_stay_out_of_logs(client, viewer, settings, caplog):
    caplog.set_level(logging.DEBUG)
    secret_password = "Correct-Horse-7731"
    client.post("/login/", {"username": "vera-viewer", "password": secret_password})
    client.post("/admin/login/", {"username": "vera-viewer", "password": secret_password})
    client.get("/api/v1/services/", HTTP_AUTHORIZATION=_basic("vera-viewer", secret_password))
    token = Token.objects.create(user=viewer).key
    client.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Token {token}")
    client.get("/api/v1/nowhere/", HTTP_AUTHORIZATION=f"Token {token}")  # a 404 is logged with its path
    forged = "f" * 40
    client.get("/api/v1/services/", HTTP_AUTHORIZATION=f"Token {forged}")
    settings.EVENTHUB_METRICS_TOKEN = "scrape-secret-5521"
    client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-wrong")
    client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-5521")
    logged = caplog.text
    assert logged, "the requests logged something (the check below would be empty otherwise)"
    for secret in (secret_password, token, forged, "scrape-secret-5521", "scrape-secret-wrong"):
        assert secret not in logged


def test_alert_webhook_url_is_never_logged(settings, caplog):
    """Chat webhooks carry their secret in the URL: a failed delivery names the error, not the URL."""
    from django.utils import timezone

    from monitor.alerts import attempt_webhook
    from monitor.models import Alert, AlertRule

    settings.EVENTHUB_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hooks/T0001/B0002/XyZsecretPart"  # nothing listens
    rule = AlertRule.objects.create(name="lag", kind=AlertRule.LAG_MESSAGES, threshold=1)
    alert = Alert.objects.create(
        rule=rule, subject="kafka:orders/billing", message="lag 5 > 1", started_at=timezone.now()
    )
    caplog.set_level(logging.DEBUG)
    assert attempt_webhook(alert.pk, "firing") is False
    alert.refresh_from_db()
    assert alert.webhook_error  # the failure is recorded...
    assert "XyZsecretPart" not in alert.webhook_error  # ...without the URL (it is shown on the dashboard)
    assert "XyZsecretPart" not in caplog.text
    assert "webhook" in caplog.text


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:s3cret@redis.internal:6380/2", "redis://redis.internal:6380/2"),
        ("rediss://user:pw@cache:6379/0?ssl_cert_reqs=none", "rediss://cache:6379/0?ssl_cert_reqs=none"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_launcher_prints_redis_url_without_credentials(url, shown):
    assert without_credentials(url) == shown
