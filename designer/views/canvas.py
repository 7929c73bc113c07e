"""The visual designer (canvas) and the generated Mermaid flowchart.

The canvas page renders the graph once on the server (json_script) so it
draws without a round trip; every change afterwards goes through the REST API
(designer.api), which also enforces the Designer role.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from designer import flowchart
from designer.graph import build_graph
from designer.models import Domain


def _domain_or_none(request: HttpRequest) -> Domain | None:
    """The domain named by ?domain=<slug>, None for all of them; 404 for an unknown slug."""
    slug = request.GET.get("domain") or ""
    if not slug:
        return None
    domain = Domain.objects.filter(slug=slug).first()
    if domain is None:
        raise Http404(f"No domain called {slug!r}.")
    return domain


@require_GET
def canvas(request: HttpRequest) -> HttpResponse:
    domain = _domain_or_none(request)
    context = {
        "domain": domain,
        "domains": Domain.objects.all(),
        "graph": build_graph(domain.slug if domain else None),
        "api": {
            "graph": reverse("api-graph"),
            "domains": reverse("api-domain-list"),
            "services": reverse("api-service-list"),
            "events": reverse("api-event-list"),
            "topics": reverse("api-topic-list"),
            "producers": reverse("api-producer-list"),
            "consumers": reverse("api-consumer-list"),
        },
    }
    return render(request, "designer/canvas.html", context)


@require_GET
def flowchart_page(request: HttpRequest) -> HttpResponse:
    scope = flowchart.resolve_scope(request.GET.get("scope"))
    context = {
        "scope": scope,
        "choices": flowchart.scope_choices(),
        "text": flowchart.chart_for(scope),
        "canvas_domain": scope.slug if scope.kind == "domain" else "",
    }
    return render(request, "designer/flowchart.html", context)


@require_GET
def flowchart_mmd(request: HttpRequest) -> HttpResponse:
    """The chart as a Mermaid file, for docs repos and mermaid-cli."""
    scope = flowchart.resolve_scope(request.GET.get("scope"))
    response = HttpResponse(flowchart.chart_for(scope), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{scope.filename}"'
    return response
