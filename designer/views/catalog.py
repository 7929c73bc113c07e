"""The catalog: browse and search, event, service and topic pages, compare and register versions.

Everyone logged in reads every page; registering a version needs the Designer
role (Viewers get 403 and never see the form). Schema changes go through
``designer.registry``, the one door for versions.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from jsonschema.exceptions import best_match

from designer import fieldtree, registry, search
from designer.forms import CATALOG_TABS, CatalogFilterForm, CompareForm, RegisterVersionForm
from designer.models import Consumer, Domain, EventType, Producer, SchemaVersion, Service, Topic
from eventhub import roles
from eventhub.sdk.schemas import check_schema_is_safe, python_validator

PAGE_SIZE = 50


# --------------------------------------------------------------------------- access
def _get_event(name: str) -> EventType:
    return get_object_or_404(EventType.objects.select_related("owner", "topic", "domain"), name=name)


def _get_event_for_designer(request: HttpRequest, name: str) -> EventType:
    roles.require_role(request.user, roles.DESIGNER)
    return _get_event(name)


# --------------------------------------------------------------------------- browse
def _count_of(model: type, field: str) -> Subquery:
    """A correlated COUNT(*) of `model` rows pointing at the outer row: no join fan-out."""
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field)
    return Subquery(rows.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField())


def _event_rows(queryset: QuerySet[EventType]) -> QuerySet[EventType]:
    latest = (
        SchemaVersion.objects.registered().filter(event_type=OuterRef("pk")).order_by("-version").values("version")[:1]
    )
    return queryset.select_related("owner", "topic", "domain").annotate(
        latest_version=Subquery(latest),
        producer_count=_count_of(Producer, "event_type"),
        consumer_count=_count_of(Consumer, "event_type"),
    )


def _service_rows(queryset: QuerySet[Service]) -> QuerySet[Service]:
    return queryset.select_related("domain").annotate(
        produces_count=_count_of(Producer, "service"),
        consumes_count=_count_of(Consumer, "service"),
    )


def _topic_rows(queryset: QuerySet[Topic]) -> QuerySet[Topic]:
    return queryset.select_related("domain").annotate(event_count=_count_of(EventType, "topic"))


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    """Services, events and topics with counts; ?q= searches, ?domain= filters, ?tab= picks."""
    filters = CatalogFilterForm(request.GET).values()
    q, domain = filters["q"], filters["domain"]
    found = {
        "events": search.events(q, domain=domain),
        "services": search.services(q, domain=domain),
        "topics": search.topics(q, domain=domain),
    }
    counts = {tab: found[tab].count() for tab in CATALOG_TABS}
    tab = filters["tab"]
    if not tab:
        # A search that finds no events but finds services opens on services.
        tab = next((t for t in CATALOG_TABS if counts[t]), "events") if q else "events"
    rows = {"events": _event_rows, "services": _service_rows, "topics": _topic_rows}[tab](found[tab])
    page = Paginator(rows, PAGE_SIZE).get_page(filters["page"])
    if tab == "events" and q:
        for event in page.object_list:
            event.match = search.explain(event, q)
    context = {
        "q": q,
        "domain": domain,
        "tab": tab,
        "counts": counts,
        "page": page,
        "domains": Domain.objects.order_by("name").values_list("slug", "name"),
        "is_empty": not q and not domain and not any(counts.values()),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "designer/catalog/_results.html", context)
    return render(request, "designer/catalog.html", context)


# --------------------------------------------------------------------------- event page
def _check_examples(schema: Any, examples: Any) -> list[dict[str, Any]]:
    """Each stored example with its verdict against the schema it documents."""
    if not isinstance(examples, list):
        return []
    unsafe = check_schema_is_safe(schema)
    if unsafe:  # stored before registration refused it: say why rather than fetch or fail
        where, problem = unsafe[0]
        error = f"The schema cannot be checked here: {where}: {problem}"
        return [{"value": ex, "valid": None, "error": error, "path": ""} for ex in examples]
    try:
        validator = python_validator(schema, default=jsonschema.Draft7Validator)
    except Exception:  # a stored schema the validator cannot even load: say so per example
        return [{"value": ex, "valid": None, "error": "The schema cannot be loaded.", "path": ""} for ex in examples]
    checked = []
    for example in examples:
        try:
            error = best_match(validator.iter_errors(example))
        except Exception as exc:  # an unresolvable $ref surfaces only while validating
            checked.append({"value": example, "valid": None, "error": str(exc)[:300], "path": ""})
            continue
        checked.append(
            {
                "value": example,
                "valid": error is None,
                "error": error.message if error else "",
                "path": _instance_pointer(error.absolute_path) if error else "",
            }
        )
    return checked


def _instance_pointer(parts: Any) -> str:
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "/" + "/".join(escaped)


def _normalise_field(field: str) -> str:
    """A consumer's declared field in the tree's spelling: "lines[*].sku" -> "lines.sku"."""
    field = field.strip()
    if field.startswith(("#", "/")):
        parts = (
            registry.pointer_fields(field)
            if "/properties/" in field
            else tuple(s for s in field.lstrip("#").split("/") if s)
        )
        return ".".join(parts or ())
    return ".".join(p.replace("[]", "").replace("[*]", "") for p in field.split(".") if p)


def _used_by(consumers: list[Consumer]) -> dict[str, list[Consumer]]:
    """Field data path (array markers dropped) -> consumers that declare they read it."""
    used: dict[str, list[Consumer]] = {}
    for consumer in consumers:
        for field in consumer.fields_used or []:
            if isinstance(field, str) and field.strip():
                used.setdefault(_normalise_field(field), []).append(consumer)
    return used


@require_GET
def event_detail(request: HttpRequest, name: str) -> HttpResponse:
    """The event's contract: header, description, schema of ?version=N (default latest), history."""
    event = _get_event(name)
    versions = list(event.versions.select_related("author").defer("schema", "examples").order_by("-version"))
    selected = _selected_version(request, event, versions)
    producers = list(event.producers.select_related("service").order_by("service__name"))
    consumers = list(event.consumers.select_related("service").order_by("service__name"))
    rows, truncated, examples = [], False, []
    if selected is not None:
        tree = fieldtree.build(selected.schema)
        used = _used_by(consumers)
        rows = [(row, used.get(row.field.data_path.replace("[]", ""), [])) for row in fieldtree.rows(tree)]
        truncated = tree.truncated
        examples = _check_examples(selected.schema, selected.examples)
    registered = [v for v in versions if v.state == SchemaVersion.REGISTERED]
    return render(
        request,
        "designer/event_detail.html",
        {
            "event": event,
            "versions": versions,
            "selected": selected,
            "latest": registered[0] if registered else None,
            "rows": rows,
            "truncated": truncated,
            "examples": examples,
            "producers": producers,
            "consumers": consumers,
            "compare_form": CompareForm(
                initial={"a": versions[1].version, "b": versions[0].version} if len(versions) > 1 else {}
            ),
        },
    )


def _selected_version(request: HttpRequest, event: EventType, versions: list[SchemaVersion]) -> SchemaVersion | None:
    """?version=N (404 if unknown), else the latest registered version, else the newest draft."""
    wanted = request.GET.get("version", "")
    if wanted:
        if not wanted.isdigit():
            raise Http404("No such version.")
        return get_object_or_404(SchemaVersion.objects.select_related("author"), event_type=event, version=int(wanted))
    registered = [v for v in versions if v.state == SchemaVersion.REGISTERED]
    chosen = registered[0] if registered else (versions[0] if versions else None)
    if chosen is None:
        return None
    return SchemaVersion.objects.select_related("author").get(pk=chosen.pk)


@require_GET
def event_compare(request: HttpRequest, name: str) -> HttpResponse:
    """The structured diff between ?a=N and ?b=M: each change typed, located, explained, judged."""
    event = _get_event(name)
    form = CompareForm(request.GET)
    versions = list(event.versions.defer("schema", "examples").order_by("-version"))
    context: dict[str, Any] = {"event": event, "form": form, "versions": versions}
    if not form.is_valid():
        return render(request, "designer/version_compare.html", context, status=400 if request.GET else 200)
    by_number = {
        v.version: v
        for v in event.versions.filter(version__in=[form.cleaned_data["a"], form.cleaned_data["b"]]).select_related(
            "author"
        )
    }
    missing = [n for n in (form.cleaned_data["a"], form.cleaned_data["b"]) if n not in by_number]
    if missing:
        form.add_error(None, f"{event.name} has no version {missing[0]}.")
        return render(request, "designer/version_compare.html", context, status=404)
    a, b = by_number[form.cleaned_data["a"]], by_number[form.cleaned_data["b"]]
    changes = registry.diff_versions(a, b)
    backward = [c for c in changes if c["direction"] == "backward"]
    forward = [c for c in changes if c["direction"] == "forward"]
    # The directions the event's mode cares about decide the verdict.
    mode = event.compatibility_mode
    checked = (backward if mode.startswith(("BACKWARD", "FULL")) else []) + (
        forward if mode.startswith(("FORWARD", "FULL")) else []
    )
    context.update(
        {
            "a": a,
            "b": b,
            "backward": backward,
            "forward": forward,
            "backward_breaking": sum(1 for c in backward if not c["compatible"]),
            "forward_breaking": sum(1 for c in forward if not c["compatible"]),
            "mode_breaking": sum(1 for c in checked if not c["compatible"]),
        }
    )
    return render(request, "designer/version_compare.html", context)


# --------------------------------------------------------------------------- register a version
@require_http_methods(["GET", "POST"])
def register_version(request: HttpRequest, name: str) -> HttpResponse:
    """Designer-only form: check a candidate, register it, or keep it as a draft.

    Invalid JSON or JSON Schema -> field errors (400); incompatible -> every
    difference, the reason and the consumers that would break (409), nothing saved.
    """
    event = _get_event_for_designer(request, name)
    if request.method == "GET":
        return render(request, "designer/register_version.html", {"event": event, "form": _prefilled_form(event)})
    form = RegisterVersionForm(request.POST)
    context: dict[str, Any] = {"event": event, "form": form}
    if not form.is_valid():
        return render(request, "designer/register_version.html", context, status=400)
    schema, examples, action = form.cleaned_data["schema"], form.cleaned_data["examples"], form.cleaned_data["action"]
    try:
        if action == RegisterVersionForm.CHECK:
            result = registry.check_candidate(event, schema)
            registry.validate_examples(schema, examples)
            context["check"] = _outcome(
                result, registry.breaking_consumers(event, result, schema) if not result.compatible else []
            )
            context["traffic"] = registry.traffic_check(event, schema, user=request.user)
            return render(request, "designer/register_version.html", context)
        if action == RegisterVersionForm.REGISTER and not form.cleaned_data["accept_traffic"]:
            # Real events a compatible new version would reject: the author sees them and confirms
            # first (an incompatible one is refused below, whatever the traffic).
            compatible = registry.check_candidate(event, schema).compatible
            traffic = registry.traffic_check(event, schema, user=request.user) if compatible else None
            if traffic and traffic["failing"]:
                context["traffic"], context["confirm_traffic"] = traffic, True
                return render(request, "designer/register_version.html", context, status=409)
        version = registry.register_version(
            event,
            schema,
            author=request.user,
            changelog=form.cleaned_data["changelog"],
            examples=examples,
            as_draft=action == RegisterVersionForm.DRAFT,
        )
    except registry.InvalidSchema as error:
        where = f" (at {error.path})" if error.path and error.path != "#" and error.path not in error.message else ""
        form.add_error(error.field if error.field in form.fields else "schema", f"{error.message}{where}")
        return render(request, "designer/register_version.html", context, status=400)
    except registry.IncompatibleSchema as error:
        context["rejected"] = _outcome(error.result, error.breaking_consumers)
        return render(request, "designer/register_version.html", context, status=409)
    messages.success(request, _registered_message(event, version))
    return redirect(f"{reverse('designer-event-detail', args=[event.name])}?version={version.version}")


def _outcome(result: Any, consumers: list[Consumer]) -> dict[str, Any]:
    return {
        "compatible": result.compatible,
        "mode": result.mode,
        "policy": result.policy,
        "reason": registry.explain(result),
        "changes": registry.change_rows(result),
        "consumers": consumers,
    }


def _registered_message(event: EventType, version: SchemaVersion) -> str:
    if getattr(version, "compat_result", True) is None:
        return f"The schema is identical to version {version.version} of {event.name}; nothing new was registered."
    if version.state == SchemaVersion.DRAFT:
        return f"Saved version {version.version} of {event.name} as a draft; producers are not served drafts."
    return f"Registered version {version.version} of {event.name}."


def _prefilled_form(event: EventType) -> RegisterVersionForm:
    """Start from the latest version (registered, else a draft) so an edit is a small change."""
    latest = event.versions.registered().order_by("-version").first() or event.versions.order_by("-version").first()
    if latest is None:
        starter = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}}
        return RegisterVersionForm(initial={"schema": _pretty(starter), "examples": "[]"})
    return RegisterVersionForm(initial={"schema": _pretty(latest.schema), "examples": _pretty(latest.examples or [])})


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- service and topic pages
@require_GET
def service_detail(request: HttpRequest, slug: str) -> HttpResponse:
    service = get_object_or_404(Service.objects.select_related("domain"), slug=slug)
    produces = list(service.produces.select_related("event_type__topic").order_by("event_type__name"))
    consumes = service.consumes.select_related("event_type__topic", "event_type__owner").order_by("event_type__name")
    # Owned events nobody declared as produced by this service would vanish from the page otherwise.
    produced = {p.event_type_id for p in produces}
    unproduced = [e for e in service.owned_events.select_related("topic").order_by("name") if e.pk not in produced]
    return render(
        request,
        "designer/service_detail.html",
        {"service": service, "produces": produces, "consumes": consumes, "owned_unproduced": unproduced},
    )


@require_GET
def topic_detail(request: HttpRequest, pk: int) -> HttpResponse:
    topic = get_object_or_404(Topic.objects.select_related("domain"), pk=pk)
    events = list(topic.event_types.select_related("owner").order_by("name"))
    producers: dict[int, list[Producer]] = {}
    for producer in (
        Producer.objects.filter(event_type__topic=topic).select_related("service").order_by("service__name")
    ):
        producers.setdefault(producer.event_type_id, []).append(producer)
    consumers: dict[int, list[Consumer]] = {}
    for consumer in (
        Consumer.objects.filter(event_type__topic=topic).select_related("service").order_by("service__name")
    ):
        consumers.setdefault(consumer.event_type_id, []).append(consumer)
    return render(
        request,
        "designer/topic_detail.html",
        {
            "topic": topic,
            "events": [(e, producers.get(e.pk, []), consumers.get(e.pk, [])) for e in events],
        },
    )
