from django.urls import include, path

from designer.views import canvas, catalog

urlpatterns = [
    path("api/v1/", include("designer.api_urls")),
    # Canvas and flowcharts
    path("designer/", canvas.canvas, name="designer-canvas"),
    # Catalog
    path("catalog/", catalog.catalog, name="designer-catalog"),
    # AsyncAPI
]
