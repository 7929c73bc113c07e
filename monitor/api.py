"""The monitor's read API (/api/v1/monitor/): the live snapshot and metric history.

Both are reads for any logged-in user (session or token); DRF answers 403 to
anonymous callers. The snapshot is served as the stored JSON text, unparsed:
the collector computed it once, every reader gets the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from eventhub.roles import DesignerOrReadOnly
from monitor import history, lineage, snapshots
from monitor.models import Sample

DEFAULT_RANGE = timedelta(hours=1)
BUSIEST_LIMIT = 200


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def snapshot(request: Request) -> HttpResponse:
    """The latest snapshot of both buses (see docs/monitor.md for its keys)."""
    response = HttpResponse(snapshots.load_json(), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


class HistoryQuery(serializers.Serializer):
    bus = serializers.ChoiceField(choices=["kafka", "redis"])
    topic = serializers.CharField(max_length=249)
    group = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    resolution = serializers.ChoiceField(choices=[Sample.RAW, Sample.MINUTE], required=False)

    def validate(self, attrs):
        until = attrs.get("until") or datetime.now(UTC)
        since = attrs.get("since") or until - DEFAULT_RANGE
        if since >= until:
            raise serializers.ValidationError({"since": "must be before until."})
        if until - since > history.MINUTE_RETENTION:
            raise serializers.ValidationError({"since": "history is kept for 7 days; ask for a shorter range."})
        return {**attrs, "since": since, "until": until}


@extend_schema(
    parameters=[HistoryQuery],
    responses={
        200: OpenApiTypes.OBJECT,
        400: OpenApiResponse(description="A query value that does not parse, or a range over 7 days."),
    },
)
@api_view(["GET"])
def history_series(request: Request) -> Response:
    """One series: a topic (no group) or a group on a topic. Ranges over 1 h default to 1-minute points."""
    query = HistoryQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = query.validated_data
    resolution, series = history.query(q["bus"], q["topic"], q["group"], q["since"], q["until"], q.get("resolution"))
    return Response(
        {
            "bus": q["bus"],
            "topic": q["topic"],
            "group": q["group"],
            "since": q["since"].isoformat(),
            "until": q["until"].isoformat(),
            "resolution": resolution,
            "series": series,
        }
    )


class BusiestQuery(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=BUSIEST_LIMIT, default=30)

    def validate(self, attrs):
        until = attrs.get("until") or datetime.now(UTC)
        if attrs["since"] >= until:
            raise serializers.ValidationError({"since": "must be before until."})
        if until - attrs["since"] > history.RAW_RETENTION:
            raise serializers.ValidationError({"since": "raw points are kept for an hour; ask for a shorter range."})
        return {**attrs, "until": until}


@extend_schema(
    parameters=[BusiestQuery],
    responses={
        200: OpenApiTypes.OBJECT,
        400: OpenApiResponse(description="A query value that does not parse, or a range over an hour."),
    },
)
@api_view(["GET"])
def busiest_series(request: Request) -> Response:
    """The raw series that moved most in a range (at most an hour): topics by rate, groups by lag.

    What the live dashboard draws in front of its first frame, in one request.
    """
    query = BusiestQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = query.validated_data
    return Response(
        {
            "since": q["since"].isoformat(),
            "until": q["until"].isoformat(),
            **history.busiest(q["since"], q["until"], q["limit"]),
        }
    )


class AdoptRequest(serializers.Serializer):
    """One observed edge, as the snapshot's `observed.edges` item names it."""

    bus = serializers.ChoiceField(choices=["kafka", "redis"])
    topic = serializers.CharField(max_length=249)
    event_type = serializers.CharField(max_length=200)
    producer = serializers.CharField(max_length=100, help_text="The edge's `from`.")
    consumer = serializers.CharField(max_length=100, required=False, allow_blank=True, default="", help_text="`to`.")
    group = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class AdoptedSerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.CharField(), help_text="What the design did not have yet.")


@extend_schema(
    request=AdoptRequest,
    responses={
        201: AdoptedSerializer,
        200: OpenApiResponse(AdoptedSerializer, description="The design had it all already."),
        400: OpenApiResponse(description="A value missing or not valid, or an edge without an event type."),
    },
)
@api_view(["POST"])
@permission_classes([DesignerOrReadOnly])
def adopt_observed(request: Request) -> Response:
    """Add an observed edge to the design: services, topic, event type, producer and consumer, as missing."""
    form = AdoptRequest(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    try:
        created = lineage.adopt(
            kind=data["bus"],
            producer=data["producer"],
            event_type=data["event_type"],
            topic=data["topic"],
            consumer=data["consumer"],
            group=data["group"],
        )
    except lineage.CannotAdopt as error:
        return Response({"event_type": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"created": created}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
