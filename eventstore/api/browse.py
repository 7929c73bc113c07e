"""The topic browser's REST API (/api/v1/bus/...): read-only, for every logged-in user (Viewer reads).

Thin views: eventstore/browse.py parses the query (a bad value is a 400 naming the
parameter), scans and shapes the answer; eventstore/serializers.py documents it.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from eventhub.bus import BusError, UnknownTopic
from eventstore import browse
from eventstore.serializers import BrowsePageSerializer, BrowseTopicListSerializer

_BUS = OpenApiParameter("bus", str, OpenApiParameter.PATH, enum=list(browse.BUSES), description="kafka or redis.")
_UNAVAILABLE = OpenApiResponse(description="The bus does not answer.")

_MESSAGE_PARAMETERS = [
    _BUS,
    OpenApiParameter("name", str, OpenApiParameter.PATH, description="The Kafka topic or Redis stream."),
    OpenApiParameter("partition", int, description="Only this partition (Redis: 0)."),
    OpenApiParameter("from_offset", str, description="Oldest first from this offset (Redis: entry id)."),
    OpenApiParameter("from_time", OpenApiTypes.DATETIME, description="Oldest first from this time (ISO 8601)."),
    OpenApiParameter("newest", str, enum=["true", "false"], description="Newest first (the default without a start)."),
    OpenApiParameter("limit", int, description=f"Messages at most, 1 to {browse.MAX_LIMIT} (default 50)."),
    OpenApiParameter("key", str, description="The key, exactly: text, or hex:<digits> for a binary key."),
    OpenApiParameter("header", str, many=True, description="name:value, repeatable (all must match)."),
    OpenApiParameter("type", str, description="The CloudEvents type (binary or structured mode)."),
    OpenApiParameter("field", str, many=True, description="path=value on the JSON data (customer.id=c-1)."),
    OpenApiParameter("q", str, description="Text anywhere in the key, value or headers."),
    OpenApiParameter(
        "budget", int, description=f"Records scanned at most, 1 to {browse.MAX_BUDGET:,} (default 100,000)."
    ),
    OpenApiParameter("cursor", str, description="Go on with a scan: the previous answer's `next`."),
]


def _bad(problem: browse.FilterProblem) -> ValidationError:
    return ValidationError({problem.parameter: [str(problem)]})


def _unavailable(kind: str, error: BusError) -> Response:
    return Response({"detail": f"The {kind} bus does not answer ({type(error).__name__})."}, status=503)


@extend_schema(
    parameters=[_BUS],
    responses={200: BrowseTopicListSerializer, 404: OpenApiResponse(description="No such bus."), 503: _UNAVAILABLE},
)
@api_view(["GET"])
def topic_list(request: Request, bus: str) -> Response:
    """Every topic (Redis: stream) of the bus, with partitions and end offsets, designed or not."""
    if bus not in browse.BUSES:
        raise NotFound("The bus is kafka or redis.")
    try:
        return Response({"topics": browse.topics(bus)})
    except BusError as error:
        return _unavailable(bus, error)


@extend_schema(
    parameters=_MESSAGE_PARAMETERS,
    responses={
        200: BrowsePageSerializer,
        400: OpenApiResponse(description="A parameter that does not parse; the answer names it."),
        404: OpenApiResponse(description="No such bus, topic or partition."),
        503: _UNAVAILABLE,
    },
)
@api_view(["GET"])
def topic_messages(request: Request, bus: str, name: str) -> Response:
    """The topic's records, filtered while scanned; sensitive fields masked (x-eventhub-pii)."""
    if bus not in browse.BUSES:
        raise NotFound("The bus is kafka or redis.")
    try:
        query = browse.parse_query(bus, request.query_params)
    except browse.FilterProblem as problem:
        raise _bad(problem) from None
    try:
        return Response(browse.browse(bus, name, query, request.user))
    except UnknownTopic:
        raise NotFound(f"The {bus} bus has no topic {name[:300]!r} (or not that partition).") from None
    except BusError as error:
        return _unavailable(bus, error)
