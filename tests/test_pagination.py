"""List APIs page with limit/offset, and no client can ask for more than max_limit rows at once."""

import pytest

from eventhub.pagination import LimitOffsetPagination

pytestmark = pytest.mark.django_db

MAX = LimitOffsetPagination.max_limit


def test_settings_page_every_list_api_with_the_capped_class(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] == "eventhub.pagination.LimitOffsetPagination"
    assert 100 <= MAX <= 1000


def test_services_list_serves_at_most_max_limit_rows(client_as, viewer):
    from designer.models import Service

    Service.objects.bulk_create(Service(name=f"svc-{n:04d}", slug=f"svc-{n:04d}") for n in range(MAX + 3))
    client = client_as(viewer)
    page = client.get("/api/v1/services/?limit=1000000").json()
    assert page["count"] == MAX + 3
    assert len(page["results"]) == MAX
    assert f"limit={MAX}" in page["next"] and f"offset={MAX}" in page["next"]
    assert len(client.get("/api/v1/services/").json()["results"]) == 100  # PAGE_SIZE without ?limit=
    assert len(client.get(page["next"]).json()["results"]) == 3


def test_dead_letters_list_serves_at_most_max_limit_rows(client_as, viewer):
    from deadletters.models import DeadLetter

    DeadLetter.objects.bulk_create(
        DeadLetter(bus="kafka", dlq_topic="orders.dlq", dlq_offset=str(n), source_topic="orders")
        for n in range(MAX + 3)
    )
    page = client_as(viewer).get("/api/v1/dead-letters/?limit=1000000").json()
    assert page["count"] == MAX + 3
    assert len(page["results"]) == MAX
