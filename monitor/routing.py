from django.urls import path

from monitor import consumers

websocket_urlpatterns = [
    path("ws/monitor/", consumers.MonitorConsumer.as_asgi()),
    path("ws/dead-letters/", consumers.DeadLettersConsumer.as_asgi()),
]
