"""monitor/pages.py: which group rows a socket on a page of the groups table is sent."""

from __future__ import annotations

import pytest

from monitor import deltas, pages


def row(group: str, topic: str = "orders", status: str = "OK", lag: int | None = 0, bus: str = "kafka") -> dict:
    return {"bus": bus, "group": group, "topic": topic, "status": status, "lag": lag}


def test_the_table_order_is_worst_status_then_most_lag_then_names():
    rows = [
        row("b", lag=5),
        row("a", lag=5),
        row("z", status="WARN", lag=1),
        row("c", status="STALL", lag=0),
        row("d", status="surprise", lag=900),  # an unknown status ranks as NOTFOUND, last
        row("a", topic="audit", lag=5),
        row("e", lag=None),
    ]
    order = [(r["group"], r["topic"]) for r in pages.ordered(rows)]
    assert order == [("c", "orders"), ("z", "orders"), ("a", "audit"), ("a", "orders"), ("b", "orders")] + [
        ("e", "orders"),
        ("d", "orders"),
    ]


@pytest.mark.parametrize(
    ("asked", "parsed"),
    [
        ({}, pages.GroupsPage(0, "")),
        ({"page": 3, "filter": "  pay "}, pages.GroupsPage(3, "pay")),
        ({"page": 0, "filter": "x" * 500}, pages.GroupsPage(0, "x" * pages.MAX_FILTER)),
        ({"page": -1}, None),
        ({"page": True}, None),
        ({"page": "2"}, None),
        ({"page": 2.0}, None),
        ({"page": pages.MAX_PAGE + 1}, None),
        ({"filter": ["a"]}, None),
        ("page 2", None),
        (None, None),
    ],
)
def test_what_a_client_asks_for_is_checked(asked, parsed):
    assert pages.GroupsPage.parse(asked) == parsed


def test_a_page_holds_the_rows_of_its_filter_and_scope_and_says_how_many_match():
    rows = [row(f"pay-{n:03d}", topic="charges", lag=n) for n in range(450)]
    rows += [row(f"ship-{n:03d}", topic="parcels", lag=n) for n in range(50)]
    rows += [row("audit", topic="PAYMENTS-log", lag=1000)]
    ordered = pages.ordered(rows)

    shown, field = pages.GroupsPage(1, "PAY").rows(ordered, None)
    # "pay" matches the 450 pay-* groups and a topic's name, whatever the case.
    assert field == {"page": 1, "pages": 2, "size": pages.PAGE_SIZE, "total": 451, "filter": "PAY"}
    assert [r["group"] for r in shown[:2]] == ["pay-150", "pay-149"]
    assert len(shown) == 151

    scope = deltas.Scope(frozenset({("kafka", "parcels")}), frozenset())
    shown, field = pages.GroupsPage(0).rows(ordered, scope)
    assert {r["topic"] for r in shown} == {"parcels"} and field["total"] == 50

    # A page past the last is the last; no match is one empty page.
    shown, field = pages.GroupsPage(9).rows(ordered, None)
    assert field["page"] == 1 and len(shown) == 501 - pages.PAGE_SIZE
    shown, field = pages.GroupsPage(4, "nothing").rows(ordered, None)
    assert shown == [] and field == {"page": 0, "pages": 1, "size": pages.PAGE_SIZE, "total": 0, "filter": "nothing"}


def test_sockets_shown_the_same_view_share_the_next_frame_and_others_get_their_own():
    def snapshot(tick: int, lag: int) -> dict:
        groups = [row(f"g{n:03d}", lag=lag if n == 350 else 0) for n in range(400)]
        return {"tick": tick, "at": "2026-12-07T10:00:00+00:00", "topics": [], "groups": groups}

    pager = pages.Pager()
    pager.hold(snapshot(1, 0))
    text, shown = pager.frame(None, pages.GroupsPage(1), None)
    assert text.startswith('{"type":"snapshot"') and len(shown["groups"]) == 100
    assert pager.frame(None, pages.GroupsPage(1), None)[0] is text

    assert pager.advance(
        {"type": "delta", "tick": 2, "base": 1, "set": {}, "rows": {"groups": {"upsert": [row("g350", lag=9)]}}}
    )
    moved, now = pager.frame(shown, pages.GroupsPage(1), None)
    # g350 left page 1 for the top of page 0, which pushed g299 down to page 1.
    assert '"delta"' in moved and '"remove":[["kafka","g350","orders"]]' in moved and '"g299"' in moved
    assert pager.frame(shown, pages.GroupsPage(1), None)[0] is moved
    assert pager.frame(None, pages.GroupsPage(1), None)[0].startswith('{"type":"snapshot"')
    assert [r["group"] for r in now["groups"]][:2] == ["g299", "g300"] and len(now["groups"]) == 100

    # A delta made from another snapshot does not apply; the same tick again changes nothing.
    assert not pager.advance({"type": "delta", "tick": 9, "base": 7, "set": {}, "rows": {}})
    pager.hold(snapshot(2, 50))
    assert pager.frame(shown, pages.GroupsPage(1), None)[0] is moved
