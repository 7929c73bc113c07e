from django.contrib import admin

from designer import models


@admin.register(models.Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(models.Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "domain", "owner_team"]
    list_filter = ["domain"]
    search_fields = ["name", "description", "owner_team"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(models.Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "bus", "address", "partitions", "dead_letter_topic"]
    list_filter = ["bus", "domain"]
    search_fields = ["name", "address", "description"]


class SchemaVersionInline(admin.TabularInline):
    """The event's versions, to read. A version is made by `designer.registry.register_version`
    (catalog, API, CLI), which checks compatibility and numbers it; a row typed here would skip both."""

    model = models.SchemaVersion
    extra = 0
    fields = ["version", "state", "changelog", "author", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "owner", "topic", "compatibility_mode", "compatibility_policy"]
    list_filter = ["kind", "domain", "compatibility_mode"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [SchemaVersionInline]


@admin.register(models.SchemaVersion)
class SchemaVersionAdmin(admin.ModelAdmin):
    """Versions to read and search. They are made and promoted only through the registry
    (catalog, API, CLI), which checks compatibility; nothing here adds or changes one."""

    list_display = ["event_type", "version", "state", "author", "created_at"]
    list_filter = ["state"]
    search_fields = ["event_type__name", "changelog"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Producer)
class ProducerAdmin(admin.ModelAdmin):
    list_display = ["service", "event_type"]
    list_filter = ["service"]


@admin.register(models.Consumer)
class ConsumerAdmin(admin.ModelAdmin):
    list_display = ["service", "event_type", "group", "max_attempts", "dead_letter"]
    list_filter = ["service", "dead_letter"]


class FlowStepInline(admin.TabularInline):
    model = models.FlowStep
    fk_name = "flow"
    extra = 0


@admin.register(models.Flow)
class FlowAdmin(admin.ModelAdmin):
    list_display = ["name", "domain", "trigger"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [FlowStepInline]
