"""GET /healthz: JSON state of database, Redis and bus, no login, 503 when a required part is down."""

import pytest

from eventhub import connections


@pytest.fixture
def fresh_clients():
    connections.reset()
    yield
    connections.reset()


@pytest.mark.django_db
def test_all_parts_up_answers_200_without_login(client, fresh_clients):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"] and body["bus"]["ok"]
    assert body["bus"]["kind"] == "kafka"


@pytest.mark.django_db
def test_bus_down_answers_503_naming_the_part(client, settings, fresh_clients):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["bus"]["ok"] is False and body["bus"]["error"]
    assert body["database"]["ok"] is True


@pytest.mark.django_db
def test_redis_down_is_503_only_when_redis_is_required(client, settings, fresh_clients):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.EVENTHUB_REDIS_REQUIRED = True
    assert client.get("/healthz").status_code == 503
    connections.reset()
    settings.EVENTHUB_REDIS_REQUIRED = False
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["redis"]["ok"] is False


@pytest.mark.django_db
def test_wrong_method(client):
    assert client.post("/healthz").status_code == 405
