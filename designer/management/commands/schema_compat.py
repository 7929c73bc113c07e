"""``manage.py schema_compat OLD.json NEW.json``: may NEW be registered after OLD?

Prints ``{"compatible": ..., "changes": [{"type", "path", "reason"}]}`` and exits
0 when compatible, 1 when not, 2 when an input cannot be read or is not a schema.
``--against-traffic EVENT`` also replays NEW on the last N real events of that type
(the event store; ``--traffic-limit``, default EVENTHUB_TRAFFIC_CHECK_EVENTS) and adds
``"traffic": {"checked", "failing", "examples", "unread"}``; any failing event exits 1 too.
CommandError would exit 1, which a CI script could not tell from "incompatible",
so bad input leaves through SystemExit(2) instead.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from designer import registry
from designer.compat import MODES, POLICIES, SchemaError, check, validate_schema
from designer.models import EventType

EXIT_INCOMPATIBLE = 1
EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = "Check that NEW.json is a compatible next version of OLD.json (JSON Schema, Confluent rules)."
    # Comparing two files needs no database or app checks; CI gets its answer faster.
    requires_system_checks = ()

    def add_arguments(self, parser):
        parser.add_argument("old", metavar="OLD.json", help="the registered schema")
        parser.add_argument("new", metavar="NEW.json", help="the candidate schema")
        parser.add_argument("--mode", default="BACKWARD", type=str.upper, choices=MODES)
        parser.add_argument("--policy", default="STRICT", type=str.upper, choices=POLICIES)
        parser.add_argument(
            "--against-traffic", metavar="EVENT", help="also replay NEW on the last real events of this event type"
        )
        parser.add_argument("--traffic-limit", type=int, metavar="N", help="how many real events (default 1000)")

    def handle(self, *args, old, new, mode, policy, against_traffic=None, traffic_limit=None, **options):
        previous = self._read_schema(old)
        candidate = self._read_schema(new)
        result = check(candidate, [(1, previous)], mode=mode, policy=policy)
        changes = [{key: row[key] for key in ("type", "path", "reason")} for row in result.to_dict()["changes"]]
        answer = {"compatible": result.compatible, "changes": changes}
        if against_traffic:
            answer["traffic"] = self._traffic(against_traffic, candidate, traffic_limit)
        self.stdout.write(json.dumps(answer, indent=2))
        if not result.compatible or answer.get("traffic", {}).get("failing"):
            raise SystemExit(EXIT_INCOMPATIBLE)

    def _traffic(self, name: str, candidate, limit: int | None) -> dict:
        if limit is not None and limit < 0:
            self._bad_input("--traffic-limit must be 0 or more")
        event_type = EventType.objects.filter(name=name).first()
        if event_type is None:
            self._bad_input(f"no event type named {name!r} in the design")
        return registry.traffic_check(event_type, candidate, limit=limit) or {"checked": 0, "failing": 0}

    def _read_schema(self, filename):
        try:
            schema = json.loads(Path(filename).read_text(encoding="utf-8"))
            validate_schema(schema)
        except OSError as exc:
            self._bad_input(f"cannot read {filename}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            self._bad_input(f"{filename} is not UTF-8 text")
        except json.JSONDecodeError as exc:
            self._bad_input(f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        except SchemaError as exc:
            self._bad_input(f"{filename}: {exc}")
        return schema

    def _bad_input(self, message):
        self.stderr.write(f"schema_compat: {message}")
        raise SystemExit(EXIT_BAD_INPUT)
