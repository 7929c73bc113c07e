from __future__ import annotations

from django import forms

from eventstore.models import BUS_CHOICES, TopicIndexSetting
from eventstore.traces import BadCursor, decode_cursor


class TopicIndexSettingForm(forms.ModelForm):
    """How one topic is indexed; bus and topic name the row (created on first save)."""

    bus = forms.ChoiceField(choices=BUS_CHOICES)
    topic = forms.CharField(max_length=249)

    class Meta:
        model = TopicIndexSetting
        fields = ["sample_rate", "keep_payloads", "retention_days"]


class TraceFilterForm(forms.Form):
    """The traces list's query string (the API and the /traces/ page): bad values are a 400 naming the field."""

    type = forms.CharField(required=False, max_length=200, help_text="Event type, e.g. order.placed.")
    service = forms.CharField(required=False, max_length=100, help_text="Producing service (slug or name).")
    since = forms.DateTimeField(required=False, help_text="An event at or after (ISO-8601).")
    until = forms.DateTimeField(required=False, help_text="An event before (ISO-8601).")
    has_dead_letter = forms.TypedChoiceField(
        required=False,
        choices=[("", "either"), ("true", "yes"), ("false", "no")],
        coerce=lambda value: value == "true",
        empty_value=None,
    )
    invalid = forms.TypedChoiceField(
        required=False,
        choices=[("", "either"), ("true", "yes"), ("false", "no")],
        coerce=lambda value: value == "true",
        empty_value=None,
        help_text="Holds an event that failed its schema.",
    )
    key = forms.CharField(required=False, max_length=1000, strip=False, help_text="An event's key, as text.")
    event_id = forms.CharField(required=False, max_length=200, help_text="An event's id (ce_id).")
    cursor = forms.CharField(required=False, max_length=200)
    limit = forms.IntegerField(required=False, min_value=1, max_value=100)

    def clean_cursor(self) -> str:
        cursor = self.cleaned_data.get("cursor") or ""
        if cursor:
            try:
                decode_cursor(cursor)
            except BadCursor as error:
                raise forms.ValidationError(str(error), code="invalid") from error
        return cursor

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after 'since'.")
        return cleaned
