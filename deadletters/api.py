"""The dead-letter REST API (/api/v1/dead-letters/, /api/v1/redrive-jobs/).

Reads need a login; actions need the Operator role (`OperatorOrReadOnly`), so
a viewer gets 403. Every change goes through `deadletters.actions`; these views
only read input through serializers and map the verbs' errors to HTTP codes
(ActionError.status_code: 400 bad input, 409 wrong state, 502 bus down).
Payloads are shown through `deadletters.sensitive`: fields marked x-eventhub-pii are
"•••" without view_sensitive, and a detail read with it is audited.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from deadletters import actions, filters, sensitive
from deadletters.models import DeadLetter, RedriveJob
from deadletters.serializers import (
    PREVIEW_LENGTH,
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
from eventhub.pagination import LimitOffsetPagination
from eventhub.roles import OperatorOrReadOnly

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
_BAD_FILTER = {400: OpenApiResponse(description="A filter value that does not parse.")}
_GROUPS_LIMIT = 500


def _paginated(view):
    """Document the list as a page of LimitOffsetPagination (function views have no pagination_class)."""
    view.cls.pagination_class = LimitOffsetPagination
    return view


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
    hidden = sensitive.unsearchable_event_types(request.user) if form.cleaned_data.get("q") else ()
    return filters.apply(DeadLetter.objects.all(), form.cleaned_data, hide_payload_of=hidden)


def _refused(error: actions.ActionError) -> Response:
    if isinstance(error, actions.InvalidPayload):
        return Response(error.to_dict(), status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": error.message}, status=error.status_code)


def _detail(request: Request, pk: int, code: int = status.HTTP_200_OK) -> Response:
    """One dead letter, its payload as the user may see it (an unmasked read is audited)."""
    dead_letter = (
        DeadLetter.objects.select_related("event_type", "schema_version")
        .prefetch_related("audit__actor", "came_back", "edited_copies")
        .get(pk=pk)
    )
    shown = sensitive.dead_letter_payload(request.user, dead_letter, via="api")
    return Response(DeadLetterDetailSerializer(dead_letter, context={"shown": shown}).data, status=code)


# --------------------------------------------------------------------------- dead letters
@_paginated
@extend_schema(parameters=_FILTERS, responses={200: DeadLetterSerializer(many=True), **_BAD_FILTER})
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_list(request: Request) -> Response:
    """Dead letters, newest first, filtered and paginated (limit/offset)."""
    queryset = _filtered(request).table_rows(PREVIEW_LENGTH)
    paginator = LimitOffsetPagination()
    page = sensitive.previews(list(paginator.paginate_queryset(queryset, request)), PREVIEW_LENGTH)
    return paginator.get_paginated_response(DeadLetterSerializer(page, many=True).data)


@extend_schema(responses={200: DeadLetterDetailSerializer, 404: OpenApiResponse(description="No such dead letter.")})
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_detail(request: Request, pk: int) -> Response:
    """One dead letter: payload (JSON, text or base64; truncated flag), decoded headers, stack trace, audit."""
    _dead_letter(pk)
    return _detail(request, pk)


@extend_schema(request=RetryRequestSerializer, responses={200: DeadLetterDetailSerializer, **_ERRORS})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_retry(request: Request, pk: int) -> Response:
    """Re-publish the record to its source topic (optionally to one consumer group)."""
    dead_letter = _dead_letter(pk)
    form = RetryRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        actions.retry(
            dead_letter,
            actor=request.user,
            target_group=form.validated_data.get("target_group"),
            confirm_target=form.validated_data["confirm_target"],
        )
    except actions.ActionError as error:
        return _refused(error)
    return _detail(request, pk)


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
        copy = actions.edit_and_retry(
            dead_letter,
            form.validated_data["payload"],
            actor=request.user,
            target_group=form.validated_data.get("target_group"),
            confirm_target=form.validated_data["confirm_target"],
        )
    except actions.ActionError as error:
        return _refused(error)
    return _detail(request, copy.pk, status.HTTP_201_CREATED)


@extend_schema(request=DiscardRequestSerializer, responses={200: DeadLetterDetailSerializer, **_ERRORS})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_discard(request: Request, pk: int) -> Response:
    """Give up on the record; the reason goes into the audit trail."""
    dead_letter = _dead_letter(pk)
    form = DiscardRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        actions.discard(dead_letter, actor=request.user, reason=form.validated_data["reason"])
    except actions.ActionError as error:
        return _refused(error)
    return _detail(request, pk)


@extend_schema(parameters=_FILTERS, responses={200: GroupSerializer(many=True), **_BAD_FILTER})
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def dead_letter_groups(request: Request) -> Response:
    """Dead letters grouped by error class, consumer group and event type, biggest first."""
    return Response(GroupSerializer(_filtered(request).by_cause(_GROUPS_LIMIT), many=True).data)


# --------------------------------------------------------------------------- redrive jobs
@_paginated
@extend_schema(methods=["GET"], responses=RedriveJobSerializer(many=True))
@extend_schema(
    methods=["POST"],
    request=RedriveJobRequestSerializer,
    responses={
        201: RedriveJobSerializer,
        200: OpenApiResponse(DryRunSerializer, description="dry_run: what the job would do; nothing starts."),
        400: ActionErrorSerializer,
        409: OpenApiResponse(ActionErrorSerializer, description="Only the records' headers name a target topic."),
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
            preview = actions.dry_run(form.selection(), data["action"], data["target_group"])
            return Response(DryRunSerializer(preview).data)
        job = actions.start_job(
            actor=request.user,
            action=data["action"],
            selection=form.selection(),
            rate_per_s=data["rate_per_s"],
            target_group=data["target_group"],
            reason=data["reason"],
            confirm_targets=data["confirm_targets"],
        )
    except actions.ActionError as error:
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
        job = actions.cancel_job(job, actor=request.user)
    except actions.ActionError as error:
        return _refused(error)
    return Response(RedriveJobSerializer(job).data)


@extend_schema(request=None, responses={200: RedriveJobSerializer, 404: None, 409: ActionErrorSerializer})
@api_view(["POST"])
@permission_classes([OperatorOrReadOnly])
def redrive_job_resume(request: Request, pk: int) -> Response:
    """Continue a cancelled or failed job where it stopped; nothing it sent is sent again."""
    job = _job(pk)
    try:
        job = actions.resume_job(job, actor=request.user)
    except actions.ActionError as error:
        return _refused(error)
    return Response(RedriveJobSerializer(job).data)
