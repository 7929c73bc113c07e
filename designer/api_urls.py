"""REST API routes of the designer and the schema registry (under /api/v1/)."""

from django.urls import path, register_converter
from rest_framework.routers import SimpleRouter

from designer import api


class EventNameConverter:
    """Event names are dotted ("order.placed"); the default converters stop at the dot.

    Anything without a slash matches so that an unknown name gets the API's
    JSON 404 instead of Django's HTML one.
    """

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(EventNameConverter, "event_name")

router = SimpleRouter()
router.register("domains", api.DomainViewSet, basename="api-domain")
router.register("services", api.ServiceViewSet, basename="api-service")
router.register("topics", api.TopicViewSet, basename="api-topic")
router.register("events", api.EventTypeViewSet, basename="api-event")
router.register("producers", api.ProducerViewSet, basename="api-producer")
router.register("consumers", api.ConsumerViewSet, basename="api-consumer")
router.register("flows", api.FlowViewSet, basename="api-flow")

urlpatterns = [
    *router.urls,
    path("graph/", api.graph, name="api-graph"),
    path("lints/", api.lints, name="api-lints"),
    path("registry/events/<event_name:name>/versions/", api.registry_versions, name="api-registry-versions"),
    path("registry/events/<event_name:name>/versions/latest", api.registry_latest, name="api-registry-latest"),
    path("registry/events/<event_name:name>/versions/<int:version>", api.registry_version, name="api-registry-version"),
    path(
        "registry/events/<event_name:name>/compatibility",
        api.registry_compatibility,
        name="api-registry-compatibility",
    ),
]
