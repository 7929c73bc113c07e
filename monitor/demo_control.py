"""Which demo services are stopped: a small file the simulator follows (`manage.py demo_service`).

A file, not Redis or the database: the demo runs without Redis, and the simulator is a
separate process that only knows the buses. One service slug per line.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

SERVICES = ("orders", "payments", "inventory", "shipping", "notifications", "analytics")


def path() -> Path:
    return Path(settings.VAR_DIR) / "demo-stopped"


def stopped() -> set[str]:
    """The demo services stopped now (none when the file is missing)."""
    try:
        text = path().read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    return {line.strip() for line in text.splitlines() if line.strip() in SERVICES}


def set_stopped(services: set[str]) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text("".join(f"{name}\n" for name in sorted(services)), encoding="utf-8")
    temporary.replace(target)  # the simulator never reads half a file
