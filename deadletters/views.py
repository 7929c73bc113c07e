"""The dead-letter pages: list and grouped triage, one dead letter, edit and retry, bulk jobs.

Every logged-in user reads every page; acting (retry, edit, discard, jobs,
cancel) needs the Operator role: Viewers never see the buttons and get 403 on
POST. Every change goes through `deadletters.actions` (the one door, which
also broadcasts); these views read input through `deadletters.forms` and turn the
verbs' errors into messages with their status code (400 bad input, 409 wrong
state, 502 bus down).

Live updates: the pages listen on /ws/dead-letters/ (DeadLettersConsumer) and
fetch the small partials below (rows, a dead letter's state, a job's state)
when a frame says something they show has changed.

Payloads go through `deadletters.sensitive`: fields the schema marks sensitive are
"•••" without the view_sensitive permission (previews for everyone), and the
edit form keeps a "•••" sent back as the value it hides.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deadletters import actions, filters, forms, schemaform, sensitive
from deadletters.models import DeadLetter, RedriveJob, UnstoredDeadLetter
from designer.models import Consumer as DesignedConsumer
from eventhub import roles
from eventhub.hexdump import LIMIT as HEX_LIMIT
from eventhub.hexdump import hexdump
from eventhub.sdk import headers as h
from eventhub.sdk import pii

PAGE_SIZE = 50
PREVIEW_LENGTH = 120
GROUPS_LIMIT = 200
ROWS_LIMIT = 200  # ids per live rows request
KNOWN_LIMIT = 200  # values per filter suggestion list
JOB_ITEMS_SHOWN = 100
SOCKET_URL = "/ws/dead-letters/"
QUICK_RANGES = (("15 min", timedelta(minutes=15)), ("1 hour", timedelta(hours=1)), ("24 hours", timedelta(days=1)), ("7 days", timedelta(days=7)))  # fmt: skip
ACTIVE_JOB_STATES = (RedriveJob.PENDING, RedriveJob.RUNNING, RedriveJob.CANCELLING)

# Header name prefixes -> the convention they belong to (see deadletters.headers for
# what each one means); a header matching none is the application's own.
_CONVENTIONS = (
    ("x-eventhub-", "eventhub"),
    ("kafka_dlt-", "spring"),
    ("kafka_", "spring"),
    ("retry_topic-", "spring"),
    ("__connect.errors.", "kafka connect"),
    ("__streams.errors.", "kafka streams"),
    ("__rule.", "confluent"),
    ("ce_", "cloudevents"),
    ("content-type", "cloudevents"),
)


# --------------------------------------------------------------------------- access
def _get_dead_letter(pk: int) -> DeadLetter:
    return get_object_or_404(
        DeadLetter.objects.select_related("event_type", "schema_version", "edited_from", "replay_of", "job"), pk=pk
    )


def _get_dead_letter_for_operator(request: HttpRequest, pk: int) -> DeadLetter:
    roles.require_role(request.user, roles.OPERATOR)
    return _get_dead_letter(pk)


def _get_job(pk: int) -> RedriveJob:
    return get_object_or_404(RedriveJob.objects.select_related("created_by"), pk=pk)


def _get_job_for_operator(request: HttpRequest, pk: int) -> RedriveJob:
    roles.require_role(request.user, roles.OPERATOR)
    return _get_job(pk)


def _partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


# --------------------------------------------------------------------------- the list
def _list_rows(queryset: QuerySet[DeadLetter]) -> QuerySet[DeadLetter]:
    """Rows of the table: no payload, headers or stack trace, just a preview (see `_masked`)."""
    return queryset.table_rows(PREVIEW_LENGTH)


def _masked(rows) -> list[DeadLetter]:
    """Evaluated rows whose previews show no sensitive value."""
    return sensitive.previews(list(rows), PREVIEW_LENGTH)


def _filtered(request: HttpRequest, queryset: QuerySet[DeadLetter], cleaned: dict[str, Any]) -> QuerySet[DeadLetter]:
    hidden = sensitive.unsearchable_event_types(request.user) if cleaned.get("q") else ()
    return filters.apply(queryset, cleaned, hide_payload_of=hidden)


def _status_counts(queryset: QuerySet[DeadLetter]) -> list[dict[str, Any]]:
    found = dict(queryset.order_by().values_list("status").annotate(n=Count("id")))
    return [{"value": value, "label": label, "count": found.get(value, 0)} for value, label in DeadLetter.STATUSES]


def _groups(queryset: QuerySet[DeadLetter], cleaned: dict[str, Any]) -> list[dict[str, Any]]:
    """Dead letters by (error class, consumer group, event type), biggest first, with their bulk selections."""
    rows = queryset.by_cause(GROUPS_LIMIT)
    wanted = cleaned.get("status") or []
    for row in rows:
        keys = {"error_class": row["error_class"], "group": row["group"], "event_type": row["event_type"]}
        row["list_query"] = forms.filter_query(cleaned, **keys)
        # The filter has no "is empty": a group without an error class, group or event
        # type goes as a group key, which the job form resolves to exactly its ids.
        row["exact"] = all(keys.values())
        for action, allowed in (
            (RedriveJob.RETRY, actions.RETRYABLE),
            (RedriveJob.DISCARD, actions.DISCARDABLE),
        ):
            # Only the statuses the action applies to: the job's count is the button's N.
            statuses = [value for value in (wanted or allowed) if value in allowed]
            if row["exact"]:
                row[f"{action}_selection"] = {"filter_query": forms.filter_query(cleaned, status=statuses, **keys)}
            else:
                row[f"{action}_selection"] = {
                    "filter_query": forms.filter_query(cleaned, status=statuses),
                    "group_key": json.dumps(keys),
                }
    return rows


def _known_values() -> dict[str, list[str]]:
    """Suggestions for the filter inputs (datalists): what the table holds."""

    def distinct(field: str) -> list[str]:
        values = DeadLetter.objects.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()
        return list(values[:KNOWN_LIMIT])

    return {
        "topic": distinct("source_topic"),
        "error_class": distinct("error_class"),
        "group": distinct("group"),
        "service": distinct("service"),
        "event_type": list(
            DeadLetter.objects.filter(event_type__isnull=False)
            .order_by("event_type__name")
            .values_list("event_type__name", flat=True)
            .distinct()[:KNOWN_LIMIT]
        ),
    }


def _quick_ranges(cleaned: dict[str, Any]) -> list[tuple[str, str]]:
    now = timezone.localtime()
    return [
        (label, forms.filter_query(cleaned, since=(now - delta).strftime("%Y-%m-%dT%H:%M"), until=None))
        for label, delta in QUICK_RANGES
    ]


@require_GET
def dead_letter_list(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered, paginated, counted per status; ?view=grouped groups them by cause."""
    form = forms.filter_form(request.GET)
    grouped = request.GET.get("view") == "grouped"
    valid = form.is_valid()
    cleaned = form.cleaned_data if valid else {}
    base = (
        _filtered(request, DeadLetter.objects.all(), {**cleaned, "status": []}) if valid else DeadLetter.objects.none()
    )
    selected = filters.apply(base, {"status": cleaned.get("status")}) if cleaned.get("status") else base
    statuses = _status_counts(base)
    context: dict[str, Any] = {
        "form": form,
        "grouped": grouped,
        "statuses": statuses,
        "total_count": sum(item["count"] for item in statuses),
        "status": ",".join(cleaned.get("status") or []),
        "filtered": any(value not in (None, "", []) for key, value in cleaned.items() if key != "status"),
        "filter_query": forms.filter_query(cleaned) if valid else "",
        "quick_ranges": _quick_ranges(cleaned) if valid else [],
        "socket_url": SOCKET_URL,
        "active_jobs": RedriveJob.objects.filter(state__in=ACTIVE_JOB_STATES).defer("item_ids")[:5],
    }
    if request.GET.get("part") == "counts":  # the live list refreshes its status counts
        return render(request, "deadletters/_counts.html", context, status=200 if valid else 400)
    if grouped:
        context["groups"] = _groups(selected, cleaned)
    else:
        context["page"] = page = Paginator(_list_rows(selected), PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = _masked(page.object_list)
    status = 200 if valid else 400
    if _partial(request):
        return render(request, "deadletters/_results.html", context, status=status)
    context["known"] = _known_values()
    context["unstored_count"] = UnstoredDeadLetter.objects.count()
    return render(request, "deadletters/list.html", context, status=status)


@require_GET
def dead_letter_rows(request: HttpRequest) -> HttpResponse:
    """Table rows for ?ids=1,2,3 that match the filters in the query: what the live list inserts or swaps."""
    ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()][:ROWS_LIMIT]
    form = filters.form_from(request.GET)
    queryset = DeadLetter.objects.filter(pk__in=ids)
    queryset = _filtered(request, queryset, form.cleaned_data) if form.is_valid() else queryset.none()
    return render(request, "deadletters/_rows.html", {"rows": _masked(_list_rows(queryset))})


# --------------------------------------------------------------------------- one dead letter
def header_convention(name: str) -> str:
    lowered = name.lower()
    for prefix, convention in _CONVENTIONS:
        if lowered.startswith(prefix):
            return convention
    return ""


def _key_text(key: Any) -> str:
    if key is None:
        return ""
    raw = bytes(key)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()


def _payload_view(dead_letter: DeadLetter, shown: sensitive.Shown) -> dict[str, Any]:
    raw = bytes(dead_letter.payload or b"")
    view: dict[str, Any] = {
        "size": dead_letter.payload_size,
        "stored": len(raw),
        "truncated": dead_letter.truncated,
        "problem": dead_letter.payload_problem,
        "masked": shown.masked,
        "revealed": shown.revealed,
    }
    if shown.masked:
        view.update(kind="json", text=json.dumps(shown.payload, indent=2, ensure_ascii=False))
        return view
    if dead_letter.payload_json is not None and not dead_letter.truncated:
        view.update(kind="json", text=json.dumps(dead_letter.payload_json, indent=2, ensure_ascii=False))
        return view
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        view.update(kind="text", text=text)
    else:
        view.update(kind="binary", text=hexdump(raw), hex_cut=len(raw) > HEX_LIMIT)
    return view


def _validation(dead_letter: DeadLetter, shown: sensitive.Shown) -> dict[str, Any]:
    """The payload checked against its schema: ok, a list of problems, or why it cannot be checked.

    Problems quote the values (`'x' is not a 'email'`): those `shown` hides are scrubbed.
    """
    if dead_letter.truncated:
        return {"state": "unknown", "why": "The payload was truncated; only the whole payload can be checked."}
    version = actions.schema_for(dead_letter)
    if version is None:
        why = (
            "No event type is known for it."
            if not dead_letter.event_type_id
            else "The event type has no registered schema."
        )
        return {"state": "unknown", "why": why}
    result: dict[str, Any] = {"version": version, "exact": version.pk == dead_letter.schema_version_id}
    if dead_letter.payload_json is None:
        return {**result, "state": "invalid", "problems": [schemaform.SchemaProblem((), "The payload is not JSON.")]}
    found = [
        schemaform.SchemaProblem(problem.path, shown.scrub(problem.message))
        for problem in schemaform.problems(version.schema, dead_letter.payload_json)
    ]
    return {**result, "state": "invalid" if found else "valid", "problems": found}


def _designed_groups(dead_letter: DeadLetter) -> list[tuple[str, str]]:
    """(service, group) of the design's consumers of this event type."""
    if not dead_letter.event_type_id:
        return []
    return list(
        DesignedConsumer.objects.filter(event_type_id=dead_letter.event_type_id)
        .exclude(group="")
        .order_by("service__name", "group")
        .values_list("service__name", "group")
        .distinct()
    )


def _group_choices(dead_letter: DeadLetter) -> list[tuple[str, str]]:
    return forms.group_choices(dead_letter.group, _designed_groups(dead_letter))


def _abilities(dead_letter: DeadLetter) -> dict[str, Any]:
    """Which actions the dead letter's state allows, and why not when it does not."""
    retry_blocked = ""
    if not dead_letter.source_topic:
        retry_blocked = "The source topic is unknown, so there is nowhere to send it."
    elif dead_letter.truncated:
        retry_blocked = "The payload was truncated; replaying it would send a broken record. Use edit and retry."
    return {
        "retry": dead_letter.status in actions.RETRYABLE and not retry_blocked,
        "retry_blocked": retry_blocked,
        "edit": dead_letter.status in actions.EDITABLE and bool(dead_letter.source_topic),
        "discard": dead_letter.status in actions.DISCARDABLE,
        "retry_statuses": " ".join(actions.RETRYABLE),
        "edit_statuses": " ".join(actions.EDITABLE),
        "discard_statuses": " ".join(actions.DISCARDABLE),
    }


def _state_context(dead_letter: DeadLetter) -> dict[str, Any]:
    """What changes while the page is open: status, replays, copies, the audit trail."""
    return {
        "dl": dead_letter,
        "audit": dead_letter.audit.select_related("actor", "job")[:200],
        "edited_copies": dead_letter.edited_copies.only("id", "status", "event_id").order_by("id"),
        "came_back": dead_letter.came_back.only("id", "status", "replay_count").order_by("id"),
        "can": _abilities(dead_letter),
    }


def _receivers(dead_letter: DeadLetter, target_group: str) -> dict[str, Any]:
    return actions.dry_run({"ids": [dead_letter.pk]}, RedriveJob.RETRY, target_group)


def _render_detail(
    request: HttpRequest,
    dead_letter: DeadLetter,
    *,
    status: int = 200,
    retry_form: forms.RetryForm | None = None,
    discard_form: forms.DiscardForm | None = None,
    error: str = "",
) -> HttpResponse:
    groups = _group_choices(dead_letter)
    retry_form = retry_form or forms.RetryForm(groups=groups)
    target = retry_form.data.get("target_group", "") if retry_form.is_bound else ""
    shown = sensitive.dead_letter_payload(request.user, dead_letter, via="page")
    context = {
        **_state_context(dead_letter),
        "payload": _payload_view(dead_letter, shown),
        "validation": _validation(dead_letter, shown),
        "headers": [(name, value, header_convention(name)) for name, value in dead_letter.headers or []],
        "key_text": _key_text(dead_letter.key),
        "retry_form": retry_form,
        "discard_form": discard_form or forms.DiscardForm(),
        "preview": _receivers(dead_letter, target) if roles.can_operate(request.user) else None,
        "unconfirmed_target": _unconfirmed_target(dead_letter),
        "error": error,
        "socket_url": SOCKET_URL,
        # The trace page (the event store's) finds the chain by it, else by the event id.
        "correlation_id": _header_value(dead_letter, h.CORRELATION_ID),
    }
    return render(request, "deadletters/detail.html", context, status=status)


def _header_value(dead_letter: DeadLetter, name: str) -> str:
    """The last decoded value of header `name`, "" when absent."""
    found = ""
    for header, value in dead_letter.headers or []:
        if header == name and isinstance(value, str):
            found = value.strip()
    return found


def _unconfirmed_target(dead_letter: DeadLetter) -> bool:
    """Whether only the record's headers name where a retry would go (the form then asks to confirm)."""
    return bool(actions.unconfirmed_targets(DeadLetter.objects.filter(pk=dead_letter.pk)))


@require_GET
def dead_letter_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything about one dead letter: payload, schema check, headers, error, replays, audit."""
    return _render_detail(request, _get_dead_letter(pk))


@require_GET
def dead_letter_state(request: HttpRequest, pk: int) -> HttpResponse:
    """The part of the detail page that changes (status, replays, audit), for live refreshes."""
    return render(request, "deadletters/_live.html", _state_context(_get_dead_letter(pk)))


@require_GET
def dead_letter_receivers(request: HttpRequest, pk: int) -> HttpResponse:
    """Who would receive a retry of it, for ?target_group= (the design's consumers; a preview)."""
    dead_letter = _get_dead_letter(pk)
    target = request.GET.get("target_group", "")[:255]
    return render(
        request, "deadletters/_receivers.html", {"preview": _receivers(dead_letter, target), "dl": dead_letter}
    )


@require_POST
def dead_letter_retry(request: HttpRequest, pk: int) -> HttpResponse:
    dead_letter = _get_dead_letter_for_operator(request, pk)
    form = forms.RetryForm(request.POST, groups=_group_choices(dead_letter))
    if not form.is_valid():
        return _render_detail(request, dead_letter, status=400, retry_form=form)
    target = form.cleaned_data["target_group"]
    try:
        dead_letter = actions.retry(
            dead_letter, actor=request.user, target_group=target, confirm_target=form.cleaned_data["confirm_target"]
        )
    except actions.ActionError as error:
        return _render_detail(
            request, _get_dead_letter(pk), status=error.status_code, retry_form=form, error=error.message
        )
    if dead_letter.status == DeadLetter.PARKED:
        messages.warning(
            request,
            f"Not sent: it was replayed {dead_letter.replay_count} times already, so it is parked. Edit it instead.",
        )
    else:
        to = f" for {target} only" if target else ""
        messages.success(
            request, f"Sent again to {dead_letter.source_topic}{to}; it is resolved once the group handles it."
        )
    return redirect("dead-letter-detail", pk=pk)


@require_POST
def dead_letter_discard(request: HttpRequest, pk: int) -> HttpResponse:
    dead_letter = _get_dead_letter_for_operator(request, pk)
    form = forms.DiscardForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, dead_letter, status=400, discard_form=form)
    try:
        actions.discard(dead_letter, actor=request.user, reason=form.cleaned_data["reason"])
    except actions.ActionError as error:
        return _render_detail(
            request, _get_dead_letter(pk), status=error.status_code, discard_form=form, error=error.message
        )
    messages.success(request, f"Dead letter #{pk} discarded.")
    return redirect("dead-letter-detail", pk=pk)


# --------------------------------------------------------------------------- edit and retry
def _schema_form_spec(version) -> schemaform.SchemaForm:
    if version is None:
        return schemaform.SchemaForm(fields=[], reason="No schema is known for this event; edit the payload as JSON.")
    return schemaform.build(version.schema)


def _json_initial(dead_letter: DeadLetter) -> str:
    if dead_letter.payload_json is not None and not dead_letter.truncated:
        return json.dumps(dead_letter.payload_json, indent=2, ensure_ascii=False)
    return bytes(dead_letter.payload or b"").decode("utf-8", "replace")


def _editor_start(dead_letter: DeadLetter, shown: sensitive.Shown) -> tuple[Any, str, str]:
    """What the editors start from, as this user may see it: (payload for the form, JSON text, note)."""
    stored = sensitive.stored_payload(dead_letter)
    if not shown.masked:
        original = None if stored is sensitive.NOT_JSON else stored
        return original, _json_initial(dead_letter), _payload_note(dead_letter)
    if stored is sensitive.NOT_JSON:
        return None, "", "The payload is hidden: its event has sensitive fields and it is not JSON. Write it anew."
    note = f"Sensitive fields show {pii.MASK}: leave {pii.MASK} to keep the value, or type a new one."
    return shown.payload, json.dumps(shown.payload, indent=2, ensure_ascii=False), note


@require_http_methods(["GET", "POST"])
def dead_letter_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Fix the payload (a form generated from the schema, or raw JSON) and send it as a new event.

    An invalid payload is refused with each failing path next to its field;
    nothing is sent. On success the page goes to the new copy, which tracks the send.
    Without view_sensitive the editors start from the masked payload, and a "•••"
    sent back keeps the hidden value (`sensitive.kept_hidden`); the schema's
    messages about it are scrubbed.
    """
    dead_letter = _get_dead_letter_for_operator(request, pk)
    version = actions.schema_for(dead_letter)
    spec = _schema_form_spec(version)
    # A POST shows what was sent, not the stored payload: only the GET is a read to audit.
    shown = sensitive.dead_letter_payload(request.user, dead_letter, via="edit", audit=request.method == "GET")
    original, json_initial, payload_note = _editor_start(dead_letter, shown)
    groups = _group_choices(dead_letter)
    default_mode = "form" if spec.available and (original is None or isinstance(original, dict)) else "json"
    mode = (request.POST if request.method == "POST" else request.GET).get("mode", default_mode)
    mode = mode if mode in ("form", "json") and (mode == "json" or spec.available) else default_mode
    initial_target = {"target_group": dead_letter.group} if dead_letter.group else {}
    schema_form = forms.SchemaPayloadForm(
        spec, initial={**schemaform.initial(spec, original), **initial_target}, original=original, groups=groups
    )
    json_form = forms.JsonPayloadForm(initial={"payload": json_initial, **initial_target}, groups=groups)
    status, error = 200, ""
    if request.method == "POST":
        if mode == "form":
            form = schema_form = forms.SchemaPayloadForm(spec, request.POST, original=original, groups=groups)
        else:
            form = json_form = forms.JsonPayloadForm(request.POST, groups=groups)
        status = 400
        if form.is_valid():
            payload = form.cleaned_data["payload"]
            try:
                payload = sensitive.kept_hidden(dead_letter, payload)
                copy = actions.edit_and_retry(
                    dead_letter,
                    payload,
                    actor=request.user,
                    target_group=form.cleaned_data["target_group"],
                    confirm_target=form.cleaned_data["confirm_target"],
                )
            except pii.HiddenValueMissing as missing:
                error = f"Nothing was sent: {missing}"
                form.add_problems([schemaform.SchemaProblem(where, missing.reason) for where in missing.locations])
            except actions.InvalidPayload as refused:
                error = f"Nothing was sent: {refused.message}"  # scrubbed by edit_and_retry
                found = [
                    schemaform.SchemaProblem(
                        problem.path,
                        sensitive.scrub_for(request.user, dead_letter.event_type_id, payload, problem.message),
                    )
                    for problem in (schemaform.problems(version.schema, payload) if version is not None else [])
                ]
                form.add_problems(
                    found or [schemaform.SchemaProblem(schemaform.parse_json_path(refused.path) or (), refused.message)]
                )
            except actions.ActionError as refused:
                status, error = refused.status_code, f"Nothing was sent: {refused.message}"
            else:
                messages.success(
                    request,
                    f"Sent the corrected payload as a new event (this is its copy, #{copy.pk}); "
                    f"the original #{dead_letter.pk} is resolved.",
                )
                return redirect("dead-letter-detail", pk=copy.pk)
    context = {
        "dl": dead_letter,
        "version": version,
        "spec": spec,
        "mode": mode,
        "schema_form": schema_form,
        "json_form": json_form,
        "extra_keys": schemaform.extra_keys(spec, original) if spec.available else [],
        "error": error,
        "payload_note": payload_note,
        "editable": dead_letter.status in actions.EDITABLE,
        "editable_statuses": ", ".join(actions.EDITABLE),
        "unconfirmed_target": _unconfirmed_target(dead_letter),
    }
    return render(request, "deadletters/edit.html", context, status=status)


def _payload_note(dead_letter: DeadLetter) -> str:
    if dead_letter.truncated:
        return (
            f"Only the first {len(dead_letter.payload or b'')} of {dead_letter.payload_size} bytes were kept; "
            "the editor starts from them. Complete the payload before sending."
        )
    if dead_letter.payload_json is None and dead_letter.payload_size:
        return "The stored payload is not JSON; the editor shows it as text."
    return ""


# --------------------------------------------------------------------------- bulk jobs
def _job_form_context(form: forms.RedriveJobForm, preview: dict[str, Any] | None, selection: dict | None) -> dict:
    sample = []
    if selection is not None:
        sample = _masked(_list_rows(actions.selection_queryset(selection))[:10])
    known_groups = sorted(
        set(DesignedConsumer.objects.exclude(group="").values_list("group", flat=True).distinct()[:KNOWN_LIMIT])
    )
    return {
        "form": form,
        "preview": preview,
        "fingerprint": form.fingerprint() if preview is not None else "",  # names the dry run shown
        "selection": selection,
        "sample": sample,
        "known_groups": known_groups,
    }


@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    """A bulk retry or discard: first the dry run (count, topics, receivers), then "Start job"."""
    roles.require_role(request.user, roles.OPERATOR)
    form = forms.RedriveJobForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return render(request, "deadletters/job_form.html", _job_form_context(form, None, None), status=400)
    data, selection = form.cleaned_data, form.selection()
    try:
        preview = actions.dry_run(selection, data["action"], data["target_group"])
        confirmed = data["previewed"] == form.fingerprint()
        if request.method == "POST" and data["step"] == form.START and not confirmed:
            form.add_error(None, "The action or target group changed since the dry run: check this one, then start.")
        elif request.method == "POST" and data["step"] == form.START:
            job = actions.start_job(
                actor=request.user,
                action=data["action"],
                selection=selection,
                rate_per_s=data["rate_per_s"],
                target_group=data["target_group"],
                reason=data["reason"],
                confirm_targets=data["confirm_targets"],
            )
            messages.success(
                request, f"Job #{job.pk} started: {job.get_action_display().lower()} {job.total} dead letters."
            )
            return redirect("dead-letter-job", pk=job.pk)
    except actions.ActionError as error:
        form.add_error(None, error.message)
        return render(
            request, "deadletters/job_form.html", _job_form_context(form, None, None), status=error.status_code
        )
    return render(request, "deadletters/job_form.html", _job_form_context(form, preview, selection))


def _job_context(job: RedriveJob) -> dict[str, Any]:
    finished = job.done + job.failed + job.skipped
    ids = job.item_ids[:JOB_ITEMS_SHOWN]
    by_id = {row.pk: row for row in _masked(_list_rows(DeadLetter.objects.filter(pk__in=ids)))}
    return {
        "job": job,
        "finished": finished,
        "percent": round(100 * finished / job.total) if job.total else 100,
        "active": job.state in ACTIVE_JOB_STATES,
        "cancellable": job.state in (RedriveJob.PENDING, RedriveJob.RUNNING),
        "resumable": job.state in (RedriveJob.CANCELLED, RedriveJob.FAILED),
        "items": [by_id[pk] for pk in ids if pk in by_id],
        "more_items": max(0, len(job.item_ids) - JOB_ITEMS_SHOWN),
        "audit": job.audit.select_related("actor", "dead_letter")[:200],
        "filter_query": forms.filter_query(filters.from_selection(job.selection["filter"]))
        if "filter" in job.selection
        else "",
    }


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = RedriveJob.objects.select_related("created_by").defer("item_ids")[:100]
    return render(request, "deadletters/jobs.html", {"jobs": jobs})


@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A job's live progress (redrive.progress frames), its items, its audit trail; Cancel for operators."""
    job = _get_job(pk)
    return render(request, "deadletters/job.html", {**_job_context(job), "socket_url": SOCKET_URL})


@require_GET
def job_state(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "deadletters/_job_state.html", _job_context(_get_job(pk)))


def _job_action(request: HttpRequest, pk: int, verb, done: str) -> HttpResponse:
    job = _get_job_for_operator(request, pk)
    try:
        verb(job, actor=request.user)
    except actions.ActionError as error:
        job.refresh_from_db()
        context = {**_job_context(job), "socket_url": SOCKET_URL, "error": error.message}
        return render(request, "deadletters/job.html", context, status=error.status_code)
    messages.success(request, done.format(pk=pk))
    return redirect("dead-letter-job", pk=pk)


@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _job_action(request, pk, actions.cancel_job, "Job #{pk}: cancel requested; it stops within a second.")


@require_POST
def job_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _job_action(request, pk, actions.resume_job, "Job #{pk} resumed where it stopped.")
