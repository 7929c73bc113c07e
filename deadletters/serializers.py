"""What the dead-letter REST API accepts and returns.

Every input of the API goes through one of the *RequestSerializer classes;
outputs are documented with the rest so the OpenAPI schema says exactly what
comes back. Payloads come out as `deadletters.sensitive` shows them: the detail
serializer takes the view's `Shown` in its context ("shown"), and without one
masks as for a user who may not see sensitive fields.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deadletters import filters, sensitive
from deadletters import headers as dead_letter_headers
from deadletters.models import MAX_ID, MAX_RATE, AuditEntry, DeadLetter, RedriveJob

PREVIEW_LENGTH = 200


def _key(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    raw = bytes(value)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"text": text, "base64": base64.b64encode(raw).decode("ascii")}


class KeySerializer(serializers.Serializer):
    text = serializers.CharField(allow_null=True, help_text="The key as UTF-8 text, when it is.")
    base64 = serializers.CharField()


class PayloadSerializer(serializers.Serializer):
    encoding = serializers.ChoiceField(
        choices=["json", "text", "base64"], help_text="How to show it: parsed JSON, text, or binary."
    )
    json = serializers.JSONField(allow_null=True, help_text="The parsed payload (encoding json).")
    text = serializers.CharField(allow_null=True, help_text="The payload as text, when it is valid UTF-8.")
    base64 = serializers.CharField(allow_null=True, help_text="The stored bytes; null when fields are masked.")
    size = serializers.IntegerField(help_text="Size of the original record value in bytes.")
    stored = serializers.IntegerField(help_text="Bytes stored (at most EVENTHUB_DLQ_PAYLOAD_CAP).")
    truncated = serializers.BooleanField()
    masked = serializers.ListField(
        child=serializers.CharField(),
        help_text='JSON paths of sensitive values (x-eventhub-pii) shown as "•••"; empty with view_sensitive.',
    )
    problem = serializers.CharField(
        help_text="Why there is no JSON (cut, empty, not UTF-8, not JSON, too deep); blank when parsed."
    )


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "result", "detail", "dead_letter", "job"]


class DeadLetterSerializer(serializers.ModelSerializer):
    """One row of the list: everything but the payload, headers and stack trace."""

    event_type = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    schema_version = serializers.SerializerMethodField()
    key = serializers.SerializerMethodField()
    payload_preview = serializers.SerializerMethodField()

    class Meta:
        model = DeadLetter
        fields = [
            "id",
            "bus",
            "dlq_topic",
            "dlq_partition",
            "dlq_offset",
            "source_topic",
            "source_partition",
            "source_offset",
            "key",
            "payload_preview",
            "payload_size",
            "truncated",
            "convention",
            "group",
            "service",
            "attempts",
            "error_class",
            "error_message",
            "event_id",
            "event_type",
            "schema_version",
            "first_failed_at",
            "last_failed_at",
            "status",
            "replay_count",
            "replay_of",
            "edited_from",
            "job",
            "ingested_at",
            "updated_at",
        ]

    @extend_schema_field(OpenApiTypes.INT)
    def get_schema_version(self, obj: DeadLetter) -> int | None:
        return obj.schema_version.version if obj.schema_version_id else None

    @extend_schema_field(KeySerializer(allow_null=True))
    def get_key(self, obj: DeadLetter) -> dict[str, Any] | None:
        return _key(obj.key)

    @extend_schema_field(OpenApiTypes.STR)
    def get_payload_preview(self, obj: DeadLetter) -> str:
        """The list view annotates and masks `preview` (sensitive.previews); masked for everyone."""
        text = getattr(obj, "preview", None)
        if text is None:
            obj.preview = obj.payload_text[:PREVIEW_LENGTH]
            text = sensitive.previews([obj], PREVIEW_LENGTH)[0].preview
        if text or not obj.payload_size:
            return text
        return f"({obj.payload_size} bytes, binary)"


class DeadLetterDetailSerializer(DeadLetterSerializer):
    """One dead letter with its payload, decoded headers, stack trace, replays and audit trail."""

    payload = serializers.SerializerMethodField()
    audit = AuditEntrySerializer(many=True, read_only=True)
    came_back = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="Dead letters that are failed replays of this one."
    )
    edited_copies = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta(DeadLetterSerializer.Meta):
        fields = [
            *DeadLetterSerializer.Meta.fields,
            "payload",
            "headers",
            "raw_headers",
            "decode_problems",
            "error_cause",
            "stacktrace",
            "replay_topic",
            "replay_partition",
            "replay_offset",
            "replay_group",
            "replayed_at",
            "came_back",
            "edited_copies",
            "audit",
        ]

    @extend_schema_field(PayloadSerializer)
    def get_payload(self, obj: DeadLetter) -> dict[str, Any]:
        raw = bytes(obj.payload or b"")
        shown = self.context.get("shown") or sensitive.dead_letter_payload(None, obj, via="api")
        if shown.masked:
            return {
                "encoding": "json",
                "json": shown.payload,
                "text": json.dumps(shown.payload, ensure_ascii=False),
                "base64": None,
                "size": obj.payload_size,
                "stored": len(raw),
                "truncated": obj.truncated,
                "problem": obj.payload_problem,
                "masked": shown.masked,
            }
        decoded = dead_letter_headers.decode_payload(raw, len(raw) + 1)
        if obj.payload_json is not None and not obj.truncated:
            encoding = "json"
        elif decoded.text is not None:
            encoding = "text"
        else:
            encoding = "base64"
        return {
            "encoding": encoding,
            "json": obj.payload_json,
            "text": decoded.text,
            "base64": base64.b64encode(raw).decode("ascii"),
            "size": obj.payload_size,
            "stored": len(raw),
            "truncated": obj.truncated,
            "problem": obj.payload_problem,
            "masked": [],
        }


# --------------------------------------------------------------------------- actions
class RetryRequestSerializer(serializers.Serializer):
    target_group = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Replay to this consumer group only (x-eventhub-replay-group); others skip it.",
    )
    confirm_target = serializers.BooleanField(
        default=False,
        help_text="Send even when only the record's headers name the source topic (no designed topic "
        "dead-letters there and the dead-letter topic's name does not say so); 409 otherwise.",
    )


class EditAndRetryRequestSerializer(RetryRequestSerializer):
    payload = serializers.JSONField(allow_null=True, help_text="The corrected payload, checked against the schema.")


class DiscardRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why it is given up; kept in the audit trail.")


class ActionErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class PayloadErrorSerializer(serializers.Serializer):
    payload = serializers.ListField(child=serializers.CharField())
    path = serializers.CharField(help_text="JSONPath of the offending value, e.g. $.amount.")


class GroupSerializer(serializers.Serializer):
    error_class = serializers.CharField()
    group = serializers.CharField()
    event_type = serializers.CharField(allow_null=True)
    service = serializers.CharField()
    count = serializers.IntegerField()
    new = serializers.IntegerField(help_text="How many of them are still new.")
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)


# --------------------------------------------------------------------------- redrive jobs
class RedriveJobRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[RedriveJob.RETRY, RedriveJob.DISCARD])
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, max_length=10_000
    )
    filter = serializers.DictField(
        required=False, help_text=f"The list filters: {', '.join(filters.FIELDS)} (status may be a comma list)."
    )
    rate_per_s = serializers.FloatField(min_value=0.1, max_value=MAX_RATE, default=50)
    target_group = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    dry_run = serializers.BooleanField(default=False, help_text="Only say what the job would do.")
    confirm_targets = serializers.BooleanField(
        default=False,
        help_text="Retry even to source topics that only the records' headers name (the dry run lists them "
        "as unconfirmed_targets); 409 otherwise.",
    )

    def validate_filter(self, value: dict[str, Any]) -> dict[str, Any]:
        form = filters.form_from(value)
        if not form.is_valid():
            raise serializers.ValidationError({name: list(errors) for name, errors in form.errors.items()})
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"ids": ["Give either 'ids' or 'filter'."]})
        if "ids" in attrs and not attrs["ids"]:
            raise serializers.ValidationError({"ids": ["Give at least one id."]})
        if attrs["action"] == RedriveJob.DISCARD and not attrs["dry_run"] and not attrs["reason"].strip():
            raise serializers.ValidationError({"reason": ["Say why they are discarded."]})
        return attrs

    def selection(self) -> dict[str, Any]:
        data = self.validated_data
        return {"ids": data["ids"]} if "ids" in data else {"filter": data["filter"]}


class RedriveJobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = RedriveJob
        fields = [
            "id",
            "action",
            "state",
            "selection",
            "rate_per_s",
            "target_group",
            "reason",
            "total",
            "done",
            "failed",
            "skipped",
            "progress",
            "last_error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
        ]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_progress(self, obj: RedriveJob) -> float:
        """Share of the items finished, 0..1."""
        return round((obj.done + obj.failed + obj.skipped) / obj.total, 4) if obj.total else 1.0


class TargetTopicSerializer(serializers.Serializer):
    bus = serializers.CharField()
    topic = serializers.CharField()
    count = serializers.IntegerField()


class UnconfirmedTargetSerializer(serializers.Serializer):
    bus = serializers.CharField()
    topic = serializers.CharField()
    dead_letter_topic = serializers.CharField()


class ReceiverSerializer(serializers.Serializer):
    service = serializers.CharField()
    group = serializers.CharField()


class DryRunSerializer(serializers.Serializer):
    action = serializers.CharField()
    selected = serializers.IntegerField(help_text="Dead letters the selection names.")
    count = serializers.IntegerField(help_text="How many the job would act on (the others are skipped).")
    skipped = serializers.IntegerField()
    would_park = serializers.IntegerField(help_text="Replayed too often already: parked instead of sent.")
    not_replayable = serializers.IntegerField(help_text="Source unknown or payload truncated: edit them instead.")
    target_topics = TargetTopicSerializer(many=True)
    receivers = ReceiverSerializer(many=True, help_text="Who gets the replays, from the design.")
    unconfirmed_targets = UnconfirmedTargetSerializer(
        many=True, help_text="Source topics only the records' headers name: starting the job needs confirm_targets."
    )
