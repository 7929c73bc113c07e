"""Forms of the dead-letter pages: filters, retry, discard, edit (schema form or JSON), bulk jobs.

What a form accepts is checked here; what an action may do is decided by the
verbs in `deadletters.actions`, which the views call with the cleaned values.
The list filters are `deadletters.filters.DeadLetterFilterForm`, shared with the
REST API and stored job selections; this module only dresses it for the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.http import QueryDict

from deadletters import filters, schemaform
from deadletters.models import MAX_ID, MAX_RATE, DeadLetter, RedriveJob
from eventhub.sdk.payload import PayloadDecodeError, decode_json

EVERY_GROUP = ""  # target_group value: replay to every group reading the topic
MAX_SELECTED = 10_000  # ids in one job selection (deadletters.actions.MAX_IDS)


# --------------------------------------------------------------------------- filters
def filter_form(params: QueryDict) -> filters.DeadLetterFilterForm:
    """The shared filter form bound to the query string, with the page's widgets."""
    form = filters.form_from(params)
    form.fields["since"].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
    form.fields["until"].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
    form.fields["q"].widget.attrs.update(placeholder="order id, customer…", type="search")
    for name in ("topic", "event_type", "error_class", "group", "service"):
        form.fields[name].widget.attrs["list"] = f"dl-known-{name}"
    return form


def filter_query(cleaned: dict[str, Any], **override: Any) -> str:
    """A query string for the cleaned filters (plus overrides; None drops a key), for links."""
    stored = {**filters.to_selection(cleaned), **override}
    query = QueryDict(mutable=True)
    for name, value in stored.items():
        if value in (None, "", []):
            continue
        query[name] = ",".join(value) if isinstance(value, list) else str(value)
    return query.urlencode()


# --------------------------------------------------------------------------- single actions
def group_choices(failing_group: str, designed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Targets of a replay: every group, the group that failed, the other groups of the design."""
    choices = [(EVERY_GROUP, "Every consumer group of the topic")]
    if failing_group:
        choices.append((failing_group, f"Only {failing_group} (the group that failed)"))
    for service, group in designed:
        if group and group != failing_group:
            choices.append((group, f"Only {group} ({service})" if service else f"Only {group}"))
    return choices


class RetryForm(forms.Form):
    target_group = forms.ChoiceField(
        required=False,
        label="Send to",
        help_text="A targeted replay carries x-eventhub-replay-group; consumers of other groups skip it.",
    )
    confirm_target = forms.BooleanField(
        required=False,
        label="Send to the topic the record names",
        help_text="Only the record's headers name its source topic: no designed topic dead-letters here.",
    )

    def __init__(self, *args: Any, groups: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target_group"].choices = groups or [(EVERY_GROUP, "Every consumer group of the topic")]


class DiscardForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. test order, customer refunded by hand"}),
        help_text="Kept in the audit trail.",
        error_messages={"required": "Say why it is discarded."},
    )


# --------------------------------------------------------------------------- edit and retry
class JsonPayloadForm(RetryForm):
    """The raw JSON editor: the whole payload as text."""

    MODE = "json"

    payload = forms.CharField(
        strip=False,  # line and column numbers in errors must match what the user sees
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        error_messages={"required": "Give the payload (JSON)."},
    )

    def clean_payload(self) -> Any:
        text = self.cleaned_data["payload"]
        limit = settings.EVENTHUB_DLQ_PAYLOAD_CAP
        if len(text.encode()) > limit:
            raise forms.ValidationError(f"The payload is {len(text.encode())} bytes; the limit is {limit}.")
        try:
            return decode_json(text, max_bytes=limit)
        except PayloadDecodeError as error:
            raise forms.ValidationError(schemaform.json_error_message(error)) from None

    def add_problems(self, found: list[schemaform.SchemaProblem]) -> None:
        for problem in found:
            self.add_error("payload", f"{problem.json_path}: {problem.message}")


@dataclass
class FieldRow:
    """One spec of the schema form with its bound inputs, for the template (which cannot index forms)."""

    spec: schemaform.FieldSpec
    field: forms.BoundField | None
    null: forms.BoundField | None
    errors: list[str]
    children: list[FieldRow] = field(default_factory=list)


class SchemaPayloadForm(RetryForm):
    """The payload as a form generated from the event's schema (see deadletters.schemaform).

    Every input is text; `schemaform.to_payload` turns the values into the
    payload and says which ones it cannot read. Problems found against the
    schema are added next to their field with `add_problems`.
    """

    MODE = "form"

    def __init__(self, spec: schemaform.SchemaForm, *args: Any, original: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.original = original
        self.object_errors: dict[str, list[str]] = {}
        current = self.data if self.is_bound else (self.initial or {})
        for item in schemaform.walk(spec.fields):
            if item.nullable:
                self.fields[item.null_name] = forms.BooleanField(required=False, label="null")
            if item.kind != "object":
                self.fields[item.name] = self._input(item, current.get(item.name))

    def _input(self, spec: schemaform.FieldSpec, current: Any) -> forms.Field:
        attrs: dict[str, Any] = {"data-path": spec.json_path, "spellcheck": "false"}
        if spec.kind in ("enum", "boolean"):
            widget: forms.Widget = forms.Select(choices=schemaform.options(spec, current), attrs=attrs)
        elif spec.kind == "json":
            widget = forms.Textarea(attrs={**attrs, "rows": 4, "class": "code"})
        elif spec.kind == "string" and isinstance(current, str) and "\n" in current:
            widget = forms.Textarea(attrs={**attrs, "rows": 3})
        else:
            if spec.kind in ("number", "integer"):
                # Text, not type=number: a failing value such as "twelve" must stay visible.
                attrs["inputmode"] = "decimal" if spec.kind == "number" else "numeric"
            widget = forms.TextInput(attrs=attrs)
        return forms.CharField(required=False, strip=False, label=spec.label, help_text=spec.description, widget=widget)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        payload, errors = schemaform.to_payload(self.spec, cleaned, self.original)
        for name, message in errors.items():
            self.add_error(name, message)
        cleaned["payload"] = payload
        return cleaned

    def add_problems(self, found: list[schemaform.SchemaProblem]) -> None:
        """Show each problem next to its field (the JSON path with it); others above the form."""
        for problem in found:
            spec = schemaform.field_for(self.spec, problem.path)
            message = f"{problem.json_path}: {problem.message}"
            if spec is None:
                self.add_error(None, message)
            elif spec.kind == "object":
                self.object_errors.setdefault(spec.name, []).append(message)
            else:
                self.add_error(spec.name, message)

    def rows(self) -> list[FieldRow]:
        def row(spec: schemaform.FieldSpec) -> FieldRow:
            return FieldRow(
                spec=spec,
                field=self[spec.name] if spec.name in self.fields else None,
                null=self[spec.null_name] if spec.null_name in self.fields else None,
                errors=self.object_errors.get(spec.name, []),
                children=[row(child) for child in spec.children],
            )

        return [row(spec) for spec in self.spec.fields]


# --------------------------------------------------------------------------- bulk jobs
class IdListField(forms.Field):
    """Dead-letter ids from checkboxes (name repeated) or one comma-separated value."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        ids: list[int] = []
        for item in values:
            for part in str(item).split(","):
                part = part.strip()
                if not part:
                    continue
                # isdigit() alone takes "²" and numbers past any id.
                if not (part.isascii() and part.isdigit()) or int(part) > MAX_ID:
                    raise forms.ValidationError(f"{part[:40]!r} is not a dead-letter id.")
                ids.append(int(part))
        return list(dict.fromkeys(ids))


class RedriveJobForm(forms.Form):
    """A bulk retry or discard over selected ids or a filter; previewed (dry run) before it starts."""

    PREVIEW, START = "preview", "start"

    action = forms.ChoiceField(choices=RedriveJob.ACTIONS)
    ids = IdListField(required=False)
    filter_query = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)
    # A grouped view row the filter cannot name (no error class, group or event type):
    # {"error_class", "group", "event_type"} within filter_query, resolved to ids here.
    group_key = forms.JSONField(required=False, widget=forms.HiddenInput)
    rate_per_s = forms.FloatField(
        min_value=0.1,
        max_value=MAX_RATE,
        initial=50,
        label="Rate cap (messages/s)",
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="The job never sends faster than this, so a fixed consumer is not flooded.",
    )
    target_group = forms.CharField(
        required=False,
        max_length=255,
        label="Only to consumer group",
        widget=forms.TextInput(attrs={"list": "dl-job-groups", "placeholder": "every group"}),
        help_text="Empty: every group reading the topics gets the replays.",
    )
    reason = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    confirm_targets = forms.BooleanField(
        required=False,
        label="Send to the topics only the records name",
        help_text="The preview lists them: no designed topic dead-letters to where they were found.",
    )
    step = forms.ChoiceField(choices=[(PREVIEW, "Preview"), (START, "Start")], required=False)
    # What the shown dry run was for; a start for anything else shows the new dry run first.
    previewed = forms.CharField(required=False, max_length=400, widget=forms.HiddenInput)

    DEFAULT_RATE = "50"

    def __init__(self, data: QueryDict | None = None, *args: Any, **kwargs: Any) -> None:
        # The list's and the grouped view's buttons only say what to select and do;
        # the preview page starts from the default rate, which the operator can change.
        if data is not None and not data.get("rate_per_s"):
            data = data.copy()
            data["rate_per_s"] = self.DEFAULT_RATE
        super().__init__(data, *args, **kwargs)

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"]
        if len(ids) > MAX_SELECTED:
            raise forms.ValidationError(f"Select at most {MAX_SELECTED} dead letters; use a filter for more.")
        return ids

    def clean_group_key(self) -> dict[str, str | None] | None:
        key = self.cleaned_data["group_key"]
        if key in (None, ""):
            return None
        names = ("error_class", "group", "event_type")
        if not isinstance(key, dict) or set(key) != set(names):
            raise forms.ValidationError("Not a group of the grouped view.")
        if not all(isinstance(key[name], str) or (name == "event_type" and key[name] is None) for name in names):
            raise forms.ValidationError("Not a group of the grouped view.")
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        ids, query = cleaned.get("ids") or [], (cleaned.get("filter_query") or "").strip()
        group = cleaned.get("group_key")
        if not ids and not query and not group and not self.errors:
            raise forms.ValidationError("Select dead letters first (tick rows, or use a group's buttons).")
        if ids and (query or group):
            raise forms.ValidationError("Select by ticked rows or by a filter, not both.")
        filter_form = filters.form_from(QueryDict(query))
        if not filter_form.is_valid():
            raise forms.ValidationError(f"Bad filter: {filter_form.errors.as_text()}")
        if group:
            cleaned["ids"] = self._group_ids(filter_form.cleaned_data, group)
        elif query:
            cleaned["filter"] = filters.to_selection(filter_form.cleaned_data)
            if not cleaned["filter"]:
                raise forms.ValidationError("A job over every dead letter needs at least one filter.")
        if cleaned.get("action") == RedriveJob.DISCARD and cleaned.get("step") == self.START:
            if not (cleaned.get("reason") or "").strip():
                self.add_error("reason", "Say why they are discarded.")
        if cleaned.get("action") == RedriveJob.DISCARD:
            cleaned["target_group"] = ""
        return cleaned

    @staticmethod
    def _group_ids(cleaned_filter: dict[str, Any], group: dict[str, str | None]) -> list[int]:
        members = filters.apply(DeadLetter.objects.all(), cleaned_filter).filter(
            error_class=group["error_class"], group=group["group"]
        )
        if group["event_type"] is None:
            members = members.filter(event_type__isnull=True)
        else:
            members = members.filter(event_type__name=group["event_type"])
        ids = list(members.order_by("id").values_list("id", flat=True)[: MAX_SELECTED + 1])
        if not ids:
            raise forms.ValidationError("None of that group is left.")
        if len(ids) > MAX_SELECTED:
            raise forms.ValidationError(f"The group has more than {MAX_SELECTED} dead letters; narrow the filters.")
        return ids

    def fingerprint(self) -> str:
        """The choices a dry run depends on (the selection is fixed by the hidden inputs)."""
        return f"{self.cleaned_data['action']}|{self.cleaned_data['target_group'].strip()}"

    def selection(self) -> dict[str, Any]:
        cleaned = self.cleaned_data
        return {"ids": cleaned["ids"]} if cleaned.get("ids") else {"filter": cleaned["filter"]}
