"""The designer's REST API (/api/v1/): the design as resources, the graph the
canvas draws, the lints, and the schema registry CI pipelines talk to.

Plain CRUD resources are DRF viewsets (a router writes their eight routes);
everything with its own shape is a short function view. Reads need a login,
writes need the Designer role (`DesignerOrReadOnly`); session and token auth
both work. Schema changes go through `designer.registry` only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Max, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from designer import registry
from designer.graph import build_graph
from designer.lints import lint_design
from designer.models import Consumer, Domain, EventType, Flow, FlowStep, Producer, SchemaVersion, Service, Topic
from designer.serializers import (
    CompatibilityRequestSerializer,
    CompatibilitySerializer,
    ConsumerSerializer,
    DomainSerializer,
    EventTypeSerializer,
    FlowSerializer,
    FlowStepSerializer,
    GraphSerializer,
    LintSerializer,
    ProducerSerializer,
    RegisteredVersionSerializer,
    RegisterSchemaSerializer,
    RegistryVersionSerializer,
    SchemaProblemSerializer,
    ServiceSerializer,
    TopicSerializer,
    VersionSummarySerializer,
)
from eventhub.roles import ADMIN, DesignerOrReadOnly, has_role

_FILTERS = [
    OpenApiParameter("domain", str, description="Only rows in the domain with this slug."),
    OpenApiParameter("q", str, description="Text search in names and descriptions."),
]


def _filtered(request: Request, queryset: QuerySet, *text_fields: str) -> QuerySet:
    """?domain=<slug> and ?q=<text>, shared by the list endpoints."""
    domain = request.query_params.get("domain")
    if domain:
        queryset = queryset.filter(domain__slug=domain)
    text = request.query_params.get("q", "").strip()
    if text:
        match = Q()
        for field in text_fields:
            match |= Q(**{f"{field}__icontains": text})
        queryset = queryset.filter(match)
    return queryset


# --------------------------------------------------------------------------- resources
class DomainViewSet(viewsets.ModelViewSet):
    queryset = Domain.objects.all()
    serializer_class = DomainSerializer
    permission_classes = [DesignerOrReadOnly]


@extend_schema_view(list=extend_schema(parameters=_FILTERS))
class ServiceViewSet(viewsets.ModelViewSet):
    serializer_class = ServiceSerializer
    permission_classes = [DesignerOrReadOnly]

    def get_queryset(self) -> QuerySet:
        queryset = Service.objects.all()
        if self.action == "list":
            queryset = _filtered(self.request, queryset, "name", "description", "owner_team", "tags")
        return queryset


@extend_schema_view(list=extend_schema(parameters=_FILTERS))
class TopicViewSet(viewsets.ModelViewSet):
    serializer_class = TopicSerializer
    permission_classes = [DesignerOrReadOnly]

    def get_queryset(self) -> QuerySet:
        queryset = Topic.objects.all()
        if self.action == "list":
            queryset = _filtered(self.request, queryset, "name", "address", "description")
        return queryset


@extend_schema_view(
    list=extend_schema(parameters=_FILTERS),
    destroy=extend_schema(
        responses={204: None, 409: OpenApiResponse(description="The event has registered schema versions.")}
    ),
)
class EventTypeViewSet(viewsets.ModelViewSet):
    serializer_class = EventTypeSerializer
    permission_classes = [DesignerOrReadOnly]

    def get_queryset(self) -> QuerySet:
        queryset = EventType.objects.annotate(
            latest_registered_version=Max("versions__version", filter=Q(versions__state=SchemaVersion.REGISTERED))
        )
        if self.action == "list":
            queryset = _filtered(self.request, queryset, "name", "description")
        return queryset

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        event_type = self.get_object()
        registered = event_type.versions.registered().count()
        # Producers and consumers in production may still use those schemas;
        # losing them by a click on the canvas is not recoverable.
        if registered and not has_role(request.user, ADMIN):
            return Response(
                {
                    "detail": f"{event_type.name} has {registered} registered schema "
                    f"version{'s' if registered > 1 else ''}; only an admin can delete it."
                },
                status=status.HTTP_409_CONFLICT,
            )
        event_type.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProducerViewSet(viewsets.ModelViewSet):
    queryset = Producer.objects.order_by("id")
    serializer_class = ProducerSerializer
    permission_classes = [DesignerOrReadOnly]


class ConsumerViewSet(viewsets.ModelViewSet):
    queryset = Consumer.objects.order_by("id")
    serializer_class = ConsumerSerializer
    permission_classes = [DesignerOrReadOnly]


class FlowViewSet(viewsets.ModelViewSet):
    queryset = Flow.objects.prefetch_related("steps")
    serializer_class = FlowSerializer
    permission_classes = [DesignerOrReadOnly]

    @extend_schema(methods=["GET"], responses=FlowStepSerializer(many=True))
    @extend_schema(methods=["POST"], request=FlowStepSerializer, responses={201: FlowStepSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=FlowStepSerializer, pagination_class=None)
    def steps(self, request: Request, pk: str | None = None) -> Response:
        """The flow's steps in order (GET), or add one (POST)."""
        flow = self.get_object()
        if request.method == "GET":
            return Response(FlowStepSerializer(flow.steps.all(), many=True).data)
        serializer = FlowStepSerializer(data=request.data, context={"flow": flow})
        serializer.is_valid(raise_exception=True)
        serializer.save(flow=flow)
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("step_id", int, OpenApiParameter.PATH)], responses=FlowStepSerializer)
    @extend_schema(methods=["PATCH"], request=FlowStepSerializer, responses=FlowStepSerializer)
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(
        detail=True,
        methods=["get", "patch", "delete"],
        url_path=r"steps/(?P<step_id>[0-9]+)",
        serializer_class=FlowStepSerializer,
    )
    def step(self, request: Request, pk: str | None = None, step_id: str | None = None) -> Response:
        """One step: read, change (PATCH) or remove it."""
        flow = self.get_object()
        step = get_object_or_404(FlowStep, flow=flow, pk=step_id)
        if request.method == "DELETE":
            step.delete()
            return Response(status=status.HTTP_204_NO_CONTENT)
        if request.method == "GET":
            return Response(FlowStepSerializer(step).data)
        serializer = FlowStepSerializer(step, data=request.data, partial=True, context={"flow": flow})
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


# --------------------------------------------------------------------------- graph and lints
@extend_schema(
    parameters=[OpenApiParameter("domain", str, description="Domain slug: its nodes plus their direct neighbours.")],
    responses={200: GraphSerializer, 404: OpenApiResponse(description="No domain with that slug.")},
)
@api_view(["GET"])
@permission_classes([DesignerOrReadOnly])
def graph(request: Request) -> Response:
    """The design as nodes and edges, for the canvas."""
    domain = request.query_params.get("domain") or None
    if domain is not None and not Domain.objects.filter(slug=domain).exists():
        raise NotFound(f"No domain with the slug '{domain}'.")
    return Response(build_graph(domain))


@extend_schema(responses=LintSerializer(many=True))
@api_view(["GET"])
@permission_classes([DesignerOrReadOnly])
def lints(request: Request) -> Response:
    """Probable mistakes in the design (unconsumed events, cycles, incompatible drafts...)."""
    return Response([lint.to_dict() for lint in lint_design()])


# --------------------------------------------------------------------------- registry
_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="Event type name, e.g. order.placed.")


def _body(request: Request) -> Any:
    """The request's JSON, or a schema problem when it is over the upload limit.

    In the registry's own shape, so a CI pipeline reads one shape of 400 (elsewhere eventhub/api_errors.py says {detail}).
    """
    try:
        return request.data
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise ValidationError(
            {"schema": [f"The request is over {limit} bytes (EVENTHUB_MAX_UPLOAD_BYTES)."], "path": "#"}
        ) from None


def _event_type(name: str) -> EventType:
    """The event named `name` (404 in the API's JSON shape when unknown)."""
    event_type = EventType.objects.select_related("topic").filter(name=name).first()
    if event_type is None:
        raise NotFound(f"No event type named '{name}'. Create it in the designer first.")
    return event_type


@extend_schema(methods=["GET"], parameters=[_NAME], responses=VersionSummarySerializer(many=True))
@extend_schema(
    methods=["POST"],
    parameters=[_NAME],
    request=RegisterSchemaSerializer,
    responses={
        201: RegisteredVersionSerializer,
        200: OpenApiResponse(RegisteredVersionSerializer, description="Identical to the latest version: unchanged."),
        400: SchemaProblemSerializer,
        409: CompatibilitySerializer,
    },
)
@api_view(["GET", "POST"])
@permission_classes([DesignerOrReadOnly])
def registry_versions(request: Request, name: str) -> Response:
    """The registered versions of an event (GET), or register a new one (POST)."""
    event_type = _event_type(name)
    if request.method == "GET":
        versions = event_type.versions.registered().select_related("author").order_by("version")
        return Response(VersionSummarySerializer(versions, many=True).data)
    form = RegisterSchemaSerializer(data=_body(request))
    form.is_valid(raise_exception=True)
    latest_before = event_type.versions.registered().order_by("-version").values_list("pk", flat=True).first()
    try:
        version = registry.register_version(
            event_type,
            form.validated_data["schema"],
            author=request.user,
            changelog=form.validated_data["changelog"],
            examples=form.validated_data["examples"],
            as_draft=form.validated_data["draft"],
        )
    except registry.InvalidSchema as error:
        return Response(error.to_dict(), status=status.HTTP_400_BAD_REQUEST)
    except registry.IncompatibleSchema as error:
        return Response(error.to_dict(), status=status.HTTP_409_CONFLICT)
    created = version.pk != latest_before
    return Response(
        RegisteredVersionSerializer(version).data,
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


@extend_schema(
    parameters=[_NAME, OpenApiParameter("version", OpenApiTypes.INT, OpenApiParameter.PATH)],
    responses=RegistryVersionSerializer,
)
@api_view(["GET"])
@permission_classes([DesignerOrReadOnly])
def registry_version(request: Request, name: str, version: int) -> Response:
    """One registered version of an event's schema."""
    event_type = _event_type(name)
    found = event_type.versions.registered().filter(version=version).first()
    if found is None:
        raise NotFound(f"{name} has no registered version {version}.")
    found.event_type = event_type  # already has its topic loaded
    return Response(RegistryVersionSerializer(found).data)


@extend_schema(parameters=[_NAME], responses=RegistryVersionSerializer)
@api_view(["GET"])
@permission_classes([DesignerOrReadOnly])
def registry_latest(request: Request, name: str) -> Response:
    """The latest registered version: what producers validate against (the SDK calls this)."""
    event_type = _event_type(name)
    found = event_type.versions.registered().order_by("-version").first()
    if found is None:
        raise NotFound(f"{name} has no registered schema yet.")
    found.event_type = event_type
    return Response(RegistryVersionSerializer(found).data)


@extend_schema(
    parameters=[_NAME],
    request=CompatibilityRequestSerializer,
    responses={200: CompatibilitySerializer, 400: SchemaProblemSerializer},
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])  # changes nothing, so a viewer's CI token may ask too
def registry_compatibility(request: Request, name: str) -> Response:
    """Would this schema be accepted, and how many of the type's recent real events would it reject? Nothing is registered."""
    event_type = _event_type(name)
    form = CompatibilityRequestSerializer(data=_body(request))
    form.is_valid(raise_exception=True)
    schema = form.validated_data["schema"]
    try:
        result = registry.check_candidate(
            event_type, schema, form.validated_data.get("mode"), form.validated_data.get("policy")
        )
    except registry.InvalidSchema as error:
        return Response(error.to_dict(), status=status.HTTP_400_BAD_REQUEST)
    consumers = registry.breaking_consumers(event_type, result, schema)
    traffic = registry.traffic_check(
        event_type, schema, limit=form.validated_data.get("traffic_limit"), user=request.user
    )
    return Response({**registry.result_dict(result, consumers), "traffic": traffic})
