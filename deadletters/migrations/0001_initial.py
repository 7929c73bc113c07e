"""Dead letters get an app of their own; their tables stay where the monitor app made them.

The models were in `monitor` until now. This migration only tells Django they live
here (the state), with `db_table` naming the existing tables: no table is created,
renamed or copied, so an existing installation keeps every row. monitor's 0005 takes
them out of monitor's state. The content types move too, so permissions granted on
these models and admin history keep pointing at them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ["deadletter", "unstoreddeadletter", "redrivejob", "auditentry"]


def move_content_types(apps, schema_editor):
    """monitor.deadletter -> deadletters.deadletter, and so on, keeping their ids."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if not ContentType.objects.using(db).filter(app_label="deadletters", model=model).exists():
            ContentType.objects.using(db).filter(app_label="monitor", model=model).update(app_label="deadletters")


def move_content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if not ContentType.objects.using(db).filter(app_label="monitor", model=model).exists():
            ContentType.objects.using(db).filter(app_label="deadletters", model=model).update(app_label="monitor")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("designer", "0004_view_sensitive"),
        ("monitor", "0004_dead_letter_payload_problem_unstored"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RedriveJob",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "action",
                            models.CharField(choices=[("retry", "Retry"), ("discard", "Discard")], max_length=10),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("running", "Running"),
                                    ("cancelling", "Cancelling"),
                                    ("cancelled", "Cancelled"),
                                    ("done", "Done"),
                                    ("failed", "Failed"),
                                ],
                                db_index=True,
                                default="pending",
                                max_length=12,
                            ),
                        ),
                        ("selection", models.JSONField(default=dict, help_text="{'ids': [...]} or {'filter': {...}}.")),
                        ("rate_per_s", models.FloatField(default=50)),
                        (
                            "target_group",
                            models.CharField(
                                blank=True, help_text="Replay only to this consumer group.", max_length=255
                            ),
                        ),
                        ("reason", models.CharField(blank=True, max_length=500)),
                        ("total", models.PositiveIntegerField(default=0)),
                        ("done", models.PositiveIntegerField(default=0)),
                        ("failed", models.PositiveIntegerField(default=0)),
                        ("skipped", models.PositiveIntegerField(default=0)),
                        ("last_error", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "heartbeat_at",
                            models.DateTimeField(
                                blank=True, help_text="Last progress; a stale one means a dead worker.", null=True
                            ),
                        ),
                        ("item_ids", models.JSONField(blank=True, default=list)),
                        (
                            "cursor",
                            models.PositiveIntegerField(
                                default=0, help_text="item_ids before this index are finished."
                            ),
                        ),
                        (
                            "runner",
                            models.CharField(
                                blank=True, help_text="Token of the worker run that owns the job.", max_length=40
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "monitor_redrivejob",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.CreateModel(
                    name="DeadLetter",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("bus", models.CharField(max_length=10)),
                        ("dlq_topic", models.CharField(max_length=249)),
                        ("dlq_partition", models.IntegerField(default=0)),
                        ("dlq_offset", models.CharField(help_text="Kafka offset or Redis entry id.", max_length=40)),
                        ("source_topic", models.CharField(blank=True, db_index=True, max_length=249)),
                        ("source_partition", models.IntegerField(blank=True, null=True)),
                        ("source_offset", models.CharField(blank=True, max_length=40)),
                        ("key", models.BinaryField(blank=True, null=True)),
                        (
                            "payload",
                            models.BinaryField(
                                blank=True, help_text="Raw bytes, up to EVENTHUB_DLQ_PAYLOAD_CAP.", null=True
                            ),
                        ),
                        ("payload_size", models.PositiveBigIntegerField(default=0)),
                        ("truncated", models.BooleanField(default=False)),
                        ("payload_json", models.JSONField(blank=True, null=True)),
                        (
                            "payload_problem",
                            models.CharField(
                                blank=True,
                                help_text="Why the payload has no JSON: cut, empty, not UTF-8, not JSON, too deep.",
                                max_length=300,
                            ),
                        ),
                        ("headers", models.JSONField(default=list, help_text="[[name, value as text or 0x-hex]].")),
                        (
                            "raw_headers",
                            models.JSONField(default=list, help_text="[[name, base64 value or null]], for replay."),
                        ),
                        ("convention", models.CharField(blank=True, max_length=20)),
                        ("group", models.CharField(blank=True, db_index=True, max_length=255)),
                        ("service", models.CharField(blank=True, max_length=100)),
                        ("attempts", models.PositiveIntegerField(blank=True, null=True)),
                        ("error_class", models.CharField(blank=True, db_index=True, max_length=300)),
                        ("error_cause", models.CharField(blank=True, max_length=300)),
                        ("error_message", models.TextField(blank=True)),
                        ("stacktrace", models.TextField(blank=True)),
                        ("event_id", models.CharField(blank=True, max_length=200)),
                        ("first_failed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_failed_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("new", "New"),
                                    ("retrying", "Retrying"),
                                    ("retried", "Retried"),
                                    ("resolved", "Resolved"),
                                    ("discarded", "Discarded"),
                                    ("parked", "Parked (replayed too often)"),
                                ],
                                db_index=True,
                                default="new",
                                max_length=10,
                            ),
                        ),
                        ("replay_count", models.PositiveIntegerField(default=0)),
                        ("payload_text", models.TextField(blank=True)),
                        (
                            "decode_problems",
                            models.JSONField(blank=True, default=list, help_text="What was wrong with the headers."),
                        ),
                        ("replay_topic", models.CharField(blank=True, max_length=249)),
                        ("replay_partition", models.IntegerField(blank=True, null=True)),
                        (
                            "replay_offset",
                            models.CharField(blank=True, help_text="Kafka offset or Redis entry id.", max_length=40),
                        ),
                        (
                            "replay_group",
                            models.CharField(
                                blank=True, help_text="The group the replay was targeted at.", max_length=255
                            ),
                        ),
                        ("replayed_at", models.DateTimeField(blank=True, null=True)),
                        ("claim_marks", models.JSONField(blank=True, default=dict)),
                        ("ingested_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "edited_from",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="edited_copies",
                                to="deadletters.deadletter",
                            ),
                        ),
                        (
                            "event_type",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="dead_letters",
                                to="designer.eventtype",
                            ),
                        ),
                        (
                            "replay_of",
                            models.ForeignKey(
                                blank=True,
                                help_text="The dead letter whose replay failed again and came back as this one.",
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="came_back",
                                to="deadletters.deadletter",
                            ),
                        ),
                        (
                            "schema_version",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="designer.schemaversion",
                            ),
                        ),
                        (
                            "job",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="claimed",
                                to="deadletters.redrivejob",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "monitor_deadletter",
                        "ordering": ["-id"],
                    },
                ),
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("action", models.CharField(max_length=40)),
                        ("result", models.CharField(blank=True, max_length=500)),
                        ("detail", models.JSONField(blank=True, default=dict)),
                        (
                            "actor",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "dead_letter",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="audit",
                                to="deadletters.deadletter",
                            ),
                        ),
                        (
                            "job",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="audit",
                                to="deadletters.redrivejob",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "monitor_auditentry",
                        "ordering": ["-at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="UnstoredDeadLetter",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("bus", models.CharField(max_length=10)),
                        ("dlq_topic", models.CharField(max_length=249)),
                        ("dlq_partition", models.IntegerField(default=0)),
                        ("dlq_offset", models.CharField(help_text="Kafka offset or Redis entry id.", max_length=40)),
                        ("payload_size", models.PositiveBigIntegerField(default=0)),
                        ("error", models.TextField(help_text="What the database (or the row builder) said.")),
                        ("parked_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "monitor_unstoreddeadletter",
                        "ordering": ["-id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("bus", "dlq_topic", "dlq_partition", "dlq_offset"),
                                name="unstored_dead_letter_unique_position",
                            )
                        ],
                    },
                ),
                migrations.AddConstraint(
                    model_name="deadletter",
                    constraint=models.UniqueConstraint(
                        fields=("bus", "dlq_topic", "dlq_partition", "dlq_offset"), name="dead_letter_unique_position"
                    ),
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
