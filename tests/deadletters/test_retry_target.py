"""A retry goes to the designed or named source topic; one that only the record's headers name needs confirming.

Whoever writes a record to a dead-letter topic chooses its headers, so a header
alone must not be able to send a replay to any topic it likes (a live topic of
another team, say). Trusted: a designed topic at that address dead-letters to where
the record was found, or the dead-letter topic's name says whose it is
(`orders.dlq` serves `orders`). Anything else is refused with 409 until an
Operator confirms the target, on the API, the pages and bulk jobs alike.
"""

from __future__ import annotations

import json

import pytest

from deadletters.models import DeadLetter, RedriveJob
from designer.models import Topic
from eventhub.bus import open_bus
from tests.conftest import bus_options
from tests.deadletters.support import read_all, stored_dead_letter

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def kafka():
    bus = open_bus("kafka", **bus_options("kafka"))
    yield bus
    bus.close()


@pytest.fixture
def topics(kafka, unique):
    named, elsewhere = unique("orders"), unique("payments")
    kafka.create_topic(named)
    kafka.create_topic(elsewhere)
    return {"named": named, "elsewhere": elsewhere}


def _named_by_headers_only(topics) -> DeadLetter:
    """Found in orders-….dlq, but its headers say it came from payments-…."""
    row = stored_dead_letter("kafka", topics["named"])
    DeadLetter.objects.filter(pk=row.pk).update(source_topic=topics["elsewhere"])
    row.refresh_from_db()
    return row


def post(client, url: str, data: dict):
    return client.post(url, json.dumps(data), content_type="application/json")


def test_a_target_named_only_by_headers_needs_confirming(topics, kafka, client_as, operator):
    client = client_as(operator)
    row = _named_by_headers_only(topics)
    refused = post(client, f"/api/v1/dead-letters/{row.pk}/retry", {})
    assert refused.status_code == 409
    assert "headers alone" in refused.json()["detail"] and topics["elsewhere"] in refused.json()["detail"]
    assert DeadLetter.objects.get(pk=row.pk).status == DeadLetter.NEW
    assert read_all(kafka, topics["elsewhere"]) == []

    sent = post(client, f"/api/v1/dead-letters/{row.pk}/retry", {"confirm_target": True})
    assert sent.status_code == 200, sent.content
    assert len(read_all(kafka, topics["elsewhere"])) == 1


def test_the_dead_letter_topic_name_or_the_design_is_enough(topics, kafka, client_as, operator):
    client = client_as(operator)
    named = stored_dead_letter("kafka", topics["named"])  # orders-….dlq serves orders-…
    assert post(client, f"/api/v1/dead-letters/{named.pk}/retry", {}).status_code == 200

    designed = _named_by_headers_only(topics)
    Topic.objects.create(name="payments", address=topics["elsewhere"], dead_letter_topic=designed.dlq_topic)
    assert post(client, f"/api/v1/dead-letters/{designed.pk}/retry", {}).status_code == 200
    assert len(read_all(kafka, topics["elsewhere"])) == 1


def test_the_page_asks_to_confirm_and_edit_and_retry_too(topics, kafka, client_as, operator):
    client = client_as(operator)
    row = _named_by_headers_only(topics)
    page = client.get(f"/dead-letters/{row.pk}/").content.decode()
    assert 'id="dl-confirm-target"' in page

    refused = client.post(f"/dead-letters/{row.pk}/retry", {"target_group": ""})
    assert refused.status_code == 409
    assert "headers alone" in refused.content.decode()
    edit = post(client, f"/api/v1/dead-letters/{row.pk}/edit-and-retry", {"payload": {"order_id": "o-1", "amount": 2}})
    assert edit.status_code == 409
    assert read_all(kafka, topics["elsewhere"]) == []

    sent = client.post(f"/dead-letters/{row.pk}/retry", {"target_group": "", "confirm_target": "on"})
    assert sent.status_code == 302
    assert len(read_all(kafka, topics["elsewhere"])) == 1


def test_a_job_lists_unconfirmed_targets_and_needs_them_confirmed(topics, client_as, operator):
    client = client_as(operator)
    row = _named_by_headers_only(topics)
    trusted = stored_dead_letter("kafka", topics["named"])
    body = {"action": "retry", "ids": [row.pk, trusted.pk]}
    preview = post(client, "/api/v1/redrive-jobs/", {**body, "dry_run": True}).json()
    assert preview["unconfirmed_targets"] == [
        {"bus": "kafka", "topic": topics["elsewhere"], "dead_letter_topic": row.dlq_topic}
    ]
    refused = post(client, "/api/v1/redrive-jobs/", body)
    assert refused.status_code == 409 and topics["elsewhere"] in refused.json()["detail"]
    assert not RedriveJob.objects.exists()
    assert post(client, "/api/v1/redrive-jobs/", {**body, "confirm_targets": True}).status_code == 201
