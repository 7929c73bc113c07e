"""Produce and consume rates, lag in messages and in seconds, and time to drain.

Everything here is computed from a short history of ``(time, offset)`` points per
series: one series per partition for the log end offset (``end_key``) and one per
group and partition for the committed offset (``committed_key``). ``History`` keeps
those points in bounded ring buffers.

Rates. The rate of a series is ``(last - first) / (t_last - t_first)`` over the points
inside the window. An offset that drops means the topic was deleted and recreated (end
offset) or the group was reset (committed offset); the series then starts again after
the drop, so a recreation never shows as a huge negative or positive rate. A topic's
produce rate is the sum of its partitions' rates (``EndSeries``), a group's consume rate on a topic the
sum of its committed-offset rates; partitions with fewer than two points are left out.

Lag in messages is ``end - committed`` per partition, clamped at zero (the two are read
at slightly different moments), summed over the topic.

Lag in seconds is the age of the oldest message the group has not consumed: the time
at which the end offset last stood at the group's committed offset, i.e. when the
message at that offset was written. We find it in the end-offset history by linear
interpolation between the two points around the committed offset, and report
``now - that time``. When the committed offset is older than the whole history we
cannot interpolate, and estimate ``lag / produce rate`` instead, raised to
``now - oldest point`` because the message is known to be at least that old (alone
when nothing is being produced). Lag 0 is 0 seconds. For a topic we report the worst
partition.

Time to drain is ``lag / (consume rate - produce rate)``: how long until the group
catches up if both rates hold. None when the group is not gaining on the producers.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from operator import itemgetter

Point = tuple[float, int]


class History:
    """Recent ``(time, offset)`` points per series, bounded by age and by count.

    Keys are any hashable; use ``end_key`` and ``committed_key`` for offsets. Points
    must arrive in time order per series: a point older than the newest one is ignored,
    one at the same time replaces it. ``prune(now)`` drops old points and series that
    went quiet, so keys of deleted topics or groups do not pile up.
    """

    def __init__(self, max_age_s: float, max_points: int = 1024) -> None:
        if max_age_s <= 0 or max_points < 2:
            raise ValueError("History needs max_age_s > 0 and max_points >= 2")
        self.max_age_s = max_age_s
        self.max_points = max_points
        self._series: dict[Hashable, deque[Point]] = {}

    def add(self, key: Hashable, at: float, value: int) -> None:
        points = self._series.get(key)
        if points is None:
            points = self._series[key] = deque(maxlen=self.max_points)
        if points and at <= points[-1][0]:
            if at == points[-1][0]:
                points[-1] = (at, value)
            return
        points.append((at, value))
        self._trim(points, at)

    def points(self, key: Hashable) -> list[Point]:
        return list(self._series.get(key, ()))

    def prune(self, now: float) -> None:
        for key in list(self._series):
            points = self._series[key]
            self._trim(points, now)
            if not points:
                del self._series[key]

    def count(self, key: Hashable) -> int:
        """How many points `key` has, without copying them."""
        return len(self._series.get(key, ()))

    def keys(self) -> list[Hashable]:
        return list(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def __contains__(self, key: object) -> bool:
        return key in self._series

    def _trim(self, points: deque[Point], now: float) -> None:
        while points and points[0][0] < now - self.max_age_s:
            points.popleft()


def end_key(topic: str, partition: int) -> tuple[str, str, int]:
    return ("end", topic, partition)


def committed_key(group: str, topic: str, partition: int) -> tuple[str, str, str, int]:
    return ("committed", group, topic, partition)


_OFFSET = itemgetter(1)


def since_reset(points: Sequence[Point]) -> list[Point]:
    """The points after the last drop in offset: a recreated topic or reset group."""
    return _since_reset(points)[0]


def _since_reset(points: Sequence[Point]) -> tuple[list[Point], list[int]]:
    """since_reset's points and their offsets. A list given without a drop comes back as is."""
    offsets = list(map(_OFFSET, points))
    if offsets == sorted(offsets):  # no drop, the usual case: found by C loops, not this one
        return (points if isinstance(points, list) else list(points)), offsets
    start = 0
    for i in range(1, len(points)):
        if points[i][1] < points[i - 1][1]:
            start = i
    return list(points[start:]), offsets[start:]


def rate(points: Sequence[Point], now: float, window_s: float) -> float | None:
    """Offsets per second over the last ``window_s`` seconds; None below 2 points."""
    return _window_rate(since_reset(points), now, window_s)


def _window_rate(points: Sequence[Point], now: float, window_s: float) -> float | None:
    """The rate of points that have no drop in offset (since_reset's)."""
    since = now - window_s
    recent = points[bisect.bisect_left(points, (since, -1)) :] if points and points[0][0] < since else points
    if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
        return None
    return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])


class EndSeries:
    """One partition's end offsets since their last drop, with their rate: read once per
    tick and shared by every group on that partition (a topic read by many groups would
    otherwise have its history walked once per group)."""

    __slots__ = ("offsets", "points", "rate")

    def __init__(self, points: Sequence[Point], now: float, window_s: float) -> None:
        self.points, self.offsets = _since_reset(points)
        self.rate = _window_rate(self.points, now, window_s)

    def lag_seconds(self, committed: int | None, now: float) -> float | None:
        return _lag_seconds(self.points, self.offsets, committed, now, self.rate)


def lag_messages(end: int, committed: int | None) -> int | None:
    if committed is None:
        return None
    return max(0, end - committed)


def lag_seconds(
    end_points: Sequence[Point],
    committed: int | None,
    now: float,
    produce_rate: float | None = None,
) -> float | None:
    """Age in seconds of a partition's oldest unconsumed message (see module doc)."""
    points, offsets = _since_reset(end_points)
    return _lag_seconds(points, offsets, committed, now, produce_rate)


def _lag_seconds(
    points: Sequence[Point], offsets: list[int], committed: int | None, now: float, produce_rate: float | None
) -> float | None:
    if committed is None or not points:
        return None
    end = points[-1][1]
    if committed >= end:
        return 0.0
    # since_reset leaves the offsets non-decreasing, so they can be bisected.
    after = bisect.bisect_right(offsets, committed)
    if after > 0:
        (t0, e0), (t1, e1) = points[after - 1], points[after]
        written_at = t0 + (committed - e0) / (e1 - e0) * (t1 - t0)
        return max(0.0, now - written_at)
    at_least = now - points[0][0]
    if produce_rate is not None and produce_rate > 0:
        return max((end - committed) / produce_rate, at_least)
    return at_least if at_least > 0 else None


def time_to_drain(lag: int | None, consume_rate: float | None, produce_rate: float | None) -> float | None:
    """Seconds until lag reaches zero at current rates; None when it is not falling."""
    if lag is None:
        return None
    if lag <= 0:
        return 0.0
    if consume_rate is None or produce_rate is None:
        return None
    gain = consume_rate - produce_rate
    return lag / gain if gain > 0 else None


def group_consume_rate(
    history: History,
    group: str,
    topic: str,
    partitions: Iterable[int],
    now: float,
    window_s: float,
) -> float | None:
    return _sum_rates(
        (history.points(committed_key(group, topic, p)) for p in partitions),
        now,
        window_s,
    )


def _sum_rates(series: Iterable[Sequence[Point]], now: float, window_s: float) -> float | None:
    return total(rate(points, now, window_s) for points in series)


def total(rates: Iterable[float | None]) -> float | None:
    """The sum of the known rates (a partition below 2 points has none); None when none is known."""
    known = [r for r in rates if r is not None]
    return sum(known) if known else None
