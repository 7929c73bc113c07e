"""A URLconf with views that fail, for the 500 page tests."""

from django.urls import path

LEAKY_URL = "postgres://eventhub:s3cret-local-pw@db.internal:5432/eventhub"


def boom(request):
    raise RuntimeError("boom")


def leak(request):
    """Fails with a credential URL in a local variable, in a dict, and in the exception's text."""
    url = LEAKY_URL
    options = {"replica": {"url": LEAKY_URL.replace("local", "nested-local")}}
    raise ConnectionError(f"could not connect to {url} ({len(options)} options)")


urlpatterns = [path("boom/", boom), path("leak/", leak)]
