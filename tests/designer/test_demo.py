"""The demo world loads, is idempotent, and has the shape the first ten minutes need."""

import pytest
from django.core.management import call_command

from designer import compat
from designer.models import Consumer, Domain, EventType, Flow, SchemaVersion, Service, Topic


@pytest.mark.django_db
def test_seed_demo_builds_the_shop_once(capsys):
    call_command("seed_demo")
    counts = (
        Service.objects.count(),
        EventType.objects.count(),
        SchemaVersion.objects.count(),
        Consumer.objects.count(),
    )
    call_command("seed_demo")
    assert counts == (
        Service.objects.count(),
        EventType.objects.count(),
        SchemaVersion.objects.count(),
        Consumer.objects.count(),
    )
    assert set(Service.objects.values_list("slug", flat=True)) == {
        "orders",
        "payments",
        "inventory",
        "shipping",
        "notifications",
        "analytics",
    }
    assert 2 <= Domain.objects.count() <= 3
    assert EventType.objects.count() == 12
    assert Topic.objects.filter(bus="redis").exists() and Topic.objects.filter(bus="kafka").exists()
    assert set(Flow.objects.values_list("name", flat=True)) == {"Checkout", "Refund"}
    assert all(flow.steps.exists() for flow in Flow.objects.all())


@pytest.mark.django_db
def test_demo_versions_are_compatible_and_the_draft_is_not():
    call_command("seed_demo")
    event = EventType.objects.get(name="order.placed")
    v1, v2 = (v.schema for v in event.versions.registered().order_by("version"))
    assert compat.check(v2, [(1, v1)], mode="BACKWARD").compatible
    draft = event.versions.drafts().get()
    result = compat.check(draft.schema, [(1, v1), (2, v2)], mode="BACKWARD")
    assert not result.compatible and result.changes


@pytest.mark.django_db
def test_if_empty_leaves_an_existing_catalog_alone():
    Service.objects.create(name="mine", slug="mine")
    call_command("seed_demo", "--if-empty")
    assert list(Service.objects.values_list("slug", flat=True)) == ["mine"]
