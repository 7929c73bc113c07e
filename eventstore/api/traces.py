"""The traces REST API (/api/v1/traces/): read-only, for every logged-in user.

Thin views: the query string goes through TraceFilterForm (a bad value is a 400 naming
the field), the work is eventstore/traces.py, the shapes are eventstore/serializers.py.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from eventstore import traces
from eventstore.forms import TraceFilterForm
from eventstore.serializers import TraceEventPayloadSerializer, TracePageSerializer, TraceSerializer

_LIST_PARAMETERS = [
    OpenApiParameter("type", str, description="Traces with an event of this type."),
    OpenApiParameter("service", str, description="... produced by this service (slug or name)."),
    OpenApiParameter("since", str, description="... at or after (ISO-8601)."),
    OpenApiParameter("until", str, description="... before (ISO-8601)."),
    OpenApiParameter(
        "has_dead_letter", str, enum=["true", "false"], description="Traces with (without) a dead letter."
    ),
    OpenApiParameter("invalid", str, enum=["true", "false"], description="Traces with (without) an invalid event."),
    OpenApiParameter("key", str, description="Traces with an event of this key (text)."),
    OpenApiParameter("event_id", str, description="The trace of this event (ce_id)."),
    OpenApiParameter("cursor", str, description="Where the page starts: from the previous page's `next`."),
    OpenApiParameter("limit", int, description=f"Traces per page, 1 to {traces.MAX_PAGE_SIZE}."),
]


@extend_schema(
    parameters=_LIST_PARAMETERS,
    responses={200: TracePageSerializer, 400: OpenApiResponse(description="A filter value that does not parse.")},
)
@api_view(["GET"])
def trace_list(request: Request) -> Response:
    """Traces (one row per correlation id) with an event matching the filters, newest first, by cursor."""
    form = TraceFilterForm(request.query_params)
    if not form.is_valid():
        raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
    data = form.cleaned_data
    rows, cursor = traces.list_traces(data, data["cursor"] or None, data["limit"] or traces.PAGE_SIZE)
    for row in rows:
        row["url"] = reverse("api-trace", args=[row["correlation_id"]])
    next_url = None
    if cursor:
        query = {name: value for name, value in request.query_params.items() if name != "cursor"}
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode({**query, 'cursor': cursor})}")
    return Response({"next": next_url, "previous": None, "results": rows})


@extend_schema(
    responses={200: TraceSerializer, 404: OpenApiResponse(description="No event has this correlation id or id.")}
)
@api_view(["GET"])
def trace_detail(request: Request, ident: str) -> Response:
    """One trace by correlation id, or by the id (ce_id) of one of its events."""
    trace = traces.find_trace(ident)
    if trace is None:
        raise NotFound("No trace has this correlation id, and no event this id.")
    return Response(trace)


@extend_schema(responses={200: TraceEventPayloadSerializer, 404: OpenApiResponse(description="No such indexed event.")})
@api_view(["GET"])
def trace_event_payload(request: Request, pk: int) -> Response:
    """An indexed event's payload (kept, or read back from the bus by position); x-eventhub-pii fields masked."""
    shown = traces.event_payload(request.user, pk)
    if shown is None:
        raise NotFound(f"No indexed event #{pk}.")
    return Response(shown)
