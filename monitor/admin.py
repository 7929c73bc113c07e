from django.contrib import admin

from monitor import models


@admin.register(models.AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "target", "threshold", "for_seconds", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "target"]


@admin.register(models.Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "rule",
        "subject",
        "state",
        "value",
        "started_at",
        "resolved_at",
        "webhook_attempts",
        "webhook_error",
    ]
    list_filter = ["state", "rule"]
    search_fields = ["subject", "message"]
    readonly_fields = [f.name for f in models.Alert._meta.fields]


@admin.register(models.Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["service", "instance", "role", "group", "bus", "last_seen"]
    search_fields = ["service", "instance", "group"]
    readonly_fields = [f.name for f in models.Heartbeat._meta.fields]
