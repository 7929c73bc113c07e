"""Routes of the event store's pages (/events/)."""

from django.urls import path

from eventstore import views

urlpatterns = [
    path("events/", views.event_store, name="event-store"),
    path("events/settings", views.topic_setting_save, name="event-store-setting"),
]
