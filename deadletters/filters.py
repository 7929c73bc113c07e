"""Which dead letters a list, a grouped view or a redrive job is about.

One form reads the filters from a query string (the list page, the REST API)
or from a job's stored selection, so all three agree on what "topic=orders,
status=new" means. `apply` turns the cleaned values into a queryset;
`to_selection` stores them as JSON in a RedriveJob.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from deadletters.models import DeadLetter

STATUS_VALUES = [value for value, _label in DeadLetter.STATUSES]
# Query-string names, in the order the list page shows them.
FIELDS = ("topic", "status", "error_class", "group", "event_type", "service", "since", "until", "q", "bus")


class DeadLetterFilterForm(forms.Form):
    topic = forms.CharField(required=False, max_length=249, help_text="Source topic or dead-letter topic.")
    status = forms.CharField(
        required=False, max_length=200, help_text="One status or several, comma-separated: new,retried."
    )
    error_class = forms.CharField(required=False, max_length=300)
    group = forms.CharField(required=False, max_length=255, help_text="The consumer group that failed.")
    event_type = forms.CharField(required=False, max_length=200, help_text="Event type name, e.g. order.placed.")
    service = forms.CharField(required=False, max_length=100)
    since = forms.DateTimeField(required=False, help_text="Last failed at or after (ISO-8601).")
    until = forms.DateTimeField(required=False, help_text="Last failed before (ISO-8601).")
    q = forms.CharField(required=False, max_length=200, help_text="Text in the payload, headers or error.")
    bus = forms.ChoiceField(required=False, choices=[("", "any"), ("kafka", "Kafka"), ("redis", "Redis Streams")])

    def clean_status(self) -> list[str]:
        raw = self.cleaned_data.get("status") or ""
        values = [part.strip() for part in raw.split(",") if part.strip()]
        unknown = [value for value in values if value not in STATUS_VALUES]
        if unknown:
            raise forms.ValidationError(
                f"Unknown status {', '.join(unknown)}; use {', '.join(STATUS_VALUES)}.", code="invalid_choice"
            )
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after 'since'.")
        return cleaned


def form_from(params: Mapping[str, Any]) -> DeadLetterFilterForm:
    """The form bound to the known keys of a QueryDict or a plain dict (lists become comma lists)."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        getlist = getattr(params, "getlist", None)
        values = getlist(name) if getlist is not None else params.get(name)
        if isinstance(values, (list, tuple)):
            values = ",".join(str(v) for v in values if v not in (None, ""))
        if values not in (None, ""):
            data[name] = values
    return DeadLetterFilterForm(data)


def apply(
    queryset: QuerySet[DeadLetter], cleaned: Mapping[str, Any], *, hide_payload_of: Collection[int] = ()
) -> QuerySet[DeadLetter]:
    """Narrow `queryset` by a cleaned DeadLetterFilterForm (or a stored selection's filter).

    `q` does not look into the payloads of the event types in `hide_payload_of`
    (deadletters.sensitive.unsearchable_event_types: the user may not see their sensitive fields).
    """
    if cleaned.get("topic"):
        queryset = queryset.filter(Q(source_topic=cleaned["topic"]) | Q(dlq_topic=cleaned["topic"]))
    if cleaned.get("status"):
        queryset = queryset.filter(status__in=cleaned["status"])
    for name, lookup in (
        ("error_class", "error_class"),
        ("group", "group"),
        ("event_type", "event_type__name"),
        ("service", "service"),
        ("bus", "bus"),
    ):
        if cleaned.get(name):
            queryset = queryset.filter(**{lookup: cleaned[name]})
    if cleaned.get("since"):
        queryset = queryset.filter(last_failed_at__gte=cleaned["since"])
    if cleaned.get("until"):
        queryset = queryset.filter(last_failed_at__lt=cleaned["until"])
    if cleaned.get("q"):
        queryset = queryset.search(cleaned["q"], hide_payload_of=hide_payload_of)
    return queryset


def to_selection(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """Cleaned values as JSON: what a RedriveJob stores under selection["filter"]."""
    stored: dict[str, Any] = {}
    for name in FIELDS:
        value = cleaned.get(name)
        if value in (None, "", []):
            continue
        stored[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return stored


def from_selection(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `to_selection`."""
    cleaned = dict(stored)
    for name in ("since", "until"):
        if isinstance(cleaned.get(name), str):
            cleaned[name] = parse_datetime(cleaned[name])
    return cleaned
