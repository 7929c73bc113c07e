"""Monitor pages: the live dashboard (the dead-letter pages are in deadletters/views.py)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from designer.graph import build_graph
from designer.models import Domain
from monitor import deltas, pages

log = logging.getLogger(__name__)


def _latest_snapshot() -> tuple[dict[str, Any] | None, str | None]:
    """The collector's latest snapshot, or None before its first tick; and why it is missing.

    The page must render even when the snapshot store (Redis) does not answer:
    the websocket brings the numbers as soon as it can, so a failed read here
    only costs the first paint.
    """
    try:
        from monitor import snapshots
    except ImportError:  # the back end is optional for the page itself
        return None, None
    try:
        snapshot = snapshots.load()
    except Exception as error:  # noqa: BLE001 - Redis down, a half-written key: the page still renders
        log.warning("dashboard: cannot read the latest snapshot: %s", type(error).__name__)
        return None, "The latest snapshot could not be read; waiting for the live connection."
    # The store answers an empty snapshot ("at" None) until a collector has ticked.
    return (snapshot if snapshot.get("at") else None), None


def _silent_after() -> str:
    """The collector's threshold for a silent designed connection, for the drift panel's hint."""
    try:
        from monitor.collector import SILENT_EDGE_S
    except ImportError:
        return ""
    return f"{SILENT_EDGE_S / 60:g} min" if SILENT_EDGE_S >= 60 else f"{SILENT_EDGE_S:g} s"


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The live monitor. Everything on it is read-only, so every logged-in user may see it.

    The first paint comes from the embedded snapshot and design graph
    (json_script); after that, frames from /ws/monitor/ keep it current.
    """
    domain = request.GET.get("domain") or ""
    if domain and not Domain.objects.filter(slug=domain).exists():
        raise Http404(f"No domain called {domain!r}.")
    snapshot, problem = _latest_snapshot()
    if snapshot is not None:
        # What the socket will send, the first page of the groups table: the page need not
        # carry every group.
        scope = deltas.scope_of_graph(build_graph(domain)) if domain else None
        snapshot = pages.paged(snapshot, pages.GroupsPage(), scope)
    context = {
        "snapshot": snapshot,
        "snapshot_problem": problem,
        "graph": build_graph(None),  # the whole design: the domain filter works in the page
        "domains": Domain.objects.all(),
        "domain": domain,
        "tick_seconds": f"{settings.EVENTHUB_TICK_SECONDS:g}",
        "silent_after": _silent_after(),
        "urls": {
            "socket": "/ws/monitor/",
            "history": reverse("monitor-api-history-busiest"),
            "snapshot": reverse("monitor-api-snapshot"),
            "adopt": reverse("monitor-api-adopt"),
            "browse": reverse("topic-browser"),
            "canvas": reverse("designer-canvas"),
            "login": reverse(settings.LOGIN_URL),
        },
    }
    return render(request, "monitor/dashboard.html", context)
