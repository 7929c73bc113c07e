"""eventhub/bulk.py stores what the ORM would, on SQLite (executemany) and PostgreSQL (COPY).

Run by `make test` and `make test-postgres`: each back end gets its own path, and a row
must read back the same whichever way it went in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import IntegrityError, transaction

from deadletters.models import DeadLetter
from designer.models import EventType
from eventhub.bulk import insert_ignoring_conflicts, insert_rows

pytestmark = pytest.mark.django_db(transaction=True)

# Every column kind the ingester and the indexer write, with values that go wrong when
# adapted carelessly: JSON that is a bare string or holds tuples, bytes with a NUL,
# a number past 32 bits, a time in another zone, text with quotes, tabs and backslashes
# (COPY's text format escapes them).
TRICKY = {
    "bus": "kafka",
    "dlq_topic": "orders.dlq",
    "source_topic": "orders\t'quoted' \\ back\nslash",
    "source_partition": None,
    "key": b"k\x00\xff",
    "payload": b'{"a": 1}\x00\\N',
    "payload_size": 2**62,
    "truncated": True,
    "payload_json": {"text": "é \\N \t", "list": [1, 2.5, None, True], "nested": {"x": []}},
    "headers": [("ce_type", "order.placed"), ("x-binary", "0x00ff")],
    "raw_headers": [("ce_type", "b3JkZXIucGxhY2Vk"), ("x-null", None)],
    "decode_problems": [],
    "error_message": "",
    "attempts": 3,
    "first_failed_at": datetime(2026, 12, 7, 5, 30, tzinfo=timezone(timedelta(hours=2))),
    "last_failed_at": datetime(2026, 12, 7, 3, 30, 0, 123456, tzinfo=UTC),
    "replay_count": 0,
}

READ_BACK = [name for name in TRICKY if name not in ("headers", "raw_headers")]


def _row(offset: int, **values) -> dict:
    return {**TRICKY, "dlq_offset": str(offset), **values}


def _stored(offset: int) -> DeadLetter:
    return DeadLetter.objects.get(dlq_topic="orders.dlq", dlq_offset=str(offset))


def test_a_row_reads_back_as_the_orm_stores_it():
    event_type = EventType.objects.create(name="order.placed")
    insert_rows(DeadLetter, [_row(1, event_type_id=event_type.pk)])
    DeadLetter.objects.bulk_create([DeadLetter(**_row(2, event_type_id=event_type.pk))])
    ours, orms = _stored(1), _stored(2)
    for name in READ_BACK:
        assert getattr(ours, name) == getattr(orms, name), name
    assert ours.headers == orms.headers == [["ce_type", "order.placed"], ["x-binary", "0x00ff"]]
    assert ours.raw_headers == [["ce_type", "b3JkZXIucGxhY2Vk"], ["x-null", None]]
    assert ours.first_failed_at == datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    assert ours.event_type == event_type


def test_json_scalars_and_sql_null():
    insert_rows(
        DeadLetter, [_row(1, payload_json="just a string"), _row(2, payload_json=None), _row(3, payload_json=0)]
    )
    assert _stored(1).payload_json == "just a string"
    assert DeadLetter.objects.filter(payload_json__isnull=True).get().dlq_offset == "2"
    assert _stored(3).payload_json == 0


def test_a_column_no_row_names_takes_its_default_and_the_times_are_the_batchs():
    before = datetime.now(UTC)
    insert_rows(DeadLetter, [{"bus": "kafka", "dlq_topic": "orders.dlq", "dlq_offset": "7"}])
    row = _stored(7)
    assert (row.status, row.claim_marks, row.headers, row.replay_count, row.key) == ("new", {}, [], 0, None)
    assert before <= row.ingested_at == row.updated_at <= datetime.now(UTC)


def test_rows_already_stored_are_skipped_and_the_rest_inserted():
    assert insert_ignoring_conflicts(DeadLetter, [_row(1, error_message="first")]) == 1
    with transaction.atomic():  # as the callers do: the refused COPY must not spoil their transaction
        inserted = insert_ignoring_conflicts(
            DeadLetter, [_row(1, error_message="second"), _row(2, error_message="new"), _row(3)]
        )
        assert inserted == 2
        assert insert_ignoring_conflicts(DeadLetter, [_row(1), _row(3)]) == 0
    assert _stored(1).error_message == "first"
    assert _stored(2).error_message == "new"
    assert DeadLetter.objects.count() == 3


def test_a_refused_batch_stores_nothing_and_the_next_one_goes_in():
    insert_rows(DeadLetter, [_row(1)])
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            insert_rows(DeadLetter, [_row(2), _row(1)])  # 1 is there: the whole batch fails
    assert list(DeadLetter.objects.values_list("dlq_offset", flat=True)) == ["1"]
    insert_rows(DeadLetter, [_row(2), _row(3)])
    assert DeadLetter.objects.count() == 3


def test_two_batches_in_one_transaction_each_go_in_once():
    # On PostgreSQL both go through the same staging table: the second must not carry the first.
    with transaction.atomic():
        insert_rows(DeadLetter, [_row(1), _row(2)])
        insert_rows(DeadLetter, [_row(3)])
    assert sorted(DeadLetter.objects.values_list("dlq_offset", flat=True)) == ["1", "2", "3"]
