"""System checks for settings that are valid but probably wrong."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def deployment_settings(app_configs, **kwargs):
    warnings = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if not settings.DEBUG and engine.endswith("sqlite3"):
        warnings.append(
            Warning(
                "SQLite with DEBUG off: fine for one process, slow for several web and worker processes.",
                hint="Set DATABASE_URL=postgres://... for a scaled-out deployment.",
                id="eventhub.W001",
            )
        )
    if settings.EVENTHUB_CHANNEL_LAYER == "memory" and not settings.DEBUG:
        warnings.append(
            Warning(
                "In-memory channel layer: websocket pushes reach only clients of this one process.",
                hint="Set EVENTHUB_CHANNEL_LAYER=redis when running several Daphne processes.",
                id="eventhub.W002",
            )
        )
    if not settings.DEBUG and not settings.EVENTHUB_METRICS_TOKEN:
        warnings.append(
            Warning(
                "/metrics needs a login session because EVENTHUB_METRICS_TOKEN is not set.",
                hint="Set EVENTHUB_METRICS_TOKEN and give Prometheus the bearer token.",
                id="eventhub.W003",
            )
        )
    return warnings
