"""Delta frames (monitor/deltas.py): what a socket gets after the first, whole snapshot.

Plain functions, no broker: a delta applied to the snapshot it was made from gives
the next snapshot, row for row; a row that only aged is not sent; a frame made from
another tick is refused; a domain's socket gets that domain's rows only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import deltas

T0 = 1_800_000_000.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def topic(name: str, end: int, moved_at: float, bus: str = "kafka") -> dict:
    return {"bus": bus, "name": name, "partitions": 3, "end_offset": end, "rate": None, "moved_at": moved_at}


def group(name: str, topic_name: str, lag: int, lag_since: float | None, moved_at: float) -> dict:
    return {
        "bus": "kafka",
        "group": name,
        "topic": topic_name,
        "lag": lag,
        "status": "OK",
        "lag_since": lag_since,
        "moved_at": moved_at,
    }


def snapshot(tick: int, now: float, topics: list[dict], groups: list[dict], **more) -> dict:
    snap = {
        "at": iso(now),
        "tick": tick,
        "tick_ms": 1.0,
        "buses": [{"kind": "kafka", "up": True, "at": iso(now)}],
        "topics": [dict(row) for row in topics],
        "groups": [dict(row) for row in groups],
        "services": [],
        "edges": [],
        "alerts": [],
        "drift": {"undesigned_topics": [], "undesigned_groups": [], "silent_edges": []},
        **more,
    }
    deltas.derive(snap)  # as the collector fills them: silent_s and lag_seconds at `at`
    return snap


def test_rows_that_only_aged_are_not_sent_and_the_client_derives_their_age():
    old = snapshot(1, T0, [topic("orders", 10, T0 - 60)], [group("billing", "orders", 4, T0 - 30, T0 - 90)])
    new = snapshot(2, T0 + 2, [topic("orders", 10, T0 - 60)], [group("billing", "orders", 4, T0 - 30, T0 - 90)])
    assert new["topics"][0]["silent_s"] == 62.0 and new["groups"][0]["lag_seconds"] == 32.0

    delta = deltas.diff(old, new)

    assert delta["rows"] == {}
    assert set(delta["set"]) == {"at", "buses"}  # tick_ms is the same here
    assert deltas.patch(old, delta) == new


def test_a_changed_row_is_sent_alone_as_its_key_and_changed_fields():
    rows = [topic(f"t{i}", 10, T0 - 60) for i in range(100)]
    old = snapshot(1, T0, rows, [])
    moved = [dict(row) for row in rows]
    moved[37] = topic("t37", 11, T0 + 2)
    new = snapshot(2, T0 + 2, moved, [])

    delta = deltas.diff(old, new)

    # Not the clock fields either: silent_s follows from moved_at.
    assert delta["rows"] == {
        "topics": {"upsert": [{"bus": "kafka", "name": "t37", "end_offset": 11, "moved_at": T0 + 2}]}
    }
    assert deltas.patch(old, delta)["topics"][37] == {**topic("t37", 11, T0 + 2), "silent_s": 0.0}
    whole = len(json.dumps(new))
    assert len(json.dumps(delta)) < whole / 10


def test_a_new_row_is_sent_whole():
    old = snapshot(1, T0, [], [])
    new = snapshot(2, T0 + 2, [topic("a", 1, T0 + 2)], [])

    delta = deltas.diff(old, new)

    assert delta["rows"] == {"topics": {"upsert": [topic("a", 1, T0 + 2)]}}
    assert deltas.patch(old, delta) == new


def test_rows_that_go_away_are_removed_by_key():
    old = snapshot(1, T0, [topic("a", 1, T0), topic("b", 1, T0)], [group("g", "b", 0, None, T0)])
    new = snapshot(2, T0 + 2, [topic("a", 1, T0)], [])

    delta = deltas.diff(old, new)

    assert delta["rows"] == {"topics": {"remove": [["kafka", "b"]]}, "groups": {"remove": [["kafka", "g", "b"]]}}
    assert deltas.patch(old, delta) == new


def test_a_delta_from_another_tick_is_refused():
    old = snapshot(5, T0, [topic("a", 1, T0)], [])
    new = snapshot(6, T0 + 2, [topic("a", 2, T0 + 2)], [])
    delta = deltas.diff(old, new)

    assert deltas.patch(snapshot(4, T0 - 2, [topic("a", 1, T0)], []), delta) is None
    assert deltas.patch(new, delta) is None  # already applied


def test_repeated_keys_send_the_whole_list():
    old = snapshot(1, T0, [topic("a", 1, T0)], [])
    new = snapshot(2, T0 + 2, [topic("a", 1, T0), topic("a", 2, T0)], [])

    delta = deltas.diff(old, new)

    assert delta["set"]["topics"] == new["topics"]
    assert deltas.patch(old, delta) == new


# --- any two snapshots --------------------------------------------------------------

names = st.sampled_from(["orders", "payments", "shipments", "refunds", "audit"])
anchors = st.one_of(st.none(), st.integers(-600, 0).map(lambda s: T0 + s))


@st.composite
def snapshots_at(draw, tick: int, now: float) -> dict:
    topic_names = draw(st.sets(names, max_size=5))
    topics = [topic(n, draw(st.integers(0, 3)), T0 + draw(st.integers(-600, 0))) for n in sorted(topic_names)]
    groups = [
        group(g, t, draw(st.integers(0, 3)), draw(anchors), T0 + draw(st.integers(-600, 0)))
        for g in draw(st.sets(st.sampled_from(["billing", "shipping", "audit"]), max_size=3))
        for t in sorted(topic_names)
        if draw(st.booleans())
    ]
    alerts = draw(st.sampled_from([[], [{"id": 1, "state": "firing"}]]))
    return snapshot(tick, now, topics, groups, alerts=alerts)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_patch_of_diff_gives_the_next_snapshot(data):
    old = data.draw(snapshots_at(1, T0))
    new = data.draw(snapshots_at(2, T0 + data.draw(st.integers(1, 30))))

    patched = deltas.patch(old, deltas.diff(old, new))

    def by_key(snap):
        return {f: sorted(json.dumps(row, sort_keys=True) for row in snap[f]) for f in deltas.KEYS}

    assert by_key(patched) == by_key(new)  # the same rows; the client sorts them itself
    assert {k: v for k, v in patched.items() if k not in deltas.KEYS} == {
        k: v for k, v in new.items() if k not in deltas.KEYS
    }


# --- scopes ----------------------------------------------------------------------------


def test_a_domain_scope_keeps_its_topics_their_groups_and_its_services():
    graph = {
        "nodes": [
            {"kind": "topic", "bus": "kafka", "address": "orders"},
            {"kind": "service", "label": "billing"},
            {"kind": "event", "label": "order.placed"},
        ]
    }
    scope = deltas.scope_of_graph(graph)
    old = snapshot(1, T0, [topic("orders", 1, T0), topic("audit", 1, T0)], [])
    new = snapshot(
        2,
        T0 + 2,
        [topic("orders", 2, T0 + 2), topic("audit", 2, T0 + 2)],
        [group("billing", "orders", 1, T0, T0), group("billing", "audit", 1, T0, T0)],
        services=[{"service": "billing", "up": True}, {"service": "audit", "up": True}],
    )

    whole = scope.snapshot(new)
    assert [t["name"] for t in whole["topics"]] == ["orders"]
    assert [g["topic"] for g in whole["groups"]] == ["orders"]
    assert [s["service"] for s in whole["services"]] == ["billing"]

    delta = scope.delta(deltas.diff(old, new))
    assert [t["name"] for t in delta["rows"]["topics"]["upsert"]] == ["orders"]
    assert [g["topic"] for g in delta["rows"]["groups"]["upsert"]] == ["orders"]
    assert [s["service"] for s in delta["rows"]["services"]["upsert"]] == ["billing"]
    gone = scope.delta(deltas.diff(new, snapshot(3, T0 + 4, [], [])))
    assert gone["rows"]["topics"] == {"remove": [["kafka", "orders"]]}
    assert gone["rows"]["groups"] == {"remove": [["kafka", "billing", "orders"]]}
