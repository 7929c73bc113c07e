"""Many rows into one table at once.

The dead-letter ingester and the event-store indexer store what they read from the bus
exactly once per position: a batch read again after a restart or a rebalance must not
fail or duplicate (`insert_ignoring_conflicts`). A redrive job writes an audit row per
item it sends (`insert_rows`). Django's `bulk_create` does either, but runs each value
of each row through the SQL compiler and cuts a batch into inserts of 999 // columns
rows (SQLite's old parameter limit): about half of the ingester's time, and a third of
a redrive job's.

How the rows travel depends on the database:
- SQLite: one executemany of one prepared statement (the library steps it in C);
- PostgreSQL: COPY straight into the table. Django's psycopg cursors bind parameters on
  the client, which writes each row's INSERT out as text in Python; COPY hands the values
  to psycopg's C dumpers, and the server gets one statement. For the ingester's 40
  columns: 15 µs of CPU per row instead of 59, 43 µs of wall clock instead of 118
  (docs/performance.md). COPY has no ON CONFLICT: when conflicts are to be skipped it
  runs in a savepoint, and a batch a unique constraint refuses (rare: both callers look
  for the positions they have first) goes through a temporary table and one
  INSERT ... SELECT ... ON CONFLICT DO NOTHING instead.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from types import NoneType
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import (
    BooleanField,
    CharField,
    Field,
    ForeignKey,
    IntegerField,
    JSONField,
    Model,
    TextField,
)
from django.db.models.constants import OnConflict
from django.utils import timezone

# Values the database stores as a function of the value alone (a time: of its instant):
# prepared once per batch and column. Most columns of a fresh row hold the same few
# values row after row (the bus, the topic, "", None, 0, the batch's time).
_SCALARS = frozenset({NoneType, bool, int, str, datetime})
# What psycopg's COPY dumpers take as they are, in any column of the matching type.
_COPIED_AS_IS = frozenset({NoneType, bool, int, float, str, bytes, datetime})


def insert_ignoring_conflicts(model: type[Model], rows: list[dict[str, Any]]) -> int:
    """`insert_rows`, skipping the rows a unique constraint already holds; returns how many went in."""
    return _insert(model, rows, OnConflict.IGNORE)


def insert_rows(model: type[Model], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (column values by attribute name, foreign keys as `<name>_id`) into `model`'s table.

    A database error (a constraint) fails the whole statement, as `bulk_create` would.
    """
    _insert(model, rows, None)


def _insert(model: type[Model], rows: list[dict[str, Any]], on_conflict: OnConflict | None) -> int:
    """Every row in one go; returns how many went in. A column a row does not name takes
    the field's default, auto_now(_add) fields the batch's moment."""
    if not rows:
        return 0
    connection = connections[model.objects.db]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    if connection.vendor == "postgresql":
        columns = [_copy_column(f, rows, connection, now) for f in fields]
        return _copy_in(connection, model, fields, columns, on_conflict)
    ops = connection.ops
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
    columns = [_column(f, rows, connection, now) for f in fields]
    with connection.cursor() as cursor:
        cursor.executemany(sql, list(zip(*columns, strict=True)))
        return cursor.rowcount  # the rows the statement changed, summed over the batch


def _column(f: Field, rows: list[dict[str, Any]], connection, now: datetime) -> list[Any]:
    """Field `f`'s value in each row, as get_db_prep_save would hand it to SQLite: a value
    it hands on unchanged is handed on, JSON goes straight to json.dumps (the back end's
    adapter), a repeated scalar is prepared once."""
    if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
        return [f.get_db_prep_save(now, connection)] * len(rows)
    dumps = _json_dumps(f)
    prepared: dict[tuple[type, Any], Any] = {}

    def prepare(value: Any) -> Any:
        kind = type(value)
        if dumps is not None and (kind is list or kind is dict):
            return dumps(value)
        if kind in _SCALARS:
            key = (kind, value)
            if key not in prepared:
                prepared[key] = f.get_db_prep_save(value, connection)
            return prepared[key]
        return f.get_db_prep_save(value, connection)

    return _values(f, rows, f.get_db_prep_save(f.get_default(), connection), _stored_as_is(f), prepare)


def _values(f: Field, rows: list[dict[str, Any]], default: Any, as_is: frozenset[type], prepare) -> list[Any]:
    """Each row's value of `f`: `default` when the row names none, as it is when its type is
    in `as_is` (most values: no call), else what `prepare` makes of it."""
    name = f.attname
    column = []
    for row in rows:
        if name not in row:
            column.append(default)
            continue
        value = row[name]
        column.append(value if type(value) in as_is else prepare(value))
    return column


def _stored_as_is(f: Field) -> frozenset[type]:
    """The value types get_db_prep_save hands to SQLite unchanged: text, whole numbers,
    booleans, and None (SQL NULL) in any field. Any other type goes through it."""
    if isinstance(f, (CharField, TextField)):
        return frozenset({str, NoneType})
    if isinstance(f, BooleanField):
        return frozenset({bool, NoneType})
    if isinstance(f, (IntegerField, ForeignKey)):
        return frozenset({int, NoneType})
    return frozenset({NoneType})


def _json_dumps(f: Field):
    """How a JSON field's list or dict becomes text (what its get_db_prep_save would do), or None."""
    if not isinstance(f, JSONField):
        return None
    encoder = f.encoder
    return lambda value: json.dumps(value, cls=encoder)


def _copy_column(f: Field, rows: list[dict[str, Any]], connection, now: datetime) -> list[Any]:
    """Field `f`'s value in each row, as COPY takes it: plain values as they are (psycopg's
    dumpers write them in the column's text form), JSON as its text (None is SQL NULL),
    anything else through get_db_prep_save."""
    if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
        return [now] * len(rows)
    dumps = _json_dumps(f)
    as_is = _COPIED_AS_IS if dumps is None else frozenset({NoneType})

    def prepare(value: Any) -> Any:
        if dumps is not None:
            return dumps(value)
        return f.get_db_prep_save(value, connection)

    default = f.get_default()
    return _values(f, rows, default if type(default) in as_is else prepare(default), as_is, prepare)


def _copy_in(connection, model: type[Model], fields: list[Field], columns: list[list[Any]], on_conflict) -> int:
    """COPY the rows into `model`'s table in one transaction (the caller's when it has one:
    like bulk_create, an error fails it); returns how many went in.

    To skip conflicts the COPY runs in a savepoint. When a unique constraint refuses it,
    the savepoint is undone and the rows go through `_merge_in` instead.
    """
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    copy = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"
    with transaction.atomic(using=connection.alias, savepoint=False):
        if on_conflict != OnConflict.IGNORE:
            _copy(connection, copy, columns)
            return len(columns[0])
        try:
            with transaction.atomic(using=connection.alias):  # the savepoint
                _copy(connection, copy, columns)
            return len(columns[0])
        except IntegrityError:
            pass
        return _merge_in(connection, model, names, columns)


def _copy(connection, statement: str, columns: list[list[Any]]) -> None:
    with connection.cursor() as cursor, connection.wrap_database_errors:  # psycopg's errors as Django's
        raw = cursor.cursor  # psycopg's own: Django's wrapper has no copy()
        with raw.copy(statement) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)


def _merge_in(connection, model: type[Model], names: str, columns: list[list[Any]]) -> int:
    """COPY the rows into a temporary table shaped as `model`'s columns, then move the ones
    no unique constraint refuses over in one INSERT ... SELECT ... ON CONFLICT DO NOTHING;
    returns how many went in.

    The temporary table lives as long as the session: created when missing (a rollback
    may have taken it away), emptied after each use. Its name carries a hash of the
    column list, so a table migrated while a connection stays open gets a new one.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    staging = quote(f"_bulk_{model._meta.db_table}_{zlib.crc32(names.encode()):08x}")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} AS SELECT {names} FROM {table} WITH NO DATA")
        _copy(connection, f"COPY {staging} ({names}) FROM STDIN", columns)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING")
        inserted = cursor.rowcount
        cursor.execute(f"TRUNCATE {staging}")
    return inserted
