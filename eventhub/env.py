"""Reading settings from the environment, loudly.

A bad value stops start-up with one line naming the variable, instead of a
stack trace twenty frames deep or, worse, a silently wrong default.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse


class ConfigError(SystemExit):
    """Exits the process with one line; SystemExit so no traceback is printed."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"EventHub configuration error: {name} {problem}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def text(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def boolean(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, f"must be true or false, not {raw!r}")


def integer(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, not {value}")
    return value


def number(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, not {value}")
    return value


def items(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in text(name, default).split(",") if item.strip()]


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = text(name, default).lower()
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


def url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = text(name, default)
    parsed = urlparse(value)
    if parsed.scheme not in schemes:
        raise ConfigError(name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}, not {value!r}")
    return value


def host_ports(name: str, default: str) -> str:
    """A comma-separated host:port list (Kafka bootstrap servers)."""
    value = text(name, default)
    for entry in value.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(name, f"must be host:port[,host:port...], not {value!r}")
    return value
