"""Our engine against Confluent's own JSON Schema diff cases.

The cases live outside the repository (``../shared/conformance/...``, Confluent
Community License) and are read in place, never copied. Each case is a BACKWARD
check of ``update_schema`` against ``original_schema``; see the README there.
"""

import json
import re
from pathlib import Path

import pytest

from designer.compat import diff, is_compatible

CASES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "confluent-json-schema-diff"
# File -> number of cases, as listed in the README; a mismatch means the data changed.
CASE_FILES = {
    "diff-schema-examples.json": 104,
    "diff-combined-schema-examples.json": 28,
    "diff-schema-examples-2020-12.json": 113,
    "diff-combined-schema-examples-2020-12.json": 18,
}
REQUIRED_AGREEMENT = 0.98


def read_lenient_json(path: Path):
    # One file has a trailing comma (Confluent reads it with org.json); dropping
    # commas right before } or ] is the only rewrite it needs.
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def outcomes():
    """One row per case: expected and actual verdicts and change lists."""
    if not CASES_DIR.is_dir():
        pytest.skip(f"Confluent conformance cases not found at {CASES_DIR}")
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


def agreement(outcomes, key):
    disagreeing = [row["case"] for row in outcomes if row[key][0] != row[key][1]]
    return 1 - len(disagreeing) / len(outcomes), disagreeing


def test_all_cases_are_read(outcomes):
    assert len(outcomes) == sum(CASE_FILES.values()) == 263


@pytest.mark.parametrize("policy", ["strict", "lenient"])
def test_verdicts_agree_with_confluent(outcomes, policy):
    rate, disagreeing = agreement(outcomes, policy)
    assert rate >= REQUIRED_AGREEMENT, f"{policy} verdicts agree on {rate:.1%}; disagreeing: {disagreeing}"


def test_change_lists_agree_with_confluent(outcomes, capsys):
    """Same difference types, paths and order. Reported always; guarded loosely."""
    rates = {key: agreement(outcomes, key) for key in ("strict", "lenient", "changes")}
    with capsys.disabled():
        print(
            f"\nConfluent conformance over {len(outcomes)} cases: "
            f"STRICT verdicts {rates['strict'][0]:.1%}, LENIENT verdicts {rates['lenient'][0]:.1%}, "
            f"exact change lists {rates['changes'][0]:.1%}"
        )
        for case in rates["changes"][1]:
            print(f"  change list differs: {case}")
    assert rates["changes"][0] >= 0.95, rates["changes"][1]


def test_recursive_schema_against_itself_has_no_differences():
    if not CASES_DIR.is_dir():
        pytest.skip(f"Confluent conformance cases not found at {CASES_DIR}")
    schema = read_lenient_json(CASES_DIR / "recursive-schema.json")
    assert diff(schema, schema) == []
