"""The event store: one row per event seen on the bus, without its payload by default.

A row says where the event is (bus, topic, partition, offset), when the broker took it,
what it is (CloudEvents id, type and source, schema version), which chain and trace it
belongs to (correlation, causation and trace ids) and whether it matched its registered
schema. The payload stays on the bus unless the topic's TopicIndexSetting keeps it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from designer.models import SchemaVersion

BUS_CHOICES = [("kafka", "Kafka"), ("redis", "Redis Streams")]


def default_retention_days() -> int:
    return settings.EVENTHUB_INDEX_RETENTION_DAYS


class IndexedEventQuerySet(models.QuerySet):
    def for_topic(self, bus: str, topic: str):
        return self.filter(bus=bus, topic=topic)

    def older_than(self, moment):
        return self.filter(timestamp__lt=moment)


class IndexedEvent(models.Model):
    VALID, INVALID, NO_SCHEMA = "valid", "invalid", "no_schema"
    VALIDITY_CHOICES = [(VALID, "Valid"), (INVALID, "Invalid"), (NO_SCHEMA, "No schema")]

    bus = models.CharField(max_length=10, choices=BUS_CHOICES)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    offset = models.CharField(max_length=40, help_text="Kafka offset or Redis entry id.")
    timestamp = models.DateTimeField(help_text="The broker's timestamp (Redis: the entry id's milliseconds).")
    key_hash = models.CharField(max_length=64, blank=True, db_index=True, help_text="sha256 of the key, hex.")
    key_text = models.CharField(max_length=100, blank=True, help_text="The key's first 100 characters, printable.")
    ce_id = models.CharField(max_length=200, blank=True)
    ce_type = models.CharField(max_length=200, blank=True)
    ce_source = models.CharField(max_length=500, blank=True)
    correlation_id = models.CharField(max_length=200, blank=True)
    causation_id = models.CharField(max_length=200, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, help_text="From the W3C traceparent header.")
    schema_version_number = models.PositiveIntegerField(null=True, blank=True, help_text="x-eventhub-schema-version.")
    # The designed version the event was checked against, when its type is registered.
    schema_version = models.ForeignKey(
        "designer.SchemaVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A dead letter sent again (deadletters/actions.py): x-eventhub-replay-of and -count.
    replay_of = models.BigIntegerField(null=True, blank=True, help_text="The dead letter this event replays.")
    replay_count = models.PositiveIntegerField(default=0, help_text="Its replays so far, this one included.")
    size = models.PositiveBigIntegerField(help_text="The value's size in bytes.")
    validity = models.CharField(max_length=10, choices=VALIDITY_CHOICES)
    # Where an invalid payload first fails ("$.amount"; "$" when it is not JSON) and the
    # schema keyword that failed ("minimum"; "json"). Never the message: it quotes payload values.
    invalid_path = models.CharField(max_length=500, blank=True)
    invalid_rule = models.CharField(max_length=50, blank=True)
    payload = models.BinaryField(null=True, blank=True, help_text="Only when the topic keeps payloads; capped.")
    indexed_at = models.DateTimeField(auto_now_add=True)

    objects = IndexedEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bus", "topic", "partition", "offset"], name="indexed_event_position"),
        ]
        indexes = [
            models.Index(fields=["correlation_id"], name="indexed_event_correlation"),
            models.Index(fields=["ce_id"], name="indexed_event_ce_id"),
            models.Index(fields=["trace_id"], name="indexed_event_trace"),
            models.Index(fields=["ce_type", "timestamp"], name="indexed_event_type_time"),
            # The traces list filtered by service (eventstore/traces.py), newest first.
            models.Index(fields=["ce_source", "timestamp"], name="indexed_event_source_time"),
            models.Index(fields=["timestamp"], name="indexed_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.bus}:{self.topic}/{self.partition}@{self.offset}"


class TopicIndexSettingQuerySet(models.QuerySet):
    def for_topics(self, bus: str, topics) -> dict[str, TopicIndexSetting]:
        return {setting.topic: setting for setting in self.filter(bus=bus, topic__in=list(topics))}


class TopicIndexSetting(models.Model):
    """How one topic is indexed; a topic without a row takes the defaults (all events, no payloads)."""

    bus = models.CharField(max_length=10, choices=BUS_CHOICES)
    topic = models.CharField(max_length=249)
    sample_rate = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of events indexed, 0 to 1; which ones is decided by their position, the same every time.",
    )
    keep_payloads = models.BooleanField(default=False, help_text="Store payloads (up to EVENTHUB_DLQ_PAYLOAD_CAP).")
    retention_days = models.PositiveIntegerField(default=default_retention_days, validators=[MinValueValidator(1)])
    updated_at = models.DateTimeField(auto_now=True)

    objects = TopicIndexSettingQuerySet.as_manager()

    class Meta:
        ordering = ["bus", "topic"]
        constraints = [models.UniqueConstraint(fields=["bus", "topic"], name="topic_index_setting_unique")]

    def __str__(self) -> str:
        return f"{self.bus}:{self.topic}"


def purge_expired(now=None) -> int:
    """Delete events older than their topic's retention, by broker timestamp; returns how many.

    Topics with a TopicIndexSetting use its retention_days, the others
    settings.EVENTHUB_INDEX_RETENTION_DAYS. Idempotent: beat and the indexer both call it.
    """
    now = now or timezone.now()
    deleted = 0
    custom = Q(pk__in=[])
    for bus, topic, days in TopicIndexSetting.objects.values_list("bus", "topic", "retention_days"):
        deleted += IndexedEvent.objects.for_topic(bus, topic).older_than(now - timedelta(days=days)).delete()[0]
        custom |= Q(bus=bus, topic=topic)
    default_cutoff = now - timedelta(days=settings.EVENTHUB_INDEX_RETENTION_DAYS)
    deleted += IndexedEvent.objects.older_than(default_cutoff).exclude(custom).delete()[0]
    return deleted


# --------------------------------------------------------------------------- flow checks
class FlowCheckQuerySet(models.QuerySet):
    def running(self):
        return self.filter(status=FlowCheck.RUNNING)

    def for_flow(self, flow_id: int):
        return self.filter(flow_id=flow_id)


class FlowCheck(models.Model):
    """One synthetic run of a designed flow (eventstore/flow_checks.py says how it is judged)."""

    RUNNING, PASSED, FAILED = "running", "passed", "failed"
    STATUS_CHOICES = [(RUNNING, "Running"), (PASSED, "Passed"), (FAILED, "Failed")]

    flow = models.ForeignKey("designer.Flow", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=RUNNING)
    correlation_id = models.CharField(max_length=200, unique=True)
    started_at = models.DateTimeField(help_text="When the check was asked for.")
    published_at = models.DateTimeField(null=True, blank=True, help_text="When the broker took the trigger.")
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger_event_id = models.CharField(max_length=200, blank=True, help_text="The trigger's ce_id.")
    # Who pressed "Run check"; null for scheduled runs (and when the user is deleted).
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    scheduled = models.BooleanField(default=False)
    # Claimed by the task that publishes the trigger (a conditional UPDATE), so it is sent once.
    publish_claimed = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    objects = FlowCheckQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["flow", "started_at"], name="flow_check_flow_started")]

    def __str__(self) -> str:
        return f"check #{self.pk} of flow {self.flow_id} ({self.status})"


class FlowCheckStep(models.Model):
    """What a check saw of one flow step: when its event showed up, and where."""

    PASSED, FAILED, LATE, PENDING = "passed", "failed", "late", "pending"
    STATUS_CHOICES = [(PASSED, "Passed"), (FAILED, "Failed"), (LATE, "Late"), (PENDING, "Pending")]

    # Not `check`: that name is Model.check(), Django's system checks.
    flow_check = models.ForeignKey(FlowCheck, on_delete=models.CASCADE, related_name="steps")
    # The design may change under a check's history: the step goes, its event type's name stays,
    # and so do the budget and the step it followed, copied when the check started.
    step = models.ForeignKey("designer.FlowStep", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event_type = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0, help_text="The step's place in the flow when the check ran.")
    after = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    time_budget_s = models.PositiveIntegerField(default=30)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="After the event it waited for.")
    observed = models.JSONField(default=dict, blank=True, help_text="topic, partition, offset, ce_id, time.")

    class Meta:
        ordering = ["flow_check", "position", "id"]

    def __str__(self) -> str:
        return f"{self.flow_check_id}: {self.event_type} ({self.status})"


# --------------------------------------------------------------------------- schemas seen in traffic
class ObservedSchemaQuerySet(models.QuerySet):
    def discovered(self):
        """Subjects with no registered schema: event types unknown to the registry, and topics of untyped events."""
        registered = SchemaVersion.objects.registered().values("event_type__name")
        return self.exclude(kind=ObservedSchema.TYPE, event_type_name__in=registered).filter(approved_version=None)


class ObservedSchema(models.Model):
    """What the events of one type (or, for untyped events, one topic) look like: a JSON Schema inferred from samples.

    For a type without a registered schema it is a draft a Designer may approve
    (eventstore/schema_discovery.py); for a registered type it tells the fields
    traffic carries that the schema does not name (drift).
    """

    TYPE, TOPIC = "type", "topic"
    KIND_CHOICES = [(TYPE, "Event type"), (TOPIC, "Topic")]

    subject = models.CharField(max_length=520, unique=True, help_text='"type:<name>" or "topic:<bus>:<topic>".')
    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    event_type_name = models.CharField(max_length=200, blank=True, help_text="The CloudEvents type; blank for a topic.")
    bus = models.CharField(max_length=10, choices=BUS_CHOICES, help_text="Where it was seen last.")
    topic = models.CharField(max_length=249, help_text="Where it was seen last.")
    schema = models.JSONField(default=dict, help_text="Inferred by genson from the samples.")
    sample_count = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Samples whose fields would have grown the schema past its size cap (map-like payloads): left out.
    too_varied = models.BooleanField(default=False)
    approved_version = models.ForeignKey(
        "designer.SchemaVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ObservedSchemaQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen", "subject"]

    def __str__(self) -> str:
        return self.subject

    @property
    def name(self) -> str:
        return self.event_type_name or f"{self.bus}:{self.topic}"
