"""designer.mermaid: plain data in, Mermaid text out; no database.

The browser suite (tests/browser/test_designer.py) feeds the same nasty names
to the real mermaid.js; here the text itself is pinned.
"""

from __future__ import annotations

import html
import re

import pytest

from designer.mermaid import (
    Design,
    EventData,
    FlowData,
    ServiceData,
    StepData,
    TopicData,
    design_chart,
    escape_label,
    flow_chart,
)

# --------------------------------------------------------------------------- escaping
ESCAPES = [
    # (name, label text written into the chart)
    ("orders", "orders"),
    ('say "hi"', "say #quot;hi#quot;"),
    ("a & b", "a #amp; b"),
    ("<img src=x onerror=alert(1)>", "#lt;img src=x onerror=alert(1)#gt;"),
    ("#1 #quot;", "#35;1 #35;quot#59;"),
    ("100%", "100#37;"),
    ("%%{init: {}}%%", "#37;#37;{init#58; {}}#37;#37;"),
    ("semi; colon:", "semi#59; colon#58;"),
    ("`md`", "#96;md#96;"),
    ("A --> B | C", "A --#gt; B | C"),
    ("[x] (y) {z}", "[x] (y) {z}"),
    ("line one\nline two", "line one<br>line two"),
    ("windows\r\nmac\rend", "windows<br>mac<br>end"),
    ("tab\there\x00", "tab here "),
    ("Zürich 中文 🚀", "Zürich 中文 🚀"),
    ("ﬂ°°lt¶ß", "#64258;°°lt#182;ß"),  # cannot forge Mermaid's internal entity markers
    ("", "(no name)"),
    ("   ", "(no name)"),
    (None, "(no name)"),
]


@pytest.mark.parametrize("name,expected", ESCAPES)
def test_escape_label(name, expected):
    assert escape_label(name) == expected


NASTY = [
    'say "hi"',
    "[brackets] (parens) {braces}",
    "A --> B",
    "pipe | bar",
    "hash #1 #quot; #35;",
    "semi; colon: end",
    "line one\nline two",
    "Zürich 中文 🚀 ﬂ°°x¶ß",
    "<img src=x onerror=alert(1)>",
    "100% %%{init: {'securityLevel':'loose'}}%%",
    "a & b <b>bold</b> &amp;",
    "`backtick` **bold**",
    "end",
    "subgraph",
    "click n1 call alert()",
    "style n1 fill:#f00;",
    "classDef x fill:#f00",
    'n1["x"]',
    'x"]:::service\n  n1 --> n2\n%%',
]


def _decode(label: str) -> str:
    """What Mermaid displays for a label: entity codes and line breaks resolved."""
    text = label.replace("<br>", "\n")
    return html.unescape(
        re.sub(r"#(\w+);", lambda m: f"&#{m.group(1)};" if m.group(1).isdigit() else f"&{m.group(1)};", text)
    )


@pytest.mark.parametrize("name", NASTY)
def test_labels_round_trip_to_the_exact_name(name):
    assert _decode(escape_label(name)) == name


# Every statement the writer may produce. A name that changed a chart's structure
# would show up as a line outside this grammar.
LABEL = r'"(?:[^"#%&<>;:`\n]|#\w+;|<br>)+"'
STATEMENTS = [
    r"flowchart LR",
    rf"  (?:  )?n\d+(?:\(\[{LABEL}\]\)|\({LABEL}\)|\{{\{{{LABEL}\}}\}}|\[/{LABEL}/\]|\[\({LABEL}\)\]|\[{LABEL}\]):::\w+",
    r"  n\d+ (?:-->|-\.->) n\d+",
    rf"  subgraph n\d+\[{LABEL}\]",
    r"  end",
    r"  class n\d+ \w+",
    r"  classDef \w+ [a-z:#0-9,\- ]+",
]
GRAMMAR = re.compile("|".join(f"(?:{s})" for s in STATEMENTS))


def _assert_grammar(text: str) -> None:
    assert text.endswith("\n")
    for line in text.splitlines():
        assert GRAMMAR.fullmatch(line), f"unexpected statement: {line!r}"


@pytest.mark.parametrize("name", NASTY)
def test_any_name_keeps_the_structure_of_the_chart(name):
    design = Design(
        services=[ServiceData(1, name, "d"), ServiceData(2, "reader")],
        topics=[TopicData(1, name, "kafka", "d"), TopicData(2, name, "redis", "d")],
        events=[EventData(1, name, "event", 1, "d"), EventData(2, "x.y", "command")],
        producers=[(1, 1), (1, 2)],
        consumers=[(2, 1)],
    )
    text = design_chart(design)
    _assert_grammar(text)
    assert text.count(" --> ") == 3
    flow = FlowData(name, name, [StepData(1, name, None, name, name, name, "kafka", name, name)])
    text = flow_chart(flow)
    _assert_grammar(text)
    assert text.count(" --> ") == 5


# --------------------------------------------------------------------------- the design
SHOP = Design(
    services=[
        ServiceData(1, "orders", "sales"),
        ServiceData(2, "payments", "sales"),
        ServiceData(3, "mailer", "customer"),
        ServiceData(4, "lonely", "ops"),
    ],
    topics=[
        TopicData(1, "orders", "kafka", "sales"),
        TopicData(2, "mail", "redis", "customer"),
        TopicData(3, "unused", "kafka", "sales"),
    ],
    events=[
        EventData(1, "order.placed", "event", 1, "sales"),
        EventData(2, "mail.send", "command", 2, "customer"),
        EventData(3, "order.audited", "event", None, "sales"),
    ],
    producers=[(1, 1), (2, 2), (1, 3)],
    consumers=[(2, 1), (3, 2)],
)


def test_whole_system():
    assert design_chart(SHOP) == (
        "flowchart LR\n"
        '  n1("orders"):::service\n'
        '  n2("payments"):::service\n'
        '  n3("mailer"):::service\n'
        '  n4("lonely"):::service\n'
        '  n5{{"order.audited"}}:::event\n'
        '  subgraph n6["orders · kafka"]\n'
        '    n7{{"order.placed"}}:::event\n'
        "  end\n"
        "  class n6 topic\n"
        '  subgraph n8["mail · redis"]\n'
        '    n9{{"mail.send"}}:::command\n'
        "  end\n"
        "  class n8 redis\n"
        '  n10[/"unused · kafka"/]:::topic\n'
        "  n1 --> n7\n"
        "  n2 --> n9\n"
        "  n1 --> n5\n"
        "  n7 --> n2\n"
        "  n9 --> n3\n"
        "  classDef command fill:#f3e8fd,stroke:#7b3fc4,color:#1c2430\n"
        "  classDef event fill:#fdf0e6,stroke:#c05621,color:#1c2430\n"
        "  classDef redis fill:#fde8e8,stroke:#c62828,color:#1c2430\n"
        "  classDef service fill:#e8f0fe,stroke:#2859c5,color:#1c2430\n"
        "  classDef topic fill:#e6f6ec,stroke:#1a7f37,color:#1c2430\n"
    )


def _labels(text: str) -> dict[str, str]:
    """{label: css class} of the nodes in a chart."""
    return {m.group(1): m.group(2) for m in re.finditer(r'n\d+\W+"([^"]+)"\W+:::(\w+)', text)}


SCOPES = [
    # (kwargs, expected {label: class} of nodes, expected number of edges)
    (
        {"domain": "sales"},
        {
            "orders": "service",
            "payments": "service",
            "order.placed": "event",
            "order.audited": "event",
            "unused · kafka": "topic",
            # payments (sales) sends mail.send: the command and its reader come along
            "mail.send": "command",
            "mailer": "external",
        },
        5,
    ),
    (
        {"domain": "customer"},
        {"payments": "external", "mailer": "service", "mail.send": "command"},
        2,
    ),
    ({"domain": "ops"}, {"lonely": "service"}, 0),
    ({"domain": "nowhere"}, {}, 0),
    (
        {"service_id": 2},
        {
            "orders": "external",
            "payments": "service",
            "mailer": "external",
            "order.placed": "event",
            "mail.send": "command",
        },
        4,
    ),
    ({"service_id": 4}, {"lonely": "service"}, 0),
]


@pytest.mark.parametrize("kwargs,nodes,edges", SCOPES)
def test_scopes(kwargs, nodes, edges):
    text = design_chart(SHOP, **kwargs)
    _assert_grammar(text)
    assert _labels(text) == nodes
    assert text.count(" --> ") == edges


def test_empty_design():
    assert design_chart(Design()) == "flowchart LR\n"


# --------------------------------------------------------------------------- flows
def test_flow_shape_and_branches():
    """Checkout: payments' step follows the first; two steps branch off orders."""
    flow = FlowData(
        "Checkout",
        "Customer clicks Pay",
        [
            StepData(1, "order.placed", None, "orders", "payments", "orders", "kafka", "Authorise", "payments DB"),
            StepData(2, "payment.authorized", 1, "payments", "orders", "payments", "kafka", "Confirm", "orders DB"),
            StepData(3, "order.confirmed", 2, "orders", "shipping", "orders", "kafka", "", ""),
            StepData(4, "mail.requested", 2, "orders", "mailer", "mail", "redis", "", "outbox"),
        ],
    )
    assert flow_chart(flow) == (
        "flowchart LR\n"
        '  n1(["Customer clicks Pay"]):::trigger\n'
        '  n2("orders"):::service\n'
        '  n3[/"order.placed<br>orders · kafka"/]:::bus\n'
        '  n4("payments"):::service\n'
        '  n5["Authorise"]:::logic\n'
        '  n6[("payments DB")]:::store\n'
        '  n7[/"payment.authorized<br>payments · kafka"/]:::bus\n'
        '  n8("orders"):::service\n'
        '  n9["Confirm"]:::logic\n'
        '  n10[("orders DB")]:::store\n'
        '  n11[/"order.confirmed<br>orders · kafka"/]:::bus\n'
        '  n12("shipping"):::service\n'
        '  n13[/"mail.requested<br>mail · redis"/]:::redis\n'
        '  n14("mailer"):::service\n'
        '  n15[("outbox")]:::store\n'
        "  n1 --> n2\n"
        "  n2 --> n3\n"
        "  n3 --> n4\n"
        "  n4 --> n5\n"
        "  n5 --> n6\n"
        "  n4 --> n7\n"
        "  n7 --> n8\n"
        "  n8 --> n9\n"
        "  n9 --> n10\n"
        "  n8 --> n11\n"
        "  n11 --> n12\n"
        "  n8 --> n13\n"
        "  n13 --> n14\n"
        "  n14 --> n15\n"
        "  classDef bus fill:#e6f6ec,stroke:#1a7f37,color:#1c2430\n"
        "  classDef logic fill:#ffffff,stroke:#5b6675,color:#1c2430\n"
        "  classDef redis fill:#fde8e8,stroke:#c62828,color:#1c2430\n"
        "  classDef service fill:#e8f0fe,stroke:#2859c5,color:#1c2430\n"
        "  classDef store fill:#eef1f5,stroke:#3c4656,color:#1c2430\n"
        "  classDef trigger fill:#fff4d6,stroke:#b7791f,color:#1c2430\n"
    )


def _edges(text: str) -> list[tuple[str, str]]:
    """The chart's edges as (source label, target label)."""
    label = {m.group(1): m.group(2) for m in re.finditer(r'^\s+(n\d+)\W+"([^"]+)"', text, re.M)}
    return [(label[a], label[b]) for a, b in re.findall(r"^\s+(n\d+) --> (n\d+)$", text, re.M)]


FLOWS = [
    # (steps, expected edges by label)
    (
        # pub/sub fan-out: one event to two consumers is one bus node
        [
            StepData(1, "refund.requested", None, "orders", "payments", logic="Refund"),
            StepData(2, "payment.refunded", 1, "payments", "orders"),
            StepData(3, "payment.refunded", 1, "payments", "mailer"),
        ],
        [
            ("go", "orders"),
            ("orders", "refund.requested"),
            ("refund.requested", "payments"),
            ("payments", "Refund"),
            ("payments", "payment.refunded"),
            ("payment.refunded", "orders"),
            ("payment.refunded", "mailer"),
        ],
    ),
    (
        # the next producer is not the previous consumer: it follows the previous step's last node
        [
            StepData(1, "a.b", None, "one", "two", store="db"),
            StepData(2, "c.d", 1, "three", "four"),
        ],
        [
            ("go", "one"),
            ("one", "a.b"),
            ("a.b", "two"),
            ("two", "db"),
            ("db", "three"),
            ("three", "c.d"),
            ("c.d", "four"),
        ],
    ),
    (
        # no producer, no consumer: the event hangs off the trigger and ends there
        [StepData(1, "tick.happened")],
        [("go", "tick.happened")],
    ),
    (
        # two roots with the same producer share its node
        [StepData(1, "a.b", None, "one"), StepData(2, "c.d", None, "one")],
        [("go", "one"), ("one", "a.b"), ("one", "c.d")],
    ),
    (
        # steps listed before the step they follow, an unknown `after`, and a cycle all still draw
        [
            StepData(2, "c.d", 1, "two", "three"),
            StepData(1, "a.b", None, "one", "two"),
            StepData(3, "e.f", 99, "four"),
            StepData(4, "g.h", 5),
            StepData(5, "i.j", 4),
        ],
        [
            ("go", "one"),
            ("one", "a.b"),
            ("a.b", "two"),
            ("go", "four"),
            ("four", "e.f"),
            ("go", "g.h"),
            ("two", "c.d"),
            ("c.d", "three"),
            ("g.h", "i.j"),
        ],
    ),
]


@pytest.mark.parametrize("steps,edges", FLOWS)
def test_flow_branching(steps, edges):
    text = flow_chart(FlowData("f", "go", steps))
    _assert_grammar(text)
    assert sorted(_edges(text)) == sorted(edges)
