"""Pages that need the bus say so when it is down (from the collector's latest snapshot)."""

import pytest

from monitor import snapshots


@pytest.fixture
def kafka_down():
    before = snapshots.load_json()
    snapshot = snapshots.empty_snapshot()
    snapshot["buses"] = [
        {"kind": "kafka", "up": False, "error": "BusUnavailable: no broker"},
        {"kind": "redis", "up": True, "error": None},
    ]
    snapshots.save(snapshot)
    yield
    snapshots.store().set(f"{snapshots.namespace()}:snapshot", before)


@pytest.mark.django_db
def test_dead_letter_page_shows_the_bus_is_down(client_as, viewer, kafka_down):
    body = client_as(viewer).get("/dead-letters/").content.decode()
    assert "The Kafka bus is down: BusUnavailable: no broker" in body
    assert "Redis bus is down" not in body


@pytest.mark.django_db
def test_catalog_does_not_need_the_bus(client_as, viewer, kafka_down):
    assert "bus is down" not in client_as(viewer).get("/catalog/").content.decode()
