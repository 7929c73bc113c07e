"""Indexes the traces need (eventstore/traces.py, docs/event-store.md "Traces").

- IndexedEvent (ce_source, timestamp): the traces list filtered by service, newest first.
- The dead letters' event_id (the original ce_id): a trace finds its dead letters by the
  ids of its events. The table belongs to the deadletters app (monitor_deadletter); the
  index is made here, in SQL both SQLite and PostgreSQL read, because only traces need it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("eventstore", "0002_flow_checks"),
        ("deadletters", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="indexedevent",
            index=models.Index(fields=["ce_source", "timestamp"], name="indexed_event_source_time"),
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS trace_dead_letter_event_id ON monitor_deadletter (event_id)",
            "DROP INDEX IF EXISTS trace_dead_letter_event_id",
            elidable=False,
        ),
    ]
