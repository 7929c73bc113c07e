from django.urls import path

from eventstore import consumers

websocket_urlpatterns = [
    path("ws/browse/", consumers.BrowseTailConsumer.as_asgi()),
]
