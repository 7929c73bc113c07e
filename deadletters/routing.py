from django.urls import path

from deadletters import consumers

websocket_urlpatterns = [
    path("ws/dead-letters/", consumers.DeadLettersConsumer.as_asgi()),
]
