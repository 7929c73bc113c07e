from django.contrib import admin

from eventstore.models import FlowCheck, FlowCheckStep, IndexedEvent, TopicIndexSetting


@admin.register(TopicIndexSetting)
class TopicIndexSettingAdmin(admin.ModelAdmin):
    list_display = ("bus", "topic", "sample_rate", "keep_payloads", "retention_days", "updated_at")
    list_filter = ("bus", "keep_payloads")
    search_fields = ("topic",)


@admin.register(IndexedEvent)
class IndexedEventAdmin(admin.ModelAdmin):
    list_display = ("bus", "topic", "partition", "offset", "timestamp", "ce_type", "ce_id", "validity")
    list_filter = ("bus", "validity")
    search_fields = ("=ce_id", "=correlation_id", "=trace_id", "=key_hash")
    raw_id_fields = ("schema_version",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class FlowCheckStepInline(admin.TabularInline):
    model = FlowCheckStep
    fk_name = "flow_check"
    fields = ("position", "event_type", "time_budget_s", "status", "latency_ms", "observed")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(FlowCheck)
class FlowCheckAdmin(admin.ModelAdmin):
    """Read-only: checks are made by eventstore.flow_checks.start and judged by evaluate."""

    list_display = ("id", "flow", "status", "started_at", "finished_at", "scheduled", "started_by")
    list_filter = ("status", "scheduled")
    search_fields = ("=correlation_id", "flow__name")
    inlines = [FlowCheckStepInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
