"""Websocket routes of every app, collected in one place for asgi.py."""

from deadletters.routing import websocket_urlpatterns as dead_letter_routes
from eventstore.routing import websocket_urlpatterns as event_store_routes
from monitor.routing import websocket_urlpatterns as monitor_routes

websocket_urlpatterns = [*monitor_routes, *dead_letter_routes, *event_store_routes]
