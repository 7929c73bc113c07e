from django.urls import include, path

from designer.views import asyncapi as asyncapi_views
from designer.views import canvas, catalog

urlpatterns = [
    path("api/v1/", include("designer.api_urls")),
    # Canvas and flowcharts
    path("designer/", canvas.canvas, name="designer-canvas"),
    path("designer/flowchart/", canvas.flowchart_page, name="designer-flowchart"),
    path("designer/flowchart.mmd", canvas.flowchart_mmd, name="designer-flowchart-mmd"),
    # Catalog
    path("catalog/", catalog.catalog, name="designer-catalog"),
    path("catalog/events/<str:name>/", catalog.event_detail, name="designer-event-detail"),
    path("catalog/events/<str:name>/compare", catalog.event_compare, name="designer-event-compare"),
    path("catalog/events/<str:name>/versions/new/", catalog.register_version, name="designer-event-register"),
    path("catalog/services/<slug:slug>/", catalog.service_detail, name="designer-service-detail"),
    path("catalog/topics/<int:pk>/", catalog.topic_detail, name="designer-topic-detail"),
    # AsyncAPI
    path("catalog/import/", asyncapi_views.import_document, name="designer-asyncapi-import"),
    path("catalog/export/asyncapi.yaml", asyncapi_views.export_document, name="designer-asyncapi-export"),
]
