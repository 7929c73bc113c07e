"""Template helpers for the catalog pages."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from designer import markdown

register = template.Library()


@register.filter
def render_markdown(text: str | None) -> SafeString:
    """Markdown to HTML; safe to mark because designer.markdown sanitises with nh3."""
    return mark_safe(markdown.render(text))  # noqa: S308 - sanitised by nh3 just above


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON text (escaped by the template like any other string)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_UNITS = (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000), ("second", 1_000))


@register.filter
def duration_ms(value: int | None) -> str:
    """Kafka-style retention in words: None is the broker default, -1 forever."""
    if value is None:
        return "broker default"
    if value < 0:
        return "forever"
    for unit, size in _UNITS:
        if value >= size and value % size == 0:
            count = value // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{value} ms"


@register.filter
def web_url(value: str | None) -> str:
    """The URL if it is http(s), else "": a stored javascript: URL never becomes a link."""
    text = (value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else ""
