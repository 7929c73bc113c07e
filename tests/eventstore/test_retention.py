"""Retention: indexed events older than their topic's retention are purged, by broker timestamp."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from eventstore import tasks
from eventstore.models import IndexedEvent, TopicIndexSetting, purge_expired


def _event(topic: str, age_days: float, offset: int, bus: str = "kafka") -> IndexedEvent:
    return IndexedEvent.objects.create(
        bus=bus,
        topic=topic,
        partition=0,
        offset=str(offset),
        timestamp=timezone.now() - timedelta(days=age_days),
        size=2,
        validity=IndexedEvent.NO_SCHEMA,
    )


def test_purge_by_age_per_topic_retention(db, settings):
    settings.EVENTHUB_INDEX_RETENTION_DAYS = 7
    TopicIndexSetting.objects.create(bus="kafka", topic="short", retention_days=1)
    TopicIndexSetting.objects.create(bus="kafka", topic="long", retention_days=30)
    kept = [_event("default", 6, 1), _event("short", 0.5, 1), _event("long", 20, 1), _event("short", 3, 2, "redis")]
    gone = [_event("default", 8, 2), _event("short", 2, 3), _event("long", 31, 2)]
    assert purge_expired() == len(gone)
    assert set(IndexedEvent.objects.values_list("pk", flat=True)) == {event.pk for event in kept}
    assert purge_expired() == 0  # idempotent


def test_the_beat_task_purges(db, settings):
    settings.EVENTHUB_INDEX_RETENTION_DAYS = 2
    _event("orders", 3, 1)
    _event("orders", 1, 2)
    assert tasks.purge_expired.run() == 1
    assert list(IndexedEvent.objects.values_list("offset", flat=True)) == ["2"]


def test_a_new_topic_setting_takes_the_default_retention(db, settings):
    settings.EVENTHUB_INDEX_RETENTION_DAYS = 11
    assert TopicIndexSetting.objects.create(bus="redis", topic="orders").retention_days == 11
    assert "event-store-purge" in settings.CELERY_BEAT_SCHEDULE
