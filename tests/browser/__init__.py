"""Browser tests: real Chromium against a live Daphne (harness in conftest.py).

Small helpers shared by browser tests live here; the fixtures are in conftest.py.
"""

from __future__ import annotations

import json
import subprocess


def json_from(result: subprocess.CompletedProcess) -> object:
    """The last line a `live_app.shell()` printed, parsed as JSON.

    live_app.shell("import json; from designer.models import Service; print(json.dumps(Service.objects.count()))")
    """
    return json.loads(result.stdout.strip().splitlines()[-1])
