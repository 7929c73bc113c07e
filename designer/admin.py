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
    model = models.SchemaVersion
    extra = 0
    fields = ["version", "state", "changelog", "author", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(models.EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "owner", "topic", "compatibility_mode", "compatibility_policy"]
    list_filter = ["kind", "domain", "compatibility_mode"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [SchemaVersionInline]


@admin.register(models.SchemaVersion)
class SchemaVersionAdmin(admin.ModelAdmin):
    list_display = ["event_type", "version", "state", "author", "created_at"]
    list_filter = ["state"]
    search_fields = ["event_type__name", "changelog"]

    def get_readonly_fields(self, request, obj=None):
        # Registered versions are immutable: producers may already have used them.
        if obj is not None and obj.state == models.SchemaVersion.REGISTERED:
            return [f.name for f in self.model._meta.fields]
        return []


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
