"""Rates, lag and time to drain from offset history, one row per case."""

from __future__ import annotations

import pytest

from monitor.rates import (
    History,
    lag_messages,
    lag_seconds,
    rate,
    since_reset,
    time_to_drain,
)

# End offset growing 10 messages/s, sampled every 10 s.
STEADY = [(0.0, 0), (10.0, 100), (20.0, 200), (30.0, 300)]
LATER = [(at, offset + 1000) for at, offset in STEADY]


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(STEADY, STEADY, id="no-drop"),
        pytest.param(
            [(0, 500), (10, 600), (20, 5), (30, 50)],
            [(20, 5), (30, 50)],
            id="recreated",
        ),
        pytest.param([(0, 5), (10, 1), (20, 3), (30, 2)], [(30, 2)], id="last-drop-wins"),
        pytest.param([(0, 7), (10, 7)], [(0, 7), (10, 7)], id="flat-is-not-a-drop"),
    ],
)
def test_since_reset(points, expected):
    assert since_reset(points) == expected


@pytest.mark.parametrize(
    ("points", "now", "window_s", "expected"),
    [
        pytest.param(STEADY, 30, 60, 10.0, id="steady"),
        pytest.param(STEADY, 30, 15, 10.0, id="window-keeps-last-two"),
        pytest.param(STEADY, 30, 5, None, id="one-point-in-window"),
        pytest.param([], 30, 60, None, id="no-points"),
        pytest.param([(30, 5), (30, 9)], 30, 60, None, id="no-time-elapsed"),
        pytest.param([(0, 40), (30, 40)], 30, 60, 0.0, id="idle"),
        pytest.param(
            [(0, 9000), (10, 9100), (20, 10), (30, 30)],
            30,
            60,
            2.0,
            id="topic-recreated-mid-window",
        ),
        pytest.param(
            [(0, 0), (10, 100), (20, 400)],
            20,
            60,
            20.0,
            id="average-over-window",
        ),
    ],
)
def test_rate(points, now, window_s, expected):
    result = rate(points, now, window_s)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("end", "committed", "expected"),
    [
        (100, 40, 60),
        (100, 100, 0),
        (100, 120, 0),  # read at different moments: never negative
        (100, None, None),
    ],
)
def test_lag_messages(end, committed, expected):
    assert lag_messages(end, committed) == expected


@pytest.mark.parametrize(
    ("points", "committed", "now", "produce_rate", "expected"),
    [
        pytest.param(STEADY, 300, 30, None, 0.0, id="caught-up"),
        pytest.param(STEADY, 350, 30, None, 0.0, id="committed-past-end"),
        pytest.param(STEADY, 200, 30, None, 10.0, id="on-a-sample"),
        pytest.param(STEADY, 150, 30, None, 15.0, id="interpolated"),
        pytest.param(STEADY, 150, 40, None, 25.0, id="now-after-last-sample"),
        pytest.param(
            [(0, 100), (10, 100), (20, 100), (30, 101)],
            100,
            30,
            None,
            10.0,
            id="flat-stretch-uses-last-time-it-stood-there",
        ),
        pytest.param(LATER, 500, 30, 10.0, 80.0, id="too-short-uses-produce-rate"),
        pytest.param(LATER, 900, 30, 100.0, 30.0, id="too-short-never-below-history-span"),
        pytest.param(
            [(0, 100), (30, 100)],
            40,
            30,
            0.0,
            30.0,
            id="too-short-idle-gives-lower-bound",
        ),
        pytest.param([(30, 100)], 40, 30, None, None, id="too-short-single-point"),
        pytest.param([], 40, 30, 10.0, None, id="no-history"),
        pytest.param(STEADY, None, 30, 10.0, None, id="no-committed-offset"),
        pytest.param(
            [(0, 9000), (10, 9100), (20, 0), (30, 100)],
            50,
            30,
            None,
            5.0,
            id="after-topic-recreation",
        ),
    ],
)
def test_lag_seconds(points, committed, now, produce_rate, expected):
    result = lag_seconds(points, committed, now, produce_rate)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("lag", "consume", "produce", "expected"),
    [
        pytest.param(1000, 30.0, 10.0, 50.0, id="draining"),
        pytest.param(0, None, None, 0.0, id="nothing-to-drain"),
        pytest.param(1000, 10.0, 10.0, None, id="keeping-pace-not-draining"),
        pytest.param(1000, 5.0, 10.0, None, id="falling-behind"),
        pytest.param(1000, None, 10.0, None, id="unknown-consume-rate"),
        pytest.param(1000, 30.0, None, None, id="unknown-produce-rate"),
        pytest.param(None, 30.0, 10.0, None, id="unknown-lag"),
    ],
)
def test_time_to_drain(lag, consume, produce, expected):
    assert time_to_drain(lag, consume, produce) == expected


def _history(rows, max_age_s=60.0, max_points=1024) -> History:
    history = History(max_age_s=max_age_s, max_points=max_points)
    for at, value in rows:
        history.add("k", at, value)
    return history


@pytest.mark.parametrize(
    ("rows", "max_age_s", "max_points", "expected"),
    [
        pytest.param([(0, 1), (10, 2)], 60, 1024, [(0, 1), (10, 2)], id="keeps-recent"),
        pytest.param(
            [(0, 1), (50, 2), (100, 3)],
            60,
            1024,
            [(50, 2), (100, 3)],
            id="drops-old",
        ),
        pytest.param(
            [(0, 1), (1, 2), (2, 3), (3, 4)],
            60,
            2,
            [(2, 3), (3, 4)],
            id="bounded-count",
        ),
        pytest.param([(10, 1), (5, 9)], 60, 1024, [(10, 1)], id="late-point-ignored"),
        pytest.param([(10, 1), (10, 7)], 60, 1024, [(10, 7)], id="same-time-replaces"),
    ],
)
def test_history_bounds(rows, max_age_s, max_points, expected):
    assert _history(rows, max_age_s, max_points).points("k") == expected


def test_history_prune_forgets_quiet_series():
    history = _history([(0, 1)])
    history.add("other", 100, 5)
    history.prune(now=100)
    assert history.keys() == ["other"]
    assert "k" not in history and len(history) == 1
    assert history.points("k") == []


@pytest.mark.parametrize(
    ("max_age_s", "max_points"),
    [(0, 10), (-1, 10), (60, 1)],
    ids=["zero-age", "neg", "tiny"],
)
def test_history_rejects_bad_bounds(max_age_s, max_points):
    with pytest.raises(ValueError):
        History(max_age_s, max_points)
