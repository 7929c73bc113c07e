"""Flow checks on the real buses: a designed flow's trigger published, its steps judged from the
event store that the real indexer fills, SDK consumers playing the services.

The indexer, the consumers and `evaluate` are stepped in the test's thread (no sleeps):
`drive()` steps all of them until the check is decided. Budgets are a couple of seconds so
that the failing cases decide quickly; the grace after a deadline is cut to 1 s.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from designer.models import Consumer as DesignedConsumer
from designer.models import EventType, Flow, FlowStep, SchemaVersion, Service, Topic
from eventhub.sdk import Consumer, LocalSchemas, Producer
from eventhub.sdk import headers as h
from eventstore import flow_checks
from eventstore.indexer import Indexer
from eventstore.models import FlowCheck, FlowCheckStep, IndexedEvent
from tests.deadletters.support import read_all
from tests.waiting import wait_until

ORDERED = {
    "type": "object",
    "required": ["order_id", "amount"],
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}},
    "additionalProperties": False,
}
LOOSE = {"type": "object"}
EXAMPLE = {"order_id": "o-example", "amount": 1250}


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch):
    monkeypatch.setattr(flow_checks, "GRACE_S", 1)


class World:
    """shop.ordered (orders -> payments), then shop.paid (payments -> shipping), on one topic."""

    def __init__(self, bus, unique, budget_s: int = 20):
        self.bus = bus
        self.prefix = unique("fc")
        self.topic_name = f"{self.prefix}-shop"
        bus.create_topic(self.topic_name)
        topic = Topic.objects.create(name=self.topic_name, bus=bus.kind, address=self.topic_name)
        self.services = {
            name: Service.objects.create(name=f"{self.prefix}-{name}") for name in ("orders", "payments", "shipping")
        }
        self.ordered = EventType.objects.create(
            name="shop.ordered", topic=topic, owner=self.services["orders"], key_field="order_id"
        )
        self.paid = EventType.objects.create(name="shop.paid", topic=topic, owner=self.services["payments"])
        SchemaVersion.objects.create(event_type=self.ordered, version=1, schema=ORDERED, examples=[EXAMPLE])
        SchemaVersion.objects.create(event_type=self.paid, version=1, schema=LOOSE)
        self.groups = {"payments": unique("payments"), "shipping": unique("shipping")}
        DesignedConsumer.objects.create(
            service=self.services["payments"], event_type=self.ordered, group=self.groups["payments"]
        )
        DesignedConsumer.objects.create(
            service=self.services["shipping"], event_type=self.paid, group=self.groups["shipping"]
        )
        self.flow = Flow.objects.create(name=f"Checkout {self.prefix}", trigger="Customer pays")
        self.first = FlowStep.objects.create(
            flow=self.flow,
            order=0,
            producer=self.services["orders"],
            event_type=self.ordered,
            consumer=self.services["payments"],
            time_budget_s=budget_s,
        )
        self.second = FlowStep.objects.create(
            flow=self.flow,
            order=1,
            after=self.first,
            producer=self.services["payments"],
            event_type=self.paid,
            consumer=self.services["shipping"],
            time_budget_s=budget_s,
        )
        # The indexer on a client of its own, as in production (a separate process): on one
        # shared Kafka client its polls starve the services' group consumers.
        self.indexer = Indexer(
            [bus.kind],
            buses={},
            group=unique("indexer"),
            include=[f"{self.prefix}*"],
            discover_every_s=0.2,
        )
        schemas = LocalSchemas({"shop.paid": {"schema": LOOSE, "version": 1, "topic": self.topic_name}})
        self.producer = Producer(bus, "payments", schemas, heartbeat_interval_s=None)
        self.consumers: dict[str, Consumer] = {}
        self.runs: dict[str, tuple[threading.Event, threading.Thread]] = {}

        payments = self._consumer("payments")

        @payments.handler("shop.ordered")
        def pay(event) -> None:
            self.producer.publish("shop.paid", {"order_id": event.payload["order_id"]}, caused_by=event)

        shipping = self._consumer("shipping")
        shipping.handler("shop.paid")(lambda event: None)
        for service in self.consumers:
            self.start_service(service)

    def _consumer(self, service: str) -> Consumer:
        consumer = Consumer(
            self.bus, service, self.groups[service], [self.topic_name], heartbeat_interval_s=None, poll_timeout_s=0.2
        )
        consumer.default_handler(lambda event: None)
        self.consumers[service] = consumer
        return consumer

    def start_service(self, service: str) -> None:
        """The service's consumer runs in a thread of its own, as a deployed service would."""
        stop = threading.Event()
        thread = threading.Thread(target=self.consumers[service].run, args=(stop,), daemon=True)
        self.runs[service] = (stop, thread)
        thread.start()

    def stop_service(self, service: str) -> None:
        """It finishes the batch in hand and handles nothing more (it stays in its group)."""
        stop, thread = self.runs.pop(service)
        stop.set()
        thread.join(30)
        assert not thread.is_alive()

    def step(self) -> None:
        self.indexer.step(0.2)

    def start(self, django_capture_on_commit_callbacks) -> FlowCheck:
        """Start a check as the API does; its publish task runs here, as the worker would."""
        with django_capture_on_commit_callbacks(execute=False) as queued:
            check = flow_checks.start(self.flow)
        assert len(queued) == 1  # the publish task, after commit
        assert flow_checks.publish_trigger(check.pk)
        return check

    def drive(self, check: FlowCheck, timeout_s: float = 60) -> FlowCheck:
        """Step the indexer and evaluate until the check is decided."""

        def decided():
            return flow_checks.evaluate(check.pk) != FlowCheck.RUNNING

        wait_until(decided, timeout_s, "the check to be decided", pause=self.step)
        return FlowCheck.objects.get(pk=check.pk)

    def warm_up(self, timeout_s: float = 60) -> None:
        """The services are up before a check: every group has joined and committed a real event
        of its own (a group that never committed cannot tell what it handled), the indexer has it."""
        with Producer(
            self.bus,
            "orders",
            LocalSchemas({"shop.ordered": {"schema": ORDERED, "version": 1, "topic": self.topic_name}}),
            heartbeat_interval_s=None,
        ) as orders:
            published = orders.publish("shop.ordered", {"order_id": "warm", "amount": 1}, key="warm")
        handled = self.bus.handled_check

        def committed() -> bool:
            if not IndexedEvent.objects.filter(topic=self.topic_name, offset=str(published.offset)).exists():
                return False
            check = handled()
            return all(
                check(self.groups[s], self.topic_name, published.partition, str(published.offset)) for s in self.groups
            )

        wait_until(committed, timeout_s, "both groups to commit", pause=self.step)

    def close(self) -> None:
        for service in list(self.runs):
            self.stop_service(service)
        for consumer in self.consumers.values():
            consumer.close()
        self.producer.close()
        self.indexer.close()


@pytest.fixture
def world(db, bus, unique):
    made = World(bus, unique)
    made.warm_up()
    yield made
    made.close()


def steps_of(check: FlowCheck) -> list[FlowCheckStep]:
    return list(FlowCheckStep.objects.filter(flow_check=check).order_by("position"))


# --------------------------------------------------------------------------- on the real bus
def test_a_flow_whose_services_answer_passes(world, django_capture_on_commit_callbacks):
    check = world.start(django_capture_on_commit_callbacks)
    check = world.drive(check)
    assert check.status == "passed", check.error
    assert check.error == "" and check.finished_at is not None and check.trigger_event_id
    first, second = steps_of(check)
    assert (first.event_type, first.status, second.event_type, second.status) == (
        "shop.ordered",
        "passed",
        "shop.paid",
        "passed",
    )
    # The first step's event is the trigger itself; the second's is what payments published.
    assert first.observed["ce_id"] == check.trigger_event_id and first.latency_ms == 0
    assert second.latency_ms is not None and second.observed["topic"] == world.topic_name
    assert {"partition", "offset", "time"} <= second.observed.keys()
    # What went on the bus: the catalog example, synthetic, with the check's correlation id.
    trigger = next(
        r for r in read_all(world.bus, world.topic_name) if r.header(h.CE_ID) == check.trigger_event_id.encode()
    )
    assert json.loads(trigger.value) == {"order_id": "o-example", "amount": 1250}  # jsonb orders keys its own way
    assert trigger.header(h.SYNTHETIC) == b"true"
    assert trigger.header(h.CORRELATION_ID) == check.correlation_id.encode()
    paid = IndexedEvent.objects.get(correlation_id=check.correlation_id, ce_type="shop.paid")
    assert paid.causation_id == check.trigger_event_id


def test_a_stopped_consumer_fails_the_check_at_its_step(world, django_capture_on_commit_callbacks):
    FlowStep.objects.filter(pk=world.second.pk).update(time_budget_s=3)
    world.stop_service("shipping")  # shipping stops consuming; payments still answers
    check = world.drive(world.start(django_capture_on_commit_callbacks))
    assert check.status == "failed"
    first, second = steps_of(check)
    assert (first.status, second.status) == ("passed", "failed")
    assert second.observed["reason"] == "not_handled" and second.observed["handled"] is False
    assert check.error == (
        f"Failed at step 2 (shop.paid → {world.services['shipping'].name}): "
        f"{world.services['shipping'].name} did not handle it within 3 s."
    )


def test_an_event_never_published_fails_its_step(world, django_capture_on_commit_callbacks):
    world.stop_service("payments")  # payments never answers: no shop.paid
    FlowStep.objects.filter(pk=world.first.pk).update(consumer=None)  # judge step 1 by its event alone
    FlowStep.objects.filter(pk=world.second.pk).update(time_budget_s=2)
    check = world.drive(world.start(django_capture_on_commit_callbacks))
    first, second = steps_of(check)
    assert (check.status, first.status, second.status) == ("failed", "passed", "failed")
    assert second.observed == {"reason": "not_seen"} and second.latency_ms is None
    assert check.error == "Failed at step 2 (shop.paid → " + world.services["shipping"].name + "): not seen within 2 s."


def test_an_event_after_its_budget_is_late(world, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(flow_checks, "GRACE_S", 120)  # long enough for the late event to be seen
    FlowStep.objects.filter(pk=world.second.pk).update(time_budget_s=1)
    world.stop_service("payments")
    FlowStep.objects.filter(pk=world.first.pk).update(consumer=None)  # judge step 1 by its event alone
    check = world.start(django_capture_on_commit_callbacks)
    # The trigger is indexed and its step judged; payments is held back past shop.paid's deadline.
    wait_until(
        lambda: flow_checks.evaluate(check.pk) == "running" and steps_of(check)[0].status == "passed",
        60,
        "the trigger to be seen",
        pause=world.indexer.step,
    )
    deadline = timezone.now() + timedelta(seconds=1.5)
    wait_until(lambda: timezone.now() > deadline, 5, "shop.paid's budget to run out")
    world.start_service("payments")
    check = world.drive(check)
    first, second = steps_of(check)
    assert (check.status, second.status) == ("failed", "late")
    assert second.latency_ms > 1000
    assert check.error.startswith("Late at step 2 (shop.paid → ") and "after its 1 s budget" in check.error


def test_the_trigger_is_published_once(world, django_capture_on_commit_callbacks):
    check = world.start(django_capture_on_commit_callbacks)
    assert flow_checks.publish_trigger(check.pk) is False  # claimed already
    chain = [
        r for r in read_all(world.bus, world.topic_name) if r.header(h.CORRELATION_ID) == check.correlation_id.encode()
    ]
    assert [r.header(h.CE_TYPE) for r in chain].count(b"shop.ordered") == 1


# --------------------------------------------------------------------------- judging, without a bus
@pytest.fixture
def judged(db):
    """A check of shop.ordered -> shop.paid (no consumers designed) published at T, with no events yet."""
    orders = Service.objects.create(name="orders")
    topic = Topic.objects.create(name="shop", address="shop")
    ordered = EventType.objects.create(name="shop.ordered", topic=topic, owner=orders)
    paid = EventType.objects.create(name="shop.paid", topic=topic)
    SchemaVersion.objects.create(event_type=ordered, version=1, schema=ORDERED, examples=[EXAMPLE])
    flow = Flow.objects.create(name="Edge", trigger="t")
    first = FlowStep.objects.create(flow=flow, order=0, producer=orders, event_type=ordered, time_budget_s=10)
    FlowStep.objects.create(flow=flow, order=1, after=first, event_type=paid, time_budget_s=10)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("eventhub.background.submit", lambda *args: None)
        check = flow_checks.start(flow)
    at = timezone.now().replace(microsecond=0)
    FlowCheck.objects.filter(pk=check.pk).update(published_at=at, trigger_event_id="trigger-1")
    check.refresh_from_db()
    return check, at


def index(check: FlowCheck, ce_type: str, ce_id: str, at) -> None:
    IndexedEvent.objects.create(
        bus="kafka",
        topic="shop",
        partition=0,
        offset=ce_id,
        timestamp=at,
        ce_id=ce_id,
        ce_type=ce_type,
        correlation_id=check.correlation_id,
        size=10,
        validity="valid",
    )


@pytest.mark.parametrize(
    ("paid_after_ms", "now_after_s", "step", "check_status"),
    [
        (10_000, 10.5, "passed", "passed"),  # at the deadline exactly: on time
        (10_001, 10.5, "late", "failed"),  # a millisecond after it
        (None, 10.5, "pending", "running"),  # unseen, deadline passed, still within the grace
        (None, 11.0, "pending", "running"),  # unseen at deadline + grace: not yet failed
        (None, 11.001, "failed", "failed"),  # ...a millisecond later it is
    ],
)
def test_budget_edges(judged, paid_after_ms, now_after_s, step, check_status, monkeypatch):
    check, at = judged
    index(check, "shop.ordered", "trigger-1", at)
    if paid_after_ms is not None:
        index(check, "shop.paid", "paid-1", at + timedelta(milliseconds=paid_after_ms))
    assert flow_checks.evaluate(check.pk, now=at + timedelta(seconds=now_after_s)) == check_status
    first, second = steps_of(check)
    assert (first.status, second.status) == ("passed", step)
    if paid_after_ms is not None:
        assert second.latency_ms == paid_after_ms


def test_evaluate_is_idempotent(judged):
    check, at = judged
    index(check, "shop.ordered", "trigger-1", at)
    index(check, "shop.paid", "paid-1", at + timedelta(seconds=3))
    assert flow_checks.evaluate(check.pk, now=at + timedelta(seconds=4)) == "passed"
    before = list(FlowCheckStep.objects.filter(flow_check=check).values())
    finished = FlowCheck.objects.get(pk=check.pk).finished_at
    # Later evaluations (even with a late duplicate) change nothing.
    index(check, "shop.paid", "paid-2", at + timedelta(seconds=60))
    assert flow_checks.evaluate(check.pk, now=at + timedelta(seconds=90)) == "passed"
    assert list(FlowCheckStep.objects.filter(flow_check=check).values()) == before
    assert FlowCheck.objects.get(pk=check.pk).finished_at == finished


def test_a_trigger_that_cannot_be_published_fails_the_check(judged):
    check, _ = judged
    FlowCheck.objects.filter(pk=check.pk).update(published_at=None, trigger_event_id="")
    SchemaVersion.objects.update(examples=[])  # the example went away between start and publish
    assert flow_checks.publish_trigger(check.pk) is False
    check.refresh_from_db()
    assert check.status == "failed" and check.finished_at is not None
    assert check.error == (
        "The trigger could not be published: shop.ordered v1 has no example: "
        "add one in the catalog, it is the trigger's payload."
    )
    assert flow_checks.evaluate(check.pk) == "failed"


def test_a_trigger_never_published_fails_the_check(judged):
    check, at = judged
    FlowCheck.objects.filter(pk=check.pk).update(published_at=None, started_at=at)
    assert flow_checks.evaluate(check.pk, now=at + timedelta(seconds=30)) == "running"
    assert flow_checks.evaluate(check.pk, now=at + timedelta(seconds=61)) == "failed"
    assert FlowCheck.objects.get(pk=check.pk).error == "The trigger was not published within 60 s."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda flow: flow.steps.all().delete(), "has no steps to check"),
        (lambda flow: SchemaVersion.objects.update(examples=[]), "shop.ordered v1 has no example"),
        (
            lambda flow: SchemaVersion.objects.update(examples=[{"order_id": 5, "amount": 1}]),
            "does not match its schema at $.order_id",
        ),
        (lambda flow: SchemaVersion.objects.all().delete(), "shop.ordered has no registered schema"),
    ],
)
def test_a_flow_that_cannot_be_checked_is_refused(judged, change, message):
    check, _ = judged
    flow = check.flow
    change(flow)
    with pytest.raises(flow_checks.CheckRefused, match=message.replace("$", r"\$").replace(".", r"\.")):
        flow_checks.start(flow)


def test_scheduled_checks_start_when_due(judged, settings, monkeypatch):
    check, at = judged
    monkeypatch.setattr("eventhub.background.submit", lambda *args: None)
    settings.EVENTHUB_FLOW_CHECK_EVERY_S = 300
    assert flow_checks.start_due(now=at + timedelta(seconds=10)) == []  # one is running
    FlowCheck.objects.filter(pk=check.pk).update(status="passed", started_at=at)
    assert flow_checks.start_due(now=at + timedelta(seconds=299)) == []
    (started,) = flow_checks.start_due(now=at + timedelta(seconds=301))
    assert FlowCheck.objects.get(pk=started).scheduled is True
    settings.EVENTHUB_FLOW_CHECK_EVERY_S = 0
    FlowCheck.objects.update(status="passed", started_at=at)
    assert flow_checks.start_due(now=at + timedelta(days=1)) == []


# --------------------------------------------------------------------------- the API
@pytest.fixture
def api_flow(judged):
    return judged[0].flow


def test_operator_starts_a_check_and_reads_it(client_as, operator, api_flow, judged, monkeypatch):
    sent = []
    monkeypatch.setattr("eventhub.background.submit", lambda task, *args: sent.append((task.name, args)))
    client = client_as(operator)
    response = client.post(f"/api/v1/flows/{api_flow.pk}/checks")
    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "status": "running"}
    assert sent == [("eventstore.publish_flow_check_trigger", (body["id"],))]
    detail = client.get(f"/api/v1/flow-checks/{body['id']}").json()
    assert {k: detail[k] for k in ("id", "flow", "status")} == {
        "id": body["id"],
        "flow": api_flow.pk,
        "status": "running",
    }
    assert detail["correlation_id"].startswith("flow-check-")
    assert [(s["event_type"], s["status"], s["latency_ms"], s["observed"]) for s in detail["steps"]] == [
        ("shop.ordered", "pending", None, {}),
        ("shop.paid", "pending", None, {}),
    ]
    assert [s["step"] for s in detail["steps"]] == list(api_flow.steps.order_by("order").values_list("pk", flat=True))
    listed = client.get(f"/api/v1/flows/{api_flow.pk}/checks").json()
    assert [c["id"] for c in listed["results"]] == [body["id"], judged[0].pk]


def test_viewer_reads_but_cannot_start(client_as, viewer, api_flow, judged):
    client = client_as(viewer)
    assert client.post(f"/api/v1/flows/{api_flow.pk}/checks").status_code == 403
    assert client.get(f"/api/v1/flow-checks/{judged[0].pk}").status_code == 200
    assert client.get(f"/api/v1/flows/{api_flow.pk}/checks").status_code == 200
    assert FlowCheck.objects.count() == 1


def test_anonymous_gets_nothing(client, api_flow, judged):
    assert client.post(f"/api/v1/flows/{api_flow.pk}/checks").status_code in (401, 403)
    assert client.get(f"/api/v1/flow-checks/{judged[0].pk}").status_code in (401, 403)


def test_unknown_flow_or_check_is_404_and_bad_flow_is_400(client_as, operator, api_flow):
    client = client_as(operator)
    assert client.post("/api/v1/flows/999999/checks").status_code == 404
    assert client.get("/api/v1/flow-checks/999999").status_code == 404
    assert client.put(f"/api/v1/flows/{api_flow.pk}/checks").status_code == 405
    SchemaVersion.objects.update(examples=[])
    refused = client.post(f"/api/v1/flows/{api_flow.pk}/checks")
    assert refused.status_code == 400
    assert refused.json() == {
        "detail": "shop.ordered v1 has no example: add one in the catalog, it is the trigger's payload."
    }


def test_the_page_shows_steps_budgets_and_the_button_to_operators(client_as, operator, viewer, api_flow, judged):
    page = client_as(operator).get(f"/flows/{api_flow.slug}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="run-check"' in text and "shop.paid" in text and "10 s" in text
    assert f'"id": {judged[0].pk}' in text  # the history, for the script
    assert 'id="run-check"' not in client_as(viewer).get(f"/flows/{api_flow.slug}/").content.decode()
    assert client_as(viewer).get("/flows/no-such-flow/").status_code == 404
    assert client_as(viewer).post(f"/flows/{api_flow.slug}/").status_code == 405


def test_the_flowchart_of_a_flow_links_to_its_checks(client_as, viewer, api_flow):
    page = client_as(viewer).get(f"/designer/flowchart/?scope=flow:{api_flow.slug}").content.decode()
    assert f'href="/flows/{api_flow.slug}/"' in page
    assert "/flows/" not in client_as(viewer).get("/designer/flowchart/").content.decode()


@pytest.mark.django_db
def test_the_demo_flows_can_be_checked_even_when_seeded_before_the_examples():
    from django.core.management import call_command

    from designer import demo

    def triggers() -> dict[str, object]:
        found = {}
        for flow in Flow.objects.all():
            steps = flow_checks.ordered_steps(list(flow.steps.select_related("event_type__topic", "producer")))
            trigger = flow_checks.trigger_of(flow, steps)
            found[flow.name] = (trigger.event_type.name, trigger.producer, trigger.payload)
        return found

    call_command("seed_demo")
    expected = {
        "Checkout": ("order.placed", "orders", demo.EXAMPLES["order.placed"]),
        "Refund": ("refund.requested", "orders", demo.EXAMPLES["refund.requested"]),
    }
    assert triggers() == expected
    assert SchemaVersion.objects.get(event_type__name="order.placed", state="draft").examples == []
    SchemaVersion.objects.update(examples=[])  # as a demo seeded by an older EventHub
    call_command("seed_demo")
    assert triggers() == expected


def test_designers_set_a_steps_budget_through_the_flows_api(client_as, designer, api_flow):
    step = api_flow.steps.order_by("order").last()
    client = client_as(designer)
    url = f"/api/v1/flows/{api_flow.pk}/steps/{step.pk}/"
    assert client.get(url).json()["time_budget_s"] == 10
    assert client.patch(url, {"time_budget_s": 45}, content_type="application/json").status_code == 200
    assert FlowStep.objects.get(pk=step.pk).time_budget_s == 45
    refused = client.patch(url, {"time_budget_s": 0}, content_type="application/json")
    assert refused.status_code == 400 and "time_budget_s" in refused.json()
    assert FlowStep.objects.get(pk=step.pk).time_budget_s == 45
