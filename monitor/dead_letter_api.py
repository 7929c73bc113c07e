"""The dead-letter REST API (/api/v1/dead-letters/, /api/v1/redrive-jobs/).

Reads need a login; actions need the Operator role (`OperatorOrReadOnly`), so
a viewer gets 403. Every change goes through `monitor.deadletters`; these views
only read input through serializers and map the verbs' errors to HTTP codes
(ActionError.status_code: 400 bad input, 409 wrong state, 502 bus down).
"""

from __future__ import annotations

from django.db.models import Count, Max, Min, Q
from django.db.models.functions import Substr
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from eventhub.roles import OperatorOrReadOnly
from monitor import deadletters, filters
from monitor.models import DeadLetter, RedriveJob
from monitor.serializers import (
    ActionErrorSerializer,
    DeadLetterDetailSerializer,
    DeadLetterSerializer,
    DiscardRequestSerializer,
    DryRunSerializer,
    EditAndRetryRequestSerializer,
    GroupSerializer,
    PayloadErrorSerializer,
    RedriveJobRequestSerializer,
    RedriveJobSerializer,
    RetryRequestSerializer,
)

_FILTERS = [
    OpenApiParameter("topic", str, description="Source topic or dead-letter topic."),
    OpenApiParameter("status", str, description="new, retrying, retried, resolved, discarded, parked; comma list."),
    OpenApiParameter("error_class", str),
    OpenApiParameter("group", str, description="The consumer group that failed."),
    OpenApiParameter("event_type", str, description="Event type name, e.g. order.placed."),
    OpenApiParameter("service", str),
    OpenApiParameter("since", str, description="Last failed at or after (ISO-8601)."),
    OpenApiParameter("until", str, description="Last failed before (ISO-8601)."),
    OpenApiParameter("q", str, description="Text in the payload, headers, error message or event id."),
    OpenApiParameter("bus", str, enum=["kafka", "redis"]),
]
_ERRORS = {
    400: ActionErrorSerializer,
    404: OpenApiResponse(description="No such dead letter."),
    409: OpenApiResponse(ActionErrorSerializer, description="Not in a state that allows it."),
    502: OpenApiResponse(ActionErrorSerializer, description="The bus refused or did not answer; nothing changed."),
}
_GROUPS_LIMIT = 500


def _dead_letter(pk: int) -> DeadLetter:
    found = DeadLetter.objects.select_related("event_type", "schema_version").filter(pk=pk).first()
    if found is None:
        raise NotFound(f"No dead letter #{pk}.")
    return found


def _job(pk: int) -> RedriveJob:
    found = RedriveJob.objects.select_related("created_by").filter(pk=pk).first()
    if found is None:
        raise NotFound(f"No redrive job #{pk}.")
    return found


def _filtered(request: Request):
    form = filters.form_from(request.query_params)
    if not form.is_valid():
        raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
    return filters.apply(DeadLetter.objects.all(), form.cleaned_data)


def _refused(error: deadletters.ActionError) -> Response:
    if isinstance(error, deadletters.InvalidPayload):
        return Response(error.to_dict(), status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": error.message}, status=error.status_code)


def _detail(pk: int, code: int = status.HTTP_200_OK) -> Response:
    dead_letter = DeadLetter.objects.select_related("event_type", "schema_version").prefetch_related(
        "audit__actor", "came_back", "edited_copies"
    )
    return Response(DeadLetterDetailSerializer(dead_letter.get(pk=pk)).data, status=code)


# --------------------------------------------------------------------------- dead letters
@extend_schema(parameters=_FILTERS, responses=DeadLetterSerializer(many=True))
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_list(request: Request) -> Response:
    """Dead letters, newest first, filtered and paginated (limit/offset)."""
    queryset = (
        _filtered(request)
        .select_related("event_type", "schema_version")
        .annotate(preview=Substr("payload_text", 1, 200))
        .defer("payload", "payload_text", "payload_json", "headers", "raw_headers", "stacktrace", "claim_marks")
        .order_by("-id")
    )
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(DeadLetterSerializer(page, many=True).data)


@extend_schema(responses={200: DeadLetterDetailSerializer, 404: OpenApiResponse(description="No such dead letter.")})
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_detail(request: Request, pk: int) -> Response:
    """One dead letter: payload (JSON, text or base64; truncated flag), decoded headers, stack trace, audit."""
    _dead_letter(pk)
    return _detail(pk)


@extend_schema(request=RetryRequestSerializer, responses={200: DeadLetterDetailSerializer, **_ERRORS})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_retry(request: Request, pk: int) -> Response:
    """Re-publish the record to its source topic (optionally to one consumer group)."""
    dead_letter = _dead_letter(pk)
    form = RetryRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        deadletters.retry(dead_letter, actor=request.user, target_group=form.validated_data.get("target_group"))
    except deadletters.ActionError as error:
        return _refused(error)
    return _detail(pk)


@extend_schema(
    request=EditAndRetryRequestSerializer,
    responses={201: DeadLetterDetailSerializer, **_ERRORS, 400: PayloadErrorSerializer},
)
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_edit_and_retry(request: Request, pk: int) -> Response:
    """Send a corrected payload as a new event; answers with the new dead letter that tracks it."""
    dead_letter = _dead_letter(pk)
    form = EditAndRetryRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        copy = deadletters.edit_and_retry(
            dead_letter,
            form.validated_data["payload"],
            actor=request.user,
            target_group=form.validated_data.get("target_group"),
        )
    except deadletters.ActionError as error:
        return _refused(error)
    return _detail(copy.pk, status.HTTP_201_CREATED)


@extend_schema(request=DiscardRequestSerializer, responses={200: DeadLetterDetailSerializer, **_ERRORS})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_discard(request: Request, pk: int) -> Response:
    """Give up on the record; the reason goes into the audit trail."""
    dead_letter = _dead_letter(pk)
    form = DiscardRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        deadletters.discard(dead_letter, actor=request.user, reason=form.validated_data["reason"])
    except deadletters.ActionError as error:
        return _refused(error)
    return _detail(pk)


@extend_schema(parameters=_FILTERS, responses=GroupSerializer(many=True))
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_groups(request: Request) -> Response:
    """Dead letters grouped by error class, consumer group and event type, biggest first."""
    rows = (
        _filtered(request)
        .order_by()
        .values("error_class", "group", "event_type__name")
        .annotate(
            count=Count("id"),
            new=Count("id", filter=Q(status=DeadLetter.NEW)),
            first_seen=Min("first_failed_at"),
            last_seen=Max("last_failed_at"),
            service=Max("service"),
        )
        .order_by("-count", "error_class", "group")[:_GROUPS_LIMIT]
    )
    data = [
        {
            "error_class": row["error_class"],
            "group": row["group"],
            "event_type": row["event_type__name"],
            "service": row["service"] or "",
            "count": row["count"],
            "new": row["new"],
            "first_seen": row["first_seen"],
            "last_seen": row["last_seen"],
        }
        for row in rows
    ]
    return Response(GroupSerializer(data, many=True).data)


# --------------------------------------------------------------------------- redrive jobs
@extend_schema(methods=["GET"], responses=RedriveJobSerializer(many=True))
@extend_schema(
    methods=["POST"],
    request=RedriveJobRequestSerializer,
    responses={
        201: RedriveJobSerializer,
        200: OpenApiResponse(DryRunSerializer, description="dry_run: what the job would do; nothing starts."),
        400: ActionErrorSerializer,
    },
)
@api_view(["GET", "POST"])
@permission_classes([OperatorOrReadOnly])
def redrive_jobs(request: Request) -> Response:
    """Redrive jobs, newest first (GET); start one, or preview it with dry_run (POST)."""
    if request.method == "GET":
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(RedriveJob.objects.select_related("created_by").defer("item_ids"), request)
        return paginator.get_paginated_response(RedriveJobSerializer(page, many=True).data)
    form = RedriveJobRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    try:
        if data["dry_run"]:
            preview = deadletters.dry_run(form.selection(), data["action"], data["target_group"])
            return Response(DryRunSerializer(preview).data)
        job = deadletters.start_job(
            actor=request.user,
            action=data["action"],
            selection=form.selection(),
            rate_per_s=data["rate_per_s"],
            target_group=data["target_group"],
            reason=data["reason"],
        )
    except deadletters.ActionError as error:
        return _refused(error)
    return Response(RedriveJobSerializer(job).data, status=status.HTTP_201_CREATED)


@extend_schema(responses={200: RedriveJobSerializer, 404: OpenApiResponse(description="No such job.")})
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def redrive_job_detail(request: Request, pk: int) -> Response:
    """One job: state and progress (done/failed/skipped of total)."""
    return Response(RedriveJobSerializer(_job(pk)).data)


@extend_schema(request=None, responses={200: RedriveJobSerializer, 404: None, 409: ActionErrorSerializer})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def redrive_job_cancel(request: Request, pk: int) -> Response:
    """Stop a job: a pending one at once, a running one within a second (state cancelling, then cancelled)."""
    job = _job(pk)
    try:
        job = deadletters.cancel_job(job, actor=request.user)
    except deadletters.ActionError as error:
        return _refused(error)
    return Response(RedriveJobSerializer(job).data)


@extend_schema(request=None, responses={200: RedriveJobSerializer, 404: None, 409: ActionErrorSerializer})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def redrive_job_resume(request: Request, pk: int) -> Response:
    """Continue a cancelled or failed job where it stopped; nothing it sent is sent again."""
    job = _job(pk)
    try:
        job = deadletters.resume_job(job, actor=request.user)
    except deadletters.ActionError as error:
        return _refused(error)
    return Response(RedriveJobSerializer(job).data)
