"""GET /healthz: is each required part answering? No login; no secrets in the answer."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from eventhub import connections


def _probe(check) -> dict:
    started = time.monotonic()
    try:
        detail = check()
    except Exception as error:  # noqa: BLE001 - any failure is "down", reported by class
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    result = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    if detail:
        result.update(detail)
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    connections.redis().ping()


def _bus() -> dict:
    bus = connections.bus()
    bus.ping()
    return {"kind": bus.kind}


@never_cache
@require_GET
@login_not_required
def healthz(request):
    parts = {"database": _probe(_database), "redis": _probe(_redis), "bus": _probe(_bus)}
    parts["redis"]["required"] = settings.EVENTHUB_REDIS_REQUIRED
    required = ["database", "bus"] + (["redis"] if settings.EVENTHUB_REDIS_REQUIRED else [])
    healthy = all(parts[name]["ok"] for name in required)
    return JsonResponse({"status": "ok" if healthy else "degraded", **parts}, status=200 if healthy else 503)
