"""EventHub: design, catalog, monitor and redrive events on Kafka and Redis Streams.

This package is both the Django project (settings, urls, asgi, celery) and the
Django-free runtime that services import (`eventhub.bus`, `eventhub.sdk`), so it
imports nothing at package level.
"""
