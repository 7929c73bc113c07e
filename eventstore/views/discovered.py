"""The pages of schemas discovered from traffic (/events/discovered/), and the drift fragment
the catalog's event page loads. Approving a draft needs the Designer role.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from designer import fieldtree, registry
from eventhub import roles
from eventstore import schema_discovery
from eventstore.models import ObservedSchema


@require_GET
def discovered_list(request: HttpRequest) -> HttpResponse:
    rows = ObservedSchema.objects.discovered()[:200]
    return render(request, "eventstore/discovered.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def discovered_detail(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(ObservedSchema.objects.discovered(), pk=pk)
    text, error, code = json.dumps(row.schema, indent=2), None, 200
    if request.method == "POST":
        roles.require_role(request.user, roles.DESIGNER)
        text = request.POST.get("schema", "")
        try:
            schema = json.loads(text)
        except ValueError as problem:
            error, code = f"The schema is not JSON: {problem}", 400
        else:
            try:
                version = schema_discovery.approve(row, request.user, schema=schema, name=request.POST.get("name", ""))
            except schema_discovery.ApprovalRefused as refused:
                error, code = f"{refused.field}: {refused}", 400
            except registry.InvalidSchema as problem:
                error, code = "; ".join(_messages(problem.to_dict())), 400
            except registry.IncompatibleSchema as problem:
                error, code = "; ".join(_messages(problem.to_dict())), 409
            else:
                messages.success(request, f"{version.event_type.name} v{version.version} registered from traffic.")
                return redirect("designer-event-detail", version.event_type.name)
    context = {
        "row": row,
        "text": text,
        "error": error,
        "tree": fieldtree.rows(fieldtree.build(row.schema)),
        "can_design": roles.has_role(request.user, roles.DESIGNER),
    }
    return render(request, "eventstore/discovered_detail.html", context, status=code)


def _messages(body: Any) -> list[str]:
    if isinstance(body, dict):
        found = []
        for key, value in body.items():
            found += [f"{key}: {item}" for item in value] if isinstance(value, list) else [f"{key}: {value}"]
        return found
    return [str(body)]


@require_GET
def drift_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """The catalog's event page loads this: fields traffic carries that the schema does not name."""
    observed = ObservedSchema.objects.filter(subject=schema_discovery.subject_of("", "", name)).first()
    context = {
        "name": name,
        "drift": schema_discovery.drift(name),
        "observed": observed,
        "validity": schema_discovery.validity_rate(name),
    }
    return render(request, "eventstore/_drift.html", context)
