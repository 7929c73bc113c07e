"""Tell every run-time page when a bus is down, from the collector's latest snapshot."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def bus_status(request) -> dict:
    """`buses_down`: [{"kind", "error"}] on monitor and dead-letter pages; nothing elsewhere.

    Design and catalog pages do not need the bus, so they do not pay for the lookup.
    """
    match = getattr(request, "resolver_match", None)
    name = (match.url_name or "") if match else ""
    # The dashboard draws its own live banners from websocket frames.
    runtime_page = name.startswith(("monitor-", "dead-letter"))
    if not runtime_page or name == "monitor-dashboard" or not request.user.is_authenticated:
        return {}
    from monitor import snapshots

    try:
        buses = snapshots.load().get("buses") or []
    except Exception as error:  # noqa: BLE001 - the page still renders; the banner says why
        log.warning("bus status unavailable: %s", error)
        return {"buses_down": [{"kind": "snapshot store", "error": type(error).__name__}]}
    return {"buses_down": [bus for bus in buses if not bus.get("up", True)]}
