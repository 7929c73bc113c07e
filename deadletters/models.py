"""Dead letters, the redrive jobs that retry or discard them, and the audit trail of both.

The tables were made by the `monitor` app, before dead letters had an app of their
own; they keep their names (`db_table`), so moving the code moved no row (see
migrations/0001_initial.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Substr


class DeadLetterQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status__in=[DeadLetter.NEW, DeadLetter.RETRYING])

    def for_topic(self, topic: str):
        return self.filter(source_topic=topic)

    def search(self, text: str, hide_payload_of=()):
        """Text anywhere in the payload (when text), headers, error message, event id or key.

        Payloads of the event types in `hide_payload_of` (ids) are not searched: their
        sensitive fields would answer a search one character at a time (deadletters.sensitive).
        """
        in_payload = models.Q(payload_text__icontains=text)
        if hide_payload_of:
            in_payload &= ~models.Q(event_type_id__in=list(hide_payload_of))
        return self.filter(
            in_payload
            | models.Q(headers__icontains=text)
            | models.Q(error_message__icontains=text)
            | models.Q(event_id__icontains=text)
        )

    def table_rows(self, preview_length: int):
        """Rows for a list, newest first: a payload preview, and none of the big columns."""
        return (
            self.select_related("event_type", "schema_version")
            .annotate(preview=Substr("payload_text", 1, preview_length))
            .defer("payload", "payload_text", "payload_json", "headers", "raw_headers", "stacktrace", "claim_marks")
            .order_by("-id")
        )

    def by_cause(self, limit: int) -> list[dict]:
        """Dead letters grouped by cause, (error class, consumer group, event type), biggest first.

        Each row: error_class, group, event_type (its name), service, count, how many are
        new, retryable and discardable, first_seen and last_seen.
        """
        statuses = models.Q(status__in=DeadLetter.RETRYABLE), models.Q(status__in=DeadLetter.DISCARDABLE)
        rows = (
            self.order_by()
            .values("error_class", "group", "event_type__name")
            .annotate(
                count=models.Count("id"),
                new=models.Count("id", filter=models.Q(status=DeadLetter.NEW)),
                retryable=models.Count("id", filter=statuses[0]),
                discardable=models.Count("id", filter=statuses[1]),
                first_seen=models.Min("first_failed_at"),
                last_seen=models.Max("last_failed_at"),
                service=models.Max("service"),
            )
            .order_by("-count", "error_class", "group")[:limit]
        )
        return [{**row, "event_type": row.pop("event_type__name"), "service": row["service"] or ""} for row in rows]

    def awaiting_resolution(self):
        """Retried, sent somewhere, and no failed replay of the latest attempt came back."""
        came_back = DeadLetter.objects.filter(
            replay_of=models.OuterRef("pk"), replay_count=models.OuterRef("replay_count")
        )
        return self.filter(status=DeadLetter.RETRIED).exclude(replay_topic="").exclude(models.Exists(came_back))


# The largest id a row can have (BigAutoField). An id past it, typed or sent, is bad input
# for the form or serializer that reads it, not a query the database refuses.
MAX_ID = 2**63 - 1
# The fastest a redrive job may be asked to send, per second. High enough not to be the
# limit: a job goes as fast as the database and the bus let it (docs/performance.md) when
# the operator wants the queue drained; the cap is there to protect a fixed consumer.
MAX_RATE = 100_000.0


class DeadLetter(models.Model):
    """One record read from a dead-letter topic or stream; exactly once per position."""

    NEW, RETRYING, RETRIED, RESOLVED, DISCARDED, PARKED = (
        "new",
        "retrying",
        "retried",
        "resolved",
        "discarded",
        "parked",
    )
    RETRYABLE = (NEW, RETRIED)
    # Editing is the way out of "parked": the operator fixes what made it fail.
    EDITABLE = (NEW, RETRIED, PARKED)
    DISCARDABLE = (NEW, RETRIED, PARKED)
    STATUSES = [
        (NEW, "New"),
        (RETRYING, "Retrying"),
        (RETRIED, "Retried"),
        (RESOLVED, "Resolved"),
        (DISCARDED, "Discarded"),
        (PARKED, "Parked (replayed too often)"),
    ]

    bus = models.CharField(max_length=10)
    dlq_topic = models.CharField(max_length=249)
    dlq_partition = models.IntegerField(default=0)
    dlq_offset = models.CharField(max_length=40, help_text="Kafka offset or Redis entry id.")
    source_topic = models.CharField(max_length=249, blank=True, db_index=True)
    source_partition = models.IntegerField(null=True, blank=True)
    source_offset = models.CharField(max_length=40, blank=True)
    key = models.BinaryField(null=True, blank=True)
    payload = models.BinaryField(null=True, blank=True, help_text="Raw bytes, up to EVENTHUB_DLQ_PAYLOAD_CAP.")
    payload_size = models.PositiveBigIntegerField(default=0)
    truncated = models.BooleanField(default=False)
    payload_json = models.JSONField(null=True, blank=True)
    payload_problem = models.CharField(
        max_length=300, blank=True, help_text="Why the payload has no JSON: cut, empty, not UTF-8, not JSON, too deep."
    )
    headers = models.JSONField(default=list, help_text="[[name, value as text or 0x-hex]].")
    raw_headers = models.JSONField(default=list, help_text="[[name, base64 value or null]], for replay.")
    convention = models.CharField(max_length=20, blank=True)
    group = models.CharField(max_length=255, blank=True, db_index=True)
    service = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=300, blank=True, db_index=True)
    error_cause = models.CharField(max_length=300, blank=True)
    error_message = models.TextField(blank=True)
    stacktrace = models.TextField(blank=True)
    event_id = models.CharField(max_length=200, blank=True)
    event_type = models.ForeignKey(
        "designer.EventType", null=True, blank=True, on_delete=models.SET_NULL, related_name="dead_letters"
    )
    schema_version = models.ForeignKey(
        "designer.SchemaVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_failed_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=NEW, db_index=True)
    replay_count = models.PositiveIntegerField(default=0)
    edited_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edited_copies"
    )
    job = models.ForeignKey("RedriveJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed")
    # Text of the payload (when it is text), capped, for search: the raw bytes are binary.
    payload_text = models.TextField(blank=True)
    decode_problems = models.JSONField(default=list, blank=True, help_text="What was wrong with the headers.")
    # The last replay: where it landed, so the ingester can tell when the group handled it.
    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="came_back",
        help_text="The dead letter whose replay failed again and came back as this one.",
    )
    replay_topic = models.CharField(max_length=249, blank=True)
    replay_partition = models.IntegerField(null=True, blank=True)
    replay_offset = models.CharField(max_length=40, blank=True, help_text="Kafka offset or Redis entry id.")
    replay_group = models.CharField(max_length=255, blank=True, help_text="The group the replay was targeted at.")
    replayed_at = models.DateTimeField(null=True, blank=True)
    # The target topic's end before the replay was sent: where to look for it after a crash.
    claim_marks = models.JSONField(default=dict, blank=True)
    ingested_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeadLetterQuerySet.as_manager()

    class Meta:
        db_table = "monitor_deadletter"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bus", "dlq_topic", "dlq_partition", "dlq_offset"], name="dead_letter_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.error_class or 'dead letter'} from {self.source_topic or self.dlq_topic}"


class UnstoredDeadLetter(models.Model):
    """A dead-letter record the ingester read but the database refused: parked, not retried.

    Its position says where to find it on the bus (until retention removes it); the
    ingester committed past it so that the records after it are stored.
    """

    bus = models.CharField(max_length=10)
    dlq_topic = models.CharField(max_length=249)
    dlq_partition = models.IntegerField(default=0)
    dlq_offset = models.CharField(max_length=40, help_text="Kafka offset or Redis entry id.")
    payload_size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(help_text="What the database (or the row builder) said.")
    parked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "monitor_unstoreddeadletter"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bus", "dlq_topic", "dlq_partition", "dlq_offset"], name="unstored_dead_letter_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bus}:{self.dlq_topic}/{self.dlq_partition}@{self.dlq_offset} (not stored)"


class RedriveJob(models.Model):
    """A bulk retry or discard: rate-capped, cancellable, resumable, audited."""

    RETRY, DISCARD = "retry", "discard"
    ACTIONS = [(RETRY, "Retry"), (DISCARD, "Discard")]
    PENDING, RUNNING, CANCELLING, CANCELLED, DONE, FAILED = (
        "pending",
        "running",
        "cancelling",
        "cancelled",
        "done",
        "failed",
    )
    STATES = [
        (PENDING, "Pending"),
        (RUNNING, "Running"),
        (CANCELLING, "Cancelling"),
        (CANCELLED, "Cancelled"),
        (DONE, "Done"),
        (FAILED, "Failed"),
    ]

    action = models.CharField(max_length=10, choices=ACTIONS)
    state = models.CharField(max_length=12, choices=STATES, default=PENDING, db_index=True)
    selection = models.JSONField(default=dict, help_text="{'ids': [...]} or {'filter': {...}}.")
    rate_per_s = models.FloatField(default=50)
    target_group = models.CharField(max_length=255, blank=True, help_text="Replay only to this consumer group.")
    reason = models.CharField(max_length=500, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last progress; a stale one means a dead worker."
    )
    # The selection resolved to ids when the job is created, so it does not grow while it runs.
    item_ids = models.JSONField(default=list, blank=True)
    cursor = models.PositiveIntegerField(default=0, help_text="item_ids before this index are finished.")
    runner = models.CharField(max_length=40, blank=True, help_text="Token of the worker run that owns the job.")

    class Meta:
        db_table = "monitor_redrivejob"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"redrive job #{self.pk}: {self.action} {self.total} ({self.state})"


class AuditEntry(models.Model):
    """Who did what to which dead letter or job, and what came of it.

    Append-only: a dead letter or job with entries cannot be deleted (PROTECT), and
    the admin neither changes nor deletes entries.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=40)
    dead_letter = models.ForeignKey(DeadLetter, null=True, blank=True, on_delete=models.PROTECT, related_name="audit")
    job = models.ForeignKey(RedriveJob, null=True, blank=True, on_delete=models.PROTECT, related_name="audit")
    result = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "monitor_auditentry"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}: {self.result}"
