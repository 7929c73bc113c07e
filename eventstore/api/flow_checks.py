"""The flow-check REST API: start a check, read one, list a flow's checks.

Reads need a login; starting a check needs the Operator role (`OperatorOrReadOnly`).
A check never shows payloads: the trigger's payload is the catalog's example, and
steps carry positions and ids only.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from designer.models import Flow
from eventhub.pagination import LimitOffsetPagination
from eventhub.roles import OperatorOrReadOnly
from eventstore import flow_checks
from eventstore.models import FlowCheck, FlowCheckStep
from eventstore.serializers import (
    FlowCheckRefusedSerializer,
    FlowCheckSerializer,
    FlowCheckStartedSerializer,
)


def checks_with_steps():
    """Checks with what their serializer reads, in three queries per page."""
    return FlowCheck.objects.select_related("flow", "started_by").prefetch_related(
        Prefetch("steps", queryset=FlowCheckStep.objects.select_related("after"))
    )


def _paginated(view):
    """Document the list as a page of LimitOffsetPagination (function views have no pagination_class)."""
    view.cls.pagination_class = LimitOffsetPagination
    return view


def _flow(pk: int) -> Flow:
    found = Flow.objects.filter(pk=pk).first()
    if found is None:
        raise NotFound(f"No flow #{pk}.")
    return found


@_paginated
@extend_schema(methods=["GET"], responses={200: FlowCheckSerializer(many=True), 404: None})
@extend_schema(
    methods=["POST"],
    request=None,
    responses={
        202: FlowCheckStartedSerializer,
        400: OpenApiResponse(FlowCheckRefusedSerializer, description="The flow cannot be checked as designed."),
        404: OpenApiResponse(description="No such flow."),
    },
)
@api_view(["GET", "POST"])
@permission_classes([OperatorOrReadOnly])
def flow_checks_view(request: Request, pk: int) -> Response:
    """A flow's checks, newest first (GET, paginated); start one (POST, Operators: 202, then poll it)."""
    flow = _flow(pk)
    if request.method == "GET":
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(checks_with_steps().filter(flow=flow), request)
        return paginator.get_paginated_response(FlowCheckSerializer(page, many=True).data)
    try:
        check = flow_checks.start(flow, user=request.user)
    except flow_checks.CheckRefused as error:
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"id": check.pk, "status": check.status}, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses={200: FlowCheckSerializer, 404: OpenApiResponse(description="No such check.")})
@api_view(["GET"])
@permission_classes([OperatorOrReadOnly])
def flow_check_detail(request: Request, pk: int) -> Response:
    """One check with its steps' verdicts: poll it while its status is running."""
    check = checks_with_steps().filter(pk=pk).first()
    if check is None:
        raise NotFound(f"No flow check #{pk}.")
    return Response(FlowCheckSerializer(check).data)
