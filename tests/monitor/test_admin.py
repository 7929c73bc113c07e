"""Admin pages of the monitor: alert rules are configured there."""

import pytest

URLS = [
    "/admin/monitor/alertrule/",
    "/admin/monitor/alertrule/add/",
    "/admin/monitor/alert/",
    "/admin/monitor/heartbeat/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", URLS)
def test_admin_pages_for_admins_only(client_as, admin, viewer, url):
    assert client_as(admin).get(url).status_code == 200
    assert client_as(viewer).get(url).status_code == 302  # not staff: sent to the admin login


@pytest.mark.django_db
def test_demo_seeds_alert_rules(client_as, admin):
    from django.core.management import call_command

    from monitor.models import AlertRule

    call_command("seed_demo")
    call_command("seed_demo")
    assert AlertRule.objects.count() == 6  # lag, group status, dead letters, heartbeat, freshness, flow checks
    assert "Analytics falls behind" in client_as(admin).get("/admin/monitor/alertrule/").content.decode()
