from django.urls import path

from designer import views

urlpatterns = [
    path("designer/", views.canvas, name="designer-canvas"),
    path("catalog/", views.catalog, name="designer-catalog"),
]
