"""The event store's REST API (/api/v1/), one module per feature; the shapes are in eventstore/serializers.py."""
