"""python -m bench: run every benchmark, print a table, write var/bench.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")


def main() -> None:
    from bench import compat, sdk_publish
    from bench.common import Results, services

    results = Results()
    print(f"  {'figure':<34} {'value':>12} {'unit':<10} detail")
    with services() as (bootstrap, redis_url):
        import django

        django.setup()
        sdk_publish.run(results, bootstrap, redis_url)
        compat.run(results)
        try:
            from bench import django_side
        except ImportError:
            django_side = None
        if django_side is not None:
            django_side.run(results)
    out = ROOT / "var" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results.as_dict(), indent=2) + "\n")
    print(f"\n  wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
