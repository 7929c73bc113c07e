"""compat_check_ms: a BACKWARD check of a 50-field schema pair.

compat_redos_cli_ms and compat_redos_api_ms: the hostile case of a backtracking
pattern. The registered version has a 28-character property name; the candidate's
`patternProperties` hold ^(a|a)*b$, which the check matches against that name
(about 2^28 steps on a backtracking engine: 18 s of CPU with Python's re). Timed
through `manage.py schema_compat` (call_command: the command without the
interpreter's start-up) and through POST /api/v1/registry/events/{name}/compatibility
(Django's test client, as a logged-in user).
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path

from bench.app import App
from bench.common import Results, median_ms
from designer import compat

LONG_NAME = "a" * 28
REGISTERED = {"type": "object", "properties": {LONG_NAME: {"type": "string"}}}
BACKTRACKING = {"type": "object", "patternProperties": {"^(a|a)*b$": {"type": "string"}}}
RUNS = 20


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


def run(results: Results, app: App) -> None:
    old, new = _schema(50, False), _schema(50, True)
    samples = []
    for _ in range(200):
        started = time.perf_counter()
        compat.check(new, [(1, old)], mode="BACKWARD")
        samples.append(time.perf_counter() - started)
    results.add("compat_check_ms", median_ms(samples), "ms", "median of 200, 50 fields + 1 added")
    results.add("compat_redos_cli_ms", _redos_cli_ms(), "ms", f"median of {RUNS}, ^(a|a)*b$ vs 28 a's")
    results.add("compat_redos_api_ms", _redos_api_ms(app), "ms", f"median of {RUNS}, ^(a|a)*b$ vs 28 a's")


def _redos_cli_ms() -> float:
    from django.core.management import call_command

    samples = []
    with tempfile.TemporaryDirectory(prefix="eventhub-bench-compat-") as folder:
        old, new = Path(folder) / "old.json", Path(folder) / "new.json"
        old.write_text(json.dumps(REGISTERED))
        new.write_text(json.dumps(BACKTRACKING))
        for _ in range(RUNS):
            out = io.StringIO()
            started = time.perf_counter()
            try:
                call_command("schema_compat", str(old), str(new), stdout=out)
            except SystemExit as exit:
                assert exit.code == 1, f"schema_compat exited {exit.code}"
            samples.append(time.perf_counter() - started)
            assert json.loads(out.getvalue())["compatible"] is False
    return median_ms(samples)


def _redos_api_ms(app: App) -> float:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from designer import registry
    from designer.models import EventType

    event, _ = EventType.objects.get_or_create(name="bench.backtracking")
    registry.register_version(event, REGISTERED)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=app.user_id))
    url = f"/api/v1/registry/events/{event.name}/compatibility"
    body = json.dumps({"schema": BACKTRACKING})
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.post(url, body, content_type="application/json")
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200 and response.json()["compatible"] is False, response.content[:300]
    return median_ms(samples)
