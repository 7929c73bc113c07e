"""The traces pages: /traces/ (the list, with the API's filters as a form) and /traces/<id>/.

Their own module next to views.py (the /events/ page) and api.py (the traces API): the
three share eventstore/traces.py and nothing else. Every logged-in user reads them.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from designer.graph import build_graph
from designer.models import Service
from eventstore import traces
from eventstore.forms import TraceFilterForm


def _design() -> dict:
    """The designed graph as the canvas draws it, its services with their slugs (what a trace names)."""
    graph = build_graph(None)
    slugs = dict(Service.objects.values_list("id", "slug"))
    for node in graph["nodes"]:
        if node["kind"] == "service":
            node["slug"] = slugs.get(node["pk"], "")
    return graph


@require_GET
def trace_list(request: HttpRequest) -> HttpResponse:
    """Traces matching the form's filters, newest first; a bad filter re-renders the form with a 400."""
    form = TraceFilterForm(request.GET)
    rows, cursor = [], None
    if form.is_valid():
        data = form.cleaned_data
        rows, cursor = traces.list_traces(data, data["cursor"] or None, data["limit"] or traces.PAGE_SIZE)
    next_query = None
    if cursor:
        query = request.GET.copy()
        query["cursor"] = cursor
        next_query = query.urlencode()
    context = {"form": form, "rows": rows, "next_query": next_query}
    return render(request, "eventstore/traces.html", context, status=200 if form.is_valid() else 400)


@require_GET
def trace_detail(request: HttpRequest, ident: str) -> HttpResponse:
    """One trace: a timeline per service, the designed graph with its path, events and dead letters.

    An event id (ce_id) redirects to the trace of its correlation id.
    """
    trace = traces.find_trace(ident)
    if trace is None:
        raise Http404("No trace with this correlation id or event id.")
    if trace["correlation_id"] != ident:
        return redirect("trace", trace["correlation_id"])
    context = {
        "trace": trace,
        "graph": _design(),
        "api_url": reverse("api-trace", args=[trace["correlation_id"]]),
        "live_window_s": int(traces.LIVE_WINDOW.total_seconds()),
    }
    return render(request, "eventstore/trace.html", context)
