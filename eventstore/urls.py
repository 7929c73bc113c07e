"""Routes of the event store: its pages and its REST API.

Included from eventhub/urls.py before designer's routes: /api/v1/flows/{id}/checks sits
under designer's /api/v1/flows/ router, and designer must not know of the event store.
"""

from django.urls import path

from eventstore.api import browse as browse_api
from eventstore.api import discovered as discovered_api
from eventstore.api import flow_checks as flow_checks_api
from eventstore.api import traces as traces_api
from eventstore.views import browse, discovered, events, flow_checks, traces

urlpatterns = [
    # Indexed events (eventstore/indexer.py) and one event with its payload (eventstore/payloads.py).
    path("events/", events.event_store, name="event-store"),
    path("events/settings", events.topic_setting_save, name="event-store-setting"),
    path("events/<int:pk>/", events.event_detail, name="event-store-event"),
    # Traces (eventstore/traces.py).
    path("traces/", traces.trace_list, name="traces"),
    path("traces/<path:ident>/", traces.trace_detail, name="trace"),
    path("api/v1/traces/", traces_api.trace_list, name="api-traces"),
    path("api/v1/traces/events/<int:pk>/payload", traces_api.trace_event_payload, name="api-trace-event-payload"),
    path("api/v1/traces/<path:ident>", traces_api.trace_detail, name="api-trace"),
    # Flows as live checks (eventstore/flow_checks.py).
    path("flows/<slug:slug>/", flow_checks.flow_checks_page, name="flow-checks"),
    path("api/v1/flows/<int:pk>/checks", flow_checks_api.flow_checks_view, name="api-flow-checks"),
    path("api/v1/flow-checks/<int:pk>", flow_checks_api.flow_check_detail, name="api-flow-check"),
    # The topic browser: any topic on either bus (eventstore/browse.py).
    path("browse/", browse.topic_browser, name="topic-browser"),
    path("browse/<str:bus>/<path:topic>/", browse.topic_browser_topic, name="topic-browser-topic"),
    path("api/v1/bus/<str:bus>/topics/", browse_api.topic_list, name="api-bus-topics"),
    path("api/v1/bus/<str:bus>/topics/<path:name>/messages", browse_api.topic_messages, name="api-bus-messages"),
    # Schemas discovered from traffic, and drift (eventstore/schema_discovery.py).
    path("events/discovered/", discovered.discovered_list, name="discovered-schemas"),
    path("events/discovered/<int:pk>/", discovered.discovered_detail, name="discovered-schema"),
    path("events/drift/<str:name>", discovered.drift_fragment, name="event-drift"),
    path("api/v1/discovered/", discovered_api.api_discovered_list, name="api-discovered-list"),
    path("api/v1/discovered/<int:pk>", discovered_api.api_discovered_detail, name="api-discovered-detail"),
    path("api/v1/discovered/<int:pk>/approve", discovered_api.api_discovered_approve, name="api-discovered-approve"),
]
