"""Burrow's lag rules, one row per case.

Samples are written as (at, committed, end[, committed_at]).
"""

from __future__ import annotations

import pytest

from monitor.burrow import (
    GroupVerdict,
    Sample,
    Status,
    evaluate_group,
    evaluate_partition,
)


def series(*rows: tuple) -> list[Sample]:
    return [Sample(*row) for row in rows]


# A consumer that is stuck at offset 100 while producers keep writing.
STUCK = series((0, 100, 110), (60, 100, 120), (120, 100, 130), (180, 100, 140))
# A consumer that keeps up: lag goes down over the window.
CATCHING_UP = series((0, 100, 150), (60, 140, 170), (120, 180, 190), (180, 200, 205))


@pytest.mark.parametrize(
    ("samples", "now", "window_s", "allowed_lag", "expected"),
    [
        pytest.param([], 0, None, 0, Status.NOTFOUND, id="no-samples"),
        pytest.param(
            series((0, None, 10), (60, None, 20)),
            60,
            None,
            0,
            Status.NOTFOUND,
            id="never-committed",
        ),
        pytest.param(
            series((0, 10, 10), (60, 20, 20)),
            60,
            None,
            0,
            Status.OK,
            id="caught-up-now",
        ),
        pytest.param(
            series((0, 10, 5), (60, 10, 8)),
            60,
            None,
            0,
            Status.OK,
            id="committed-ahead-of-end-is-zero-lag",
        ),
        pytest.param(
            series((0, 10, 10), (60, 12, 20), (120, 14, 30)),
            120,
            None,
            0,
            Status.OK,
            id="zero-lag-earlier-in-window",
        ),
        pytest.param(STUCK, 180, None, 0, Status.STALL, id="stall-end-advancing"),
        pytest.param(
            series((0, 100, 150), (60, 100, 150), (120, 100, 150)),
            120,
            None,
            0,
            Status.STALL,
            id="stall-fixed-lag-quiet-topic",
        ),
        pytest.param(
            series((0, 100, 150), (60, 110, 170), (120, 120, 190)),
            120,
            None,
            0,
            Status.WARN,
            id="warn-lag-growing",
        ),
        pytest.param(
            series((0, 100, 150), (60, 120, 170), (120, 140, 190)),
            120,
            None,
            0,
            Status.WARN,
            id="warn-lag-fixed-while-committing",
        ),
        pytest.param(CATCHING_UP, 180, None, 0, Status.OK, id="ok-lag-shrinking"),
        pytest.param(
            series((0, 100, 150), (60, 140, 200), (120, 170, 210)),
            120,
            None,
            0,
            Status.OK,
            id="ok-lag-up-then-down",
        ),
        pytest.param(
            series((0, 500, 600), (60, 550, 620), (120, 200, 640)),
            120,
            None,
            0,
            Status.REWIND,
            id="rewind-not-recovered",
        ),
        pytest.param(
            series((0, 500, 600), (60, 200, 620), (120, 560, 640), (180, 600, 660)),
            180,
            None,
            0,
            Status.OK,
            id="rewind-recovered-then-normal-rules",
        ),
        pytest.param(
            series((0, 500, 500), (60, 550, 550), (120, 100, 560)),
            120,
            None,
            0,
            Status.REWIND,
            id="rewind-after-zero-lag",
        ),
        pytest.param(
            series((0, 100, 150, 0), (60, 100, 160, 0), (120, 100, 170, 0)),
            700,
            600,
            0,
            Status.STOP,
            id="stop-known-commit-time-older-than-window",
        ),
        pytest.param(
            series((0, 100, 150, 0), (60, 100, 160, 60), (120, 100, 170, 120)),
            120,
            600,
            0,
            Status.STALL,
            id="stall-committing-same-offset",
        ),
        pytest.param(
            series((0, 100, 150), (300, 100, 160), (600, 100, 170), (900, 100, 180)),
            900,
            600,
            0,
            Status.STOP,
            id="stop-inferred-from-samples-before-window",
        ),
        pytest.param(
            series((0, 90, 150), (300, 100, 160), (600, 100, 170), (900, 100, 180)),
            900,
            600,
            0,
            Status.STALL,
            id="stall-inferred-stuck-inside-window",
        ),
        pytest.param(
            series((0, 100, 100, 0), (60, 100, 100, 0), (120, 100, 101, 0)),
            650,
            600,
            0,
            Status.OK,
            id="no-stop-on-quiet-topic-that-just-got-a-message",
        ),
        pytest.param(
            series((0, 550, 600, 0), (60, 200, 620, 0)),
            900,
            600,
            0,
            Status.NOTFOUND,
            id="all-samples-older-than-window",
        ),
        pytest.param(
            series((150, 550, 600, 0), (660, 200, 620, 0)),
            700,
            600,
            0,
            Status.STOP,
            id="stop-before-rewind-in-precedence",
        ),
        pytest.param(
            series((0, 100, 150)),
            0,
            None,
            0,
            Status.OK,
            id="single-sample-too-early",
        ),
        pytest.param(
            list(reversed(STUCK)),
            180,
            None,
            0,
            Status.STALL,
            id="unordered-input-sorted",
        ),
        pytest.param(
            series((0, 100, 101), (60, 100, 101), (120, 100, 101)),
            120,
            None,
            1,
            Status.OK,
            id="allowed-lag-counts-as-zero",
        ),
        pytest.param(
            series((0, 100, 150), (30, None, 155), (60, 100, 160), (90, 100, 170)),
            90,
            None,
            0,
            Status.STALL,
            id="gaps-in-committed-are-skipped",
        ),
    ],
)
def test_evaluate_partition(samples, now, window_s, allowed_lag, expected):
    verdict = evaluate_partition(samples, now, window_s=window_s, allowed_lag=allowed_lag)
    assert verdict.status is expected
    assert verdict.reason  # operators always get a sentence


@pytest.mark.parametrize(
    ("samples", "fragment"),
    [
        pytest.param(STUCK, "stuck at 100", id="stall-names-offset"),
        pytest.param(
            series((0, 500, 600), (60, 200, 620)),
            "from 500 to 200",
            id="rewind-names-jump",
        ),
        pytest.param(series((0, 100, 150), (60, 110, 170)), "from 50 to 60", id="warn-names-lags"),
    ],
)
def test_reason_explains_numbers(samples, fragment):
    verdict = evaluate_partition(samples, now=samples[-1].at)
    assert fragment in verdict.reason


@pytest.mark.parametrize(
    ("status", "rank"),
    [
        (Status.NOTFOUND, 0),
        (Status.OK, 1),
        (Status.WARN, 2),
        (Status.ERR, 3),
        (Status.STOP, 4),
        (Status.STALL, 5),
        (Status.REWIND, 6),
    ],
)
def test_rank_matches_burrow_status_constants(status, rank):
    assert status.rank == rank


OK_P = series((0, 10, 10), (60, 20, 20))
WARN_P = series((0, 100, 150), (60, 110, 170))
STOP_P = series((150, 100, 150, 0), (200, 100, 160, 0))
REWIND_P = series((150, 500, 600), (200, 200, 620))


@pytest.mark.parametrize(
    ("partitions", "now", "window_s", "status", "burrow_status", "worst"),
    [
        pytest.param({}, 60, None, Status.NOTFOUND, Status.NOTFOUND, [], id="no-partitions"),
        pytest.param(
            {("orders", 0): OK_P, ("orders", 1): OK_P},
            60,
            None,
            Status.OK,
            Status.OK,
            [("orders", 0), ("orders", 1)],
            id="all-ok",
        ),
        pytest.param(
            {("orders", 0): OK_P, ("orders", 1): STUCK, ("orders", 2): WARN_P},
            180,
            None,
            Status.STALL,
            Status.ERR,
            [("orders", 1)],
            id="stall-beats-warn",
        ),
        pytest.param(
            {("a", 0): STOP_P, ("b", 0): REWIND_P},
            700,
            600,
            Status.REWIND,
            Status.ERR,
            [("b", 0)],
            id="rewind-outranks-stop",
        ),
        pytest.param(
            {("a", 0): [], ("a", 1): OK_P},
            60,
            None,
            Status.OK,
            Status.OK,
            [("a", 1)],
            id="notfound-partition-does-not-hide-ok",
        ),
        pytest.param(
            {("a", 0): [], ("a", 1): []},
            60,
            None,
            Status.NOTFOUND,
            Status.NOTFOUND,
            [("a", 0), ("a", 1)],
            id="nothing-known",
        ),
    ],
)
def test_evaluate_group(partitions, now, window_s, status, burrow_status, worst):
    verdict = evaluate_group(partitions, now, window_s=window_s)
    assert isinstance(verdict, GroupVerdict)
    assert verdict.status is status
    assert verdict.burrow_status is burrow_status
    assert verdict.worst == worst
    assert set(verdict.partitions) == set(partitions)
    assert verdict.reason


def test_group_totals_lag_and_names_worst_partition():
    verdict = evaluate_group({("orders", 0): OK_P, ("orders", 3): STUCK}, now=180)
    assert verdict.total_lag == 40
    assert verdict.reason.startswith("1 of 2 partitions STALL. orders[3]")
