"""The demo world loads, is idempotent, and has the shape the first ten minutes need."""

from itertools import combinations

import pytest
from django.core.management import call_command

from designer import compat, demo, search
from designer.lints import lint_design
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


@pytest.mark.django_db
def test_demo_schemas_go_through_the_registry():
    call_command("seed_demo")
    call_command("seed_demo")
    versions = EventType.objects.get(name="order.placed").versions.order_by("version")
    assert list(versions.values_list("version", "state")) == [(1, "registered"), (2, "registered"), (3, "draft")]
    # One per event, and a second for order.placed and payment.authorized.
    assert SchemaVersion.objects.registered().count() == 14
    # register_version indexes the latest schema's fields for the catalog search; rows written past it would be stale.
    assert not search.stale_events().exists()
    assert list(search.events("coupon").values_list("name", flat=True)) == ["order.placed"]


@pytest.mark.django_db
def test_the_demo_lints_only_its_incompatible_draft():
    """The order/payment/inventory saga is a cycle the Checkout flow declares: not a lint."""
    call_command("seed_demo")
    event = EventType.objects.get(name="order.placed")
    assert [(lint.code, lint.node_ids) for lint in lint_design()] == [("incompatible-draft", [f"event:{event.pk}"])]


@pytest.mark.django_db
def test_the_demo_is_seeded_laid_out_and_a_reseed_keeps_what_the_user_moved():
    call_command("seed_demo")
    points = demo.layout()
    assert {("service", s.slug): (s.x, s.y) for s in Service.objects.all()} == {
        node: point for node, point in points.items() if node[0] == "service"
    }
    assert all(row.x is not None and row.y is not None for model in (EventType, Topic) for row in model.objects.all())
    Service.objects.filter(slug="orders").update(x=-500.0, y=-500.0)
    call_command("seed_demo")
    assert Service.objects.values_list("x", "y").get(slug="orders") == (-500.0, -500.0)


# --------------------------------------------------------------------------- layout (no database)
def _boxes() -> dict[demo.Node, tuple[float, float, float, float]]:
    labels = {("topic", name): bus for name, bus, _partitions, _domain in demo.TOPICS}
    boxes = {}
    for node, (x, y) in demo.layout().items():
        width, height = demo.node_size(node[0], node[1], labels.get(node, "kafka"))
        boxes[node] = (x - width / 2, y - height / 2, x + width / 2, y + height / 2)
    return boxes


def test_the_layout_places_every_demo_node_and_no_two_overlap():
    boxes = _boxes()
    assert len(boxes) == len(demo.SERVICES) + len(demo.EVENTS) + len(demo.TOPICS)
    assert [
        (a, b)
        for a, b in combinations(boxes, 2)
        if boxes[a][0] < boxes[b][2]
        and boxes[b][0] < boxes[a][2]
        and boxes[a][1] < boxes[b][3]
        and boxes[b][1] < boxes[a][3]
    ] == []
    assert demo.layout() == demo.layout()  # deterministic


def test_the_layout_gives_each_domain_a_band_top_to_bottom():
    boxes = _boxes()
    domain = {("service", slug): d for slug, d, _team, _text in demo.SERVICES}
    domain |= {("topic", name): d for name, _bus, _partitions, d in demo.TOPICS}
    domain |= {("event", spec[0]): domain[("service", spec[2])] for spec in demo.EVENTS}
    bands = [
        (min(boxes[n][1] for n in boxes if domain[n] == d), max(boxes[n][3] for n in boxes if domain[n] == d))
        for d in demo.DOMAINS
    ]
    assert all(upper[1] < lower[0] for upper, lower in zip(bands, bands[1:], strict=False)), bands


def test_the_layout_reads_left_to_right_but_for_the_sagas_answers():
    x = {node: point[0] for node, point in demo.layout().items()}
    backwards = set()
    for name, _kind, owner, topic, _key, consumers, _schemas, _text in demo.EVENTS:
        assert x[("service", owner)] < x[("event", name)] < x[("topic", topic)]
        backwards |= {(name, c) for c in consumers if x[("service", c)] <= x[("event", name)]}
    for service, event in demo.EXTRA_PRODUCERS:
        assert x[("service", service)] < x[("event", event)]
    # Only the answers that close the Checkout saga point back to where it started.
    assert backwards == {
        ("payment.authorized", "orders"),
        ("payment.failed", "orders"),
        ("payment.refunded", "orders"),
        ("inventory.reserved", "orders"),
        ("inventory.out_of_stock", "orders"),
    }
