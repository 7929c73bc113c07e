"""Forms of the designer app: catalog filters, version comparison, registering a schema."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings

CATALOG_TABS = ("events", "services", "topics")


class CatalogFilterForm(forms.Form):
    """The browse page's query string: ?q=&domain=&tab=&page=."""

    q = forms.CharField(required=False, max_length=200, strip=True)
    domain = forms.SlugField(required=False, max_length=100)
    tab = forms.ChoiceField(required=False, choices=[(t, t) for t in CATALOG_TABS])
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def values(self) -> dict[str, Any]:
        """Cleaned values, falling back to defaults for any that did not validate."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "q": data.get("q") or "",
            "domain": data.get("domain") or "",
            "tab": data.get("tab") or "",
            "page": data.get("page") or 1,
        }


# A version number is a PositiveIntegerField: PostgreSQL's integer. A larger one named in a URL
# is a form error, not a query the database refuses.
MAX_VERSION = 2**31 - 1


class CompareForm(forms.Form):
    a = forms.IntegerField(min_value=1, max_value=MAX_VERSION, label="From version")
    b = forms.IntegerField(min_value=1, max_value=MAX_VERSION, label="To version")


def _parse_json(text: str, what: str) -> Any:
    """json.loads with an error a person can act on: where the problem is, by line and column."""
    limit = settings.EVENTHUB_MAX_SCHEMA_BYTES
    size = len(text.encode())
    if size > limit:
        raise forms.ValidationError(f"The {what} is {size} bytes; the limit is {limit} bytes.", code="too_large")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise forms.ValidationError(
            f"Invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}.", code="invalid_json"
        ) from None


class RegisterVersionForm(forms.Form):
    """A candidate schema version. Which button was pressed arrives as ``action``."""

    REGISTER, CHECK, DRAFT = "register", "check", "draft"
    ACTIONS = [(REGISTER, "Register version"), (CHECK, "Check only"), (DRAFT, "Save as draft")]

    # strip=False: line and column numbers in JSON errors must match what the user sees.
    schema = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        help_text="The JSON Schema document (draft-07 unless $schema says otherwise).",
    )
    changelog = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What changed and why (Markdown).",
    )
    examples = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "code"}),
        help_text="Optional: a JSON array of example events; each must match the schema.",
    )
    action = forms.ChoiceField(choices=ACTIONS, required=False)
    # Set once the author has seen which real events the version would reject (register_version).
    accept_traffic = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_schema(self) -> Any:
        return _parse_json(self.cleaned_data["schema"], "schema")

    def clean_examples(self) -> list:
        text = self.cleaned_data.get("examples") or ""
        if not text.strip():
            return []
        value = _parse_json(text, "examples")
        if not isinstance(value, list):
            raise forms.ValidationError(
                'Examples must be a JSON array of events, e.g. [{"order_id": "o-1"}].', code="not_array"
            )
        return value

    def clean_action(self) -> str:
        return self.cleaned_data.get("action") or self.REGISTER
