"""The canvas page, the flowchart page and the .mmd download (server side).

What the JavaScript does with them is covered in tests/browser/test_designer.py.
"""

from __future__ import annotations

import json
import re

import pytest

from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, Service, Topic

XSS = "</script><img src=x onerror=alert(1)>"


@pytest.fixture
def design(db) -> dict:
    sales = Domain.objects.create(name="Sales")
    ops = Domain.objects.create(name="Ops")
    checkout = Service.objects.create(name="checkout", domain=sales, x=10, y=20)
    billing = Service.objects.create(name="billing")
    pager = Service.objects.create(name="pager", domain=ops)
    nasty = Service.objects.create(name=XSS, slug="nasty", domain=ops)
    topic = Topic.objects.create(name="orders", domain=sales)
    event = EventType.objects.create(name="order.placed", domain=sales, topic=topic)
    Producer.objects.create(service=checkout, event_type=event)
    Consumer.objects.create(service=billing, event_type=event)
    flow = Flow.objects.create(name="Checkout", trigger='Customer clicks "Pay"', domain=sales)
    FlowStep.objects.create(
        flow=flow, producer=checkout, event_type=event, consumer=billing, logic="Bill", store="ledger"
    )
    return {"sales": sales, "checkout": checkout, "billing": billing, "pager": pager, "nasty": nasty, "flow": flow}


def _graph(response) -> dict:
    match = re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "no graph-data json_script"
    return json.loads(match.group(1))


# --------------------------------------------------------------------------- canvas
def test_canvas_for_a_designer(design, client_as, designer):
    response = client_as(designer).get("/designer/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="designer-toolbar"' in page
    assert 'data-can-design="true"' in page
    assert 'data-graph-url="/api/v1/graph/"' in page
    assert 'data-services-url="/api/v1/services/"' in page
    graph = _graph(response)
    labels = {node["label"] for node in graph["nodes"]}
    assert labels == {"checkout", "billing", "pager", XSS, "orders", "order.placed"}
    assert {edge["kind"] for edge in graph["edges"]} == {"produces", "consumes", "on-topic"}
    checkout = next(n for n in graph["nodes"] if n["label"] == "checkout")
    assert (checkout["x"], checkout["y"]) == (10, 20)


def test_canvas_filtered_by_domain(design, client_as, designer):
    response = client_as(designer).get("/designer/?domain=sales")
    assert response.status_code == 200
    labels = {node["label"] for node in _graph(response)["nodes"]}
    # The domain's nodes and their direct neighbours (billing consumes order.placed).
    assert labels == {"checkout", "billing", "orders", "order.placed"}
    assert 'href="/designer/flowchart/?scope=domain:sales"' in response.content.decode()


def test_canvas_unknown_domain_is_404(design, client_as, designer):
    assert client_as(designer).get("/designer/?domain=nowhere").status_code == 404


def test_canvas_escapes_names_in_the_json(design, client_as, designer):
    page = client_as(designer).get("/designer/").content.decode()
    assert XSS not in page
    assert "\\u003C/script\\u003E\\u003Cimg src=x onerror=alert(1)\\u003E" in page


def test_canvas_for_a_viewer_is_read_only(design, client_as, viewer):
    response = client_as(viewer).get("/designer/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-can-design="false"' in page
    assert 'id="designer-toolbar"' not in page
    assert "data-new=" not in page
    assert 'id="delete-node"' not in page
    assert "<fieldset disabled>" in page
    assert len(_graph(response)["nodes"]) == 6


def test_canvas_anonymous_goes_to_login(design, client):
    response = client.get("/designer/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_canvas_wrong_method(design, client_as, designer):
    assert client_as(designer).post("/designer/").status_code == 405


# --------------------------------------------------------------------------- flowchart page
@pytest.mark.parametrize(
    "scope,title,expected",
    [
        ("", "Whole system", ["checkout", "pager", "orders · kafka"]),
        ("all", "Whole system", ["checkout", "pager"]),
        ("domain:sales", "Domain Sales", ["checkout", "billing"]),
        ("service:billing", "Service billing", ["billing", "order.placed"]),
        ("flow:checkout", "Flow Checkout", ["Customer clicks #quot;Pay#quot;", "Bill", "ledger"]),
    ],
)
def test_flowchart_page_scopes(design, client_as, viewer, scope, title, expected):
    response = client_as(viewer).get("/designer/flowchart/", {"scope": scope} if scope else {})
    assert response.status_code == 200
    page = response.content.decode()
    assert title in page
    text = json.loads(
        re.search(r'<script id="flowchart-text" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    assert text.startswith("flowchart LR\n")
    for label in expected:
        assert f'"{label}' in text
    assert f'href="/designer/flowchart.mmd?scope={scope or "all"}' in page.replace("%3A", ":")


def test_flowchart_scope_selector_lists_everything(design, client_as, viewer):
    page = client_as(viewer).get("/designer/flowchart/").content.decode()
    for value in ("all", "domain:sales", "domain:ops", "service:checkout", "service:nasty", "flow:checkout"):
        assert f'<option value="{value}"' in page


def test_flowchart_page_escapes_names(design, client_as, viewer):
    page = client_as(viewer).get("/designer/flowchart/?scope=domain:ops").content.decode()
    assert "<img src=x" not in page
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</option>" in page  # the scope selector
    source = re.search(r'<pre id="flowchart-source">(.*?)</pre>', page, re.S).group(1)
    assert "(&quot;#lt;/script#gt;#lt;img src=x onerror=alert(1)#gt;&quot;):::service" in source


@pytest.mark.parametrize("scope", ["domain:nowhere", "service:nobody", "flow:none", "topic:orders", "domain:", "junk"])
def test_flowchart_unknown_scope_is_404(design, client_as, viewer, scope):
    assert client_as(viewer).get("/designer/flowchart/", {"scope": scope}).status_code == 404
    assert client_as(viewer).get("/designer/flowchart.mmd", {"scope": scope}).status_code == 404


def test_flowchart_anonymous_goes_to_login(design, client):
    for url in ("/designer/flowchart/", "/designer/flowchart.mmd"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_flowchart_wrong_method(design, client_as, designer):
    assert client_as(designer).post("/designer/flowchart/").status_code == 405
    assert client_as(designer).post("/designer/flowchart.mmd").status_code == 405


# --------------------------------------------------------------------------- .mmd download
def test_mmd_download(design, client_as, viewer):
    response = client_as(viewer).get("/designer/flowchart.mmd", {"scope": "flow:checkout"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="eventhub-flow-checkout.mmd"'
    text = response.content.decode()
    assert text.startswith("flowchart LR\n")
    assert '(["Customer clicks #quot;Pay#quot;"]):::trigger' in text
    assert '[/"order.placed<br>orders · kafka"/]:::bus' in text


def test_mmd_download_whole_system(design, client_as, viewer):
    response = client_as(viewer).get("/designer/flowchart.mmd")
    assert response["Content-Disposition"] == 'attachment; filename="eventhub-system.mmd"'
    assert '("checkout"):::service' in response.content.decode()


def test_mmd_reads_the_design_in_a_fixed_number_of_queries(design, client_as, viewer, django_assert_max_num_queries):
    client = client_as(viewer)
    for i in range(20):
        Service.objects.create(name=f"extra-{i}", domain=design["sales"])
    with django_assert_max_num_queries(10):
        assert client.get("/designer/flowchart.mmd").status_code == 200
