"""Our engine against Confluent's own JSON Schema diff cases: every case must agree.

The cases live outside the repository (``../shared/conformance/...``, Confluent
Community License) and are read in place, never copied. Each case is a BACKWARD
check of ``update_schema`` against ``original_schema``; see the README there.
The engine agrees with Confluent on all 263 cases (STRICT and LENIENT verdicts
and the exact change lists), and these tests hold it there: one case that stops
agreeing fails the run, and the failure lists every case that disagrees.
Without the cases the tests skip; under CI they fail (tests/requirements.py).
"""

import json
import re
from pathlib import Path

import pytest

from designer.compat import diff, is_compatible
from tests.requirements import require

CASES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "confluent-json-schema-diff"
# File -> number of cases, as listed in the README; a mismatch means the data changed.
CASE_FILES = {
    "diff-schema-examples.json": 104,
    "diff-combined-schema-examples.json": 28,
    "diff-schema-examples-2020-12.json": 113,
    "diff-combined-schema-examples-2020-12.json": 18,
}
ASPECTS = {"strict": "STRICT verdict", "lenient": "LENIENT verdict", "changes": "change list"}


def read_lenient_json(path: Path):
    # One file has a trailing comma (Confluent reads it with org.json); dropping
    # commas right before } or ] is the only rewrite it needs.
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", path.read_text(encoding="utf-8")))


def require_cases() -> None:
    require(CASES_DIR.is_dir(), f"Confluent conformance cases not found at {CASES_DIR}")


@pytest.fixture(scope="module")
def outcomes():
    """One row per case: (ours, Confluent's) for each aspect."""
    require_cases()
    rows = []
    for name, count in CASE_FILES.items():
        cases = read_lenient_json(CASES_DIR / name)
        assert len(cases) == count, f"{name}: {len(cases)} cases, README says {count}"
        for index, case in enumerate(cases):
            changes = diff(case["original_schema"], case["update_schema"])
            rows.append(
                {
                    "case": f"{name}[{index}] {case['description']}",
                    "strict": (is_compatible(changes, "STRICT"), case["compatible"]),
                    "lenient": (
                        is_compatible(changes, "LENIENT"),
                        case.get("compatible_lenient", case["compatible"]),
                    ),
                    "changes": ([str(c) for c in changes], case["changes"]),
                }
            )
    return rows


def test_all_cases_are_read(outcomes):
    assert len(outcomes) == sum(CASE_FILES.values()) == 263


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_every_case_agrees_with_confluent(outcomes, aspect):
    """Same verdicts under both policies; same difference types, paths and order."""
    disagreeing = [
        f"  {row['case']}\n    ours:       {row[aspect][0]!r}\n    Confluent:  {row[aspect][1]!r}"
        for row in outcomes
        if row[aspect][0] != row[aspect][1]
    ]
    if disagreeing:
        pytest.fail(
            f"{len(disagreeing)} of {len(outcomes)} cases disagree with Confluent on the {ASPECTS[aspect]}:\n"
            + "\n".join(disagreeing),
            pytrace=False,
        )


def test_recursive_schema_against_itself_has_no_differences():
    require_cases()
    schema = read_lenient_json(CASES_DIR / "recursive-schema.json")
    assert diff(schema, schema) == []
