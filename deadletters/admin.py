from django.contrib import admin

from deadletters import models


class ReadOnlyAdmin(admin.ModelAdmin):
    """Dead letters, jobs and the audit trail change only through their verbs (audited), never here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(models.DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "bus", "source_topic", "error_class", "group", "status", "last_failed_at"]
    list_filter = ["bus", "status"]
    search_fields = ["source_topic", "error_class", "group", "event_id"]
    # The payload is shown on the dead-letter page, where sensitive fields are masked or the read audited.
    exclude = ["payload", "payload_json", "payload_text"]


@admin.register(models.UnstoredDeadLetter)
class UnstoredDeadLetterAdmin(ReadOnlyAdmin):
    """Records the ingester parked: where to find each on the bus, and what the database said."""

    list_display = ["parked_at", "bus", "dlq_topic", "dlq_partition", "dlq_offset", "payload_size", "error"]
    list_filter = ["bus"]
    search_fields = ["dlq_topic", "error"]


@admin.register(models.RedriveJob)
class RedriveJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "action", "state", "total", "done", "failed", "rate_per_s", "created_by", "created_at"]
    list_filter = ["action", "state"]


@admin.register(models.AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail is append-only: no delete here either (its foreign keys PROTECT the rest)."""

    list_display = ["at", "actor", "action", "dead_letter", "job", "result"]
    list_filter = ["action"]

    def has_delete_permission(self, request, obj=None):
        return False
