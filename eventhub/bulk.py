"""Many rows into one table in one statement.

The dead-letter ingester and the event-store indexer store what they read from the bus
exactly once per position: a batch read again after a restart or a rebalance must not
fail or duplicate (`insert_ignoring_conflicts`). A redrive job writes an audit row per
item it sends (`insert_rows`). Django's `bulk_create` does either, but runs each value
of each row through the SQL compiler and cuts a batch into inserts of 999 // columns
rows (SQLite's old parameter limit): about half of the ingester's time, and a third of
a redrive job's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import Model
from django.db.models.constants import OnConflict
from django.utils import timezone

# Values the database stores as a function of the value alone (a time: of its instant):
# prepared once per batch and column. Most columns of a fresh row hold the same few
# values row after row (the bus, the topic, "", None, 0, the batch's time).
_SCALARS = frozenset({type(None), bool, int, str, datetime})


def insert_ignoring_conflicts(model: type[Model], rows: list[dict[str, Any]]) -> None:
    """`insert_rows`, skipping the rows a unique constraint already holds."""
    _insert(model, rows, OnConflict.IGNORE)


def insert_rows(model: type[Model], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (column values by attribute name, foreign keys as `<name>_id`) into `model`'s table.

    A database error (a constraint) fails the whole statement, as `bulk_create` would.
    """
    _insert(model, rows, None)


def _insert(model: type[Model], rows: list[dict[str, Any]], on_conflict: OnConflict | None) -> None:
    """One executemany of one prepared statement. Each value still goes through its
    field's get_db_prep_save (JSON, bytes and times adapted as the ORM would), a
    repeated scalar once per batch. A column a row does not name takes the field's
    default, auto_now(_add) fields the batch's moment. SQLite and PostgreSQL (the back
    ends settings accepts) both take %s for every field.
    """
    if not rows:
        return
    connection = connections[model.objects.db]
    ops = connection.ops
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = " ".join(
        part
        for part in (
            ops.insert_statement(on_conflict=on_conflict),
            ops.quote_name(model._meta.db_table),
            f"({', '.join(ops.quote_name(f.column) for f in fields)})",
            f"VALUES ({', '.join(['%s'] * len(fields))})",
            ops.on_conflict_suffix_sql(fields, on_conflict, None, None),
        )
        if part
    )
    now = timezone.now()
    columns = []
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            columns.append([f.get_db_prep_save(now, connection)] * len(rows))
            continue
        default = f.get_db_prep_save(f.get_default(), connection)
        prepared: dict[tuple[type, Any], Any] = {}
        column = []
        for row in rows:
            if f.attname not in row:
                column.append(default)
                continue
            value = row[f.attname]
            if type(value) in _SCALARS:
                key = (type(value), value)
                if key not in prepared:
                    prepared[key] = f.get_db_prep_save(value, connection)
                column.append(prepared[key])
            else:
                column.append(f.get_db_prep_save(value, connection))
        columns.append(column)
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(zip(*columns, strict=True)))
