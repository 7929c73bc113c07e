"""The shapes of the event store's REST API, for its OpenAPI document (drf-spectacular).

Traces and the topic browser answer plain dicts built by eventstore/traces.py and
eventstore/browse.py: their serializers say what those hold (the schemathesis sweep holds
every answer to them). Flow checks and discovered schemas are model serializers.
"""

from __future__ import annotations

from rest_framework import serializers

from designer import fieldtree
from eventstore.models import FlowCheck, FlowCheckStep, ObservedSchema


# --------------------------------------------------------------------------- traces
class TraceEventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event's id (ce_id).")
    type = serializers.CharField(help_text="ce_type.")
    source = serializers.CharField(help_text="ce_source.")
    service = serializers.CharField(help_text="The producing service: a designed Service's slug when one matches.")
    bus = serializers.CharField()
    topic = serializers.CharField()
    partition = serializers.IntegerField()
    offset = serializers.CharField()
    time = serializers.DateTimeField(help_text="The broker's timestamp.")
    causation_id = serializers.CharField(help_text="The id of the event this one reacts to.")
    schema_version = serializers.IntegerField(allow_null=True)
    valid = serializers.BooleanField(allow_null=True, help_text="null: no registered schema.")
    invalid_path = serializers.CharField(help_text="Where an invalid payload first fails.")
    invalid_rule = serializers.CharField()
    key = serializers.CharField(help_text="The key's first 100 characters.")
    latency_ms = serializers.IntegerField(allow_null=True, help_text="Since its cause, when the cause is in the trace.")
    replay_count = serializers.IntegerField(help_text="Earlier rows with the same id (a replayed dead letter).")
    payload_id = serializers.IntegerField(
        allow_null=True, help_text="The indexed event's id: its page /events/{id}/ and the payload API."
    )


class TraceDeadLetterSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    status = serializers.CharField()
    error_class = serializers.CharField()
    group = serializers.CharField()
    service = serializers.CharField()
    topic = serializers.CharField()
    replay_count = serializers.IntegerField()
    failed_at = serializers.DateTimeField(allow_null=True)


class TraceSerializer(serializers.Serializer):
    correlation_id = serializers.CharField()
    events = TraceEventSerializer(many=True, help_text="Causal, then time order.")
    dead_letters = TraceDeadLetterSerializer(many=True)
    truncated = serializers.BooleanField(help_text="More events than the answer holds (the earliest are kept).")
    services = serializers.ListField(child=serializers.CharField())
    first_time = serializers.DateTimeField(allow_null=True)
    last_time = serializers.DateTimeField(allow_null=True)
    live = serializers.BooleanField(help_text="The newest event is a few minutes old at most: it may still grow.")


class TraceRowSerializer(serializers.Serializer):
    correlation_id = serializers.CharField()
    first_time = serializers.DateTimeField()
    last_time = serializers.DateTimeField()
    events = serializers.IntegerField()
    types = serializers.ListField(child=serializers.CharField())
    services = serializers.ListField(child=serializers.CharField())
    dead_letters = serializers.IntegerField()
    invalid = serializers.IntegerField()
    url = serializers.CharField(help_text="The trace's API address.")


class TracePageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="The next page (cursor), null at the end.")
    previous = serializers.CharField(allow_null=True)
    results = TraceRowSerializer(many=True)


class TraceEventPayloadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    topic = serializers.CharField()
    offset = serializers.CharField()
    found = serializers.BooleanField(help_text="False when the record is no longer on the bus (see problem).")
    problem = serializers.CharField(help_text="Why there is no payload, or why it is not read as JSON.")
    encoding = serializers.ChoiceField(choices=["json", "text", "base64"])
    payload = serializers.JSONField(
        allow_null=True, help_text="JSON with sensitive fields masked, text, or base64; null when not found."
    )
    masked = serializers.ListField(child=serializers.CharField(), help_text="JSON paths shown as •••.")
    truncated = serializers.BooleanField(help_text="Cut at EVENTHUB_DLQ_PAYLOAD_CAP when stored.")


# --------------------------------------------------------------------------- flow checks
class FlowCheckStepSerializer(serializers.ModelSerializer):
    step = serializers.IntegerField(source="step_id", allow_null=True, help_text="The flow step (null once deleted).")
    after = serializers.IntegerField(source="after.step_id", allow_null=True, default=None)

    class Meta:
        model = FlowCheckStep
        fields = ["step", "event_type", "position", "after", "time_budget_s", "status", "latency_ms", "observed"]


class FlowCheckSerializer(serializers.ModelSerializer):
    flow = serializers.IntegerField(source="flow_id")
    flow_slug = serializers.CharField(source="flow.slug")
    started_by = serializers.CharField(source="started_by.username", allow_null=True, default=None)
    steps = FlowCheckStepSerializer(many=True)

    class Meta:
        model = FlowCheck
        fields = [
            "id",
            "flow",
            "flow_slug",
            "status",
            "correlation_id",
            "started_at",
            "published_at",
            "finished_at",
            "trigger_event_id",
            "started_by",
            "scheduled",
            "error",
            "steps",
        ]


class FlowCheckStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=[FlowCheck.RUNNING])


class FlowCheckRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --------------------------------------------------------------------------- topic browser
ENCODINGS = ["utf-8", "base64"]


class BrowseHeaderSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(help_text="The header's value: text, or base64 when it is not UTF-8 text.")
    encoding = serializers.ChoiceField(choices=ENCODINGS)


class BrowseMessageSerializer(serializers.Serializer):
    partition = serializers.IntegerField()
    offset = serializers.JSONField(help_text="Kafka: the offset (integer); Redis: the entry id (text).")
    timestamp = serializers.DateTimeField(allow_null=True, help_text="The broker's timestamp.")
    key = serializers.CharField(allow_null=True, help_text="null: no key. Base64 when key_encoding says so.")
    key_encoding = serializers.ChoiceField(choices=ENCODINGS, allow_null=True)
    headers = BrowseHeaderSerializer(many=True)
    type = serializers.CharField(help_text="The CloudEvents type, in either content mode; empty when none.")
    content_mode = serializers.ChoiceField(choices=["binary", "structured"])
    id = serializers.CharField(help_text="The CloudEvents id; empty when none.")
    correlation_id = serializers.CharField(help_text="x-eventhub-correlation-id; empty when none.")
    size = serializers.IntegerField(help_text="The value's size in bytes.")
    payload = serializers.JSONField(
        allow_null=True,
        help_text="The data as JSON (structured mode: the envelope's data), sensitive fields masked; "
        "else text or base64 of at most 64 KiB (payload_encoding).",
    )
    payload_encoding = serializers.ChoiceField(choices=["json", "utf-8", "base64", "masked"], allow_null=True)
    truncated = serializers.BooleanField(help_text="Only the value's first 64 KiB are shown.")
    masked = serializers.ListField(child=serializers.CharField(), help_text="JSON paths shown as •••.")
    valid = serializers.BooleanField(
        allow_null=True, help_text="Against the registered schema version it names, else the latest; null: none."
    )
    error = serializers.CharField(help_text="The first failing path and why (no hidden values).")
    schema_version = serializers.IntegerField(allow_null=True, help_text="The version checked against.")
    trace_url = serializers.CharField(allow_null=True, help_text="The trace page of its correlation id.")
    event_url = serializers.CharField(allow_null=True, help_text="The event store's page of it, when indexed.")


class BrowsePageSerializer(serializers.Serializer):
    messages = BrowseMessageSerializer(many=True)
    scanned = serializers.IntegerField(help_text="Records read by this request.")
    matched = serializers.IntegerField(help_text="Records that passed the filters (the messages).")
    next = serializers.CharField(allow_null=True, help_text="Pass as `cursor` to scan on; null: the scan is done.")


class BrowseTopicSerializer(serializers.Serializer):
    name = serializers.CharField()
    partitions = serializers.IntegerField()
    end_offsets = serializers.DictField(
        child=serializers.IntegerField(), help_text="Per partition, the next offset (Redis: entries added)."
    )
    designed = serializers.BooleanField(help_text="The design (designer's topics) has it.")


class BrowseTopicListSerializer(serializers.Serializer):
    topics = BrowseTopicSerializer(many=True)


# --------------------------------------------------------------------------- discovered schemas
class DiscoveredSchemaSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True, help_text="The event type, or bus:topic for untyped events.")
    field_tree = serializers.SerializerMethodField(help_text="The data paths of the inferred schema's fields.")

    class Meta:
        model = ObservedSchema
        fields = [
            "id",
            "kind",
            "name",
            "event_type_name",
            "bus",
            "topic",
            "sample_count",
            "first_seen",
            "last_seen",
            "too_varied",
            "schema",
            "field_tree",
        ]
        read_only_fields = fields

    def get_field_tree(self, row: ObservedSchema) -> list[str]:
        return fieldtree.field_paths(row.schema)


class ApproveRequestSerializer(serializers.Serializer):
    schema = serializers.JSONField(required=False, help_text="The draft as edited; the inferred draft when absent.")
    name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200, help_text="The event type, for a topic's draft."
    )
    changelog = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class ApproveProblemSerializer(serializers.Serializer):
    """400: the field at fault and its messages; `path` points into the schema for a schema problem."""

    name = serializers.ListField(child=serializers.CharField(), required=False)
    schema = serializers.ListField(child=serializers.CharField(), required=False)
    examples = serializers.ListField(child=serializers.CharField(), required=False)
    changelog = serializers.ListField(child=serializers.CharField(), required=False)
    path = serializers.CharField(required=False, help_text="JSON pointer to the problem in the schema.")
