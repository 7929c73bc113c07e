"""Sensitive payload fields (x-eventhub-pii) in every dead-letter view, by who may see them.

order.placed v1 has no marks; v2, registered through the registry (so a version
that only adds marks must pass its compatibility check), marks the customer's
email and each line's card. The dead letters are v1 records: the latest
version's marks apply to them. A viewer sees "•••" there and the real values
elsewhere, in the list, the detail page, the API, the rows a websocket frame
makes the page fetch, and the edit form; an operator (view_sensitive) sees the
values, and each read is in the audit trail. Edits send the real Redis stream.
"""

from __future__ import annotations

import copy
import html
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, Permission

from deadletters import actions
from deadletters.models import AuditEntry, DeadLetter
from designer import registry
from designer.models import EventType, SchemaVersion
from eventhub import roles
from eventhub.sdk.pii import MASK
from tests.deadletters.support import end_offset, read_all, sdk_headers, stored_dead_letter

pytestmark = pytest.mark.django_db

V1 = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "pattern": "^o-"},
        "customer": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
        },
        "lines": {
            "type": "array",
            "items": {"type": "object", "properties": {"card": {"type": "string", "pattern": "^[0-9]{16}$"}}},
        },
    },
}
V2 = copy.deepcopy(V1)
V2["properties"]["customer"]["properties"]["email"]["x-eventhub-pii"] = True
V2["properties"]["lines"]["items"]["properties"]["card"]["x-eventhub-pii"] = True

EMAIL, CARD = "ann.secret@example.com", "4111111111111111"
# Failed on its id only: the hidden values are valid, an edit fixes the id and keeps them.
WRONG_ID = {"id": "x-1", "customer": {"name": "Ann", "email": EMAIL}, "lines": [{"card": CARD}]}
BAD_EMAIL, BAD_CARD = "ann.secret-at-example.com", "4111-SECRET-1111"
# Failed on the hidden values themselves: the schema's messages quote them.
BAD_HIDDEN = {"id": "o-2", "customer": {"name": "Ann", "email": BAD_EMAIL}, "lines": [{"card": BAD_CARD}]}
SECRETS = (EMAIL, CARD, BAD_EMAIL, BAD_CARD, "SECRET")
MASKED_PATHS = ["$.customer.email", "$.lines[0].card"]


@pytest.fixture
def event(db):
    event = EventType.objects.create(name="order.placed", slug="order-placed", compatibility_mode="FULL_TRANSITIVE")
    registry.register_version(event, V1)
    registry.register_version(event, V2)  # only marks: compatible, even FULL_TRANSITIVE
    return event


def stored(topic: str, payload, event: EventType | None, **fields) -> DeadLetter:
    """A v1 dead letter on Redis, as the ingester stores it."""
    value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    row = stored_dead_letter("redis", topic, value=value, headers=sdk_headers(topic, "redis"), **fields)
    if event is not None:
        row.event_type = event
        row.schema_version = event.versions.get(version=1)
        row.save(update_fields=["event_type", "schema_version"])
    return row


def page(response) -> str:
    assert response.status_code in (200, 201, 400), response.content[:500]
    return html.unescape(response.content.decode())


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown"


def reads(user) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(actor=user, action="view_sensitive").order_by("id"))


def without_view_sensitive(role: str = roles.OPERATOR) -> None:
    """What an admin does in the admin site: take the permission from a role."""
    Group.objects.get(name=role).permissions.remove(
        Permission.objects.get(content_type__app_label="designer", codename="view_sensitive")
    )


# --------------------------------------------------------------------------- who may see
def test_operator_and_admin_may_see_sensitive_fields_viewer_and_designer_not(viewer, designer, operator, admin):
    assert [roles.can_view_sensitive(user) for user in (viewer, designer, operator, admin)] == [
        False,
        False,
        True,
        True,
    ]
    operator_group = Group.objects.get(name=roles.OPERATOR)
    assert operator_group.permissions.filter(codename="view_sensitive").exists()
    assert Group.objects.get(name=roles.ADMIN).permissions.filter(codename="view_sensitive").exists()
    without_view_sensitive()
    operator = type(operator).objects.get(pk=operator.pk)  # permissions are cached per user object
    assert not roles.can_view_sensitive(operator)


def test_marks_of_the_latest_version_apply_to_every_version(event):
    assert event.latest_version().version == 2
    assert not any("x-eventhub-pii" in json.dumps(v.schema) for v in SchemaVersion.objects.filter(version=1))


# --------------------------------------------------------------------------- list
def test_list_previews_are_masked_for_the_viewer_with_the_rest_real(client_as, viewer, topic, event):
    row = stored(topic, WRONG_ID, event)
    text = page(client_as(viewer).get(f"/dead-letters/?topic={topic}"))
    assert f'id="dl-row-{row.pk}"' in text
    assert f'"email":"{MASK}"' in text and f'"card":"{MASK}"' in text
    assert '"id":"x-1"' in text and '"name":"Ann"' in text
    assert_no_secret(text)


def test_list_previews_are_masked_for_the_operator_too_and_not_audited(client_as, operator, topic, event):
    row = stored(topic, WRONG_ID, event)
    client = client_as(operator)
    for url in (f"/dead-letters/?topic={topic}", f"/dead-letters/rows?ids={row.pk}"):
        text = page(client.get(url))
        assert f'"card":"{MASK}"' in text
        assert_no_secret(text)
    [listed] = client.get(f"/api/v1/dead-letters/?topic={topic}").json()["results"]
    assert json.loads(listed["payload_preview"]) == {
        **WRONG_ID,
        "customer": {"name": "Ann", "email": MASK},
        "lines": [{"card": MASK}],
    }
    assert reads(operator) == []


def test_previews_of_unmarked_events_are_unchanged(client_as, viewer, topic):
    stored(topic, WRONG_ID, None)
    assert EMAIL in page(client_as(viewer).get(f"/dead-letters/?topic={topic}"))


def test_viewer_search_does_not_look_into_sensitive_payloads(client_as, viewer, operator, topic, event):
    """Else a search would answer "is the card 4…, 41…, 411…" one character at a time."""
    marked = stored(topic, BAD_HIDDEN, event)
    unmarked = stored(topic, {"note": "SECRET elsewhere"}, None)

    def found(user, query: str) -> set[int]:
        client = client_as(user)
        rows = client.get("/api/v1/dead-letters/", {"topic": topic, "q": query}).json()["results"]
        page_text = page(client.get("/dead-letters/", {"topic": topic, "q": query}))
        assert {row["id"] for row in rows} == {
            pk for pk in (marked.pk, unmarked.pk) if f'id="dl-row-{pk}"' in page_text
        }
        return {row["id"] for row in rows}

    assert found(viewer, "SECRET") == {unmarked.pk}
    assert found(viewer, "o-2") == set()  # the whole payload of a marked event type
    assert found(viewer, "card declined") == {marked.pk, unmarked.pk}  # the error message is searched
    assert found(operator, "SECRET") == {marked.pk, unmarked.pk}


# --------------------------------------------------------------------------- detail page
def test_detail_page_masks_for_the_viewer_and_scrubs_schema_messages(client_as, viewer, topic, event):
    row = stored(topic, BAD_HIDDEN, event)
    text = page(client_as(viewer).get(f"/dead-letters/{row.pk}/"))
    assert f'"email": "{MASK}"' in text and f'"card": "{MASK}"' in text
    assert '"id": "o-2"' in text and '"name": "Ann"' in text
    assert "Sensitive, shown as •••: <code>$.customer.email</code>, <code>$.lines[0].card</code>" in text
    # The schema check still runs on the real values, but its messages do not quote them.
    assert f"$.customer.email</code>: {MASK} is not a 'email'" in text
    assert f"$.lines[0].card</code>: {MASK} does not match '^[0-9]{{16}}$'" in text
    assert_no_secret(text)
    assert reads(viewer) == [] and not AuditEntry.objects.filter(dead_letter=row).exists()


def test_detail_page_shows_the_operator_the_values_and_records_it(client_as, operator, topic, event):
    row = stored(topic, BAD_HIDDEN, event)
    text = page(client_as(operator).get(f"/dead-letters/{row.pk}/"))
    assert f'"email": "{BAD_EMAIL}"' in text and f'"card": "{BAD_CARD}"' in text and MASK not in text
    assert f"'{BAD_CARD}' does not match" in text
    assert "This view is recorded in the audit trail." in text
    [entry] = reads(operator)
    assert entry.dead_letter_id == row.pk
    assert entry.detail == {"via": "page", "paths": MASKED_PATHS}
    assert entry.result == "read unmasked (page): $.customer.email, $.lines[0].card"
    assert "read unmasked (page)" in page(client_as(operator).get(f"/dead-letters/{row.pk}/state"))


def test_a_payload_without_the_marked_fields_is_not_audited(client_as, operator, topic, event):
    row = stored(topic, {"id": "o-3"}, event)
    text = page(client_as(operator).get(f"/dead-letters/{row.pk}/"))
    assert '"id": "o-3"' in text and "Sensitive" not in text
    assert reads(operator) == []


def test_a_cut_payload_of_a_marked_event_is_hidden_whole(client_as, viewer, operator, topic, event):
    """Not JSON, so its fields cannot be found: all or nothing."""
    raw = json.dumps(BAD_HIDDEN).encode()
    row = stored(topic, raw, event, cap=20)
    assert row.truncated
    text = page(client_as(viewer).get(f"/dead-letters/{row.pk}/"))
    assert f'<pre class="payload" id="dl-payload-text">"{MASK}"</pre>' in text
    assert raw[:20].decode() not in text
    assert raw[:20].decode() in page(client_as(operator).get(f"/dead-letters/{row.pk}/"))
    assert [entry.detail["paths"] for entry in reads(operator)] == [["$"]]


# --------------------------------------------------------------------------- REST API
def test_api_detail_masks_for_the_viewer(client_as, viewer, topic, event):
    row = stored(topic, BAD_HIDDEN, event)
    response = client_as(viewer).get(f"/api/v1/dead-letters/{row.pk}/")
    assert response.status_code == 200
    payload = response.json()["payload"]
    assert payload["json"] == {"id": "o-2", "customer": {"name": "Ann", "email": MASK}, "lines": [{"card": MASK}]}
    assert payload["masked"] == MASKED_PATHS and payload["base64"] is None
    assert json.loads(payload["text"]) == payload["json"]
    assert_no_secret(response.content.decode())
    assert reads(viewer) == []


def test_api_detail_shows_the_operator_the_values_and_records_it(client_as, operator, topic, event):
    row = stored(topic, BAD_HIDDEN, event)
    payload = client_as(operator).get(f"/api/v1/dead-letters/{row.pk}/").json()["payload"]
    assert payload["json"] == BAD_HIDDEN and payload["masked"] == []
    assert [(entry.dead_letter_id, entry.detail["via"]) for entry in reads(operator)] == [(row.pk, "api")]


# --------------------------------------------------------------------------- live updates
MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.mark.django_db(transaction=True)
def test_websocket_frame_of_a_new_dead_letter_carries_no_payload_and_its_rows_are_masked(
    settings, client, viewer, topic, event
):
    """The frame names ids; the page fetches the rows for them, which mask like the list."""
    from eventhub.asgi import application

    settings.CHANNEL_LAYERS = MEMORY_LAYER
    client.force_login(viewer)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    headers.append((b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session}".encode()))

    @database_sync_to_async
    def ingest() -> DeadLetter:
        row = stored(topic, WRONG_ID, event)
        actions.broadcast_new([row.pk])  # what the ingester sends after its commit
        return row

    async def scenario() -> tuple[DeadLetter, str]:
        communicator = WebsocketCommunicator(application, "/ws/dead-letters/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        row = await ingest()
        frame = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return row, frame

    row, frame = async_to_sync(scenario)()
    assert json.loads(frame) == {"type": "deadletters.new", "ids": [row.pk], "count": 1}
    text = page(client.get(f"/dead-letters/rows?ids={row.pk}"))
    assert f'id="dl-row-{row.pk}"' in text and f'"email":"{MASK}"' in text and '"name":"Ann"' in text
    assert_no_secret(frame + text)


# --------------------------------------------------------------------------- editing
def edit_url(row: DeadLetter) -> str:
    return f"/dead-letters/{row.pk}/edit"


def test_edit_form_of_an_operator_without_view_sensitive_starts_masked(client_as, operator, topic, event):
    without_view_sensitive()
    row = stored(topic, WRONG_ID, event)
    text = page(client_as(operator).get(edit_url(row)))
    assert 'name="f/customer/email"' in text and f'value="{MASK}"' in text and 'value="Ann"' in text
    assert f'"card": "{MASK}"' in text  # the lines field (JSON) and the JSON editor
    assert f"leave {MASK} to keep the value" in text
    assert_no_secret(text)
    assert reads(operator) == []


def test_edit_form_shows_the_operator_the_values_and_records_it(client_as, operator, topic, event):
    row = stored(topic, WRONG_ID, event)
    text = page(client_as(operator).get(edit_url(row)))
    assert f'value="{EMAIL}"' in text and CARD in text and MASK not in text
    assert [entry.detail["via"] for entry in reads(operator)] == ["edit"]


@pytest.mark.parametrize("mode", ["form", "json"])
def test_an_edit_keeps_the_hidden_values_it_was_shown_masked(client_as, operator, topic, event, redis, mode):
    without_view_sensitive()
    row = stored(topic, WRONG_ID, event)
    if mode == "form":  # the inputs as the page filled them, the id fixed
        data = {"f/id": "o-1", "f/customer/name": "Ann", "f/customer/email": MASK, "f/lines": f'[{{"card": "{MASK}"}}]'}
    else:
        data = {
            "payload": json.dumps(
                {**WRONG_ID, "id": "o-1", "customer": {"name": "Ann", "email": MASK}, "lines": [{"card": MASK}]}
            )
        }
    response = client_as(operator).post(edit_url(row), {"mode": mode, "target_group": "", **data})
    copy = DeadLetter.objects.get(edited_from=row)
    assert response.status_code == 302 and response["Location"] == f"/dead-letters/{copy.pk}/"
    sent = {**WRONG_ID, "id": "o-1"}
    [record] = read_all(redis, topic)
    assert json.loads(record.value) == sent and copy.payload_json == sent
    assert MASK.encode() not in record.value
    # The copy is as sensitive as the original: still masked for this operator.
    assert_no_secret(page(client_as(operator).get(f"/dead-letters/{copy.pk}/")))


def test_an_edit_may_replace_a_hidden_value_without_reading_it(client_as, operator, topic, event, redis):
    without_view_sensitive()
    row = stored(topic, WRONG_ID, event)
    payload = {"id": "o-1", "customer": {"name": "Ann", "email": "new@example.com"}, "lines": [{"card": MASK}]}
    response = client_as(operator).post(
        edit_url(row), {"mode": "json", "payload": json.dumps(payload), "target_group": ""}
    )
    assert response.status_code == 302
    assert json.loads(read_all(redis, topic)[0].value) == {**payload, "lines": [{"card": CARD}]}


def test_a_mask_where_nothing_was_hidden_is_refused(client_as, operator, topic, event, redis):
    without_view_sensitive()
    row = stored(topic, WRONG_ID, event)
    payload = {"id": "o-1", "lines": [{"card": MASK}, {"card": MASK}]}  # the second line is new
    response = client_as(operator).post(
        edit_url(row), {"mode": "json", "payload": json.dumps(payload), "target_group": ""}
    )
    assert response.status_code == 400
    assert f"$.lines[1].card: {MASK} stands for a hidden value, but there was none here" in page(response)
    assert end_offset(redis, topic) == 0


def test_a_refused_edit_does_not_quote_the_hidden_values(client_as, operator, topic, event, redis):
    without_view_sensitive()
    row = stored(topic, BAD_HIDDEN, event)
    data = {"f/id": "o-2", "f/customer/name": "Ann", "f/customer/email": MASK, "f/lines": f'[{{"card": "{MASK}"}}]'}
    response = client_as(operator).post(edit_url(row), {"mode": "form", "target_group": "", **data})
    assert response.status_code == 400
    text = page(response)
    assert f"$.customer.email: {MASK} is not a 'email'" in text
    assert_no_secret(text)
    assert end_offset(redis, topic) == 0


def test_api_edit_keeps_hidden_values_and_scrubs_its_refusal(client_as, operator, topic, event, redis):
    without_view_sensitive()
    client = client_as(operator)
    bad = stored(topic, BAD_HIDDEN, event)
    shown = client.get(f"/api/v1/dead-letters/{bad.pk}/").json()["payload"]["json"]
    refused = client.post(
        f"/api/v1/dead-letters/{bad.pk}/edit-and-retry", {"payload": shown}, content_type="application/json"
    )
    assert refused.status_code == 400 and refused.json()["path"] in MASKED_PATHS
    assert MASK in refused.json()["payload"][0]
    assert_no_secret(refused.content.decode())

    good = stored(topic, WRONG_ID, event)
    shown = client.get(f"/api/v1/dead-letters/{good.pk}/").json()["payload"]["json"]
    created = client.post(
        f"/api/v1/dead-letters/{good.pk}/edit-and-retry",
        {"payload": {**shown, "id": "o-1"}},
        content_type="application/json",
    )
    assert created.status_code == 201
    assert created.json()["payload"]["json"]["customer"]["email"] == MASK  # the answer is masked too
    assert json.loads(read_all(redis, topic)[0].value) == {**WRONG_ID, "id": "o-1"}


def test_the_admin_site_shows_no_payload(client_as, admin, topic, event):
    """Its read-only change page would be an unaudited way round the dead-letter page."""
    row = stored(topic, BAD_HIDDEN, event)
    response = client_as(admin).get(f"/admin/deadletters/deadletter/{row.pk}/change/")
    assert response.status_code == 200 and "card declined" in page(response)
    assert_no_secret(page(response))
