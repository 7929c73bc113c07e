"""Script in any user-editable text never runs: every page that shows it, in real Chromium.

One hostile world is written into the live app (`live_app.shell`, straight
through the ORM, so even values the API would refuse are there: the worst
case of an import, an admin edit or a bus that names things): every text field
of domains, services, topics, events, schema versions, producers, consumers,
flows, steps, dead letters, redrive jobs and audit entries carries markup that
would set `window.__xss` to the field's name or open a dialog if it ever
became live HTML. The dashboard also gets a websocket frame whose every string
is hostile (topic, group and service names come from the bus).

After each page (and its scripts: Cytoscape, Mermaid, htmx, Plotly) has
rendered, the test checks: `window.__xss` is undefined, no dialog opened, and
the DOM holds no event-handler attribute, no javascript: URL and no srcdoc
frame. Each failure names the page and the field that fired.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from tests.browser import json_from
from tests.waiting import wait_until

pytestmark = pytest.mark.browser


def hostile(tag: str, limit: int = 2000) -> str:
    """Markup that would set window.__xss = tag (or alert(tag)) if rendered as HTML; at most `limit` chars."""
    variants = [
        f"<img src=x onerror=__xss='{tag}'>",
        f"<script>window.__xss='{tag}'</script>",
        f'"><svg onload="window.__xss=\'{tag}\'">',
        f"'><img src=x onerror=alert('{tag}')>",
        f"</script><script>window.__xss='{tag}'</script>",
        f"<iframe srcdoc=\"<script>parent.__xss='{tag}'</script>\"></iframe>",
        f"[link](javascript:window.__xss='{tag}') <a href=\"javascript:window.__xss='{tag}'\">a</a>",
        f'"] ; click n1 href "javascript:window.__xss=\'{tag}\'" ; x["',  # a Mermaid label breaking out
    ]
    text = ""
    for variant in variants:
        if len(text) + len(variant) > limit:
            break
        text += variant
    assert text, f"no payload fits {limit} characters"
    return text


# What the DOM must never contain once user text is in it.
DOM_PROBLEMS = """() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) found.push(`${el.tagName} ${name}=${attr.value.slice(0, 60)}`);
      if (["href", "src", "action", "formaction", "xlink:href", "data"].includes(name)
          && /^\\s*javascript:/i.test(attr.value)) found.push(`${el.tagName} ${name}=${attr.value.slice(0, 60)}`);
      if (name === "srcdoc") found.push(`${el.tagName} srcdoc`);
    }
  }
  for (const script of document.querySelectorAll("script")) {
    const data = (script.type || "").includes("json");
    if (!data && script.textContent.includes("__xss")) found.push("script " + script.textContent.slice(0, 60));
  }
  return found;
}"""

SHELL = """
import base64, json
from datetime import datetime, timezone
from django.contrib.auth import get_user_model
from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, SchemaVersion, Service, Topic
from deadletters.models import AuditEntry, DeadLetter, RedriveJob

H = json.loads({payloads!r})
uid = {uid!r}
now = datetime.now(timezone.utc)
admin = get_user_model().objects.get(username="ada-admin")

domain = Domain.objects.create(name=H["domain.name"], slug="xss-" + uid, description=H["domain.description"])
service = Service.objects.create(
    name=H["service.name"], slug="xss-svc-" + uid, domain=domain, owner_team=H["service.owner_team"],
    description=H["service.description"], tags=[H["service.tags"]], repository_url=H["service.repository_url"],
)
other = Service.objects.create(name=H["service2.name"], slug="xss-other-" + uid, domain=domain)
topic = Topic.objects.create(
    name=H["topic.name"], bus="redis", address=H["topic.address"], dead_letter_topic=H["topic.dead_letter_topic"],
    domain=domain, description=H["topic.description"],
)
event = EventType.objects.create(
    name="xss" + uid + ".happened", owner=service, topic=topic, domain=domain,
    description=H["event.description"], key_field=H["event.key_field"],
)
prop = H["schema.property_name"]
v1 = {{
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": H["schema.title"], "description": H["schema.description"], "$comment": H["schema.comment"],
    "type": "object", "additionalProperties": False,
    "properties": {{
        prop: {{"type": "string", "description": H["schema.field_description"], "enum": [H["schema.enum"]],
                "default": H["schema.default"], "examples": [H["schema.field_example"]], "title": H["schema.field_title"]}},
        "amount": {{"type": "number"}},
    }},
    "required": ["amount"],
}}
v2 = json.loads(json.dumps(v1))
v2["properties"][prop]["type"] = "integer"
v2["properties"][H["schema.new_property"]] = {{"type": "string"}}
SchemaVersion.objects.create(event_type=event, version=1, schema=v1, examples=[{{prop: H["version.examples"], "amount": 1}}],
                             changelog=H["version.changelog"], author=admin)
SchemaVersion.objects.create(event_type=event, version=2, schema=v2, changelog=H["version2.changelog"], author=admin)
Producer.objects.create(service=service, event_type=event, notes=H["producer.notes"])
Consumer.objects.create(service=other, event_type=event, group=H["consumer.group"], fields_used=[H["consumer.fields_used"], prop],
                        notes=H["consumer.notes"])
flow = Flow.objects.create(name=H["flow.name"], slug="xss-flow-" + uid, domain=domain, trigger=H["flow.trigger"],
                           description=H["flow.description"])
FlowStep.objects.create(flow=flow, order=1, producer=service, event_type=event, consumer=other,
                        logic=H["step.logic"], store=H["step.store"])

payload = {{prop: H["dl.payload"], "amount": -1}}
raw = json.dumps(payload).encode()
header_pairs = [["x-eventhub-error-message", H["dl.header_error"]], [H["dl.header_name"], H["dl.header_value"]]]
dl = DeadLetter.objects.create(
    bus="redis", dlq_topic=H["dl.dlq_topic"], dlq_offset="1-0", source_topic=H["dl.source_topic"],
    source_offset="1-0", key=H["dl.key"].encode(), payload=raw, payload_size=len(raw), payload_json=payload,
    payload_text=raw.decode(), headers=header_pairs,
    raw_headers=[[n, base64.b64encode(v.encode()).decode()] for n, v in header_pairs],
    group=H["dl.group"], service=H["dl.service"], error_class=H["dl.error_class"], error_cause=H["dl.error_cause"],
    error_message=H["dl.error_message"], stacktrace=H["dl.stacktrace"], event_id=H["dl.event_id"], event_type=event,
    first_failed_at=now, last_failed_at=now, decode_problems=[H["dl.decode_problem"]], convention="eventhub",
)
text = H["dl.text_payload"].encode()
dl_text = DeadLetter.objects.create(
    bus="redis", dlq_topic=H["dl.dlq_topic"], dlq_offset="2-0", source_topic=H["dl.source_topic"], payload=text,
    payload_size=len(text), payload_text=text.decode(), error_class=H["dl.error_class"], error_message="text payload",
    first_failed_at=now, last_failed_at=now,
)
job = RedriveJob.objects.create(
    action="retry", state="failed", selection={{"ids": [dl.pk, dl_text.pk]}}, item_ids=[dl.pk, dl_text.pk], total=2,
    failed=1, target_group=H["job.target_group"], reason=H["job.reason"], last_error=H["job.last_error"], created_by=admin,
)
AuditEntry.objects.create(actor=admin, action="retry", dead_letter=dl, job=job, result=H["audit.result"],
                          detail={{"note": H["audit.detail"]}})
print(json.dumps({{"uid": uid, "event": event.name, "service": service.slug, "other": other.slug, "topic": topic.pk,
                  "flow": flow.slug, "domain": domain.slug, "dl": dl.pk, "dl_text": dl_text.pk, "job": job.pk}}))
"""

LIMITS = {  # model max_length of each field, so the world is one the database would accept
    "domain.name": 100, "service.name": 100, "service.owner_team": 100, "service.tags": 50, "service2.name": 100,
    "topic.name": 200, "topic.address": 249, "topic.dead_letter_topic": 249, "event.key_field": 200,
    "consumer.group": 200, "consumer.fields_used": 300, "flow.name": 200, "flow.trigger": 300, "step.logic": 300,
    "step.store": 200, "dl.dlq_topic": 249, "dl.source_topic": 249, "dl.group": 255, "dl.service": 100,
    "dl.error_class": 300, "dl.error_cause": 300, "dl.event_id": 200, "job.target_group": 255, "job.reason": 500,
    "job.last_error": 500, "audit.result": 500,
}  # fmt: skip
FREE_TEXT = [
    "domain.description", "service.description", "topic.description", "event.description", "schema.title",
    "schema.description", "schema.comment", "schema.property_name", "schema.field_description", "schema.enum",
    "schema.default", "schema.field_example", "schema.field_title", "schema.new_property", "version.examples",
    "version.changelog", "version2.changelog", "producer.notes", "consumer.notes", "flow.description",
    "dl.payload", "dl.header_error", "dl.header_name", "dl.header_value", "dl.key", "dl.error_message",
    "dl.stacktrace", "dl.decode_problem", "dl.text_payload", "audit.detail",
]  # fmt: skip


@pytest.fixture(scope="module")
def world(live_app) -> dict:
    uid = uuid.uuid4().hex[:8]
    payloads = {}
    for field in [*LIMITS, *FREE_TEXT]:
        limit = LIMITS.get(field, 2000)
        # Names must be unique in the shared database: the uid goes first so a cut never drops it.
        payloads[field] = f"{uid}{hostile(field, limit - len(uid))}"
    payloads["service.repository_url"] = "javascript:window.__xss='service.repository_url'"
    return json_from(live_app.shell(SHELL.format(payloads=json.dumps(payloads), uid=uid)))


class Inspector:
    """Opens pages in one logged-in tab and collects everything that looks live."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.problems: list[str] = []
        page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def visit(self, path: str, ready: str | None = None, expect_status: int = 200, shows: str | None = None) -> None:
        """Open `path`, wait for its scripts, check it; `shows`: text the page must display (the hostile
        world's uid), so a page that stopped showing the field does not pass by showing nothing."""
        response = self.page.goto(path)
        status = response.status if response else None
        if status != expect_status:
            self.problems.append(f"{path}: HTTP {status}, expected {expect_status}")
        self.page.wait_for_load_state("networkidle")
        if ready:
            self.page.wait_for_function(ready, timeout=15_000)
        if shows and shows not in self.page.evaluate("document.body.innerText"):
            self.problems.append(f"{path}: the hostile text ({shows}) is not shown: nothing was tested")
        self.check(path)

    def check(self, where: str) -> None:
        fired = self.page.evaluate("window.__xss")
        if fired is not None:
            self.problems.append(f"{where}: window.__xss = {fired!r} (that field's markup ran)")
        if self.dialogs:
            self.problems.append(f"{where}: dialog(s) opened: {self.dialogs}")
            self.dialogs.clear()
        for found in self.page.evaluate(DOM_PROBLEMS):
            self.problems.append(f"{where}: live markup in the DOM: {found}")

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def inspect(page_as):
    def open_as(role: str) -> Inspector:
        return Inspector(page_as(role))

    return open_as


def test_payloads_fire_when_rendered_as_html(live_app, inspect):
    """Calibration: the same payloads put into the DOM as HTML are caught, so a clean page means escaped text."""
    tab = inspect("viewer")
    tab.visit("/")
    tab.page.evaluate(
        f"document.querySelector('main').insertAdjacentHTML('beforeend', {json.dumps(hostile('calibration'))})"
    )
    tab.page.wait_for_function("window.__xss === 'calibration'")
    # The alert() comes from another image's onerror, which may load later than the first.
    wait_until(lambda: tab.dialogs, 20, "the payload's alert()", pause=lambda: tab.page.wait_for_timeout(50))
    tab.check("/ with the payload inserted as HTML")
    assert any("window.__xss = 'calibration'" in problem for problem in tab.problems), tab.problems
    assert any("live markup in the DOM" in problem for problem in tab.problems), tab.problems
    assert any("dialog" in problem for problem in tab.problems), tab.problems


def test_catalog_pages(world, inspect):
    tab = inspect("viewer")
    event, uid = world["event"], world["uid"]
    tab.visit("/catalog/")
    tab.visit("/catalog/?tab=services")
    tab.visit("/catalog/?tab=topics")
    tab.visit(f"/catalog/?domain={world['domain']}", shows=uid)
    tab.visit(f"/catalog/?q={quote(world['event'][:11])}", shows=uid)  # matches the uid: every hostile row at once
    tab.visit(f"/catalog/?q={quote(hostile('reflected.q', 200))}")
    tab.visit(f"/catalog/events/{event}/", shows=uid)
    tab.visit(f"/catalog/events/{event}/?version=2", shows=uid)
    tab.visit(f"/catalog/events/{event}/compare?a=1&b=2", shows=uid)
    tab.visit(f"/catalog/services/{world['service']}/", shows=uid)
    tab.visit(f"/catalog/services/{world['other']}/", shows=uid)
    tab.visit(f"/catalog/topics/{world['topic']}/", shows=uid)
    tab.assert_clean()

    designer = inspect("designer")
    designer.visit(f"/catalog/events/{event}/versions/new/", shows=uid)
    designer.assert_clean()


def test_designer_canvas_and_flowcharts(world, inspect):
    tab = inspect("designer")
    canvas_ready = "window.eventhubCanvas && window.eventhubCanvas.cy.nodes().length > 0"
    for path in ("/designer/", f"/designer/?domain={world['domain']}"):
        tab.visit(path, ready=canvas_ready)
        # Select every node of the hostile domain: the side panel fills in names, descriptions, lints.
        ids = tab.page.evaluate(
            f"""() => window.eventhubCanvas.cy.nodes().filter(n => n.data('domain') === {json.dumps(world["domain"])})
                   .map(n => n.id())"""
        )
        assert ids, "the hostile domain's nodes are on the canvas"
        for node_id in ids:
            tab.page.evaluate(
                f"""() => {{ const cy = window.eventhubCanvas.cy; cy.elements().unselect();
                           cy.getElementById({json.dumps(node_id)}).select(); }}"""
            )
            tab.page.wait_for_load_state("networkidle")
            title = tab.page.inner_text("#panel-title")
            if world["uid"] not in title:
                tab.problems.append(f"{path}: the panel of {node_id} shows {title!r}, not the hostile name")
            tab.check(f"{path} with {node_id} selected")

    drawn = "document.querySelector('[data-chart][data-rendered=true], [data-chart-error]:not([hidden])')"
    for scope in ("", f"domain:{world['domain']}", f"service:{world['service']}", f"flow:{world['flow']}"):
        path = f"/designer/flowchart/?scope={quote(scope)}" if scope else "/designer/flowchart/"
        tab.visit(path, ready=drawn, shows=world["uid"])
        if tab.page.locator("[data-chart-error]:not([hidden])").count():
            tab.problems.append(
                f"{path}: Mermaid could not draw the chart: {tab.page.inner_text('[data-chart-error]')}"
            )
    tab.assert_clean()


def _hostile_frame(uid: str) -> str:
    """A snapshot frame whose every string a bus or a user could choose is hostile."""
    h = lambda tag: uid + hostile(tag, 400)  # noqa: E731
    at = "2026-01-02T10:00:00+00:00"
    snapshot = {
        "at": at, "tick": 3, "tick_ms": 5.0,
        "buses": [{"kind": "kafka", "up": False, "error": h("frame.bus_error")}, {"kind": "redis", "up": True, "error": None}],
        "topics": [{"bus": "redis", "name": h("frame.topic"), "partitions": 1, "end_offset": 10, "rate": 1.0,
                    "dead_letter": False, "designed": False}],
        "groups": [{"bus": "redis", "group": h("frame.group"), "topic": h("frame.group_topic"), "lag": 5,
                    "lag_seconds": 2.0, "consume_rate": 0.0, "time_to_drain_s": None, "status": "STALL",
                    "reason": h("frame.reason"), "state": h("frame.state"), "designed": False}],
        "services": [{"service": h("frame.service"), "up": False, "instances": 0, "last_seen": at,
                      "last_error": h("frame.service_error")}],
        "alerts": [{"id": 1, "rule": h("frame.alert_rule"), "kind": "lag", "subject": h("frame.alert_subject"),
                    "state": "firing", "message": h("frame.alert_message"), "value": 5, "started_at": at,
                    "resolved_at": None}],
        "dead_letters": {"inflow_per_min": 1.0, "by_topic": {h("frame.dlq_topic"): 1.0}},
        "drift": {"undesigned_topics": [{"bus": "redis", "name": h("frame.undesigned_topic")}],
                  "undesigned_groups": [{"bus": "redis", "group": h("frame.undesigned_group")}],
                  "silent_edges": [{"edge_id": "producer:1", "event": h("frame.silent_event"),
                                    "service": h("frame.silent_service"), "silent_s": 700.0}]},
        "edges": [],
    }  # fmt: skip
    return json.dumps({"type": "snapshot", "snapshot": snapshot})


def test_dashboard(world, inspect):
    tab = inspect("viewer")
    sockets: list = []
    # The test plays the collector; the page asks for its domain with ?domain= on the socket URL.
    tab.page.route_web_socket(re.compile(r"/ws/monitor/(\?.*)?$"), lambda ws: sockets.append(ws))
    tab.visit("/monitor/")
    tab.visit(f"/monitor/?domain={world['domain']}")
    tab.page.wait_for_function("() => window.eventhubMonitor !== undefined")
    assert sockets, "the dashboard opened its websocket"
    frame_uid = uuid.uuid4().hex[:6]
    sockets[-1].send(_hostile_frame(frame_uid))
    tab.page.wait_for_function("window.eventhubMonitor.state.frames >= 1")
    tab.page.wait_for_load_state("networkidle")
    shown = tab.page.evaluate("document.body.innerText")
    assert shown.count(frame_uid) >= 5, "the frame's names, alerts and errors are on the page"
    tab.check("/monitor/ after a hostile snapshot frame")
    tab.assert_clean()


def test_dead_letter_pages(world, inspect):
    tab = inspect("operator")
    dl, dl_text, job, uid = world["dl"], world["dl_text"], world["job"], world["uid"]
    tab.visit("/dead-letters/")
    tab.visit("/dead-letters/?view=grouped", shows=uid)
    tab.visit(f"/dead-letters/?q={quote(hostile('reflected.dl_q', 150))}")
    tab.visit(f"/dead-letters/?event_type={world['event']}", shows=uid)
    tab.visit(f"/dead-letters/{dl}/", shows=uid)
    tab.visit(f"/dead-letters/{dl_text}/", shows=uid)
    tab.visit(f"/dead-letters/{dl}/edit", shows=uid)
    tab.visit(f"/dead-letters/{dl}/edit?mode=json", shows=uid)
    tab.visit(f"/dead-letters/{dl}/receivers?target_group={quote(hostile('reflected.target_group', 200))}")
    tab.visit("/dead-letters/jobs/")
    tab.visit(f"/dead-letters/jobs/{job}/", shows=uid)
    tab.visit(f"/dead-letters/jobs/new?action=retry&ids={dl},{dl_text}", shows=uid)
    tab.visit(f"/dead-letters/jobs/new?action=retry&ids={dl}&target_group={quote(hostile('reflected.job_group', 200))}")
    tab.assert_clean()


def test_error_pages_and_reflected_input(world, inspect):
    tab = inspect("viewer")
    reflected = quote(hostile("reflected.path", 300), safe="")
    tab.visit(f"/catalog/events/{reflected}/", expect_status=404)
    tab.visit(f"/catalog/services/{reflected}/", expect_status=404)
    tab.visit(f"/designer/?domain={reflected}", expect_status=404)
    tab.visit(f"/designer/flowchart/?scope={reflected}", expect_status=404)
    tab.visit(f"/catalog/events/{world['event']}/compare?a={reflected}&b=2", expect_status=400)
    tab.visit(f"/catalog/events/{world['event']}/versions/new/", expect_status=403)  # a viewer: the 403 page
    tab.assert_clean()


TRACE_SHELL = """
import json
from datetime import datetime, timedelta, timezone
from deadletters.models import DeadLetter
from eventstore.models import IndexedEvent

H = json.loads({payloads!r})
chain = {chain!r}
now = datetime.now(timezone.utc)
failed = DeadLetter.objects.get(pk={dl}).event_id  # the hostile dead letter belongs to this trace
common = dict(bus="redis", partition=0, correlation_id=chain, size=2, key_text=H["key"][:100])
IndexedEvent.objects.create(
    topic=H["topic"][:249], offset="1-0", timestamp=now - timedelta(seconds=2), ce_id=H["id"][:200],
    ce_type=H["type"][:200], ce_source="/services/" + H["service"][:400], validity="invalid",
    invalid_path=H["path"][:500], invalid_rule="minimum", payload=b"{{}}", **common,
)
IndexedEvent.objects.create(
    topic=H["topic"][:249], offset="2-0", timestamp=now - timedelta(seconds=1), ce_id=failed,
    causation_id=H["id"][:200], ce_type=H["type2"][:200], ce_source=H["source"][:500], validity="no_schema", **common,
)
print(json.dumps(chain))
"""


def test_trace_pages(world, live_app, inspect):
    """Every name on a trace comes from the bus: types, sources, topics, ids, keys, failing paths."""
    uid = world["uid"]
    payloads = {
        field: f"{uid}{hostile('trace.' + field, 190)}"
        for field in ("topic", "id", "type", "type2", "service", "source", "path", "key")
    }
    chain = f"xss-chain-{uid}"
    live_app.shell(TRACE_SHELL.format(payloads=json.dumps(payloads), chain=chain, dl=world["dl"]))
    tab = inspect("viewer")
    tab.visit(f"/traces/{chain}/", shows=uid)
    tab.page.wait_for_selector("#trace-timeline .ytick text")  # Plotly has drawn the lanes
    tab.check(f"/traces/{chain}/ after the timeline")
    tab.visit("/traces/", shows=uid)
    tab.visit(f"/traces/?type={quote(hostile('reflected.trace_type', 150))}")
    tab.assert_clean()
