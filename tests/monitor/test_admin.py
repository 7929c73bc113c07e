"""Admin pages for the run-time models: alert rules are configured there."""

import pytest

URLS = [
    "/admin/monitor/alertrule/",
    "/admin/monitor/alertrule/add/",
    "/admin/monitor/alert/",
    "/admin/monitor/heartbeat/",
    "/admin/monitor/deadletter/",
    "/admin/monitor/unstoreddeadletter/",
    "/admin/monitor/redrivejob/",
    "/admin/monitor/auditentry/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", URLS)
def test_admin_pages_for_admins_only(client_as, admin, viewer, url):
    assert client_as(admin).get(url).status_code == 200
    assert client_as(viewer).get(url).status_code == 302  # not staff: sent to the admin login


@pytest.mark.django_db
def test_dead_letters_cannot_be_added_in_the_admin(client_as, admin):
    assert client_as(admin).get("/admin/monitor/deadletter/add/").status_code == 403
    assert client_as(admin).get("/admin/monitor/unstoreddeadletter/add/").status_code == 403


@pytest.mark.django_db
def test_unstored_dead_letters_are_listed_with_position_and_error(client_as, admin):
    from monitor.models import UnstoredDeadLetter

    UnstoredDeadLetter.objects.create(
        bus="kafka", dlq_topic="orders.dlq", dlq_partition=2, dlq_offset="41", error="DataError: refused"
    )
    page = client_as(admin).get("/admin/monitor/unstoreddeadletter/").content.decode()
    assert "orders.dlq" in page and "41" in page and "DataError: refused" in page


@pytest.mark.django_db
def test_demo_seeds_alert_rules(client_as, admin):
    from django.core.management import call_command

    from monitor.models import AlertRule

    call_command("seed_demo")
    call_command("seed_demo")
    assert AlertRule.objects.count() == 5
    assert "Analytics falls behind" in client_as(admin).get("/admin/monitor/alertrule/").content.decode()
