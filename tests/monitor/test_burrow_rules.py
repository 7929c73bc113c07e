"""The Burrow rules of monitor/burrow.py against their plain statement, on generated samples.

`evaluate_partition` walks each window with C loops (map, sorted, min, count) because the
collector judges 25,000 partitions a tick at 5,000 group x topic rows. `plain_rules` below
is the same rules written the first, obvious way (sort, filter, one Python loop per rule);
both must give the same status and lag, and a reason naming the same rule with the same
numbers, for any samples, in any order, with ties, gaps in the committed offsets and rewinds.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from operator import attrgetter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import burrow
from monitor.burrow import Sample, Status, evaluate_partition


def plain_rules(
    samples: Sequence[Sample], now: float, window_s: float | None, allowed_lag: int
) -> tuple[Status, int | None, str]:
    """The rules as written first (sort, filter, one walk per rule): the status, the lag and a
    piece of the reason that says which rule fired, with its numbers."""
    if not samples:
        return Status.NOTFOUND, None, "No offset samples for this partition"
    ordered = sorted(samples, key=attrgetter("at"))
    start = now - window_s if window_s is not None else ordered[0].at
    window = [s for s in ordered if s.at >= start and s.committed is not None]
    if not window:
        if ordered[-1].at < start:
            return Status.NOTFOUND, None, "No offset samples in the last"
        return Status.NOTFOUND, None, "no committed offset"
    last = window[-1]
    committed, lag = last.committed, last.lag
    if lag <= allowed_lag:
        return Status.OK, lag, "Caught up"
    last_commit = burrow._last_commit_time(ordered, last)
    if last_commit < start and not any(s.end <= committed + allowed_lag for s in window):
        return Status.STOP, lag, f"No commit since {burrow._clock(last_commit)}"
    peak = max(s.committed for s in window[:-1]) if len(window) > 1 else committed
    if committed < peak:
        return Status.REWIND, lag, f"went back from {peak} to {committed}"
    if any(s.lag <= allowed_lag for s in window):
        return Status.OK, lag, "caught up within the window"
    if len(window) < 2:
        return Status.OK, lag, "one sample so far"
    first = window[0]
    if all(s.committed == committed for s in window):
        return Status.STALL, lag, f"stuck at {committed} since {burrow._clock(last_commit)}"
    if all(b >= a for a, b in itertools.pairwise(s.lag for s in window)):
        return Status.WARN, lag, f"lag went from {first.lag} to {lag}"
    return Status.OK, lag, "catching up"


_samples = st.lists(
    st.builds(
        Sample,
        at=st.integers(0, 12).map(lambda t: t * 10.0),  # few distinct times: ties
        committed=st.none() | st.integers(98, 103),
        end=st.integers(98, 106),
        committed_at=st.none() | st.integers(0, 120).map(float),
    ),
    max_size=14,
)


@settings(max_examples=1000, deadline=None)
@given(
    samples=_samples,
    in_order=st.booleans(),
    now=st.integers(0, 160).map(float),
    window_s=st.none() | st.sampled_from([5.0, 30.0, 60.0, 120.0]),
    allowed_lag=st.integers(0, 3),
)
def test_same_verdict_as_the_plain_rules(samples, in_order, now, window_s, allowed_lag):
    if in_order:  # as the collector keeps them
        samples = sorted(samples, key=attrgetter("at"))
    verdict = evaluate_partition(samples, now, window_s, allowed_lag)
    status, lag, reason = plain_rules(samples, now, window_s, allowed_lag)
    assert (verdict.status, verdict.lag) == (status, lag)
    assert reason in verdict.reason
    # The collector gives its samples as plain tuples of the same fields.
    assert evaluate_partition([tuple(s) for s in samples], now, window_s, allowed_lag) == verdict


def test_a_negative_allowed_lag_is_refused():
    with pytest.raises(ValueError, match="allowed_lag"):
        evaluate_partition([Sample(0.0, 1, 2)], 0.0, allowed_lag=-1)


# A tick of one partition, as the collector sees it: what the group committed (None: no
# change), how the end offset moved (-1: the topic was recreated), whether the commit time
# is known, and whether the collector skipped judging this tick (the topic was left out of
# that tick's rows).
_ticks = st.lists(
    st.tuples(st.none() | st.integers(0, 8), st.sampled_from([0, 0, 1, -1]), st.booleans(), st.booleans()),
    min_size=1,
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(
    ticks=_ticks,
    window_s=st.sampled_from([6.0, 20.0]),
    allowed_lag=st.integers(0, 2),
    step_s=st.sampled_from([1.0, 2.0]),
)
def test_a_judge_answers_as_the_rules_tick_after_tick(ticks, window_s, allowed_lag, step_s):
    """The Judge keeps a STOP verdict while nothing is observed to change: it must still be the
    verdict `evaluate_partition` gives, with the same reason, at every tick."""
    judge = burrow.Judge(window_s, allowed_lag)
    samples: deque[Sample] = deque()
    committed, end, committed_at, now = 0, 3, 0.0, 100.0
    for commit, moved, known, skipped in ticks:
        now += step_s
        if commit is not None and commit != committed:
            committed, committed_at = commit, now
        end = max(0, end + moved)
        samples.append(Sample(now, committed, end, committed_at if known else None))
        while samples[0].at < now - window_s:
            samples.popleft()
        if skipped:
            continue
        expected = evaluate_partition(samples, now, window_s, allowed_lag)
        verdict = judge.partition("p", samples, now)
        assert (verdict.status, verdict.reason, verdict.lag) == (expected.status, expected.reason, expected.lag)
        group = judge.group(("g", "t"), {("t", 0): verdict})
        assert group == burrow.group_verdict({("t", 0): expected})


def test_a_judge_keeps_a_stopped_partitions_verdict_and_judges_again_when_it_moves():
    judge = burrow.Judge(10.0)
    samples = [Sample(float(t), 5, 9, 0.0) for t in range(20, 31)]
    first = judge.partition("p", samples, 30.0)
    assert first.status is Status.STOP
    samples.append(Sample(31.0, 5, 9, 0.0))
    assert judge.partition("p", samples, 31.0) is first  # kept, not judged again
    samples.append(Sample(32.0, 5, 10, 0.0))  # a record arrived: judged again, same rule
    moved = judge.partition("p", samples, 32.0)
    assert moved is not first and moved.status is Status.STOP
    samples.append(Sample(33.0, 9, 10, 33.0))  # the group committed
    assert judge.partition("p", samples, 33.0).status is not Status.STOP


def test_a_judge_judges_again_after_a_tick_it_did_not_see():
    judge = burrow.Judge(10.0)
    samples = [Sample(float(t), 5, 6, 0.0) for t in range(20, 31)]
    assert judge.partition("p", samples, 30.0).status is Status.STOP
    samples.append(Sample(31.0, 5, 5, 0.0))  # recreated and caught up, at a tick not judged
    samples.append(Sample(32.0, 5, 6, 0.0))  # the observation kept, one record since
    verdict = judge.partition("p", samples, 32.0)
    assert verdict.status is evaluate_partition(samples, 32.0, 10.0).status is Status.OK
