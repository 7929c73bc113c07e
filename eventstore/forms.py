from __future__ import annotations

from django import forms

from eventstore.models import BUS_CHOICES, TopicIndexSetting


class TopicIndexSettingForm(forms.ModelForm):
    """How one topic is indexed; bus and topic name the row (created on first save)."""

    bus = forms.ChoiceField(choices=BUS_CHOICES)
    topic = forms.CharField(max_length=249)

    class Meta:
        model = TopicIndexSetting
        fields = ["sample_rate", "keep_payloads", "retention_days"]
