"""Payloads as a user may see them: sensitive fields masked, unmasked reads audited.

Every view that shows a payload asks here (the dead-letter pages, the REST API,
the edit form; the topic browser and traces when they come):

    shown = sensitive.shown_payload(request.user, event_type_id, payload, via="page")
    shown.payload   # the JSON to show: marked values are "•••" unless the user may see them
    shown.masked    # JSON paths that were replaced ([] when nothing was)
    shown.scrub(t)  # a message quoting the payload (a schema problem) without the hidden values

The marks come from the event type's latest registered schema version and
apply to payloads of every version (a field marked in v3 is hidden in v1
records too). A user with `designer.view_sensitive` (eventhub.roles) sees the
values, and each such read of a payload that holds marked values writes an
AuditEntry (action "view_sensitive", what was read and through which view).

List previews are masked for everyone: reading a sensitive value is always a
deliberate act on one payload, and a list of 50 would be 50 audit entries.
Searching payload text (`q`) skips event types with marks for users who may
not see them, or a search would tell the value one character at a time.

The masking itself is Django-free: eventhub.sdk.pii.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery, TextField
from django.db.models.functions import Cast

from deadletters.models import AuditEntry, DeadLetter
from designer.models import SchemaVersion
from eventhub import roles
from eventhub.sdk import pii

ACTION = "view_sensitive"  # AuditEntry.action of an unmasked read
NOT_JSON = object()  # a payload that is not JSON (text, binary, cut): its fields cannot be found


@dataclass
class Shown:
    """A payload as one user may see it."""

    payload: Any  # the JSON to show; NOT_JSON when the caller should show the raw value as it is
    masked: list[str] = field(default_factory=list)  # JSON paths shown as "•••"
    revealed: list[str] = field(default_factory=list)  # JSON paths of sensitive values shown (and audited)
    _hidden: list[Any] = field(default_factory=list, repr=False)

    def scrub(self, text: str) -> str:
        """`text` (a message that may quote the payload) without the values this user may not see."""
        return pii.scrub(text, self._hidden) if self._hidden else text


# --------------------------------------------------------------------------- marks
def marks_by_event_type(event_type_ids: Iterable[int] | None = None) -> dict[int, list[pii.Path]]:
    """{event type id: paths its latest registered schema marks sensitive}, for the types that mark any.

    Two queries at most, whatever the count: schemas whose text has no mark are not loaded.
    """
    latest = (
        SchemaVersion.objects.registered().filter(event_type=OuterRef("event_type")).order_by("-version").values("pk")
    )
    versions = (
        SchemaVersion.objects.registered()
        .filter(pk=Subquery(latest[:1]))
        .annotate(text=Cast("schema", output_field=TextField()))
        .filter(text__contains=pii.MARK)
    )
    if event_type_ids is not None:
        versions = versions.filter(event_type_id__in=set(event_type_ids))
    found = {}
    for event_type_id, schema in versions.values_list("event_type_id", "schema"):
        paths = pii.pii_paths(schema)
        if paths:
            found[event_type_id] = paths
    return found


def marks(event_type_id: int | None) -> list[pii.Path]:
    if event_type_id is None:
        return []
    return marks_by_event_type([event_type_id]).get(event_type_id, [])


# --------------------------------------------------------------------------- showing
def shown_payload(
    user,
    event_type_id: int | None,
    payload: Any,
    *,
    via: str,
    dead_letter: DeadLetter | None = None,
    audit: bool = True,
    **detail: Any,
) -> Shown:
    """`payload` (parsed JSON, or NOT_JSON) as `user` may see it; audits an unmasked read.

    A payload that is not JSON but whose event type marks fields is hidden as a
    whole ("•••") from users who may not see them: its fields cannot be found.
    `detail` (topic, offset...) goes into the audit entry for views without a dead letter;
    `audit=False` only for a caller that does not show the payload it asks for.
    """
    paths = marks(event_type_id)
    places = [()] if payload is NOT_JSON else pii.locations(payload, paths)
    if not paths or not places:
        return Shown(payload)
    where = [pii.json_path(place) for place in places]
    if not roles.can_view_sensitive(user):
        if payload is NOT_JSON:
            return Shown(pii.MASK, masked=where)
        return Shown(pii.mask(payload, paths), masked=where, _hidden=pii.hidden_values(payload, paths))
    if not audit:
        return Shown(payload, revealed=where)
    AuditEntry.objects.create(
        actor=user,
        action=ACTION,
        dead_letter=dead_letter,
        result=f"read unmasked ({via}): {', '.join(where)}"[:500],
        detail={"via": via, "paths": where[:100], **detail},
    )
    return Shown(payload, revealed=where)


def stored_payload(dead_letter: DeadLetter) -> Any:
    """The dead letter's payload as parsed JSON, or NOT_JSON (cut, text, binary; empty is None)."""
    if dead_letter.payload_json is not None and not dead_letter.truncated:
        return dead_letter.payload_json
    return NOT_JSON if dead_letter.payload_size or dead_letter.payload else None


def dead_letter_payload(user, dead_letter: DeadLetter, *, via: str, audit: bool = True) -> Shown:
    payload = stored_payload(dead_letter)
    return shown_payload(user, dead_letter.event_type_id, payload, via=via, dead_letter=dead_letter, audit=audit)


def scrub_for(user, event_type_id: int | None, payload: Any, text: str) -> str:
    """A message about `payload` (an edited one) without its sensitive values, unless `user` may see them."""
    if roles.can_view_sensitive(user):
        return text
    paths = marks(event_type_id)
    return pii.scrub(text, pii.hidden_values(payload, paths)) if paths else text


def previews(rows: list[DeadLetter], length: int) -> list[DeadLetter]:
    """Set `row.preview` (the list's payload snippet) masked, for rows whose event type marks fields.

    The rows come from a query that annotated `preview` from the payload text and
    left the payload out; the payloads of marked rows are read in one query.
    """
    marked = marks_by_event_type({row.event_type_id for row in rows if row.event_type_id})
    todo = [row for row in rows if row.event_type_id in marked]
    if not todo:
        return rows
    payloads = dict(DeadLetter.objects.filter(pk__in=[row.pk for row in todo]).values_list("pk", "payload_json"))
    for row in todo:
        payload = payloads.get(row.pk)
        if payload is None or row.truncated:
            row.preview = pii.MASK if row.payload_size else ""
        else:
            masked = pii.mask(payload, marked[row.event_type_id])
            row.preview = json.dumps(masked, ensure_ascii=False, separators=(",", ":"))[:length]
    return rows


def unsearchable_event_types(user) -> list[int]:
    """Event types whose payload text `user`'s searches must not look into."""
    return [] if roles.can_view_sensitive(user) else list(marks_by_event_type())


# --------------------------------------------------------------------------- editing
def kept_hidden(dead_letter: DeadLetter, edited: Any) -> Any:
    """The edited payload with each "•••" at a marked place put back to the stored value.

    Raises pii.HiddenValueMissing where "•••" stands for nothing (see pii.restore).
    """
    paths = marks(dead_letter.event_type_id)
    if not paths:
        return edited
    original = stored_payload(dead_letter)
    return pii.restore(edited, original, paths, original_is_json=original is not NOT_JSON)
