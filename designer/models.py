"""The model of the system: who produces and consumes what, on which topic, in which shape.

Everything the monitor and the dead-letter triage know about "the design"
comes from here: topics by bus and address, consumer groups, schemas.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.text import slugify

EVENT_NAME = RegexValidator(
    r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$",
    "Use a dotted lower-case name such as order.placed.",
)


class CanvasNode(models.Model):
    """Where a node sits on the designer canvas (null until placed)."""

    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class Domain(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.slug = self.slug or slugify(self.name)
        super().save(*args, **kwargs)


class Service(CanvasNode):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="services")
    owner_team = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    repository_url = models.URLField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.slug = self.slug or slugify(self.name)
        super().save(*args, **kwargs)


class Topic(CanvasNode):
    KAFKA, REDIS = "kafka", "redis"
    BUS_CHOICES = [(KAFKA, "Kafka"), (REDIS, "Redis Streams")]

    name = models.CharField(max_length=200, unique=True, help_text="Display name.")
    bus = models.CharField(max_length=10, choices=BUS_CHOICES, default=KAFKA)
    address = models.CharField(max_length=249, help_text="The Kafka topic or Redis stream key.")
    partitions = models.PositiveIntegerField(default=1)
    retention_ms = models.BigIntegerField(null=True, blank=True)
    dead_letter_topic = models.CharField(max_length=249, blank=True)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="topics")
    description = models.TextField(blank=True, help_text="Markdown.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["bus", "address"], name="topic_unique_address_per_bus")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.address = self.address or self.name
        self.dead_letter_topic = self.dead_letter_topic or self.default_dead_letter_topic()
        super().save(*args, **kwargs)

    def default_dead_letter_topic(self) -> str:
        return f"{self.address}:dlq" if self.bus == self.REDIS else f"{self.address}.dlq"


class EventType(CanvasNode):
    EVENT, COMMAND = "event", "command"
    KIND_CHOICES = [(EVENT, "Event"), (COMMAND, "Command")]
    MODES = [
        (m, m)
        for m in (
            "NONE",
            "BACKWARD",
            "BACKWARD_TRANSITIVE",
            "FORWARD",
            "FORWARD_TRANSITIVE",
            "FULL",
            "FULL_TRANSITIVE",
        )
    ]
    POLICIES = [("STRICT", "STRICT"), ("LENIENT", "LENIENT")]

    name = models.CharField(max_length=200, unique=True, validators=[EVENT_NAME])
    slug = models.SlugField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default=EVENT)
    owner = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_events")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="event_types")
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="event_types")
    key_field = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    compatibility_mode = models.CharField(max_length=20, choices=MODES, default="BACKWARD")
    compatibility_policy = models.CharField(max_length=10, choices=POLICIES, default="STRICT")
    # Catalog search index (designer.search): the field paths of the latest registered
    # schema, one per line, and the pk of the SchemaVersion they came from, so a search
    # can tell a stale row in one query instead of parsing every schema.
    search_text = models.TextField(blank=True, editable=False)
    search_version_pk = models.BigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Payload fields the latest schema marks "x-eventhub-pii" are shown as ••• without
        # it (eventhub.roles.can_view_sensitive); migration 0004 gives it to Operator and Admin.
        permissions = [("view_sensitive", "Can see payload fields marked sensitive (x-eventhub-pii)")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.slug = self.slug or slugify(self.name.replace(".", "-"))
        super().save(*args, **kwargs)

    def latest_version(self) -> SchemaVersion | None:
        return self.versions.registered().order_by("-version").first()


class SchemaVersionQuerySet(models.QuerySet):
    def registered(self):
        return self.filter(state=SchemaVersion.REGISTERED)

    def drafts(self):
        return self.filter(state=SchemaVersion.DRAFT)


class SchemaVersion(models.Model):
    """One immutable version of an event's JSON Schema (draft-07 or 2020-12).

    Drafts are candidates kept for discussion; only registered versions are
    served to producers and count in compatibility checks.
    """

    REGISTERED, DRAFT = "registered", "draft"
    STATE_CHOICES = [(REGISTERED, "Registered"), (DRAFT, "Draft")]

    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=STATE_CHOICES, default=REGISTERED)
    schema = models.JSONField()
    examples = models.JSONField(default=list, blank=True)
    changelog = models.TextField(blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SchemaVersionQuerySet.as_manager()

    class Meta:
        ordering = ["event_type", "version"]
        constraints = [
            models.UniqueConstraint(fields=["event_type", "version"], name="schema_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type.name} v{self.version}{' (draft)' if self.state == self.DRAFT else ''}"


class Producer(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="produces")
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="producers")
    notes = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "event_type"], name="producer_unique")]

    def __str__(self) -> str:
        return f"{self.service} → {self.event_type}"


class Consumer(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="consumes")
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="consumers")
    group = models.CharField(max_length=200, blank=True, help_text="Consumer group; defaults to the service slug.")
    fields_used = models.JSONField(default=list, blank=True)
    max_attempts = models.PositiveIntegerField(default=3)
    backoff_ms = models.PositiveIntegerField(default=200)
    dead_letter = models.BooleanField(default=True)
    notes = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "event_type"], name="consumer_unique")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.service}"

    def save(self, *args, **kwargs):
        self.group = self.group or self.service.slug
        super().save(*args, **kwargs)


class Flow(models.Model):
    """A business scenario: a trigger, then steps through events and services."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.SET_NULL, related_name="flows")
    trigger = models.CharField(max_length=300, help_text="What starts it, e.g. 'Customer clicks Pay'.")
    description = models.TextField(blank=True, help_text="Markdown.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.slug = self.slug or slugify(self.name)
        super().save(*args, **kwargs)


def follow_the_previous_step(collector, field, sub_objs, using) -> None:
    """on_delete of FlowStep.after: the steps after a deleted step follow the step it followed
    (the trigger when none), so removing a step from a flow keeps the steps after it.

    1. Read which step each deleted step followed, in one query.
    2. For each step after a deleted one that is itself kept, walk up past deleted steps
       (a chain deleted at once) to the nearest kept one, or None (the trigger).
    3. Schedule one UPDATE per new predecessor; Django runs them before the DELETE.
    """
    deleted = {step.pk for step in collector.data.get(FlowStep, ())}
    followed = dict(FlowStep.objects.using(using).filter(pk__in=deleted).values_list("pk", "after_id"))
    moves: dict[int | None, list[int]] = {}
    for pk, after_id in sub_objs.values_list("pk", "after_id"):
        if pk in followed:
            continue  # deleted as well
        previous, seen = followed.get(after_id), set()
        while previous in followed and previous not in seen:
            seen.add(previous)
            previous = followed[previous]
        moves.setdefault(previous, []).append(pk)
    for previous, pks in moves.items():
        collector.add_field_update(field, previous, FlowStep.objects.using(using).filter(pk__in=pks))


# Hand over the query set unevaluated: step 1 reads only the two columns it needs.
follow_the_previous_step.lazy_sub_objs = True


class FlowStep(models.Model):
    """producer --event--> consumer, which does `logic` and writes to `store`.

    `after` makes branches: several steps after the same step run in parallel;
    a step with no `after` follows the trigger. Deleting a step re-links the steps
    after it to the step before it (`follow_the_previous_step`), in the API, the
    admin and any query set delete alike.
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(default=0)
    after = models.ForeignKey(
        "self", null=True, blank=True, on_delete=follow_the_previous_step, related_name="next_steps"
    )
    producer = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event_type = models.ForeignKey(EventType, on_delete=models.CASCADE, related_name="flow_steps")
    consumer = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    logic = models.CharField(max_length=300, blank=True)
    store = models.CharField(max_length=200, blank=True)
    # What a flow check (eventstore.flow_checks) allows this step's event to take.
    time_budget_s = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Seconds after the step it follows."
    )

    class Meta:
        ordering = ["flow", "order", "id"]

    def __str__(self) -> str:
        return f"{self.flow}: {self.order}. {self.event_type}"
