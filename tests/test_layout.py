"""The shape of the code that docs/architecture.md promises, checked.

Apps import downwards only: eventhub <- designer <- deadletters <- eventstore <- monitor;
eventhub/urls.py and eventhub/routing.py put the apps together
and are the only exception. The bus adapters and the SDK import no Django. And a newcomer
who opens the file named in the architecture page for a task finds the code doing it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What each app may import, besides itself.
ALLOWED = {
    "eventhub": set(),
    "designer": {"eventhub"},
    "monitor": {"eventhub", "designer", "eventstore"},
    "deadletters": {"eventhub", "designer"},
    "eventstore": {"eventhub", "designer", "deadletters"},
}
WIRING = {"eventhub/urls.py", "eventhub/routing.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _sources(folder: str) -> list[Path]:
    return [path for path in sorted((ROOT / folder).rglob("*.py")) if "migrations" not in path.parts]


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_apps_import_downwards_only(app):
    wrong = []
    for path in _sources(app):
        name = str(path.relative_to(ROOT))
        if name in WIRING:
            continue
        for module in _imports(path):
            top = module.split(".")[0]
            if top in ALLOWED and top != app and top not in ALLOWED[app]:
                wrong.append(f"{name} imports {module}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("folder", ["eventhub/bus", "eventhub/sdk"])
def test_the_bus_and_the_sdk_need_no_django(folder):
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _sources(folder)
        for module in _imports(path)
        if module.split(".")[0] in {"django", "channels", "designer", "monitor", "deadletters", "eventstore"}
    ]
    assert not wrong, "\n".join(wrong)


# A task, the file docs/architecture.md sends a newcomer to, and what that file defines for it.
FIRST_GUESS = [
    ("retry a dead letter", "deadletters/actions.py", "def retry("),
    ("lag of a consumer group", "monitor/collector.py", "def _group_row("),
    ("register a schema version", "designer/registry.py", "def register_version("),
    ("export AsyncAPI", "designer/asyncapi_export.py", "def build("),
    ("follow one transaction", "eventstore/traces.py", "def find_trace("),
    ("look at the messages on a topic", "eventstore/browse.py", "def browse("),
    ("a schema from traffic", "eventstore/schema_discovery.py", "def approve("),
    ("who really talks to whom", "monitor/lineage.py", "def observed("),
]


@pytest.mark.parametrize(("task", "path", "definition"), FIRST_GUESS, ids=[task for task, _, _ in FIRST_GUESS])
def test_the_architecture_page_sends_a_newcomer_to_the_right_file(task, path, definition):
    page = (ROOT / "docs" / "architecture.md").read_text()
    row = re.search(rf"^\| {re.escape(task)} \| `([^`]+)`", page, re.MULTILINE)
    assert row, f"docs/architecture.md has no row for {task!r}"
    assert row.group(1) == path
    assert definition in (ROOT / path).read_text()
