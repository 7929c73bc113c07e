"""Admin pages of dead letters, jobs and the audit trail: read-only, for admins only."""

import pytest

URLS = [
    "/admin/deadletters/deadletter/",
    "/admin/deadletters/unstoreddeadletter/",
    "/admin/deadletters/redrivejob/",
    "/admin/deadletters/auditentry/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", URLS)
def test_admin_pages_for_admins_only(client_as, admin, viewer, url):
    assert client_as(admin).get(url).status_code == 200
    assert client_as(viewer).get(url).status_code == 302  # not staff: sent to the admin login


@pytest.mark.django_db
def test_dead_letters_cannot_be_added_in_the_admin(client_as, admin):
    assert client_as(admin).get("/admin/deadletters/deadletter/add/").status_code == 403
    assert client_as(admin).get("/admin/deadletters/unstoreddeadletter/add/").status_code == 403


@pytest.mark.django_db
def test_unstored_dead_letters_are_listed_with_position_and_error(client_as, admin):
    from deadletters.models import UnstoredDeadLetter

    UnstoredDeadLetter.objects.create(
        bus="kafka", dlq_topic="orders.dlq", dlq_partition=2, dlq_offset="41", error="DataError: refused"
    )
    page = client_as(admin).get("/admin/deadletters/unstoreddeadletter/").content.decode()
    assert "orders.dlq" in page and "41" in page and "DataError: refused" in page
