"""compat_check_ms: a BACKWARD check of a 50-field schema pair."""

from __future__ import annotations

import time

from bench.common import Results, median_ms
from designer import compat


def _schema(fields: int, extra: bool) -> dict:
    properties = {}
    for i in range(fields):
        kind = ("string", "integer", "number", "boolean")[i % 4]
        properties[f"field_{i}"] = {"type": kind, "description": f"Field {i}"}
        if kind == "string":
            properties[f"field_{i}"]["maxLength"] = 64 + (8 if extra else 0)
    if extra:
        properties["added"] = {"type": "string"}
    return {
        "type": "object",
        "properties": properties,
        "required": [f"field_{i}" for i in range(0, fields, 3)],
        "additionalProperties": False,
    }


def run(results: Results) -> None:
    old, new = _schema(50, False), _schema(50, True)
    samples = []
    for _ in range(200):
        started = time.perf_counter()
        compat.check(new, [(1, old)], mode="BACKWARD")
        samples.append(time.perf_counter() - started)
    results.add("compat_check_ms", median_ms(samples), "ms", "median of 200, 50 fields + 1 added")
