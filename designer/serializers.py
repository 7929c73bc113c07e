"""What the REST API accepts and returns for the design and the schema registry.

Every write of the API goes through one of these serializers; the contract
(integer ids, field names) is the one the canvas relies on, so change it
additively only.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.text import slugify
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueTogetherValidator

from designer import privileged
from designer.models import (
    Consumer,
    Domain,
    EventType,
    Flow,
    FlowStep,
    Producer,
    SchemaVersion,
    Service,
    Topic,
)

# Kafka's own rule for topic names (kafka.common.internals.Topic).
KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class _DerivedSlugMixin:
    """Slugs are derived from the name once, on creation, and must stay unique.

    Two names can share a slug ("Orders" and "orders!"): that is reported on
    `name` instead of failing in the database.
    """

    def _slug_for(self, name: str) -> str:
        return slugify(name)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if self.instance is None and not attrs.get("slug"):
            name = attrs.get("name", "")
            slug = self._slug_for(name)
            if not slug:
                raise serializers.ValidationError({"name": ["Use at least one letter or digit."]})
            model = self.Meta.model
            if model.objects.filter(slug=slug).exists():
                noun = model._meta.verbose_name
                raise serializers.ValidationError(
                    {"name": [f"A {noun} with a name too similar already exists (slug '{slug}')."]}
                )
            attrs["slug"] = slug
        return attrs


class DomainSerializer(_DerivedSlugMixin, serializers.ModelSerializer):
    class Meta:
        model = Domain
        fields = ["id", "name", "slug", "description"]
        extra_kwargs = {"slug": {"required": False, "allow_blank": True}}


class ServiceSerializer(_DerivedSlugMixin, serializers.ModelSerializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50, allow_blank=False), required=False, max_length=50
    )

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "slug",
            "domain",
            "owner_team",
            "description",
            "repository_url",
            "tags",
            "x",
            "y",
        ]
        read_only_fields = ["slug"]

    def validate_tags(self, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(t.strip() for t in tags if t.strip()))  # trimmed, no duplicates, in order


class TopicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = [
            "id",
            "name",
            "bus",
            "address",
            "partitions",
            "retention_ms",
            "dead_letter_topic",
            "domain",
            "description",
            "x",
            "y",
        ]
        extra_kwargs = {
            "address": {"required": False, "allow_blank": True},
            "dead_letter_topic": {"required": False, "allow_blank": True},
            "partitions": {"min_value": 1, "max_value": 10_000},
            "retention_ms": {"min_value": -1},
        }
        # (bus, address) is checked in validate(), where the address default is known.
        validators = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        bus = attrs.get("bus", instance.bus if instance else Topic.KAFKA)
        name = attrs.get("name", instance.name if instance else "")
        address = attrs.get("address", instance.address if instance else "") or name
        if bus == Topic.KAFKA:
            for field, value in (("address", address), ("dead_letter_topic", attrs.get("dead_letter_topic", ""))):
                if value and (not KAFKA_TOPIC.match(value) or value in (".", "..")):
                    raise serializers.ValidationError(
                        {field: [f"'{value}' is not a valid Kafka topic name: use letters, digits, '.', '_' and '-'."]}
                    )
        clash = Topic.objects.filter(bus=bus, address=address)
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {"address": [f"Another {bus} topic already uses the address '{address}'."]}
            )
        if "dead_letter_topic" in attrs:
            errors = privileged.dead_letter_topic_errors(
                _user(self),
                bus=bus,
                address=address,
                wanted=attrs["dead_letter_topic"],
                current=instance.dead_letter_topic if instance else None,
            )
            if errors:
                raise serializers.ValidationError({"dead_letter_topic": errors})
        attrs["address"] = address
        return attrs


class EventTypeSerializer(_DerivedSlugMixin, serializers.ModelSerializer):
    latest_version = serializers.IntegerField(
        source="latest_registered_version",
        read_only=True,
        allow_null=True,
        help_text="Number of the latest registered schema version, null before the first.",
    )

    class Meta:
        model = EventType
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "owner",
            "topic",
            "domain",
            "key_field",
            "description",
            "compatibility_mode",
            "compatibility_policy",
            "x",
            "y",
            "latest_version",
        ]
        read_only_fields = ["slug"]

    def _slug_for(self, name: str) -> str:
        return slugify(name.replace(".", "-"))

    def validate_topic(self, topic: Topic | None) -> Topic | None:
        """Moving an event onto a Redis stream turns its dead-lettering consumers into poison rules."""
        instance, user = self.instance, _user(self)
        moved = instance is not None and topic is not None and topic.pk != instance.topic_id
        if moved and topic.bus == Topic.REDIS and not privileged.may_set_privileged(user):
            if instance.consumers.filter(dead_letter=True).exists():
                raise serializers.ValidationError(privileged.ONLY_OPERATORS_POISON)
        return topic


class ProducerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Producer
        fields = ["id", "service", "event_type"]
        validators = [
            UniqueTogetherValidator(
                queryset=Producer.objects.all(),
                fields=["service", "event_type"],
                message="This service already produces this event.",
            )
        ]


def _user(serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


class ConsumerSerializer(serializers.ModelSerializer):
    fields_used = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        max_length=500,
        help_text='Fields of the event this consumer reads, dotted ("customer.email", "items[].sku"). '
        "Empty means unknown: every incompatible change is assumed to break it.",
    )

    class Meta:
        model = Consumer
        fields = ["id", "service", "event_type", "group", "fields_used", "max_attempts", "backoff_ms", "dead_letter"]
        extra_kwargs = {
            "group": {"required": False, "allow_blank": True, "help_text": "Defaults to the service slug."},
            "max_attempts": {"min_value": 1, "max_value": 100},
            "backoff_ms": {"max_value": 3_600_000},
        }
        validators = [
            UniqueTogetherValidator(
                queryset=Consumer.objects.all(),
                fields=["service", "event_type"],
                message="This service already consumes this event.",
            )
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A dead-lettering consumer of a Redis stream is a poison rule: Operators and Admins only
        (designer/privileged.py). Others get dead_letter off by default on Redis streams."""
        instance, user = self.instance, _user(self)
        event_type = attrs.get("event_type", instance.event_type if instance else None)
        if event_type is None or event_type.topic is None:
            return attrs
        bus = event_type.topic.bus
        if instance is None and "dead_letter" not in attrs and bus == Topic.REDIS:
            attrs["dead_letter"] = privileged.may_set_privileged(user)
        service = attrs.get("service", instance.service if instance else None)
        group = attrs.get("group", instance.group if instance else "") or (service.slug if service else "")
        dead_letter = attrs.get("dead_letter", instance.dead_letter if instance else True)
        attempts = attrs.get("max_attempts", instance.max_attempts if instance else 3)
        current = None
        if instance is not None and instance.dead_letter and instance.event_type.topic_id:
            if instance.event_type.topic.bus == Topic.REDIS:
                current = (instance.event_type_id, instance.group, instance.max_attempts)
        errors = privileged.poison_rule_errors(
            user, bus=bus, dead_letter=dead_letter, rule=(event_type.pk, group, attempts), current_rule=current
        )
        if errors:
            raise serializers.ValidationError({"dead_letter": errors})
        return attrs


class FlowStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = FlowStep
        fields = ["id", "order", "after", "producer", "event_type", "consumer", "logic", "store", "time_budget_s"]

    def validate_after(self, after: FlowStep | None) -> FlowStep | None:
        flow = self.context.get("flow")
        if after is not None and flow is not None and after.flow_id != flow.pk:
            raise serializers.ValidationError("Pick a step of the same flow.")
        if after is not None and self.instance is not None:
            # Walking up from `after` must not reach this step, or the flow loops.
            parents = dict(FlowStep.objects.filter(flow_id=after.flow_id).values_list("pk", "after_id"))
            current: int | None = after.pk
            while current is not None:
                if current == self.instance.pk:
                    raise serializers.ValidationError("That would make the steps follow each other in a loop.")
                current = parents.pop(current, None)
        return after


class FlowSerializer(_DerivedSlugMixin, serializers.ModelSerializer):
    steps = FlowStepSerializer(many=True, read_only=True)

    class Meta:
        model = Flow
        fields = ["id", "name", "slug", "domain", "trigger", "description", "steps"]
        read_only_fields = ["slug"]


# --------------------------------------------------------------------------- graph and lints
class LintSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "event-without-consumer",
            "consumer-without-producer",
            "topic-without-events",
            "event-without-schema",
            "cycle",
            "incompatible-draft",
        ]
    )
    severity = serializers.ChoiceField(choices=["error", "warning", "info"])
    message = serializers.CharField()
    node_ids = serializers.ListField(child=serializers.CharField(), help_text='Graph node ids such as "event:5".')


class GraphNodeSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='"service:3", "event:5" or "topic:2".')
    kind = serializers.ChoiceField(choices=["service", "event", "topic"])
    pk = serializers.IntegerField()
    label = serializers.CharField()
    domain = serializers.CharField(allow_null=True, help_text="Domain slug.")
    x = serializers.FloatField(allow_null=True)
    y = serializers.FloatField(allow_null=True)
    bus = serializers.ChoiceField(choices=["kafka", "redis"], required=False, help_text="Topics only.")
    address = serializers.CharField(required=False, help_text="Topics only.")
    event_kind = serializers.ChoiceField(choices=["event", "command"], required=False, help_text="Events only.")
    latest_version = serializers.IntegerField(allow_null=True, required=False, help_text="Events only.")
    lints = serializers.ListField(child=serializers.CharField(), help_text="Lint messages about this node.")


class GraphEdgeSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='"producer:7", "consumer:9" or "on-topic:5" (the event id).')
    kind = serializers.ChoiceField(choices=["produces", "consumes", "on-topic"])
    pk = serializers.IntegerField(allow_null=True, help_text="Producer or Consumer id; null for on-topic.")
    source = serializers.CharField()
    target = serializers.CharField()


class GraphSerializer(serializers.Serializer):
    nodes = GraphNodeSerializer(many=True)
    edges = GraphEdgeSerializer(many=True)
    lints = LintSerializer(many=True, help_text="The lints that concern the nodes shown.")


# --------------------------------------------------------------------------- registry
class RegistryVersionSerializer(serializers.ModelSerializer):
    """What producers fetch: exactly these keys (the SDK reads them)."""

    event_type = serializers.CharField(source="event_type.name")
    topic = serializers.CharField(source="event_type.topic.address", allow_null=True, help_text="Topic address.")
    bus = serializers.CharField(source="event_type.topic.bus", allow_null=True, help_text='"kafka" or "redis".')
    schema = serializers.JSONField()
    examples = serializers.JSONField()

    class Meta:
        model = SchemaVersion
        fields = ["event_type", "version", "schema", "topic", "bus", "examples", "created_at"]


class RegisteredVersionSerializer(RegistryVersionSerializer):
    """The answer to a registration: the version plus how it was stored."""

    author = serializers.CharField(source="author.get_username", allow_null=True, default=None)

    class Meta(RegistryVersionSerializer.Meta):
        fields = [*RegistryVersionSerializer.Meta.fields, "state", "changelog", "author"]


class VersionSummarySerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.get_username", allow_null=True, default=None)

    class Meta:
        model = SchemaVersion
        fields = ["version", "state", "changelog", "author", "created_at"]


class RegisterSchemaSerializer(serializers.Serializer):
    schema = serializers.JSONField(help_text="A JSON Schema document (draft-07 unless $schema says otherwise).")
    changelog = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    examples = serializers.ListField(
        child=serializers.JSONField(), required=False, default=list, max_length=100, help_text="Must each validate."
    )
    draft = serializers.BooleanField(
        required=False, default=False, help_text="Store as a draft even when incompatible; never served to producers."
    )


# The request's mode/policy take the same values as the event's compatibility_mode
# and compatibility_policy; pointing at those enums keeps the OpenAPI document
# from naming one choice set twice.
@extend_schema_field({"$ref": "#/components/schemas/CompatibilityModeEnum"})
class _ModeField(serializers.ChoiceField):
    pass


@extend_schema_field({"$ref": "#/components/schemas/CompatibilityPolicyEnum"})
class _PolicyField(serializers.ChoiceField):
    pass


class CompatibilityRequestSerializer(serializers.Serializer):
    schema = serializers.JSONField()
    mode = _ModeField(choices=EventType.MODES, required=False, help_text="Defaults to the event's mode.")
    policy = _PolicyField(choices=EventType.POLICIES, required=False, help_text="Defaults to the event's policy.")
    traffic_limit = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=10_000,
        help_text="Replay the candidate on this many of the type's latest real events (0: none; "
        "default EVENTHUB_TRAFFIC_CHECK_EVENTS).",
    )


class ChangeSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="Confluent's difference type, e.g. TYPE_CHANGED.")
    path = serializers.CharField(help_text="JSON pointer into the schema.")
    reason = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="The registered version compared with.")
    compatible = serializers.BooleanField(help_text="Whether this change alone is allowed by the policy.")


class BreakingConsumerSerializer(serializers.Serializer):
    service = serializers.CharField()
    group = serializers.CharField()
    fields_used = serializers.ListField(child=serializers.CharField())


class TrafficExampleSerializer(serializers.Serializer):
    offset = serializers.CharField(help_text="bus:topic/partition@offset of the real event.")
    path = serializers.CharField(help_text="Where it fails, as a JSON path ($ when it is not JSON).")
    message = serializers.CharField(help_text="Why; values the caller may not see are hidden.")


class TrafficSerializer(serializers.Serializer):
    checked = serializers.IntegerField(help_text="Real events replayed against the candidate.")
    failing = serializers.IntegerField(help_text="Of those, how many it would reject.")
    examples = TrafficExampleSerializer(many=True)
    unread = serializers.IntegerField(help_text="Indexed events whose payload is no longer on the bus.")


class CompatibilitySerializer(serializers.Serializer):
    compatible = serializers.BooleanField()
    mode = serializers.CharField()
    policy = serializers.CharField()
    changes = ChangeSerializer(many=True)
    reason = serializers.CharField()
    breaking_consumers = BreakingConsumerSerializer(many=True)
    traffic = TrafficSerializer(
        required=False, allow_null=True, help_text="The candidate on real traffic (compatibility checks only)."
    )


class SchemaProblemSerializer(serializers.Serializer):
    """400 for a schema: {"schema": ["message"], "path": "#/..."} (or "examples")."""

    schema = serializers.ListField(child=serializers.CharField(), required=False)
    examples = serializers.ListField(child=serializers.CharField(), required=False)
    path = serializers.CharField(required=False, help_text="JSON pointer to the problem.")
