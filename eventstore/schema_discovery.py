"""Schemas discovered from traffic: a JSON Schema inferred per event type (or topic) from sampled events.

The indexer hands every event it indexes to an `Observer` (eventstore/indexer.py); the
observer keeps a sample (every event of a subject at first, then one in SAMPLE_EVERY)
and folds it into a genson SchemaBuilder; `flush` merges what it gathered into the
subject's ObservedSchema row. The inference is genson's, not ours.

- A type with no registered schema gets a draft (`ObservedSchema.objects.discovered()`)
  that a Designer may edit and `approve`: it is registered through the registry
  (designer/registry.py), compatibility rules and all.
- A registered type's observed schema shows `drift`: fields in traffic that its latest
  registered schema does not name.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from genson import SchemaBuilder

from designer import registry
from designer.fieldtree import field_paths
from designer.models import EventType, SchemaVersion, Topic
from eventstore.models import IndexedEvent, ObservedSchema

log = logging.getLogger(__name__)

SAMPLE_FIRST = 100  # every event of a subject this process has not seen that often
SAMPLE_EVERY = 100  # then one in this many
MAX_SCHEMA_CHARS = 100_000  # a schema larger than this is a map with changing keys, not a record type


def subject_of(bus: str, topic: str, event_type: str) -> str:
    return f"type:{event_type}" if event_type else f"topic:{bus}:{topic}"


@dataclass
class _Gathered:
    kind: str
    event_type_name: str
    bus: str
    topic: str
    first: datetime
    last: datetime
    builder: SchemaBuilder = field(default_factory=lambda: SchemaBuilder(schema_uri=None))
    count: int = 0


class Observer:
    """Samples events per subject in memory; `flush` writes them. For one thread (the indexer's)."""

    def __init__(self, sample_first: int = SAMPLE_FIRST, sample_every: int = SAMPLE_EVERY) -> None:
        self.sample_first, self.sample_every = sample_first, sample_every
        self._seen: Counter[str] = Counter()
        self._gathered: dict[str, _Gathered] = {}

    def wants(self, subject: str) -> bool:
        """Count one event of `subject`; True when it is to be sampled (its payload decoded and added)."""
        seen = self._seen[subject]
        self._seen[subject] = seen + 1
        return seen < self.sample_first or seen % self.sample_every == 0

    def add(self, subject: str, bus: str, topic: str, event_type: str, payload: Any, moment: datetime) -> None:
        gathered = self._gathered.get(subject)
        if gathered is None:
            kind = ObservedSchema.TYPE if event_type else ObservedSchema.TOPIC
            gathered = self._gathered[subject] = _Gathered(kind, event_type, bus, topic, moment, moment)
        gathered.builder.add_object(payload)
        gathered.count += 1
        gathered.first, gathered.last = min(gathered.first, moment), max(gathered.last, moment)
        gathered.bus, gathered.topic = bus, topic

    def flush(self) -> int:
        """Merge the samples gathered since the last flush into their rows; returns the subjects written."""
        gathered, self._gathered = self._gathered, {}
        for subject, sample in gathered.items():
            try:
                _merge(subject, sample)
            except IntegrityError:  # another indexer created the row first: merge into it
                _merge(subject, sample)
        return len(gathered)


def _merge(subject: str, sample: _Gathered) -> None:
    with transaction.atomic():
        row = ObservedSchema.objects.select_for_update().filter(subject=subject).first()
        builder = SchemaBuilder(schema_uri=None)
        if row is not None and row.schema:
            builder.add_schema(row.schema)
        builder.add_schema(sample.builder.to_schema())
        merged = builder.to_schema()
        too_varied = len(json.dumps(merged)) > MAX_SCHEMA_CHARS
        if row is None:
            row = ObservedSchema(subject=subject, kind=sample.kind, event_type_name=sample.event_type_name)
            row.first_seen, row.sample_count, row.schema = sample.first, 0, {}
        if too_varied:
            log.info("schema discovery: %s grows past %d characters; samples left out", subject, MAX_SCHEMA_CHARS)
        else:
            row.schema = merged
        row.too_varied = row.too_varied or too_varied
        row.sample_count += sample.count
        row.first_seen = min(row.first_seen, sample.first)
        row.last_seen = max(row.last_seen, sample.last) if row.pk else sample.last
        row.bus, row.topic = sample.bus, sample.topic
        row.save()


# --------------------------------------------------------------------------- reading them
def drift(event_type_name: str) -> list[str] | None:
    """Fields seen in traffic that the type's latest registered schema does not name; None when unknown."""
    observed = ObservedSchema.objects.filter(subject=subject_of("", "", event_type_name)).first()
    latest = (
        SchemaVersion.objects.registered()
        .filter(event_type__name=event_type_name)
        .order_by("-version")
        .values_list("schema", flat=True)
        .first()
    )
    if observed is None or latest is None:
        return None
    declared = set(field_paths(latest))
    return [path for path in field_paths(observed.schema) if path not in declared]


class ApprovalRefused(Exception):
    """The draft cannot be registered as asked (a name is missing or not valid, the type has a schema now)."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


def approve(
    observed: ObservedSchema, user, *, schema: Any = None, name: str = "", changelog: str = ""
) -> SchemaVersion:
    """Register the draft (or the Designer's edit of it) as the type's first schema version.

    A topic's draft needs the event type `name` to register it under. The type is made
    when it does not exist (on the designed topic with that address, if any). Raises
    ApprovalRefused, or the registry's InvalidSchema / IncompatibleSchema.
    """
    name = observed.event_type_name or name.strip()
    if not name:
        raise ApprovalRefused("name the event type these events are (a topic's events carry no type)")
    event_type = EventType.objects.filter(name=name).first()
    if event_type is not None and event_type.versions.registered().exists():
        raise ApprovalRefused(f"{name} has a registered schema now: register its next version from the catalog")
    if event_type is None:
        topic = Topic.objects.filter(bus=observed.bus, address=observed.topic).first()
        event_type = EventType(name=name, topic=topic, description=f"Discovered from traffic on `{observed.topic}`.")
        try:
            event_type.full_clean(exclude=["slug"])
        except ValidationError as error:
            raise ApprovalRefused("; ".join(error.message_dict.get("name", error.messages))) from error
    with transaction.atomic():
        if event_type.pk is None:
            event_type.save()
        version = registry.register_version(
            event_type,
            observed.schema if schema is None else schema,
            author=user,
            changelog=changelog or f"Inferred from {observed.sample_count} events on {observed.bus}:{observed.topic}.",
        )
        observed.approved_version = version
        observed.save(update_fields=["approved_version"])
    return version


def validity_rate(event_type_name: str, window: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """{"events", "invalid", "rate"} of the type's events indexed within `window` (rate: invalid share, or None)."""
    since = timezone.now() - window
    counts = IndexedEvent.objects.filter(ce_type=event_type_name, timestamp__gte=since).aggregate(
        events=Count("id"), invalid=Count("id", filter=Q(validity=IndexedEvent.INVALID))
    )
    events, invalid = counts["events"], counts["invalid"]
    return {"events": events, "invalid": invalid, "rate": invalid / events if events else None}
