"""The dead-letter verbs (deadletters.actions) on the real buses: what reaches the topic, what the rows say."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from deadletters import actions, filters
from deadletters.models import DeadLetter
from designer.models import Consumer as DesignedConsumer
from designer.models import EventType, SchemaVersion, Service
from eventhub.sdk import headers as h
from tests.deadletters.support import (
    ORDER_SCHEMA,
    Listener,
    _file_db_template,  # noqa: F401 - fixture
    end_offset,
    file_db,  # noqa: F401 - fixture
    make_user,
    read_all,
    replay_count_header,
    replays,
    stored_dead_letter,
)


@pytest.fixture
def source(bus, unique):
    topic = unique("orders")
    bus.create_topic(topic, partitions=2)
    return topic


def test_retry_replays_the_original_without_its_failure_headers(
    bus, source, operator, django_capture_on_commit_callbacks
):
    row = stored_dead_letter(bus.kind, source)
    original = dict(row.raw_headers)
    listener = Listener(actions.GROUP)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = actions.retry(row, actor=operator, target_group="billing-v2")
        message = listener.receive()
    finally:
        listener.close()

    assert (result.status, result.replay_count, result.replay_topic, result.replay_group) == (
        "retried",
        1,
        source,
        "billing-v2",
    )
    [record] = read_all(bus, source)
    assert (record.value, record.key) == (b'{"order_id":"o-1","amount":1}', b"o-1")
    assert (record.partition, str(record.offset)) == (result.replay_partition, result.replay_offset)
    names = [name for name, _ in record.headers]
    assert names == [
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "content-type",
        "x-eventhub-schema-version",
        "traceparent",
        h.REPLAY_OF,
        h.REPLAY_COUNT,
        h.REPLAY_GROUP,
    ]
    assert record.header("ce_id").decode() == base64.b64decode(original["ce_id"]).decode()
    assert (record.header(h.REPLAY_OF), record.header(h.REPLAY_GROUP)) == (str(row.pk).encode(), b"billing-v2")
    assert replay_count_header(record) == 1
    [entry] = row.audit.all()
    assert (entry.actor, entry.action, entry.detail["topic"]) == (operator, "retry", source)
    assert message == {
        "type": "deadletters.changed",
        "ids": [row.pk],
        "status": "retried",
        "count": 1,
    }


@pytest.mark.parametrize("bus", ["kafka", "redis"], indirect=True)
def test_two_concurrent_retries_publish_once(bus, file_db, unique):  # noqa: F811
    topic = unique("orders")
    bus.create_topic(topic)
    user = make_user("otto")
    row = stored_dead_letter(bus.kind, topic)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []
    # Six operators looking at the same page (the same replay count) click Retry at once.
    seen = [DeadLetter.objects.get(pk=row.pk) for _ in range(6)]

    def click(page: DeadLetter) -> None:
        try:
            barrier.wait()
            actions.retry(page, actor=user)
            outcomes.append("sent")
        except actions.Conflict:
            outcomes.append("conflict")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outcomes.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(page,)) for page in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["conflict"] * 5 + ["sent"]
    assert replays(bus, topic) == {row.pk: 1}
    row.refresh_from_db()
    assert (row.status, row.replay_count, row.audit.filter(action="retry").count()) == ("retried", 1, 1)


def test_loop_guard_parks_instead_of_sending(bus, source, operator):
    tired = stored_dead_letter(bus.kind, source, replay_count=actions.MAX_REPLAYS)
    last_chance = stored_dead_letter(bus.kind, source, replay_count=actions.MAX_REPLAYS - 1)
    assert actions.retry(tired, actor=operator).status == "parked"
    assert end_offset(bus, source) == 0
    assert tired.audit.get().action == "park"
    with pytest.raises(actions.Conflict):
        actions.retry(tired, actor=operator)  # parked stays parked until edited or discarded

    assert actions.retry(last_chance, actor=operator).replay_count == actions.MAX_REPLAYS
    [record] = read_all(bus, source)
    assert replay_count_header(record) == actions.MAX_REPLAYS


@pytest.fixture
def order_event(db):
    event = EventType.objects.create(name="order.placed")
    v1 = SchemaVersion.objects.create(event_type=event, version=1, schema=ORDER_SCHEMA)
    strict = {**ORDER_SCHEMA, "required": [*ORDER_SCHEMA["required"], "currency"]}
    SchemaVersion.objects.create(event_type=event, version=2, schema=strict)
    return event, v1


def test_edit_and_retry_rejects_an_invalid_payload_and_sends_nothing(bus, source, operator, order_event):
    event, v1 = order_event
    row = stored_dead_letter(bus.kind, source, event_type=event, schema_version=v1)
    with pytest.raises(actions.InvalidPayload) as refused:
        actions.edit_and_retry(row, {"order_id": "o-1", "amount": -5}, actor=operator)
    assert refused.value.path == "$.amount"
    assert "minimum of 0" in refused.value.message
    assert refused.value.to_dict() == {"payload": [refused.value.message], "path": "$.amount"}
    # Without its own version the latest registered one (v2, which needs a currency) applies.
    unversioned = stored_dead_letter(bus.kind, source, event_type=event)
    with pytest.raises(actions.InvalidPayload, match="'currency' is a required property"):
        actions.edit_and_retry(unversioned, {"order_id": "o-1", "amount": 5}, actor=operator)
    assert end_offset(bus, source) == 0
    assert DeadLetter.objects.count() == 2
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"new"}


def test_edit_and_retry_sends_a_new_event_and_resolves_the_original(bus, source, operator, order_event):
    event, v1 = order_event
    row = stored_dead_letter(bus.kind, source, event_type=event, schema_version=v1)
    copy = actions.edit_and_retry(row, {"order_id": "o-1", "amount": 12.5}, actor=operator)

    row.refresh_from_db()
    assert (row.status, copy.edited_from_id, copy.status, copy.replay_count) == ("resolved", row.pk, "retried", 1)
    assert copy.dlq_offset.startswith("edit-") and copy.event_id != row.event_id
    [record] = read_all(bus, source)
    assert record.value == b'{"order_id":"o-1","amount":12.5}' and record.key == b"o-1"
    assert record.header("ce_id").decode() == copy.event_id
    assert record.header(h.REPLAY_OF) == str(copy.pk).encode()
    assert record.header("x-eventhub-schema-version") == b"1" and record.header("traceparent") == b"00-abc-def-01"
    assert record.header(h.ERROR_CLASS) is None
    assert row.audit.get(action="edited").detail["edited_copy"] == copy.pk
    assert copy.audit.get(action="edit_and_retry").actor == operator


def test_edit_and_retry_of_a_structured_cloudevent_goes_back_in_its_envelope(bus, source, operator, order_event):
    event, v1 = order_event
    envelope = {"specversion": "1.0", "id": "ce-1", "type": "order.placed", "source": "/shop", "data": {"amount": -1}}
    structured = [(h.CONTENT_TYPE, b"application/cloudevents+json"), (h.ORIGINAL_TOPIC, source.encode())]
    row = stored_dead_letter(bus.kind, source, value=json.dumps(envelope).encode(), headers=structured)
    assert row.payload_json == {"amount": -1}

    copy = actions.edit_and_retry(row, {"order_id": "o-1", "amount": 12.5}, actor=operator)

    [record] = read_all(bus, source)
    sent = json.loads(record.value)
    assert sent == {**envelope, "id": copy.event_id, "data": {"order_id": "o-1", "amount": 12.5}}
    assert record.header(h.CONTENT_TYPE) == b"application/cloudevents+json" and record.header(h.CE_ID) is None
    assert (copy.payload_json, bytes(copy.payload)) == (sent["data"], record.value)

    cut = stored_dead_letter(bus.kind, source, value=json.dumps(envelope).encode(), headers=structured, cap=20)
    with pytest.raises(actions.Conflict, match="cut"):
        actions.edit_and_retry(cut, {"order_id": "o-1", "amount": 1}, actor=operator)


def test_discard_needs_a_reason_and_is_audited(bus, source, operator):
    row = stored_dead_letter(bus.kind, source)
    with pytest.raises(actions.InvalidRequest):
        actions.discard(row, actor=operator, reason="  ")
    assert actions.discard(row, actor=operator, reason="test order from staging").status == "discarded"
    assert row.audit.get().detail == {"reason": "test order from staging"}
    with pytest.raises(actions.Conflict):
        actions.discard(row, actor=operator, reason="again")
    with pytest.raises(actions.Conflict):
        actions.retry(row, actor=operator)


def test_what_cannot_be_replayed_as_is_is_refused(bus, source, operator, unique):
    truncated = stored_dead_letter(bus.kind, source, value=b"x" * 5000, cap=1024)
    assert truncated.truncated
    with pytest.raises(actions.Conflict, match="edit and retry"):
        actions.retry(truncated, actor=operator)
    nowhere = stored_dead_letter(bus.kind, unique("gone"))  # its source topic does not exist
    with pytest.raises(actions.ReplayFailed, match="does not exist"):
        actions.retry(nowhere, actor=operator)
    assert set(DeadLetter.objects.values_list("status", flat=True)) == {"new"}
    assert end_offset(bus, source) == 0


@pytest.mark.parametrize("bus", ["kafka"], indirect=True)
def test_dry_run_counts_and_names_topics_and_receivers(bus, source, order_event, unique):
    event, _v1 = order_event
    billing = Service.objects.create(name="billing")
    DesignedConsumer.objects.create(service=billing, event_type=event, group="billing-orders")
    rows = [stored_dead_letter("kafka", source, event_type=event) for _ in range(3)]
    stored_dead_letter("kafka", source, event_type=event, status="discarded")
    stored_dead_letter("kafka", source, event_type=event, replay_count=actions.MAX_REPLAYS)
    stored_dead_letter("redis", "stock", status="new")

    preview = actions.dry_run({"filter": {"topic": source}}, "retry")
    assert (preview["selected"], preview["count"], preview["skipped"], preview["would_park"]) == (5, 4, 1, 1)
    assert preview["target_topics"] == [{"bus": "kafka", "topic": source, "count": 4}]
    assert preview["receivers"] == [{"service": "billing", "group": "billing-orders"}]
    targeted = actions.dry_run({"ids": [rows[0].pk]}, "retry", target_group="billing-orders")
    assert (targeted["count"], targeted["receivers"]) == (1, [{"service": "billing", "group": "billing-orders"}])
    discarding = actions.dry_run({"filter": {"status": "new"}}, "discard")
    assert (discarding["count"], discarding["target_topics"], discarding["receivers"]) == (5, [], [])
    with pytest.raises(actions.InvalidRequest):
        actions.dry_run({"ids": [1], "filter": {}}, "retry")
    with pytest.raises(actions.InvalidRequest):
        actions.dry_run({"filter": {"status": "lost"}}, "retry")


@pytest.fixture
def varied(db):
    """Six dead letters that differ in one filterable thing each."""
    event = EventType.objects.create(name="stock.reserved")
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)

    def row(source_topic: str = "orders", **fields) -> DeadLetter:
        defaults = {"error_class": "ValueError", "group": "billing", "last_failed_at": at}
        return stored_dead_letter("kafka", source_topic, **{**defaults, **fields})

    return {
        "plain": row(),
        "stock": row(source_topic="stock", event_type=event),
        "keyerror": row(error_class="KeyError"),
        "shipping": row(group="shipping", service="shipper"),
        "old": row(last_failed_at=at - timedelta(days=3), status="resolved"),
        "needle": row(value=b'{"order_id": "needle-42"}'),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"plain", "stock", "keyerror", "shipping", "old", "needle"}),
        ({"topic": "stock"}, {"stock"}),
        ({"topic": "orders.dlq"}, {"plain", "keyerror", "shipping", "old", "needle"}),
        ({"event_type": "stock.reserved"}, {"stock"}),
        ({"error_class": "KeyError"}, {"keyerror"}),
        ({"group": "shipping"}, {"shipping"}),
        ({"service": "shipper"}, {"shipping"}),
        ({"status": "resolved"}, {"old"}),
        (
            {"status": "new,resolved", "error_class": "ValueError", "group": "billing", "topic": "orders"},
            {"plain", "old", "needle"},
        ),
        ({"until": "2024-05-01T00:00:00Z"}, {"old"}),
        ({"since": "2024-05-01T00:00:00+00:00"}, {"plain", "stock", "keyerror", "shipping", "needle"}),
        ({"q": "NEEDLE-42"}, {"needle"}),
        ({"q": "card declined"}, {"plain", "stock", "keyerror", "shipping", "old", "needle"}),
        ({"bus": "redis"}, set()),
    ],
)
def test_filters(varied, params, expected):
    form = filters.form_from(params)
    assert form.is_valid(), form.errors
    found = set(filters.apply(DeadLetter.objects.all(), form.cleaned_data).values_list("id", flat=True))
    assert found == {varied[name].pk for name in expected}
    # Stored in a job and read back, the selection means the same.
    stored = filters.from_selection(filters.to_selection(form.cleaned_data))
    assert set(filters.apply(DeadLetter.objects.all(), stored).values_list("id", flat=True)) == found


@pytest.mark.parametrize(
    "params", [{"status": "lost"}, {"since": "yesterday"}, {"since": "2024-05-02T00:00Z", "until": "2024-05-01T00:00Z"}]
)
def test_bad_filters_are_refused(params):
    assert not filters.form_from(params).is_valid()
