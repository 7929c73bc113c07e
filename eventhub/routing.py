"""Websocket routes of every app, collected in one place for asgi.py."""

from monitor.routing import websocket_urlpatterns as monitor_routes

websocket_urlpatterns = [*monitor_routes]
