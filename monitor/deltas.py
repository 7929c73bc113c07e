"""What changed between two monitor snapshots, and the part of a snapshot a tab looks at.

Plain functions, no Django: `diff` makes the delta the collector broadcasts, `patch`
applies one (the dashboard does the same in static/monitor/dashboard/delta.js; tests
and the benchmarks use this one), `Scope` trims a frame to one domain's topics.

A delta frame::

    {"type": "delta", "tick": 42, "base": 41,
     "set": {"at": ..., "tick_ms": ..., "buses": [...]},        # other fields, whole, when they changed
     "rows": {"groups": {"upsert": [row, ...], "remove": [[bus, group, topic], ...]}, ...}}

`base` is the tick of the snapshot it applies to. A client whose snapshot has another
tick has missed a frame and asks for a full one ("refresh").

Rows of the four big lists travel one by one, keyed by `KEYS`: an "upsert" entry
is a new row whole, or the key and the fields that changed of a row the client has.
Some fields grow with the clock (`silent_s`, `lag_seconds`): they would change every
row every tick, so a delta leaves them out and the client derives them from the
moment they count from (`moved_at`, `lag_since`, epoch seconds) and the frame's `at`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

KEYS: dict[str, tuple[str, ...]] = {
    "topics": ("bus", "name"),
    "groups": ("bus", "group", "topic"),
    "services": ("service",),
    "edges": ("edge_id",),
}
# A field that grows with the clock -> the moment it counts from.
DERIVED = {"silent_s": "moved_at", "lag_seconds": "lag_since"}


def steady(row: dict[str, Any]) -> dict[str, Any]:
    """The row without the fields that grow with the clock."""
    return {k: v for k, v in row.items() if k not in DERIVED}


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in DERIVED}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def _row_changes(old: list[dict], new: list[dict], key: tuple[str, ...]) -> dict[str, list] | None:
    """Rows to add or replace, and keys to remove; None when keys repeat (send the whole list)."""
    get = itemgetter(*key) if len(key) > 1 else (lambda row, k=key[0]: (row[k],))
    before = {get(row): row for row in old}
    if len(before) != len(old):
        return None
    upsert, seen = [], set()
    for row in new:
        k = get(row)
        if k in seen:
            return None
        seen.add(k)
        was = before.pop(k, None)
        if was is None:
            upsert.append(steady(row))
        elif was != row:
            changed = {f: v for f, v in row.items() if f not in DERIVED and (f not in was or was[f] != v)}
            if changed:
                upsert.append({**{f: row[f] for f in key}, **changed})
    changes: dict[str, list] = {}
    if upsert:
        changes["upsert"] = upsert
    if before:
        changes["remove"] = [list(k) for k in before]
    return changes


def same_rows(old: list[dict], new: list[dict], key: tuple[str, ...]) -> bool:
    """Whether a delta between the two lists of rows would carry nothing."""
    return _row_changes(old, new, key) == {}


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The delta that turns `old` into `new` (both full snapshots)."""
    delta: dict[str, Any] = {"type": "delta", "tick": new["tick"], "base": old["tick"], "set": {}, "rows": {}}
    for field, value in new.items():
        if field == "tick" or field in KEYS:
            continue
        was = old.get(field)
        if was != value and _without_clock(was) != _without_clock(value):
            delta["set"][field] = value
    for field, key in KEYS.items():
        changes = _row_changes(old.get(field) or [], new.get(field) or [], key)
        if changes is None:
            delta["set"][field] = new.get(field) or []
        elif changes:
            delta["rows"][field] = changes
    return delta


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def derive(snapshot: dict[str, Any]) -> None:
    """Fill the clock-driven fields of every row from their anchors and the snapshot's `at`."""
    now = epoch(snapshot["at"])
    rows: Iterable[dict] = [
        *(row for field in KEYS for row in snapshot.get(field) or []),
        *((snapshot.get("drift") or {}).get("silent_edges") or []),
    ]
    for row in rows:
        for field, anchor in DERIVED.items():
            if anchor in row:
                row[field] = None if row[anchor] is None else round(now - row[anchor], 1)


def patch(snapshot: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any] | None:
    """The snapshot `delta` leads to, or None when it does not apply to this one (a missed frame)."""
    if delta.get("base") != snapshot.get("tick"):
        return None
    result = {**snapshot, **delta.get("set", {}), "tick": delta["tick"]}
    for field, changes in delta.get("rows", {}).items():
        key = KEYS[field]
        rows = {tuple(row[k] for k in key): row for row in snapshot.get(field) or []}
        for gone in changes.get("remove", []):
            rows.pop(tuple(gone), None)
        for entry in changes.get("upsert", []):
            k = tuple(entry[f] for f in key)
            rows[k] = {**rows.get(k, {}), **entry}
        result[field] = list(rows.values())
    derive(result)
    return result


# --- scopes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The topics (bus, address) and services a tab shows; their groups come with the topics."""

    topics: frozenset[tuple[str, str]]
    services: frozenset[str]

    def keeps(self, field: str, row: dict[str, Any]) -> bool:
        return field not in KEYS or self._keeps_key(field, [row[k] for k in KEYS[field]])

    def _keeps_key(self, field: str, key: list) -> bool:
        """Whether the row with this key (as KEYS spells it) is in view."""
        if field == "topics":
            return (key[0], key[1]) in self.topics
        if field == "groups":
            return (key[0], key[2]) in self.topics
        if field == "services":
            return key[0] in self.services
        return True

    def _rows(self, field: str, value: Any) -> Any:
        if field in ("topics", "groups", "services"):
            return [row for row in value or [] if self.keeps(field, row)]
        return value

    def snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        return {field: self._rows(field, value) for field, value in snapshot.items()}

    def delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        rows = {}
        for field, changes in delta.get("rows", {}).items():
            kept = {
                "upsert": [row for row in changes.get("upsert", []) if self.keeps(field, row)],
                "remove": [key for key in changes.get("remove", []) if self._keeps_key(field, key)],
            }
            kept = {name: items for name, items in kept.items() if items}
            if kept:
                rows[field] = kept
        return {**delta, "set": self.snapshot(delta.get("set", {})), "rows": rows}


def scope_of_graph(graph: dict[str, Any]) -> Scope:
    """The scope of a design graph as designer.graph.build_graph(domain) draws it."""
    topics, services = set(), set()
    for node in graph.get("nodes", []):
        if node.get("kind") == "topic":
            topics.add((node.get("bus"), node.get("address")))
        elif node.get("kind") == "service":
            services.add(node.get("label"))
    return Scope(frozenset(topics), frozenset(services))
