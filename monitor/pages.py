"""The consumer-groups table's page: the group rows a dashboard socket is sent.

At a few thousand group x topic rows the table shows one page of them (worst first),
so a tab that receives every row pays for rows nobody sees: megabytes in its first
frame, and every changed row after. A socket that subscribes to a page gets that
page's rows only, and the count of the rows that match::

    {"type": "subscribe", "groups": {"page": 2, "filter": "pay"}}   # or ?groups_page=2 on the handshake

The page is part of the socket's view, beside its domain (monitor/deltas.py `Scope`):
the rows are first those of the view's topics, then those whose group or topic
contains the filter (case-insensitive), ordered as the table orders them: the worst
status first, then the most lag, then group, topic and bus. The frame says which page
it is in the snapshot's ``groups_page`` field: ``{"page", "pages", "size", "total",
"filter"}``. A page past the last is the last.

Plain functions, no Django; monitor/consumers.py keeps, per process, what every socket
on the same page shares (`Pager`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor import deltas, snapshots
from monitor.burrow import Status

PAGE_SIZE = 300  # the rows of the table (static/monitor/dashboard/panels.js TABLE_LIMIT)
MAX_FILTER = 100
MAX_PAGE = 100_000

_RANK = {status.value: status.rank for status in Status}


def _worst_first(row: dict[str, Any]) -> tuple:
    lag = row.get("lag")
    return (
        -_RANK.get(row.get("status"), 0),
        -(lag if isinstance(lag, int | float) else 0),
        str(row.get("group")),
        str(row.get("topic")),
        str(row.get("bus")),
    )


def ordered(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group rows in the table's order (static/monitor/dashboard/panels.js sorts the same way)."""
    return sorted(groups, key=_worst_first)


@dataclass(frozen=True)
class GroupsPage:
    """One page of the groups table: its number (from 0) and the table's filter text."""

    page: int = 0
    filter: str = ""

    @classmethod
    def parse(cls, value: Any) -> GroupsPage | None:
        """``{"page": n, "filter": text}`` from a client; None when malformed."""
        if not isinstance(value, dict):
            return None
        page, text = value.get("page", 0), value.get("filter", "")
        if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page <= MAX_PAGE:
            return None
        if not isinstance(text, str):
            return None
        return cls(page, text.strip()[:MAX_FILTER])

    def rows(self, ordered_groups: list[dict[str, Any]], scope: deltas.Scope | None) -> tuple[list[dict], dict]:
        """This page's rows out of rows in the table's order, and the ``groups_page`` field."""
        needle = self.filter.lower()
        matching = ordered_groups
        if scope is not None or needle:
            matching = [
                row
                for row in ordered_groups
                if (scope is None or scope.keeps("groups", row))
                and (not needle or needle in str(row.get("group")).lower() or needle in str(row.get("topic")).lower())
            ]
        total = len(matching)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(self.page, pages - 1)
        start = page * PAGE_SIZE
        field = {"page": page, "pages": pages, "size": PAGE_SIZE, "total": total, "filter": self.filter}
        return matching[start : start + PAGE_SIZE], field


def paged(snapshot: dict[str, Any], page: GroupsPage, scope: deltas.Scope | None = None) -> dict[str, Any]:
    """The snapshot as a socket on `page` (and `scope`) sees it whole."""
    shown = scope.snapshot(snapshot) if scope is not None else dict(snapshot)
    shown["groups"], shown["groups_page"] = page.rows(ordered(snapshot.get("groups") or []), scope)
    return shown


class Pager:
    """Per process, what the sockets on pages share: the latest whole snapshot, each
    view of it (scope and page) and each frame, made once for all the sockets that need it.

    A socket on a page holds the view it was sent last (`shown`). Its next frame is the
    delta from that view to the current one, so it is right whichever ticks it saw;
    sockets that were sent the same view object share the frame's text, which is how
    200 tabs on the first page cost one delta a tick, not 200.
    """

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] | None = None
        self._ordered: list[dict[str, Any]] | None = None
        self._views: dict[tuple, dict[str, Any]] = {}
        self._frames: dict[tuple, tuple[dict, str, dict]] = {}

    @property
    def tick(self) -> int | None:
        return None if self.snapshot is None else self.snapshot.get("tick")

    def hold(self, snapshot: dict[str, Any]) -> None:
        """Make `snapshot` (whole) the current one; one of the tick held changes nothing."""
        if self.snapshot is not None and snapshot.get("tick") == self.tick:
            return
        self.snapshot = snapshot
        self._ordered = None
        self._views.clear()
        self._frames.clear()

    def advance(self, delta: dict[str, Any]) -> bool:
        """Apply a delta frame to the snapshot held; False when it was made from another one."""
        if self.snapshot is None:
            return False
        patched = deltas.patch(self.snapshot, delta)
        if patched is None:
            return False
        self.hold(patched)
        return True

    def view(self, page: GroupsPage, scope: deltas.Scope | None) -> dict[str, Any]:
        """The current snapshot as a socket on `page` and `scope` sees it (made once per tick)."""
        assert self.snapshot is not None
        key = (page, scope)
        view = self._views.get(key)
        if view is None:
            if self._ordered is None:
                self._ordered = ordered(self.snapshot.get("groups") or [])
            view = scope.snapshot(self.snapshot) if scope is not None else dict(self.snapshot)
            view["groups"], view["groups_page"] = page.rows(self._ordered, scope)
            self._views[key] = view
        return view

    def frame(self, shown: dict[str, Any] | None, page: GroupsPage, scope: deltas.Scope | None) -> tuple[str, dict]:
        """The frame's text that brings a socket from `shown` to the current view, and that view."""
        key = (id(shown), page, scope)
        cached = self._frames.get(key)
        if cached is not None and cached[0] is shown:
            return cached[1], cached[2]
        view = self.view(page, scope)
        whole = '{"type":"snapshot","snapshot":' + snapshots.dumps(view) + "}"
        text = whole
        if shown is not None and shown.get("tick") is not None and shown["tick"] < view["tick"]:
            delta = snapshots.dumps(deltas.diff(shown, view))
            if len(delta) < len(whole):
                text = delta
        # The key holds `shown` itself, so its id is not reused while the entry lives.
        self._frames[key] = (shown, text, view)
        return text, view
