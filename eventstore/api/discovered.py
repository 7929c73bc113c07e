"""The API of schemas discovered from traffic (/api/v1/discovered/); the work is eventstore/schema_discovery.py.

Everyone logged in reads; approving a draft (registering it through the registry) needs the
Designer role, as registering any schema does.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from designer import registry
from designer.serializers import CompatibilitySerializer, RegisteredVersionSerializer
from eventhub.pagination import LimitOffsetPagination
from eventhub.roles import DesignerOrReadOnly
from eventstore import schema_discovery
from eventstore.models import ObservedSchema
from eventstore.serializers import ApproveProblemSerializer, ApproveRequestSerializer, DiscoveredSchemaSerializer


def _discovered(pk: int) -> ObservedSchema:
    found = ObservedSchema.objects.discovered().filter(pk=pk).first()
    if found is None:
        raise NotFound(f"No discovered schema #{pk} waiting for approval.")
    return found


def approve_as(row: ObservedSchema, user, data: dict[str, Any]) -> tuple[int, Any]:
    """(status, body or version) of approving `row` as the user asked."""
    try:
        version = schema_discovery.approve(
            row, user, schema=data.get("schema"), name=data.get("name", ""), changelog=data.get("changelog", "")
        )
    except schema_discovery.ApprovalRefused as error:
        return status.HTTP_400_BAD_REQUEST, {error.field: [str(error)]}
    except registry.InvalidSchema as error:
        return status.HTTP_400_BAD_REQUEST, error.to_dict()
    except registry.IncompatibleSchema as error:
        return status.HTTP_409_CONFLICT, error.to_dict()
    return status.HTTP_201_CREATED, version


@extend_schema(responses={200: DiscoveredSchemaSerializer(many=True)})
@api_view(["GET"])
@permission_classes([DesignerOrReadOnly])
def api_discovered_list(request: Request) -> Response:
    """Schemas inferred from traffic for types (or topics) with no registered schema, last seen first."""
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(ObservedSchema.objects.discovered(), request)
    return paginator.get_paginated_response(DiscoveredSchemaSerializer(page, many=True).data)


api_discovered_list.cls.pagination_class = LimitOffsetPagination


@extend_schema(responses={200: DiscoveredSchemaSerializer, 404: OpenApiResponse(description="No such draft.")})
@api_view(["GET"])
@permission_classes([DesignerOrReadOnly])
def api_discovered_detail(request: Request, pk: int) -> Response:
    return Response(DiscoveredSchemaSerializer(_discovered(pk)).data)


@extend_schema(
    request=ApproveRequestSerializer,
    responses={
        201: RegisteredVersionSerializer,
        400: OpenApiResponse(
            ApproveProblemSerializer, description="No valid name for a topic's draft, or no valid schema."
        ),
        404: OpenApiResponse(description="No such draft (or it was approved already)."),
        409: OpenApiResponse(
            CompatibilitySerializer, description="Incompatible with the versions registered meanwhile."
        ),
    },
)
@api_view(["POST"])
@permission_classes([DesignerOrReadOnly])
def api_discovered_approve(request: Request, pk: int) -> Response:
    """Register the draft (or the edited `schema`) as the event type's first version."""
    row = _discovered(pk)
    form = ApproveRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    code, result = approve_as(row, request.user, form.validated_data)
    if code != status.HTTP_201_CREATED:
        return Response(result, status=code)
    return Response(RegisteredVersionSerializer(result).data, status=code)
