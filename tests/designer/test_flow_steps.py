"""Deleting a flow step keeps the steps after it: they follow the step before it instead."""

import pytest

from designer.models import Domain, EventType, Flow, FlowStep, Topic

pytestmark = pytest.mark.django_db


@pytest.fixture
def flow() -> dict:
    """trigger -> a -> b -> c -> d, and a -> e (a branch)."""
    sales = Domain.objects.create(name="Sales")
    topic = Topic.objects.create(name="orders", domain=sales)
    placed = EventType.objects.create(name="order.placed", domain=sales, topic=topic)
    paid = EventType.objects.create(name="order.paid", domain=sales, topic=topic)
    checkout = Flow.objects.create(name="Checkout", trigger="Customer clicks Pay")
    steps = {}
    for order, (name, after, event) in enumerate(
        [("a", None, placed), ("b", "a", placed), ("c", "b", paid), ("d", "c", placed), ("e", "a", placed)]
    ):
        steps[name] = FlowStep.objects.create(
            flow=checkout, order=order, after=steps.get(after), event_type=event, logic=name
        )
    return {"flow": checkout, "placed": placed, "paid": paid, **steps}


def _links(flow: Flow) -> dict[str, str | None]:
    return {step.logic: step.after.logic if step.after else None for step in flow.steps.select_related("after")}


def test_deleting_a_step_through_the_api_relinks_the_steps_after_it(flow, client_as, designer, viewer):
    url = f"/api/v1/flows/{flow['flow'].pk}/steps/{flow['b'].pk}/"
    assert client_as(viewer).delete(url).status_code == 403  # read-only persona
    assert client_as(designer).delete(url).status_code == 204
    assert _links(flow["flow"]) == {"a": None, "c": "a", "d": "c", "e": "a"}


def test_deleting_the_first_step_puts_its_successors_after_the_trigger(flow):
    flow["a"].delete()
    assert _links(flow["flow"]) == {"b": None, "c": "b", "d": "c", "e": None}


def test_deleting_a_chain_at_once_links_past_all_of_it(flow):
    FlowStep.objects.filter(logic__in=["b", "c"]).delete()
    assert _links(flow["flow"]) == {"a": None, "d": "a", "e": "a"}


def test_deleting_an_event_removes_its_steps_and_keeps_the_rest(flow):
    flow["paid"].delete()  # step c's event: c goes (CASCADE), d follows b
    assert _links(flow["flow"]) == {"a": None, "b": "a", "d": "b", "e": "a"}


def test_deleting_the_flow_deletes_all_its_steps(flow):
    flow["flow"].delete()
    assert FlowStep.objects.count() == 0


def test_admin_deletes_a_step_through_the_flow_page_and_keeps_the_rest(flow, client_as, admin):
    """The flow's admin page deletes a step through its inline (the DELETE checkbox)."""
    client = client_as(admin)
    page = client.get(f"/admin/designer/flow/{flow['flow'].pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    formset = page.context["inline_admin_formsets"][0].formset
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"name": flow["flow"].name, "slug": flow["flow"].slug, "trigger": flow["flow"].trigger})
    prefix = formset.prefix
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": len(formset.forms),
            f"{prefix}-INITIAL_FORMS": len(formset.forms),
            f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000,
        }
    )
    for i, step_form in enumerate(formset.forms):
        for name, field in step_form.fields.items():
            value = step_form.initial.get(name, field.initial)
            if value is not None and name != "DELETE":
                data[f"{prefix}-{i}-{name}"] = value.pk if hasattr(value, "pk") else value
        if step_form.instance.pk == flow["c"].pk:
            data[f"{prefix}-{i}-DELETE"] = "on"
    response = client.post(f"/admin/designer/flow/{flow['flow'].pk}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert _links(flow["flow"]) == {"a": None, "b": "a", "d": "b", "e": "a"}
