"""The dead-letter REST API: who may do what, and what each endpoint answers."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from deadletters.models import DeadLetter, RedriveJob
from designer.models import EventType, SchemaVersion
from eventhub.bus import open_bus
from tests.conftest import bus_options
from tests.deadletters.support import ORDER_SCHEMA, read_all, stored_dead_letter
from tests.listening import CountingServer


@pytest.fixture(scope="module")
def kafka():
    bus = open_bus("kafka", **bus_options("kafka"))
    yield bus
    bus.close()


@pytest.fixture
def rows(db, kafka, unique):
    """A JSON, a text, a binary and a truncated dead letter on a real source topic."""
    topic = unique("orders")
    kafka.create_topic(topic)
    event = EventType.objects.create(name="order.placed")
    v1 = SchemaVersion.objects.create(event_type=event, version=1, schema=ORDER_SCHEMA)
    return {
        "topic": topic,
        "json": stored_dead_letter("kafka", topic, event_type=event, schema_version=v1),
        "text": stored_dead_letter("kafka", topic, value=b"plain words", error_class="KeyError"),
        "binary": stored_dead_letter("kafka", topic, value=b"\x00\x01\xfe", key=b"\xff"),
        "truncated": stored_dead_letter("kafka", topic, value=b"y" * 3000, cap=1024),
    }


def post(client: Client, url: str, data=None):
    return client.post(url, json.dumps(data if data is not None else {}), content_type="application/json")


def _urls(rows) -> tuple[list[str], list[tuple[str, dict]]]:
    pk = rows["json"].pk
    job = RedriveJob.objects.create(action="retry", total=1, item_ids=[pk], selection={"ids": [pk]}, state="cancelled")
    reads = [
        "/api/v1/dead-letters/",
        f"/api/v1/dead-letters/{pk}/",
        "/api/v1/dead-letters/groups/",
        "/api/v1/redrive-jobs/",
        f"/api/v1/redrive-jobs/{job.pk}/",
    ]
    writes = [
        (f"/api/v1/dead-letters/{pk}/retry", {}),
        (f"/api/v1/dead-letters/{pk}/edit-and-retry", {"payload": {"order_id": "o-1", "amount": 2}}),
        (f"/api/v1/dead-letters/{pk}/discard", {"reason": "nope"}),
        ("/api/v1/redrive-jobs/", {"action": "retry", "ids": [pk]}),
        (f"/api/v1/redrive-jobs/{job.pk}/cancel", {}),
        (f"/api/v1/redrive-jobs/{job.pk}/resume", {}),
    ]
    return reads, writes


# --------------------------------------------------------------------------- access
def test_anonymous_gets_nothing(rows, client):
    reads, writes = _urls(rows)
    for url in reads:
        assert client.get(url).status_code in (401, 403), url
    for url, data in writes:
        assert post(client, url, data).status_code in (401, 403), url


def test_viewer_reads_but_cannot_act(rows, client_as, viewer, kafka):
    reads, writes = _urls(rows)
    client = client_as(viewer)
    for url in reads:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "application/json"
    for url, data in writes:
        assert post(client, url, data).status_code == 403, url
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"new"}
    assert RedriveJob.objects.get().state == "cancelled"
    assert read_all(kafka, rows["topic"]) == []


def test_wrong_methods(rows, client_as, operator):
    reads, writes = _urls(rows)
    client = client_as(operator)
    for url, _data in writes:
        if url != "/api/v1/redrive-jobs/":
            assert client.get(url).status_code == 405, url
    for url in reads:
        assert client.delete(url).status_code == 405, url
    assert client.put(reads[1], "{}", content_type="application/json").status_code == 405


def test_token_auth_for_scripts(rows, operator):
    token, _ = Token.objects.get_or_create(user=operator)
    client = Client(headers={"Authorization": f"Token {token.key}"})
    response = post(client, f"/api/v1/dead-letters/{rows['text'].pk}/discard", {"reason": "cleanup script"})
    assert response.status_code == 200 and response.json()["status"] == "discarded"


# --------------------------------------------------------------------------- reading
def test_list_filters_and_pages(rows, client_as, viewer):
    client = client_as(viewer)
    page = client.get("/api/v1/dead-letters/?limit=2").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and "offset=2" in page["next"]
    assert [row["id"] for row in page["results"]] == [rows["truncated"].pk, rows["binary"].pk]  # newest first
    only = client.get(f"/api/v1/dead-letters/?topic={rows['topic']}&error_class=KeyError").json()
    assert [row["id"] for row in only["results"]] == [rows["text"].pk]
    assert only["results"][0]["payload_preview"] == "plain words"
    binary = client.get("/api/v1/dead-letters/?q=nothing-like-this").json()
    assert binary["count"] == 0
    listed = {row["id"]: row for row in page["results"]}
    assert listed[rows["binary"].pk]["payload_preview"] == "(3 bytes, binary)"
    assert listed[rows["binary"].pk]["key"] == {"text": None, "base64": base64.b64encode(b"\xff").decode()}
    bad = client.get("/api/v1/dead-letters/?status=lost&since=yesterday")
    assert bad.status_code == 400 and set(bad.json()) == {"status", "since"}


def test_detail_shows_payload_headers_and_audit(rows, client_as, viewer, operator):
    client = client_as(viewer)
    as_json = client.get(f"/api/v1/dead-letters/{rows['json'].pk}/").json()
    assert as_json["payload"]["encoding"] == "json"
    assert as_json["payload"]["json"] == {"order_id": "o-1", "amount": 1}
    assert as_json["event_type"] == "order.placed" and as_json["schema_version"] == 1
    assert ["x-eventhub-error-class", "ValueError"] in as_json["headers"]
    assert as_json["stacktrace"] == "Traceback ..." and as_json["audit"] == []
    text = client.get(f"/api/v1/dead-letters/{rows['text'].pk}/").json()["payload"]
    assert (text["encoding"], text["text"]) == ("text", "plain words")
    binary = client.get(f"/api/v1/dead-letters/{rows['binary'].pk}/").json()["payload"]
    assert (binary["encoding"], binary["text"], base64.b64decode(binary["base64"])) == ("base64", None, b"\x00\x01\xfe")
    cut = client.get(f"/api/v1/dead-letters/{rows['truncated'].pk}/").json()["payload"]
    assert (cut["truncated"], cut["size"], cut["stored"]) == (True, 3000, 1024)
    assert client.get("/api/v1/dead-letters/999999/").status_code == 404

    post(client_as(operator), f"/api/v1/dead-letters/{rows['text'].pk}/discard", {"reason": "known bug #12"})
    [entry] = client_as(viewer).get(f"/api/v1/dead-letters/{rows['text'].pk}/").json()["audit"]
    assert (entry["actor"], entry["action"], entry["detail"]) == (
        operator.username,
        "discard",
        {"reason": "known bug #12"},
    )


def test_groups(rows, client_as, viewer):
    groups = client_as(viewer).get("/api/v1/dead-letters/groups/").json()
    assert [(g["error_class"], g["event_type"], g["count"], g["new"]) for g in groups] == [
        ("ValueError", None, 2, 2),
        ("KeyError", None, 1, 1),
        ("ValueError", "order.placed", 1, 1),
    ]
    assert all(g["group"] == "billing" and g["first_seen"] and g["last_seen"] for g in groups)
    only = client_as(viewer).get("/api/v1/dead-letters/groups/?error_class=KeyError").json()
    assert [g["count"] for g in only] == [1]


# --------------------------------------------------------------------------- acting
def test_retry(rows, client_as, operator, kafka):
    client = client_as(operator)
    response = post(client, f"/api/v1/dead-letters/{rows['json'].pk}/retry", {"target_group": "billing"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["replay_count"], body["replay_group"]) == ("retried", 1, "billing")
    assert body["audit"][0]["action"] == "retry"
    [record] = read_all(kafka, rows["topic"])
    assert record.header("x-eventhub-replay-group") == b"billing"
    refused = post(client, f"/api/v1/dead-letters/{rows['truncated'].pk}/retry")
    assert refused.status_code == 409 and "edit and retry" in refused.json()["detail"]
    assert post(client, "/api/v1/dead-letters/999999/retry").status_code == 404
    assert post(client, f"/api/v1/dead-letters/{rows['json'].pk}/retry", {"target_group": "x" * 300}).status_code == 400


def test_edit_and_retry(rows, client_as, operator, kafka):
    client = client_as(operator)
    url = f"/api/v1/dead-letters/{rows['json'].pk}/edit-and-retry"
    invalid = post(client, url, {"payload": {"order_id": "o-1", "amount": "ten"}})
    assert invalid.status_code == 400
    assert invalid.json()["path"] == "$.amount" and "'ten' is not of type 'number'" in invalid.json()["payload"][0]
    assert post(client, url, {}).status_code == 400  # no payload at all
    assert read_all(kafka, rows["topic"]) == []

    created = post(client, url, {"payload": {"order_id": "o-1", "amount": 10}})
    assert created.status_code == 201
    copy = created.json()
    assert copy["edited_from"] == rows["json"].pk and copy["status"] == "retried"
    assert copy["payload"]["json"] == {"order_id": "o-1", "amount": 10}
    assert DeadLetter.objects.get(pk=rows["json"].pk).status == "resolved"
    [record] = read_all(kafka, rows["topic"])
    assert record.header("ce_id").decode() == copy["event_id"]


def test_edit_and_retry_against_a_stored_schema_with_a_remote_ref(rows, client_as, operator, kafka):
    """Stored before registration refused remote $refs: the edit is refused, nothing fetched or sent."""
    with CountingServer() as remote:
        version = rows["json"].schema_version
        version.schema = {
            **ORDER_SCHEMA,
            "properties": {**ORDER_SCHEMA["properties"], "note": {"$ref": remote.url("n")}},
        }
        version.save(update_fields=["schema"])
        url = f"/api/v1/dead-letters/{rows['json'].pk}/edit-and-retry"
        refused = post(client_as(operator), url, {"payload": {"order_id": "o-1", "amount": 10}})
        assert remote.connections == 0
    assert refused.status_code == 400
    assert refused.json()["payload"][0].startswith("order.placed v1 cannot be checked: #/properties/note/$ref: $ref ")
    assert read_all(kafka, rows["topic"]) == []


def test_discard(rows, client_as, operator):
    client = client_as(operator)
    url = f"/api/v1/dead-letters/{rows['binary'].pk}/discard"
    missing = post(client, url, {"reason": ""})
    assert missing.status_code == 400 and "reason" in missing.json()
    assert post(client, url, {"reason": "garbage from a fuzzer"}).json()["status"] == "discarded"
    assert post(client, url, {"reason": "again"}).status_code == 409


def test_redrive_jobs(rows, client_as, operator):
    client = client_as(operator)
    selection = {"filter": {"topic": rows["topic"], "status": "new"}}
    preview = post(client, "/api/v1/redrive-jobs/", {"action": "retry", **selection, "dry_run": True})
    assert preview.status_code == 200
    assert (preview.json()["count"], preview.json()["not_replayable"]) == (4, 1)
    assert preview.json()["target_topics"] == [{"bus": "kafka", "topic": rows["topic"], "count": 3}]
    assert not RedriveJob.objects.exists()

    created = post(client, "/api/v1/redrive-jobs/", {"action": "retry", **selection, "rate_per_s": 20})
    assert created.status_code == 201
    job = created.json()
    assert (job["state"], job["total"], job["rate_per_s"], job["created_by"]) == ("pending", 4, 20.0, operator.username)
    assert client.get(f"/api/v1/redrive-jobs/{job['id']}/").json()["progress"] == 0
    assert client.get("/api/v1/redrive-jobs/").json()["results"][0]["id"] == job["id"]
    cancelled = post(client, f"/api/v1/redrive-jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert post(client, f"/api/v1/redrive-jobs/{job['id']}/cancel").status_code == 409
    assert post(client, f"/api/v1/redrive-jobs/{job['id']}/resume").json()["state"] == "pending"
    assert client.get("/api/v1/redrive-jobs/424242/").status_code == 404

    for bad in (
        {"action": "retry"},
        {"action": "retry", "ids": [1], **selection},
        {"action": "discard", **selection},
        {"action": "retry", "filter": {"status": "lost"}},
        {"action": "retry", **selection, "rate_per_s": 0},
        {"action": "retry", **selection, "rate_per_s": 100_001},  # past MAX_RATE
        {"action": "explode", **selection},
        {"action": "retry", "ids": [2**63]},  # past BigAutoField: a 400, not a server error
    ):
        assert post(client, "/api/v1/redrive-jobs/", bad).status_code == 400, bad
    empty = post(client, "/api/v1/redrive-jobs/", {"action": "retry", "filter": {"topic": "none"}})
    assert empty.status_code == 400 and "matches no" in empty.json()["detail"]
    # As fast as the job can go: the highest rate an operator may ask.
    fastest = post(client, "/api/v1/redrive-jobs/", {"action": "retry", **selection, "rate_per_s": 100_000})
    assert fastest.status_code == 201 and fastest.json()["rate_per_s"] == 100_000.0


def test_openapi_describes_the_endpoints(db, client_as, viewer):
    schema = client_as(viewer).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/dead-letters/", "get"),
        ("/api/v1/dead-letters/{id}/", "get"),
        ("/api/v1/dead-letters/{id}/retry", "post"),
        ("/api/v1/dead-letters/{id}/edit-and-retry", "post"),
        ("/api/v1/dead-letters/{id}/discard", "post"),
        ("/api/v1/dead-letters/groups/", "get"),
        ("/api/v1/redrive-jobs/", "post"),
        ("/api/v1/redrive-jobs/{id}/", "get"),
        ("/api/v1/redrive-jobs/{id}/cancel", "post"),
    ]:
        assert method in paths[path], path
    parameters = {p["name"] for p in paths["/api/v1/dead-letters/"]["get"]["parameters"]}
    assert {"topic", "status", "error_class", "group", "event_type", "service", "since", "until", "q"} <= parameters
    assert "400" in paths["/api/v1/dead-letters/{id}/edit-and-retry"]["post"]["responses"]
