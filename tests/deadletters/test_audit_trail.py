"""The audit trail cannot be deleted: not in the admin, not by deleting what it is about."""

import pytest
from django.db.models import ProtectedError

from deadletters.models import AuditEntry, DeadLetter, RedriveJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def audited(admin) -> dict:
    dead_letter = DeadLetter.objects.create(bus="kafka", dlq_topic="orders.dlq", dlq_offset="7", source_topic="orders")
    job = RedriveJob.objects.create(action=RedriveJob.DISCARD, created_by=admin)
    entry = AuditEntry.objects.create(actor=admin, action="discard", dead_letter=dead_letter, job=job, result="done")
    return {"dead_letter": dead_letter, "job": job, "entry": entry}


def test_a_dead_letter_or_job_with_audit_entries_cannot_be_deleted(audited):
    with pytest.raises(ProtectedError):
        audited["dead_letter"].delete()
    with pytest.raises(ProtectedError):
        RedriveJob.objects.filter(pk=audited["job"].pk).delete()
    assert AuditEntry.objects.filter(pk=audited["entry"].pk).exists()
    assert DeadLetter.objects.filter(pk=audited["dead_letter"].pk).exists()


def test_a_dead_letter_without_audit_entries_can_still_be_deleted(audited):
    bare = DeadLetter.objects.create(bus="kafka", dlq_topic="orders.dlq", dlq_offset="8")
    bare.delete()
    assert not DeadLetter.objects.filter(dlq_offset="8").exists()


def test_the_admin_does_not_delete_audit_entries(audited, client_as):
    client = client_as(audited["entry"].actor)  # a superuser
    pk = audited["entry"].pk
    assert client.get(f"/admin/deadletters/auditentry/{pk}/delete/").status_code == 403
    assert client.post(f"/admin/deadletters/auditentry/{pk}/delete/", {"post": "yes"}).status_code == 403
    listing = client.get("/admin/deadletters/auditentry/")
    assert listing.status_code == 200 and "delete_selected" not in listing.content.decode()
    bulk = client.post(
        "/admin/deadletters/auditentry/", {"action": "delete_selected", "_selected_action": [pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert client.get(f"/admin/deadletters/auditentry/{pk}/change/").status_code == 200  # read-only view
    assert AuditEntry.objects.filter(pk=pk).exists()


def test_the_admin_refuses_to_delete_an_audited_dead_letter(audited, client_as):
    client = client_as(audited["entry"].actor)
    url = f"/admin/deadletters/deadletter/{audited['dead_letter'].pk}/delete/"
    page = client.get(url)
    assert page.status_code == 200 and "Cannot delete dead letter" in page.content.decode()
    client.post(url, {"post": "yes"})
    assert DeadLetter.objects.filter(pk=audited["dead_letter"].pk).exists()
    assert AuditEntry.objects.filter(pk=audited["entry"].pk).exists()
