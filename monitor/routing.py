from django.urls import path

from monitor import consumers

websocket_urlpatterns = [
    path("ws/monitor/", consumers.MonitorConsumer.as_asgi()),
]
