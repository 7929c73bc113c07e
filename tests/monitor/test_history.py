"""History: raw samples, one-minute rollups, retention, and GET /api/v1/monitor/history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor import history
from monitor.models import Heartbeat, Sample
from tests.monitor.support import make_collector, monitor_store, produce_and_consume  # noqa: F401

pytestmark = pytest.mark.django_db

URL = "/api/v1/monitor/history"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _row(at, lag, status="OK", rate=1.0, end=100, group="billing"):
    return {
        "group": group, "topic": "orders", "lag": lag, "lag_seconds": lag / 10, "consume_rate": rate,
        "status": status, "end_offset": end, "committed": end - lag,
    }  # fmt: skip


def _write(at, lag, **kw):
    history.write(
        "kafka", at, [{"name": "orders", "end_offset": kw.get("end", 100), "rate": 2.0}], [_row(at, lag, **kw)]
    )


def test_rollup_makes_one_point_per_minute_and_series():
    _write(T0 + timedelta(seconds=1), 5, end=100)
    _write(T0 + timedelta(seconds=20), 40, status="STALL", rate=3.0, end=110)
    _write(T0 + timedelta(seconds=50), 10, status="WARN", end=120)
    _write(T0 + timedelta(minutes=1, seconds=5), 1, end=130)  # the next, unfinished minute

    assert history.rollup(T0 + timedelta(minutes=1, seconds=30)) == 2  # the group's series and the topic's
    point = Sample.objects.get(resolution="1m", group="billing")
    assert point.at == T0
    assert point.lag == 40  # the worst of the minute
    assert point.lag_seconds == 4.0
    assert point.end_offset == 120  # the last of the minute
    assert point.rate == pytest.approx((1.0 + 3.0 + 1.0) / 3)
    assert point.status == "STALL"
    # Idempotent: nothing new until the next minute is over.
    assert history.rollup(T0 + timedelta(minutes=1, seconds=40)) == 0
    assert history.rollup(T0 + timedelta(minutes=2, seconds=30)) == 2
    assert Sample.objects.filter(resolution="1m", group="billing").count() == 2


def test_retention_keeps_raw_an_hour_and_minutes_a_week():
    now = T0 + timedelta(days=10)
    _write(now - timedelta(minutes=61), 1)
    _write(now - timedelta(minutes=59), 2)
    Sample.objects.create(bus="kafka", topic="orders", resolution="1m", at=now - timedelta(days=8))
    Sample.objects.create(bus="kafka", topic="orders", resolution="1m", at=now - timedelta(days=6))
    Heartbeat.objects.create(service="old", instance="i", last_seen=now - timedelta(days=8))
    deleted = history.retention(now)
    assert deleted == {"raw": 2, "1m": 1, "heartbeats": 1}
    assert sorted(Sample.objects.filter(resolution="raw", group="billing").values_list("lag", flat=True)) == [2]
    assert Sample.objects.filter(resolution="1m").count() == 1


def test_api_series_of_a_group(client_as, viewer):
    for second, lag in ((1, 3), (3, 4), (5, 6)):
        _write(T0 + timedelta(seconds=second), lag)
    response = client_as(viewer).get(
        URL,
        {
            "bus": "kafka",
            "topic": "orders",
            "group": "billing",
            "since": T0.isoformat(),
            "until": (T0 + timedelta(minutes=5)).isoformat(),
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["resolution"] == "raw"
    assert [p["lag"] for p in body["series"]] == [3, 4, 6]
    assert set(body["series"][0]) == {"at", "end_offset", "committed", "lag", "lag_seconds", "rate", "status"}


def test_api_topic_series_without_group(client_as, viewer):
    _write(T0 + timedelta(seconds=1), 3, end=77)
    response = client_as(viewer).get(
        URL,
        {"bus": "kafka", "topic": "orders", "since": T0.isoformat(), "until": (T0 + timedelta(minutes=1)).isoformat()},
    )
    assert [p["end_offset"] for p in response.json()["series"]] == [77]


def test_api_ranges_over_an_hour_use_minute_points(client_as, viewer):
    _write(T0 + timedelta(seconds=1), 3)
    history.rollup(T0 + timedelta(minutes=2))
    params = {"bus": "kafka", "topic": "orders", "group": "billing", "since": T0.isoformat()}
    long = client_as(viewer).get(URL, {**params, "until": (T0 + timedelta(hours=3)).isoformat()}).json()
    assert long["resolution"] == "1m"
    assert [p["lag"] for p in long["series"]] == [3]
    forced = client_as(viewer).get(URL, {**params, "until": (T0 + timedelta(hours=3)).isoformat(), "resolution": "raw"})
    assert forced.json()["resolution"] == "raw"


def test_busiest_picks_the_series_that_moved_in_the_range_not_those_moving_now(client_as, viewer):
    def tick(second, rates, lags):
        at = T0 + timedelta(seconds=second)
        topics = [{"name": name, "end_offset": 1, "rate": rate} for name, rate in rates.items()]
        groups = [{**_row(at, lag, group=group), "topic": "orders"} for group, lag in lags.items()]
        history.write("kafka", at, topics, groups)

    # "burst" had traffic a minute ago and none now; "idle" never had any.
    tick(0, {"burst": 40.0, "steady": 2.0, "idle": 0.0}, {"billing": 7, "caught-up": 0})
    tick(60, {"burst": 0.0, "steady": 3.0, "idle": 0.0}, {"billing": 0, "caught-up": 0})
    tick(600, {"burst": 0.0, "steady": 1.0, "idle": 0.0}, {"billing": 0, "caught-up": 0})  # after the range

    range_ = {"since": T0.isoformat(), "until": (T0 + timedelta(minutes=5)).isoformat()}
    body = client_as(viewer).get(URL + "/busiest", {**range_, "limit": 5}).json()
    assert [t["topic"] for t in body["topics"]] == ["burst", "steady"]
    burst = body["topics"][0]
    assert burst["points"] == [[T0.isoformat(), 40.0], [(T0 + timedelta(seconds=60)).isoformat(), 0.0]]
    assert [(g["group"], [p[1:] for p in g["points"]]) for g in body["groups"]] == [("billing", [[7, 0.7], [0, 0.0]])]

    one = client_as(viewer).get(URL + "/busiest", {**range_, "limit": 1}).json()
    assert [t["topic"] for t in one["topics"]] == ["burst"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "since"),
        ({"since": "2026-03-01T12:00Z", "until": "2026-03-01T11:00Z"}, "since"),
        ({"since": "2026-03-01T10:00Z", "until": "2026-03-01T12:00Z"}, "since"),
        ({"since": "2026-03-01T12:00Z", "limit": "0"}, "limit"),
        ({"since": "2026-03-01T12:00Z", "limit": "100000"}, "limit"),
    ],
)
def test_busiest_bad_input_names_the_field(client_as, viewer, params, field):
    response = client_as(viewer).get(URL + "/busiest", params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"topic": "orders"}, "bus"),
        ({"bus": "rabbit", "topic": "orders"}, "bus"),
        ({"bus": "kafka"}, "topic"),
        ({"bus": "kafka", "topic": "o", "since": "yesterday"}, "since"),
        ({"bus": "kafka", "topic": "o", "since": "2026-03-02T00:00Z", "until": "2026-03-01T00:00Z"}, "since"),
        ({"bus": "kafka", "topic": "o", "resolution": "5m"}, "resolution"),
    ],
)
def test_api_bad_input_names_the_field(client_as, viewer, params, field):
    response = client_as(viewer).get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_api_anonymous_and_wrong_method(client, client_as, viewer):
    assert client.get(URL, {"bus": "kafka", "topic": "orders"}).status_code in (401, 403)
    assert client_as(viewer).post(URL).status_code == 405


def test_a_sample_keeps_its_values_whatever_they_are():
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    odd = 'bill"ing \\ \u00e9t\u00e9 \U0001f600 ,]'  # a Redis group may be named anything
    groups = [
        {**_row(at, 2**62, group=odd), "lag_seconds": float("inf"), "consume_rate": float("nan")},
        {**_row(at, 0, group="empty", status=None), "end_offset": None, "committed": None, "lag_seconds": 0.125},
    ]
    assert history.write("redis", at, [{"name": "orders", "end_offset": 9, "rate": 1.5}], groups) == 3

    got = {s.group: s for s in Sample.objects.filter(bus="redis", resolution="raw")}
    assert set(got) == {"", odd, "empty"}
    assert all(s.at == at for s in got.values())
    assert (got[""].end_offset, got[""].rate, got[""].lag) == (9, 1.5, None)
    # Not finite: stored as no value, the rest of the row as it was.
    assert (got[odd].lag, got[odd].lag_seconds, got[odd].rate, got[odd].status) == (2**62, None, None, "OK")
    empty = got["empty"]
    assert (empty.end_offset, empty.committed, empty.lag_seconds, empty.status) == (None, None, 0.125, "")


def _tick_samples(second: int, lag: int) -> list[tuple]:
    at = T0 + timedelta(seconds=second)
    return history.samples("kafka", at, [{"name": "orders", "end_offset": 100, "rate": 2.0}], [_row(at, lag)])


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_writes_every_batch_in_order_and_goes_on_after_one_refused(caplog):
    writer = history.Writer("history-test")
    try:
        for second in range(5):
            writer.put(_tick_samples(second, lag=second))
        writer.flush()
        lags = Sample.objects.filter(group="billing").order_by("at").values_list("lag", flat=True)
        assert list(lags) == [0, 1, 2, 3, 4]
        group_row = _tick_samples(10, lag=99)[1]
        writer.put([(*group_row[:4], None, *group_row[5:])])  # no time: the database refuses the batch
        writer.put(_tick_samples(20, lag=7))
    finally:
        writer.close()
    assert not Sample.objects.filter(lag=99).exists()
    assert Sample.objects.filter(group="billing", at=T0 + timedelta(seconds=20)).get().lag == 7
    assert "history-test: 1 history samples not written" in caplog.text
    # Closed, it starts again when handed more.
    writer.put(_tick_samples(30, lag=8))
    writer.close()
    assert Sample.objects.filter(group="billing").count() == 7


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("monitor_store")
def test_a_collector_writing_history_behind_its_ticks_loses_none(bus, unique):
    topic, group = unique("orders"), unique("billing")
    produce_and_consume(bus, topic, group, produced=5, consumed=2)
    collector = make_collector(bus.kind, unique, history_thread=True)
    try:
        for _ in range(4):
            collector.tick()
            assert "history_behind" in collector.phases
    finally:
        collector.close()  # waits for the last tick's samples
    samples = Sample.objects.filter(bus=bus.kind, topic=topic, resolution="raw")
    assert samples.filter(group="").count() == 4
    assert list(samples.filter(group=group).values_list("lag", flat=True)) == [3, 3, 3, 3]
