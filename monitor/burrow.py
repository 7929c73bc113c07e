"""Consumer-group health by LinkedIn Burrow's lag evaluation rules.

Burrow judges a consumer by how its committed offsets behave over a sliding window
instead of by a lag threshold. This module re-implements the rules of Burrow's
``core/internal/evaluator/caching.go`` (current master, including the rewind-recovery
change of PR #716) over the samples our collector takes. Per partition, with lag
``end - committed`` clamped at zero as Burrow stores it:

1. Current lag is zero (at most ``allowed_lag``)                      -> OK
2. The last commit is older than the window, and the end offset has not
   stood at the committed offset at any sample in the window           -> STOP
3. The committed offset went backwards and has not since climbed back
   to where it was before                                              -> REWIND
4. Lag was zero at some sample in the window                           -> OK
5. The committed offset did not move over the window                  -> STALL
6. The committed offset moved but lag never went down                  -> WARN
7. Otherwise (lag is going down somewhere)                             -> OK

The checks run in that order and the first match wins. STOP is checked before the
"lag was zero" rule because a stopped consumer's old history may still contain zero
lag; REWIND is checked before it because a consumer can be caught up and then jump
back (Burrow PR #716).

Status ranking (worst last) follows Burrow's ``StatusConstant`` values, which is
also how a group takes the worst of its partitions:
``NOTFOUND < OK < WARN < ERR < STOP < STALL < REWIND``. Note this differs from the
evaluation order above: a partition that has stopped is reported STOP even if it also
rewound, but among partitions REWIND outranks STALL, which outranks STOP. ``ERR`` is
never a partition status; ``GroupVerdict.burrow_status`` collapses STOP/STALL/REWIND
to ERR the way Burrow's group status does. NOTFOUND means there is nothing to judge.

Where our inputs differ from Burrow's:

* Burrow stores one entry per *commit* with the commit's timestamp. We sample on a
  timer, so "when did the group last commit" comes from ``Sample.committed_at`` when
  the collector knows it (Redis consumer activity, the commit log), and is otherwise
  inferred as the time we first saw the current committed offset, looking back through
  every sample given (older than the window too). Without commit timestamps a consumer
  that keeps committing the same offset cannot be told from one that stopped
  committing: it is STALL while its offset has been stuck for less than the window and
  STOP once samples before the window show the same offset.
* Burrow keeps a ring of recent broker end offsets to avoid a false STOP on quiet
  partitions; our samples carry the end offset, so rule 2 uses them.
* The brief for this module asked for STALL only when the end offset advanced and
  WARN only when lag strictly grew. Burrow treats a fixed lag the same as a growing
  one (its wiki: "the lag is either fixed or increasing"), and so do we: a consumer
  stuck with 50 messages waiting on a quiet topic is not OK.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter, sub
from typing import NamedTuple


class Status(enum.StrEnum):
    NOTFOUND = "NOTFOUND"
    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"
    STOP = "STOP"
    STALL = "STALL"
    REWIND = "REWIND"

    @property
    def rank(self) -> int:
        """Severity as in Burrow's StatusConstant: higher is worse."""
        return _RANKING.index(self)


_RANKING = [
    Status.NOTFOUND,
    Status.OK,
    Status.WARN,
    Status.ERR,
    Status.STOP,
    Status.STALL,
    Status.REWIND,
]
_ERRORS = {Status.STOP, Status.STALL, Status.REWIND}


class Sample(NamedTuple):
    """One observation of a partition: the group's committed offset and the log end.

    ``committed`` is None when the group has no committed offset for the partition.
    ``committed_at`` is when the group last committed, if the collector knows it.
    The rules take a plain tuple of these four fields as well, and read them by
    position: the collector keeps one per group x partition per tick for the whole
    window (1.5 million at 5,000 group x topic rows), and a plain tuple of numbers is
    left out of the garbage collector's walks, which any other object is not.
    """

    at: float
    committed: int | None
    end: int
    committed_at: float | None = None

    @property
    def lag(self) -> int | None:
        return _lag(self)


AT, COMMITTED, END, COMMITTED_AT = range(4)  # a sample's fields by position
_AT, _COMMITTED, _END = itemgetter(AT), itemgetter(COMMITTED), itemgetter(END)


def _lag(sample: tuple) -> int | None:
    if sample[COMMITTED] is None:
        return None
    return max(0, sample[END] - sample[COMMITTED])


@dataclass(frozen=True)
class PartitionVerdict:
    status: Status
    reason: str
    lag: int | None = None


@dataclass(frozen=True)
class GroupVerdict:
    status: Status
    worst: list[tuple[str, int]]
    reason: str
    partitions: dict[tuple[str, int], PartitionVerdict] = field(default_factory=dict)
    total_lag: int = 0

    @property
    def burrow_status(self) -> Status:
        """The group status Burrow itself would report: NOTFOUND, OK, WARN or ERR."""
        return Status.ERR if self.status in _ERRORS else self.status


def evaluate_partition(
    samples: Sequence[Sample],
    now: float,
    window_s: float | None = None,
    allowed_lag: int = 0,
) -> PartitionVerdict:
    """Judge one partition from its offset samples (any order; sorted here).

    The window is the last ``window_s`` seconds before ``now``, or all the samples when
    ``window_s`` is None. Samples older than the window only serve to date the last
    commit. Lag up to ``allowed_lag`` counts as zero (Burrow's ``allowed-lag``).
    """
    if allowed_lag < 0:
        raise ValueError(f"allowed_lag must be at least 0, not {allowed_lag}")
    if not samples:
        return PartitionVerdict(Status.NOTFOUND, "No offset samples for this partition yet.")
    # A collector at 5,000 group x topic rows judges 25,000 partitions a tick, so the walks
    # over a window are C loops (map, sorted, min, max, count) wherever the rules allow.
    # The collector's samples come in time order: checking that is cheaper than sorting.
    ats = list(map(_AT, samples))
    in_order = ats == sorted(ats)
    newest = samples[-1] if in_order else max(reversed(samples), key=_AT)  # of ties, the last given
    lag = _lag(newest)
    if lag is not None and lag <= allowed_lag and (window_s is None or newest[AT] >= now - window_s):
        return PartitionVerdict(Status.OK, "Caught up: no messages waiting.", lag)
    if in_order:
        ordered = samples if isinstance(samples, list) else list(samples)
    else:
        ordered = sorted(samples, key=_AT)  # stable, so the newest is last as above
        ats = list(map(_AT, ordered))
    start = now - window_s if window_s is not None else ats[0]
    window = ordered[bisect.bisect_left(ats, start) :]
    commits = list(map(_COMMITTED, window))
    if None in commits:
        window = [s for s in window if s[COMMITTED] is not None]
        commits = list(map(_COMMITTED, window))
    if not window:
        if newest[AT] < start:
            return PartitionVerdict(
                Status.NOTFOUND,
                f"No offset samples in the last {_duration(now - start)}; "
                "the collector may not be reaching the broker.",
            )
        return PartitionVerdict(Status.NOTFOUND, "The group has no committed offset for this partition.")

    last = window[-1]
    committed, lag = last[COMMITTED], _lag(last)
    # The window only holds samples with a committed offset.
    assert committed is not None and lag is not None

    if lag <= allowed_lag:
        return PartitionVerdict(Status.OK, "Caught up: no messages waiting.", lag)

    last_commit = _last_commit_time(ordered, last)
    caught_up_recently = min(map(_END, window)) <= committed + allowed_lag
    if last_commit < start and not caught_up_recently:
        return PartitionVerdict(
            Status.STOP,
            f"No commit since {_clock(last_commit)} (longer than the "
            f"{_duration(now - start)} window) while messages wait. The consumer "
            "has probably stopped or lost this partition.",
            lag,
        )

    peak = max(commits[:-1]) if len(window) > 1 else committed
    if committed < peak:
        return PartitionVerdict(
            Status.REWIND,
            f"The committed offset went back from {peak} to {committed} and has not "
            "caught up again: messages are being processed a second time (offset "
            "reset, or a rebalance that committed an old position).",
            lag,
        )

    # end - committed per sample, unclamped: lag <= allowed_lag (>= 0) either way, and past that
    # check every one is above zero, so clamping would change none.
    lags = list(map(sub, map(_END, window), commits))
    if min(lags) <= allowed_lag:
        return PartitionVerdict(
            Status.OK,
            f"{lag} messages waiting, but the consumer caught up within the window.",
            lag,
        )
    if len(window) < 2:
        return PartitionVerdict(
            Status.OK,
            f"{lag} messages waiting; one sample so far, too early to judge.",
            lag,
        )

    first = window[0]
    if commits.count(committed) == len(commits):
        produced = last[END] - first[END]
        news = f"{produced} new messages arrived" if produced > 0 else "no new messages arrived"
        return PartitionVerdict(
            Status.STALL,
            f"The committed offset has been stuck at {committed} since {_clock(last_commit)} "
            f"while {news}; {lag} messages wait. "
            "The consumer may be retrying a message it cannot process.",
            lag,
        )

    if lags == sorted(lags):  # never went down
        return PartitionVerdict(
            Status.WARN,
            f"The consumer is making progress but falling behind: lag went from "
            f"{_lag(first)} to {lag} over {_duration(last[AT] - first[AT])}.",
            lag,
        )
    return PartitionVerdict(Status.OK, f"{lag} messages waiting and the consumer is catching up.", lag)


def evaluate_group(
    partitions: Mapping[tuple[str, int], Sequence[Sample]],
    now: float,
    window_s: float | None = None,
    allowed_lag: int = 0,
) -> GroupVerdict:
    """Judge a group: its status is its worst partition's, by ``Status.rank``."""
    return group_verdict(
        {key: evaluate_partition(samples, now, window_s, allowed_lag) for key, samples in sorted(partitions.items())}
    )


def group_verdict(verdicts: dict[tuple[str, int], PartitionVerdict]) -> GroupVerdict:
    """A group's verdict from its partitions' (in the order given)."""
    total_lag = sum(v.lag or 0 for v in verdicts.values())
    if not verdicts:
        return GroupVerdict(Status.NOTFOUND, [], "The group has no partitions to evaluate.")
    status = max((v.status for v in verdicts.values()), key=lambda s: s.rank)
    worst = [key for key, v in verdicts.items() if v.status is status]
    count = len(verdicts)
    if status is Status.NOTFOUND:
        reason = "No committed offsets for any partition yet."
    elif status is Status.OK:
        reason = f"All {count} partitions are healthy."
    else:
        topic, partition = worst[0]
        others = f" (and {len(worst) - 1} more)" if len(worst) > 1 else ""
        reason = (
            f"{len(worst)} of {count} partitions {status.value}. "
            f"{topic}[{partition}]{others}: {verdicts[worst[0]].reason}"
        )
    return GroupVerdict(status, worst, reason, verdicts, total_lag)


class Judge:
    """``evaluate_partition`` and ``group_verdict`` for a collector that judges the same
    partitions every tick, with the same window, samples appended in time order.

    Two verdicts hold while the sample added since is the same observation (committed
    offset, end offset and the known time of the last commit), so they are kept and
    the window is not walked again:
    - STOP: the last commit only gets older against a window that moves forward, and
      every end offset in the window stays above the committed one;
    - OK because the consumer caught up within the window (rule 4): until the last
      sample at which it had caught up leaves the window. Nothing before rule 4 can
      fire meanwhile (that sample keeps STOP off, and the committed offset stays at
      the window's peak, so no REWIND).
    At a large cluster most partitions are those of groups that stopped long ago, on
    topics that are quiet or get a record now and then (25,000 partitions a tick at
    5,000 group x topic rows). A group whose partitions' verdicts are the ones it had
    keeps its group verdict too. tests/monitor/test_burrow_rules.py checks that a Judge
    answers as ``evaluate_partition`` does on generated streams of ticks.
    """

    def __init__(self, window_s: float, allowed_lag: int = 0) -> None:
        self.window_s = window_s
        self.allowed_lag = allowed_lag
        # key -> [the sample judged at, its verdict, until when it holds (None: while unchanged)]
        self._kept: dict[Hashable, list] = {}
        self._groups: dict[Hashable, GroupVerdict] = {}

    def partition(self, key: Hashable, samples: Sequence[Sample], now: float) -> PartitionVerdict:
        kept = self._kept.get(key)
        if kept is not None and len(samples) >= 2:
            before, verdict, caught_up_at = kept
            newest = samples[-1]
            if (
                samples[-2] is before  # judged at the sample before this one, none skipped
                and newest[COMMITTED] == before[COMMITTED]
                and newest[END] == before[END]
                and newest[COMMITTED_AT] == before[COMMITTED_AT]
                and (caught_up_at is None or caught_up_at >= now - self.window_s)
            ):
                kept[0] = newest  # in place: no new object per partition and tick
                return verdict
        verdict = evaluate_partition(samples, now, self.window_s, self.allowed_lag)
        entry = None
        if verdict.status is Status.STOP and samples[-1][COMMITTED_AT] is not None:
            # Without a commit time the last commit is dated from the samples, which the
            # window drops: the rules must run again.
            entry = [samples[-1], verdict, None]
        elif verdict.status is Status.OK and verdict.lag is not None and verdict.lag > self.allowed_lag:
            caught_up_at = self._caught_up_at(samples, now)
            if caught_up_at is not None:  # rule 4, not "one sample so far" or "catching up"
                entry = [samples[-1], verdict, caught_up_at]
        if entry is not None:
            self._kept[key] = entry
        else:
            self._kept.pop(key, None)
        return verdict

    def _caught_up_at(self, samples: Sequence[Sample], now: float) -> float | None:
        """When, in the window, the consumer was last caught up; None if it was not."""
        start = now - self.window_s
        for sample in reversed(samples):
            if sample[AT] < start:
                return None
            if sample[COMMITTED] is not None and sample[END] - sample[COMMITTED] <= self.allowed_lag:
                return sample[AT]
        return None

    def group(self, key: Hashable, verdicts: dict[tuple[str, int], PartitionVerdict]) -> GroupVerdict:
        kept = self._groups.get(key)
        if kept is not None and list(kept.partitions.items()) == list(verdicts.items()):
            return kept
        verdict = self._groups[key] = group_verdict(verdicts)
        return verdict

    def forget(self, keep_partition: Callable[[Hashable], bool], keep_group: Callable[[Hashable], bool]) -> None:
        """Drop what is kept for partitions and groups that are gone."""
        for key in [k for k in self._kept if not keep_partition(k)]:
            del self._kept[key]
        for key in [k for k in self._groups if not keep_group(k)]:
            del self._groups[key]


def _last_commit_time(ordered: Sequence[Sample], last: Sample) -> float:
    if last[COMMITTED_AT] is not None:
        return last[COMMITTED_AT]
    # Without commit timestamps: when did we first see the offset the group is at now?
    since = last[AT]
    for sample in reversed(ordered):
        if sample[AT] > last[AT] or sample[COMMITTED] is None:
            continue
        if sample[COMMITTED] != last[COMMITTED]:
            break
        since = sample[AT]
    return since


def _clock(epoch: float) -> str:
    """A moment as UTC time: unlike "for 5 min", the reason's text stays the same from tick
    to tick, so the socket does not resend every stopped group's row (monitor/deltas.py)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
