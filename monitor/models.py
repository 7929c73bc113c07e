"""What the monitor keeps: metric history, heartbeats, alert rules and alerts."""

from __future__ import annotations

from django.db import models

# --- Metrics ---------------------------------------------------------------------


class Sample(models.Model):
    """One point of a series: a topic (group blank) or a group on a topic.

    Raw samples are kept for an hour; one-minute rollups for a week.
    """

    RAW, MINUTE = "raw", "1m"
    RESOLUTIONS = [(RAW, "raw"), (MINUTE, "1 minute")]

    bus = models.CharField(max_length=10)
    topic = models.CharField(max_length=249)
    group = models.CharField(max_length=255, blank=True)
    resolution = models.CharField(max_length=4, choices=RESOLUTIONS, default=RAW)
    at = models.DateTimeField(db_index=True)
    end_offset = models.BigIntegerField(null=True)
    committed = models.BigIntegerField(null=True)
    lag = models.BigIntegerField(null=True)
    lag_seconds = models.FloatField(null=True)
    rate = models.FloatField(null=True, help_text="Messages/s produced (topic) or consumed (group).")
    status = models.CharField(max_length=10, blank=True)

    class Meta:
        indexes = [models.Index(fields=["bus", "topic", "group", "resolution", "at"], name="sample_series_at")]

    def __str__(self) -> str:
        series = f"{self.topic}/{self.group}" if self.group else self.topic
        return f"{self.bus}:{series} at {self.at:%Y-%m-%d %H:%M:%S} ({self.resolution})"


class Heartbeat(models.Model):
    """The last heartbeat of each service instance (from the SDK's heartbeat topic)."""

    service = models.CharField(max_length=100)
    instance = models.CharField(max_length=200)
    role = models.CharField(max_length=20, blank=True)
    group = models.CharField(max_length=255, blank=True)
    bus = models.CharField(max_length=10, blank=True)
    last_seen = models.DateTimeField()
    interval_s = models.FloatField(default=10)
    payload = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "instance"], name="heartbeat_unique_instance")]

    def __str__(self) -> str:
        return f"{self.service}/{self.instance}"


# --- Alerts ----------------------------------------------------------------------


class AlertRule(models.Model):
    LAG_MESSAGES = "lag_messages"
    LAG_SECONDS = "lag_seconds"
    FRESHNESS = "freshness"
    DLQ_INFLOW = "dlq_inflow"
    GROUP_STATUS = "group_status"
    HEARTBEAT = "heartbeat"
    FLOW_CHECK = "flow_check"
    INVALID_RATE = "invalid_rate"
    KINDS = [
        (LAG_MESSAGES, "Lag above N messages"),
        (LAG_SECONDS, "Lag above N seconds"),
        (FRESHNESS, "Edge silent longer than N seconds"),
        (DLQ_INFLOW, "Dead-letter inflow above N per minute"),
        (GROUP_STATUS, "Group STALL or STOP"),
        (HEARTBEAT, "Service heartbeat lost"),
        (FLOW_CHECK, "Flow check failing"),
        (INVALID_RATE, "Invalid events above N % of a type"),
    ]

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=KINDS)
    target = models.CharField(
        max_length=255, default="*", help_text="Topic, group, service, flow slug or event type; fnmatch pattern."
    )
    threshold = models.FloatField(default=0)
    for_seconds = models.PositiveIntegerField(default=0, help_text="Condition must hold this long before firing.")
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    FIRING, RESOLVED = "firing", "resolved"
    STATES = [(FIRING, "Firing"), (RESOLVED, "Resolved")]

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    subject = models.CharField(max_length=300, help_text="What it is about, e.g. kafka:orders/billing.")
    state = models.CharField(max_length=10, choices=STATES, default=FIRING)
    message = models.CharField(max_length=500)
    value = models.FloatField(null=True)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    webhook_attempts = models.PositiveIntegerField(default=0)
    webhook_error = models.CharField(max_length=500, blank=True)
    webhook_delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["state", "rule", "subject"], name="alert_state_rule_subject")]

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.subject} ({self.state})"
