"""Design fields that drive privileged bus actions, and who may set them.

Two design fields make EventHub act on the bus with an operator's power:

- a topic's dead-letter topic: the dead-letter ingester copies every record of it,
  payloads included, into the dead-letter table;
- a dead-lettering consumer of a Redis stream (a "poison rule"): the ingester acks
  that group's entries once they were delivered `max_attempts` times and moves them
  to `<stream>:dlq`.

So a Designer (who changes the model of the system) cannot set either: only an
Operator or Admin can. And a dead-letter topic must look like one, whoever sets it:
its name matches EVENTHUB_DLQ_PATTERNS, or it is the name EventHub itself gives
(`<address>.dlq`, `<stream>:dlq`), so no one points the ingester at a live topic.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.conf import settings

from eventhub.roles import can_operate

ONLY_OPERATORS_DLQ = "Only an Operator or Admin may change a topic's dead-letter topic."
ONLY_OPERATORS_POISON = (
    "Only an Operator or Admin may make a Redis consumer dead-letter (a poison rule acks "
    "its group's entries after max_attempts deliveries)."
)


def default_dead_letter_topic(bus: str, address: str) -> str:
    return f"{address}:dlq" if bus == "redis" else f"{address}.dlq"


def is_allowed_dead_letter_topic(name: str, bus: str, address: str) -> bool:
    """A dead-letter topic by name (EVENTHUB_DLQ_PATTERNS) or the one EventHub names itself."""
    if name == default_dead_letter_topic(bus, address):
        return True
    return any(fnmatchcase(name, pattern) for pattern in settings.EVENTHUB_DLQ_PATTERNS)


def dead_letter_topic_errors(user, *, bus: str, address: str, wanted: str, current: str | None) -> list[str]:
    """Why `user` may not give the topic at (bus, address) the dead-letter topic `wanted`.

    `current` is the topic's dead-letter topic today (None for a new topic). An empty
    `wanted` means the default, which anyone may choose.
    """
    if not wanted or wanted == (current or default_dead_letter_topic(bus, address)):
        return []
    errors = []
    if not may_set_privileged(user):
        errors.append(ONLY_OPERATORS_DLQ)
    if not is_allowed_dead_letter_topic(wanted, bus, address):
        patterns = ", ".join(settings.EVENTHUB_DLQ_PATTERNS)
        errors.append(
            f"'{wanted}' is not a dead-letter topic: its name must match one of {patterns} "
            f"(EVENTHUB_DLQ_PATTERNS) or be '{default_dead_letter_topic(bus, address)}'."
        )
    return errors


def poison_rule_errors(user, *, bus: str, dead_letter: bool, rule: tuple, current_rule: tuple | None) -> list[str]:
    """Why `user` may not make this consumer a poison rule (or change one).

    A poison rule is a dead-lettering consumer of a Redis stream. `rule` is what it
    would act on, (event type, group, max_attempts); `current_rule` the same of the
    consumer as stored, None when it is new or is no rule today. Kafka consumers are
    no rule: anyone may.
    """
    if bus != "redis" or not dead_letter or rule == current_rule:
        return []
    return [] if may_set_privileged(user) else [ONLY_OPERATORS_POISON]


def may_set_privileged(user) -> bool:
    # No user: the command line (manage.py asyncapi_import, seed_demo), run by whoever runs the server.
    return user is None or can_operate(user)
