"""The dead-letter pages (/dead-letters/...): what each role sees and what each action does.

Actions go through the real verbs to the real Redis (a retry lands on the source
stream; a refused edit leaves it untouched). Every page: happy path, wrong
method, anonymous (sent to log in), viewer (no buttons, 403 on POST).
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.utils import timezone

from deadletters import actions
from deadletters.models import AuditEntry, DeadLetter, RedriveJob
from designer.models import Consumer as DesignedConsumer
from designer.models import EventType, SchemaVersion, Service
from eventhub.sdk import headers as h
from tests.deadletters.support import end_offset, read_all, stored_dead_letter
from tests.listening import CountingServer

pytestmark = pytest.mark.django_db

LIST = "/dead-letters/"
SCHEMA = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "customer": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "vip": {"type": "boolean"}},
        },
        "lines": {"type": "array", "items": {"type": "object"}},
    },
}


@pytest.fixture
def design(db):
    """order.placed v1 with SCHEMA, consumed by billing (the failing group) and shipping."""
    event = EventType.objects.create(name="order.placed", slug="order-placed")
    SchemaVersion.objects.create(event_type=event, version=1, schema=SCHEMA)
    billing = Service.objects.create(name="billing", slug="billing")
    shipping = Service.objects.create(name="shipping", slug="shipping")
    DesignedConsumer.objects.create(service=billing, event_type=event, group="billing")
    DesignedConsumer.objects.create(service=shipping, event_type=event, group="shipping")
    return event


def dead_letter(topic: str, value: bytes = b'{"order_id":"o-1","amount":-5}', **fields) -> DeadLetter:
    """A dead letter on Redis as the ingester stores it (the SDK's headers; group billing, ValueError)."""
    row = stored_dead_letter("redis", topic, value=value, **fields)
    event = EventType.objects.filter(name="order.placed").first()
    if event is not None and "event_type" not in fields:
        row.event_type = event
        row.schema_version = event.versions.get(version=1)
        row.save(update_fields=["event_type", "schema_version"])
    return row


def text(response) -> str:
    return response.content.decode()


def assert_login_redirect(response) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


# --------------------------------------------------------------------------- the list
def test_list_shows_newest_first_with_counts_per_status(client_as, viewer, topic):
    older = dead_letter(topic)
    newer = dead_letter(topic, status=DeadLetter.RESOLVED)
    response = client_as(viewer).get(LIST)
    assert response.status_code == 200
    page = text(response)
    assert page.index(f'id="dl-row-{newer.pk}"') < page.index(f'id="dl-row-{older.pk}"')
    assert re.search(r'data-status-count="new">1<', page)
    assert re.search(r'data-status-count="resolved">1<', page)
    assert re.search(r'data-status-count="">2<', page)
    assert "ValueError" in page and "card declined" in page and topic in page


def test_list_filters_by_status_topic_group_error_text_and_time(client_as, viewer, topic, unique):
    other_topic = unique("payments")
    match = dead_letter(topic, value=b'{"order_id":"needle-42","amount":-5}')
    discarded = dead_letter(topic, status=DeadLetter.DISCARDED)
    elsewhere = dead_letter(other_topic)
    old = dead_letter(topic, last_failed_at=timezone.now() - timedelta(days=3))
    client = client_as(viewer)

    def shown(query: str) -> set[int]:
        response = client.get(f"{LIST}?{query}")
        assert response.status_code == 200, text(response)
        return {int(pk) for pk in re.findall(r'id="dl-row-(\d+)"', text(response))}

    assert match.pk in shown(f"topic={topic}&status=new")
    assert shown("q=needle-42") == {match.pk}
    assert shown(f"topic={topic}&status=discarded") == {discarded.pk}
    assert shown(f"topic={topic}") == {match.pk, discarded.pk, old.pk} and elsewhere.pk in shown("")
    assert old.pk not in shown(f"topic={topic}&since={(timezone.now() - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M')}")
    assert shown(f"topic={topic}&group=billing&error_class=ValueError") >= {match.pk, old.pk}
    assert shown(f"topic={topic}&group=nobody") == set()


def test_list_says_when_it_failed_in_words(client_as, viewer, topic):
    dead_letter(topic, last_failed_at=timezone.now())
    dead_letter(topic, last_failed_at=timezone.now() - timedelta(days=3, minutes=1))
    page = text(client_as(viewer).get(f"{LIST}?topic={topic}"))
    assert ">just now</time>" in page and ">3\xa0days ago</time>" in page


def test_list_paginates(client_as, viewer, topic, settings):
    from deadletters import views

    rows = [dead_letter(topic) for _ in range(views.PAGE_SIZE + 2)]
    client = client_as(viewer)
    first = text(client.get(f"{LIST}?topic={topic}"))
    second = text(client.get(f"{LIST}?topic={topic}&page=2"))
    assert f'id="dl-row-{rows[-1].pk}"' in first and f'id="dl-row-{rows[0].pk}"' not in first
    assert f'id="dl-row-{rows[0].pk}"' in second and "Page 2 of 2" in second


def test_list_with_a_bad_filter_says_why(client_as, viewer):
    response = client_as(viewer).get(f"{LIST}?status=lost&since=yesterday")
    assert response.status_code == 400
    assert "Unknown status lost" in text(response)
    assert "Enter a valid date/time." in text(response)


def test_list_htmx_partial_and_counts(client_as, viewer, topic):
    row = dead_letter(topic)
    client = client_as(viewer)
    partial = client.get(f"{LIST}?topic={topic}", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in text(partial) and f'id="dl-row-{row.pk}"' in text(partial)
    counts = client.get(f"{LIST}?topic={topic}&part=counts")
    assert '<nav class="tabs" id="dl-counts"' in text(counts)
    assert re.search(r'data-status-count="new">1<', text(counts))
    assert "part=counts" not in text(counts)  # the tabs' links do not keep it


def test_list_rows_endpoint_returns_only_rows_matching_the_filters(client_as, viewer, topic):
    new = dead_letter(topic)
    resolved = dead_letter(topic, status=DeadLetter.RESOLVED)
    response = client_as(viewer).get(f"/dead-letters/rows?ids={new.pk},{resolved.pk},x&status=new")
    assert response.status_code == 200
    assert re.findall(r'id="dl-row-(\d+)"', text(response)) == [str(new.pk)]


def test_grouped_view_counts_by_cause_and_offers_bulk_actions(client_as, operator, topic):
    for _ in range(3):
        dead_letter(topic)
    dead_letter(topic, status=DeadLetter.RESOLVED)
    response = client_as(operator).get(f"{LIST}?view=grouped&topic={topic}")
    assert response.status_code == 200
    page = text(response)
    assert 'id="dl-groups"' in page
    # One group (ValueError, billing, no event type): 4 rows, 3 retryable.
    assert re.search(r">4</a>", page)
    assert "Retry all 3…" in page and "Discard all 3…" in page
    # No event type cannot be said with a filter: the button names the group instead.
    key = re.search(r'name="action" value="retry">.*?name="group_key" value="([^"]+)"', page, re.S)
    assert key and json.loads(html.unescape(key.group(1))) == {
        "error_class": "ValueError",
        "group": "billing",
        "event_type": None,
    }


def test_a_group_key_selects_exactly_that_group(client_as, operator, topic, design):
    untyped = [dead_letter(topic, event_type=None) for _ in range(2)]
    dead_letter(topic)  # same error and group, but an event type: another group
    dead_letter(topic, event_type=None, status=DeadLetter.RESOLVED)  # not retryable
    key = json.dumps({"error_class": "ValueError", "group": "billing", "event_type": None})
    data = {"action": "retry", "step": "preview", "group_key": key, "filter_query": f"topic={topic}&status=new,retried"}
    response = client_as(operator).post(JOB_NEW, data)
    assert response.status_code == 200
    assert '<strong id="dry-run-count">2</strong> will be sent again' in text(response)
    shown = re.findall(r'<tr><td><a href="/dead-letters/(\d+)/">', text(response))
    assert sorted(shown) == sorted(str(row.pk) for row in untyped)
    # The start button sends the group again (resolved anew), not a filter that names more.
    assert 'name="group_key" value="{&quot;error_class&quot;: &quot;ValueError&quot;' in text(response)
    bad = client_as(operator).post(JOB_NEW, {**data, "group_key": '{"error_class": 1}'})
    assert bad.status_code == 400 and "Not a group of the grouped view." in text(bad)


def test_grouped_view_selects_a_fully_named_group_by_filter(client_as, operator, topic, design):
    for _ in range(2):
        dead_letter(topic)
    page = text(client_as(operator).get(f"{LIST}?view=grouped&topic={topic}"))
    query = re.search(r'name="action" value="retry">\s*<input type="hidden" name="filter_query" value="([^"]+)"', page)
    assert query, page
    assert "error_class=ValueError" in query.group(1) and "event_type=order.placed" in query.group(1)
    assert "status=new%2Cretried" in query.group(1)


def test_viewer_sees_no_selection_or_bulk_actions(client_as, viewer, topic):
    dead_letter(topic)
    page = text(client_as(viewer).get(f"{LIST}?topic={topic}"))
    assert 'name="ids"' not in page and "Retry selected" not in page and 'id="dl-bulk"' not in page
    grouped = text(client_as(viewer).get(f"{LIST}?view=grouped&topic={topic}"))
    assert "Retry all" not in grouped and "Discard all" not in grouped


def test_operator_sees_selection_and_bulk_actions(client_as, operator, topic):
    row = dead_letter(topic)
    page = text(client_as(operator).get(f"{LIST}?topic={topic}"))
    assert f'name="ids" value="{row.pk}"' in page and "Retry selected…" in page
    assert "Retry all…" in page  # a filter is set: every match can be acted on


def test_list_wrong_method_and_anonymous(client, client_as, viewer):
    assert_login_redirect(client.get(LIST))
    assert client_as(viewer).post(LIST).status_code == 405


# --------------------------------------------------------------------------- one dead letter
def test_detail_shows_payload_schema_problems_headers_and_error(client_as, viewer, topic, design):
    row = dead_letter(topic)
    response = client_as(viewer).get(f"/dead-letters/{row.pk}/")
    assert response.status_code == 200
    page = text(response)
    assert "&quot;order_id&quot;: &quot;o-1&quot;" in page  # pretty-printed JSON, escaped
    assert "1 problem against order.placed v1" in page
    assert "<code>$.amount</code>: -5 is less than the minimum of 0" in page
    assert '<td>x-eventhub-error-class</td><td>ValueError</td><td><span class="badge">eventhub</span>' in page
    assert '<td>ce_type</td><td>order.placed</td><td><span class="badge">cloudevents</span>' in page
    assert "<td>traceparent</td>" in page and ">application</span>" in page
    assert "Traceback ..." in page and "card declined" in page
    assert "1700000000000-0" in page  # the Redis entry id it came from
    assert "Nobody has acted on it yet." in page


def test_detail_valid_payload_gets_a_tick(client_as, viewer, topic, design):
    row = dead_letter(topic, value=b'{"order_id":"o-1","amount":5}')
    assert "✓ Valid against order.placed v1" in text(client_as(viewer).get(f"/dead-letters/{row.pk}/"))


def test_detail_binary_and_truncated_payloads(client_as, viewer, topic):
    binary = dead_letter(topic, value=b"\x00\x01avro\xff" * 3)
    cut = dead_letter(topic, value=b'{"order_id":"' + b"x" * 2000 + b'"}', cap=1024)
    client = client_as(viewer)
    page = text(client.get(f"/dead-letters/{binary.pk}/"))
    assert "00000000  00 01 61 76 72 6f ff 00" in page and "binary" in page
    page = text(client.get(f"/dead-letters/{cut.pk}/"))
    assert "truncated: 1024 of 2015 bytes kept" in page
    assert "The payload was truncated" in page


def test_detail_of_unknown_dead_letter_is_404(client_as, viewer):
    assert client_as(viewer).get("/dead-letters/999999/").status_code == 404


def test_viewer_sees_no_action_buttons(client_as, viewer, topic, design):
    row = dead_letter(topic)
    page = text(client_as(viewer).get(f"/dead-letters/{row.pk}/"))
    assert 'id="dl-actions"' not in page
    assert "/retry" not in page and "/discard" not in page and "/edit" not in page


def test_operator_sees_retry_with_receivers_edit_and_discard(client_as, operator, topic, design):
    row = dead_letter(topic)
    page = text(client_as(operator).get(f"/dead-letters/{row.pk}/"))
    assert f'action="/dead-letters/{row.pk}/retry"' in page
    assert f'action="/dead-letters/{row.pk}/discard"' in page
    assert f'href="/dead-letters/{row.pk}/edit"' in page
    assert "Only billing (the group that failed)" in page and "Only shipping (shipping)" in page
    # The preview of who receives a retry to every group: the design's consumers.
    assert "billing · group <code>billing</code>" in page and "shipping · group <code>shipping</code>" in page


def test_receivers_preview_for_a_targeted_replay(client_as, operator, topic, design):
    row = dead_letter(topic)
    page = text(client_as(operator).get(f"/dead-letters/{row.pk}/receivers?target_group=billing"))
    assert "billing · group <code>billing</code>" in page and "shipping" not in page
    assert f"Goes to <strong>{topic}</strong>" in page


def test_state_partial_has_status_and_audit(client_as, viewer, topic):
    row = dead_letter(topic, status=DeadLetter.RETRIED, replay_count=1)
    AuditEntry.objects.create(actor=viewer, action="retry", dead_letter=row, result="sent to x")
    response = client_as(viewer).get(f"/dead-letters/{row.pk}/state")
    assert response.status_code == 200
    page = text(response)
    assert 'id="dl-state" data-status="retried"' in page and 'id="dl-audit"' in page
    assert "sent to x" in page and "<html" not in page


def test_detail_wrong_method_and_anonymous(client, client_as, viewer, topic):
    row = dead_letter(topic)
    assert_login_redirect(client.get(f"/dead-letters/{row.pk}/"))
    assert client_as(viewer).post(f"/dead-letters/{row.pk}/").status_code == 405
    assert client_as(viewer).post(f"/dead-letters/{row.pk}/state").status_code == 405


# --------------------------------------------------------------------------- retry
def test_operator_retries_to_the_source_topic(client_as, operator, topic, redis):
    row = dead_letter(topic)
    response = client_as(operator).post(f"/dead-letters/{row.pk}/retry", {"target_group": "billing"}, follow=True)
    assert response.redirect_chain == [(f"/dead-letters/{row.pk}/", 302)]
    assert f"Sent again to {topic} for billing only" in text(response)
    row.refresh_from_db()
    assert (row.status, row.replay_count, row.replay_group) == ("retried", 1, "billing")
    [record] = read_all(redis, topic)
    assert record.header(h.REPLAY_OF) == str(row.pk).encode() and record.header(h.REPLAY_GROUP) == b"billing"


def test_retry_of_a_resolved_dead_letter_is_a_conflict(client_as, operator, topic, redis):
    row = dead_letter(topic, status=DeadLetter.RESOLVED)
    response = client_as(operator).post(f"/dead-letters/{row.pk}/retry", {"target_group": ""})
    assert response.status_code == 409
    assert f"Dead letter #{row.pk} is resolved" in text(response)
    assert end_offset(redis, topic) == 0


def test_retry_to_a_group_not_offered_is_refused(client_as, operator, topic, redis):
    row = dead_letter(topic)
    response = client_as(operator).post(f"/dead-letters/{row.pk}/retry", {"target_group": "mallory"})
    assert response.status_code == 400
    assert end_offset(redis, topic) == 0


def test_viewer_cannot_retry(client_as, viewer, topic, redis):
    row = dead_letter(topic)
    assert client_as(viewer).post(f"/dead-letters/{row.pk}/retry").status_code == 403
    row.refresh_from_db()
    assert row.status == "new" and end_offset(redis, topic) == 0


def test_retry_wrong_method_and_anonymous(client, client_as, operator, topic):
    row = dead_letter(topic)
    assert_login_redirect(client.post(f"/dead-letters/{row.pk}/retry"))
    assert client_as(operator).get(f"/dead-letters/{row.pk}/retry").status_code == 405


# --------------------------------------------------------------------------- discard
def test_operator_discards_with_a_reason(client_as, operator, topic):
    row = dead_letter(topic)
    response = client_as(operator).post(f"/dead-letters/{row.pk}/discard", {"reason": "test order"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == "discarded"
    [entry] = row.audit.all()
    assert (entry.actor, entry.action, entry.detail["reason"]) == (operator, "discard", "test order")
    assert "reason: test order" in text(client_as(operator).get(f"/dead-letters/{row.pk}/"))


def test_discard_needs_a_reason(client_as, operator, topic):
    row = dead_letter(topic)
    response = client_as(operator).post(f"/dead-letters/{row.pk}/discard", {"reason": "  "})
    assert response.status_code == 400
    assert "Say why it is discarded." in text(response)
    row.refresh_from_db()
    assert row.status == "new"


def test_viewer_cannot_discard_and_wrong_method(client, client_as, viewer, topic):
    row = dead_letter(topic)
    assert client_as(viewer).post(f"/dead-letters/{row.pk}/discard", {"reason": "x"}).status_code == 403
    assert client_as(viewer).get(f"/dead-letters/{row.pk}/discard").status_code == 405
    row.refresh_from_db()
    assert row.status == "new"


# --------------------------------------------------------------------------- edit and retry
def edit_url(row: DeadLetter) -> str:
    return f"/dead-letters/{row.pk}/edit"


def test_edit_form_is_generated_from_the_schema(client_as, operator, topic, design):
    row = dead_letter(
        topic, value=b'{"order_id":"o-1","amount":"twelve","customer":{"name":"Ann"},"lines":[{"sku":"a"}],"note":"x"}'
    )
    response = client_as(operator).get(edit_url(row))
    assert response.status_code == 200
    page = text(response)
    assert 'name="f/order_id"' in page and 'value="o-1"' in page
    assert 'name="f/amount"' in page and 'value="twelve"' in page  # the failing value stays visible
    assert '<select name="f/currency"' in page and "&quot;EUR&quot;" in page
    assert "<legend>customer" in page and 'name="f/customer/name"' in page and 'name="f/customer/vip"' in page
    assert 'name="f/lines"' in page and "a list, as JSON" in page
    assert "Kept as they are (not in the schema): <code>$.note</code>" in page
    assert 'name="payload"' in page  # the JSON editor is there too


def test_invalid_edit_is_refused_next_to_the_field_and_nothing_is_sent(client_as, operator, topic, design, redis):
    row = dead_letter(topic)
    form = {"mode": "form", "f/order_id": "o-1", "f/amount": "-3", "f/customer/name": "", "target_group": ""}
    response = client_as(operator).post(edit_url(row), form)
    assert response.status_code == 400
    page = text(response)
    assert "Nothing was sent: Does not match order.placed v1" in page
    assert re.search(r'data-errors-for="\$\.amount"><li>\$\.amount: -3 is less than the minimum of 0</li>', page)
    assert end_offset(redis, topic) == 0
    row.refresh_from_db()
    assert row.status == "new" and not row.edited_copies.exists()


def test_unreadable_form_values_are_field_errors(client_as, operator, topic, design, redis):
    row = dead_letter(topic)
    form = {"mode": "form", "f/order_id": "o-1", "f/amount": "twelve", "f/lines": "[1,", "target_group": ""}
    page = text(client_as(operator).post(edit_url(row), form))
    assert "Enter a number." in page and "Invalid JSON at line 1, column 4" in page
    assert end_offset(redis, topic) == 0


def test_operator_fixes_the_payload_in_the_form_and_it_is_sent(client_as, operator, topic, design, redis):
    row = dead_letter(topic, value=b'{"order_id":"o-1","amount":-5,"note":"keep me"}')
    form = {"mode": "form", "f/order_id": "o-1", "f/amount": "5", "f/currency": '"EUR"', "target_group": "billing"}
    response = client_as(operator).post(edit_url(row), form)
    copy = DeadLetter.objects.get(edited_from=row)
    assert response.status_code == 302 and response["Location"] == f"/dead-letters/{copy.pk}/"
    [record] = read_all(redis, topic)
    assert json.loads(record.value) == {"order_id": "o-1", "amount": 5, "currency": "EUR", "note": "keep me"}
    assert record.header(h.REPLAY_GROUP) == b"billing"
    row.refresh_from_db()
    assert row.status == "resolved" and copy.status == "retried"
    page = text(client_as(operator).get(f"/dead-letters/{copy.pk}/"))
    assert f"the original, #{row.pk}" in page
    assert f'class="dl-copy-link">#{copy.pk}' in text(client_as(operator).get(f"/dead-letters/{row.pk}/"))


def test_json_editor_reports_bad_json_and_schema_paths(client_as, operator, topic, design, redis):
    row = dead_letter(topic)
    client = client_as(operator)
    bad = client.post(
        edit_url(row), {"mode": "json", "payload": '{"order_id": "o-1",\n "amount": }', "target_group": ""}
    )
    assert bad.status_code == 400 and "Invalid JSON at line 2, column 12" in text(bad)
    invalid = client.post(edit_url(row), {"mode": "json", "payload": '{"amount": 1}', "target_group": ""})
    assert invalid.status_code == 400 and "$.order_id: &#x27;order_id&#x27; is a required property" in text(invalid)
    assert end_offset(redis, topic) == 0
    good = client.post(
        edit_url(row), {"mode": "json", "payload": '{"order_id": "o-1", "amount": 2}', "target_group": ""}
    )
    assert good.status_code == 302
    assert json.loads(read_all(redis, topic)[0].value) == {"order_id": "o-1", "amount": 2}


def test_a_stored_schema_with_a_remote_ref_is_never_fetched(client_as, operator, topic, redis):
    """A version stored before registration refused remote $refs: the detail page and a refused
    edit say why it cannot be checked; nothing is fetched and nothing is sent."""
    with CountingServer() as remote:
        event = EventType.objects.create(name="order.placed", slug="order-placed")
        customer = {"$ref": remote.url("customer.json")}
        schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "customer": customer}}
        SchemaVersion.objects.create(event_type=event, version=1, schema=schema)
        row = dead_letter(topic)
        client = client_as(operator)
        detail = text(client.get(f"/dead-letters/{row.pk}/"))
        assert "The schema cannot be checked here: #/properties/customer/$ref: $ref &#x27;http://127" in detail
        assert client.get(edit_url(row)).status_code == 200
        payload = '{"order_id": "o-1", "amount": 2, "customer": {"name": "Ann"}}'
        refused = client.post(edit_url(row), {"mode": "json", "payload": payload, "target_group": ""})
        assert refused.status_code == 400
        assert "The schema cannot be checked here: #/properties/customer/$ref" in text(refused)
        assert remote.connections == 0
    assert end_offset(redis, topic) == 0


def test_edit_without_a_schema_offers_only_json(client_as, operator, topic, redis):
    row = dead_letter(topic)
    page = text(client_as(operator).get(edit_url(row)))
    assert "No schema is known for this event" in page and 'name="f/' not in page
    assert 'id="json-form" data-mode-panel="json" novalidate>' in page  # shown, not hidden


def test_editing_a_resolved_dead_letter_says_it_cannot_be_sent(client_as, operator, topic, redis):
    row = dead_letter(topic, status=DeadLetter.RESOLVED)
    page = text(client_as(operator).get(edit_url(row)))
    assert "It is resolved: an edited copy can only be sent while it is new, retried, parked." in page
    refused = client_as(operator).post(edit_url(row), {"mode": "json", "payload": "{}", "target_group": ""})
    assert refused.status_code == 409 and "Nothing was sent: Dead letter" in text(refused)
    assert end_offset(redis, topic) == 0


def test_viewer_cannot_edit_and_wrong_method(client, client_as, viewer, operator, topic):
    row = dead_letter(topic)
    assert client_as(viewer).get(edit_url(row)).status_code == 403
    assert client_as(viewer).post(edit_url(row), {"mode": "json", "payload": "{}"}).status_code == 403
    assert client_as(operator).put(edit_url(row)).status_code == 405
    client.logout()
    assert_login_redirect(client.get(edit_url(row)))


# --------------------------------------------------------------------------- bulk jobs
JOB_NEW = "/dead-letters/jobs/new"


def test_bulk_retry_shows_a_dry_run_before_starting(client_as, operator, topic, design):
    rows = [dead_letter(topic) for _ in range(3)]
    done = dead_letter(topic, status=DeadLetter.RESOLVED)
    ids = [row.pk for row in rows] + [done.pk]
    response = client_as(operator).post(JOB_NEW, {"action": "retry", "ids": ids, "step": "preview", "rate_per_s": 50})
    assert response.status_code == 200
    page = text(response)
    assert '<strong id="dry-run-count">3</strong> will be sent again' in page
    assert "<strong>1</strong> skipped" in page
    assert f"<strong>{topic}</strong>" in page
    assert "billing · group <code>billing</code>" in page and "shipping · group <code>shipping</code>" in page
    assert "Start job: retry 3" in page
    assert not RedriveJob.objects.exists()


def test_bulk_preview_by_filter_from_a_group_button(client_as, operator, topic):
    for _ in range(2):
        dead_letter(topic)
    response = client_as(operator).post(
        JOB_NEW, {"action": "discard", "filter_query": f"topic={topic}&status=new", "step": "preview"}
    )
    assert response.status_code == 200
    assert '<strong id="dry-run-count">2</strong> will be discarded' in text(response)


def test_starting_a_job_creates_it_and_goes_to_its_page(client_as, operator, topic):
    rows = [dead_letter(topic) for _ in range(2)]
    response = client_as(operator).post(
        JOB_NEW,
        {
            "action": "retry",
            "ids": [r.pk for r in rows],
            "step": "start",
            "rate_per_s": 5,
            "target_group": "billing",
            "previewed": "retry|billing",
        },
    )
    job = RedriveJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/dead-letters/jobs/{job.pk}/"
    assert (job.action, job.total, job.rate_per_s) == ("retry", 2, 5)
    assert (job.target_group, job.created_by) == ("billing", operator)


def test_a_job_changed_after_its_dry_run_shows_the_new_dry_run_instead_of_starting(client_as, operator, topic):
    row = dead_letter(topic)
    data = {"action": "discard", "ids": [row.pk], "step": "start", "reason": "test", "previewed": "retry|"}
    response = client_as(operator).post(JOB_NEW, data)
    assert response.status_code == 200
    assert "changed since the dry run" in text(response)
    assert '<strong id="dry-run-count">1</strong> will be discarded' in text(response)
    assert 'name="previewed" value="discard|"' in text(response)
    assert not RedriveJob.objects.exists()


def test_bulk_discard_needs_a_reason_and_a_selection(client_as, operator, topic):
    row = dead_letter(topic)
    client = client_as(operator)
    no_reason = client.post(
        JOB_NEW, {"action": "discard", "ids": [row.pk], "step": "start", "rate_per_s": 50, "previewed": "discard|"}
    )
    assert no_reason.status_code == 400 and "Say why they are discarded." in text(no_reason)
    nothing = client.post(JOB_NEW, {"action": "retry", "step": "preview", "rate_per_s": 50})
    assert nothing.status_code == 400 and "Select dead letters first" in text(nothing)
    too_fast = client.post(
        JOB_NEW, {"action": "retry", "ids": [row.pk], "step": "start", "rate_per_s": 10**6, "previewed": "retry|"}
    )
    assert too_fast.status_code == 400
    # Ids no row can have (a superscript digit, one past BigAutoField) are named, not a server error.
    for bad in ("\u00b2", str(2**63)):
        odd = client.post(JOB_NEW, {"action": "retry", "ids": [row.pk, bad], "step": "preview", "rate_per_s": 50})
        assert odd.status_code == 400 and "is not a dead-letter id" in text(odd), bad
    assert not RedriveJob.objects.exists()


def test_viewer_cannot_open_or_start_a_job(client, client_as, viewer, operator, topic):
    row = dead_letter(topic)
    data = {"action": "retry", "ids": [row.pk], "step": "start", "rate_per_s": 50}
    assert client_as(viewer).post(JOB_NEW, data).status_code == 403
    assert client_as(viewer).get(JOB_NEW, {"action": "retry", "ids": row.pk}).status_code == 403
    assert client_as(operator).put(JOB_NEW).status_code == 405
    client.logout()
    assert_login_redirect(client.post(JOB_NEW, data))
    assert not RedriveJob.objects.exists()


def make_job(user, rows, state=RedriveJob.PENDING) -> RedriveJob:
    return RedriveJob.objects.create(
        action="retry", state=state, selection={"ids": [r.pk for r in rows]}, item_ids=[r.pk for r in rows],
        total=len(rows), done=1, rate_per_s=10, created_by=user,
    )  # fmt: skip


def test_job_page_shows_progress_items_and_cancel_for_operators(client_as, operator, viewer, topic):
    rows = [dead_letter(topic) for _ in range(4)]
    job = make_job(operator, rows)
    page = text(client_as(operator).get(f"/dead-letters/jobs/{job.pk}/"))
    assert '<strong id="job-finished">1</strong> of <strong id="job-total">4</strong>' in page
    assert 'style="width: 25%"' in page and 'id="job-cancel"' in page
    assert f'href="/dead-letters/{rows[0].pk}/"' in page
    viewer_page = text(client_as(viewer).get(f"/dead-letters/jobs/{job.pk}/"))
    assert 'id="job-cancel"' not in viewer_page and "/cancel" not in viewer_page
    state = client_as(viewer).get(f"/dead-letters/jobs/{job.pk}/state")
    assert state.status_code == 200 and 'id="job-progress" data-state="pending"' in text(state)


def test_operator_cancels_a_job_viewer_cannot(client, client_as, operator, viewer, topic):
    job = make_job(operator, [dead_letter(topic)])
    assert client_as(viewer).post(f"/dead-letters/jobs/{job.pk}/cancel").status_code == 403
    job.refresh_from_db()
    assert job.state == "pending"
    response = client_as(operator).post(f"/dead-letters/jobs/{job.pk}/cancel")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == "cancelled" and job.audit.filter(action="job_cancel", actor=operator).exists()
    again = client_as(operator).post(f"/dead-letters/jobs/{job.pk}/cancel")
    assert again.status_code == 409 and "it cannot be cancelled" in text(again)
    assert client_as(operator).get(f"/dead-letters/jobs/{job.pk}/cancel").status_code == 405
    client.logout()
    assert_login_redirect(client.get(f"/dead-letters/jobs/{job.pk}/"))


def test_job_list(client, client_as, viewer, operator, topic):
    job = make_job(operator, [dead_letter(topic)])
    page = text(client_as(viewer).get("/dead-letters/jobs/"))
    assert f'href="/dead-letters/jobs/{job.pk}/"' in page
    assert client_as(viewer).post("/dead-letters/jobs/").status_code == 405


# --------------------------------------------------------------------------- the socket
MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _socket_headers(session_key: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if session_key:
        headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session_key}".encode()))
    return headers


@pytest.mark.django_db(transaction=True)
def test_socket_refuses_anonymous(settings):
    from eventhub.asgi import application

    settings.CHANNEL_LAYERS = MEMORY_LAYER

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/dead-letters/", headers=_socket_headers())
        connected, code = await communicator.connect(timeout=5)
        assert (connected, code) == (False, 4401)

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_socket_forwards_new_changed_and_progress_frames(settings, client, django_user_model):
    from deadletters.consumers import DeadLettersConsumer
    from eventhub.asgi import application

    settings.CHANNEL_LAYERS = MEMORY_LAYER
    assert DeadLettersConsumer.GROUP == actions.GROUP
    user = django_user_model.objects.create_user("wendy", password="pw")
    client.force_login(user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/dead-letters/", headers=_socket_headers(session))
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        layer = get_channel_layer()
        await layer.group_send(actions.GROUP, {"type": "deadletters.new", "ids": [7, 8], "count": 2, "secret": 1})
        assert await communicator.receive_json_from(timeout=5) == {"type": "deadletters.new", "ids": [7, 8], "count": 2}
        await layer.group_send(
            actions.GROUP, {"type": "deadletters.changed", "ids": [7], "status": "retried", "count": 1}
        )
        assert (await communicator.receive_json_from(timeout=5))["status"] == "retried"
        job = {"type": "redrive.progress", "job": 3, "action": "retry", "state": "running"}
        job = {**job, "done": 1, "failed": 0, "skipped": 0, "total": 4}
        await layer.group_send(actions.GROUP, job)
        assert await communicator.receive_json_from(timeout=5) == job
        await communicator.disconnect()

    async_to_sync(scenario)()
