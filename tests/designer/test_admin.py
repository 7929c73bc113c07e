"""The event type's admin page shows its schema versions but cannot add, change or delete one.

Versions are made by the registry (compatibility check, numbering, search index); the
admin inline would skip all three, so it only reads.
"""

from __future__ import annotations

import pytest

from designer import registry
from designer.models import EventType, SchemaVersion

V1 = {"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": False}
V2 = {**V1, "properties": {"id": {"type": "string"}, "note": {"type": "string"}}}
BREAKING = {**V1, "properties": {"id": {"type": "integer"}}}


@pytest.fixture
def event(db) -> EventType:
    event = EventType.objects.create(name="order.placed", description="Before.")
    registry.register_version(event, V1, changelog="First.")
    registry.register_version(event, V2, changelog="Second.")
    registry.register_version(event, BREAKING, changelog="Maybe.", as_draft=True)
    return event


def _url(event: EventType) -> str:
    return f"/admin/designer/eventtype/{event.pk}/change/"


def _versions(event: EventType) -> list[tuple]:
    return list(event.versions.order_by("version").values_list("version", "state", "changelog", "schema"))


def _tampering_post(event: EventType, what: str) -> dict:
    """The event's form as sent, with its versions edited as an editable inline would take them:
    "change" turns each registered and relabels it, "delete" ticks each DELETE box, "add" types in a v9."""
    prefix = "versions"
    versions = list(event.versions.order_by("version"))
    data = {
        "name": event.name,
        "slug": event.slug,
        "kind": event.kind,
        "description": "After.",
        "compatibility_mode": event.compatibility_mode,
        "compatibility_policy": event.compatibility_policy,
        f"{prefix}-TOTAL_FORMS": len(versions) + (what == "add"),
        f"{prefix}-INITIAL_FORMS": len(versions),
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for i, version in enumerate(versions):
        data |= {
            f"{prefix}-{i}-id": version.pk,
            f"{prefix}-{i}-event_type": event.pk,
            f"{prefix}-{i}-version": version.version,
            f"{prefix}-{i}-state": SchemaVersion.REGISTERED if what == "change" else version.state,
            f"{prefix}-{i}-changelog": "Tampered." if what == "change" else version.changelog,
        }
        if what == "delete":
            data[f"{prefix}-{i}-DELETE"] = "on"
    if what == "add":
        new = len(versions)
        data |= {
            f"{prefix}-{new}-event_type": event.pk,
            f"{prefix}-{new}-version": 9,
            f"{prefix}-{new}-state": SchemaVersion.REGISTERED,
            f"{prefix}-{new}-changelog": "Typed in.",
            f"{prefix}-{new}-schema": '{"type": "boolean"}',
        }
    return data


def test_the_change_page_lists_the_versions_read_only(event, client_as, admin):
    response = client_as(admin).get(_url(event))
    assert response.status_code == 200
    page = response.content.decode()
    assert "First." in page and "Second." in page and "Maybe." in page
    assert 'name="versions-0-state"' not in page
    assert 'name="versions-0-changelog"' not in page
    assert 'name="versions-0-DELETE"' not in page
    inline = response.context["inline_admin_formsets"][0]
    assert not (inline.has_add_permission or inline.has_change_permission or inline.has_delete_permission)
    assert (inline.formset.max_num, inline.formset.can_delete) == (0, False)


@pytest.mark.parametrize("what", ["add", "change", "delete"])
def test_an_admin_post_cannot_add_change_or_delete_a_version(event, client_as, admin, what):
    before = _versions(event)
    response = client_as(admin).post(_url(event), _tampering_post(event, what))
    assert response.status_code == 302, response.context and response.context["errors"]
    event.refresh_from_db()
    assert event.description == "After."  # the event itself is still edited here
    assert _versions(event) == before
    assert event.versions.registered().count() == 2  # the incompatible draft was not promoted


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(event, client_as, viewer):
    before = _versions(event)
    response = client_as(viewer).post(_url(event), _tampering_post(event, "change"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert _versions(event) == before
    event.refresh_from_db()
    assert event.description == "Before."


def test_the_versions_admin_neither_adds_nor_promotes_a_version(client_as, admin, event):
    """The versions' own admin reads too: a draft is promoted through the registry, which checks it."""
    client = client_as(admin)
    draft = event.versions.get(state=SchemaVersion.DRAFT)
    before = _versions(event)
    assert client.get("/admin/designer/schemaversion/add/").status_code == 403
    assert client.post("/admin/designer/schemaversion/add/", {"event_type": event.pk, "version": 9}).status_code == 403
    change = f"/admin/designer/schemaversion/{draft.pk}/change/"
    assert client.get(change).status_code == 200  # shown, read-only
    client.post(change, {"event_type": event.pk, "version": draft.version, "state": SchemaVersion.REGISTERED})
    assert _versions(event) == before
