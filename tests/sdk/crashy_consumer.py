"""A consumer process for the kill test (tests/sdk/test_kill.py).

    python tests/sdk/crashy_consumer.py KIND TOPIC GROUP OUT_FILE [--hang-after N]

Consumes TOPIC as GROUP with the SDK and appends the `ce_id` of every event it
handles to OUT_FILE, one per line, with one O_APPEND write each (a SIGKILL
cannot leave half a line). Events whose payload says `"fail": true` always
raise, so they end up dead-lettered. With --hang-after N the handler blocks
forever once this process has handled N events: the test then SIGKILLs it at a
known point, mid-batch, with handled-but-uncommitted records behind it.
SIGTERM stops it cleanly. The bus address comes from KAFKA_BOOTSTRAP_SERVERS
or REDIS_URL.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eventhub.bus import open_bus
from eventhub.sdk import Consumer, Event

# Short timeouts so a killed member is noticed quickly: Redis claims after 0.5 s; on
# Kafka the adapter's session is the shortest the broker allows (2 s Tansu, 6 s Kafka).
BUS_OPTIONS = {
    "kafka": lambda: {"bootstrap_servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"]},
    "redis": lambda: {"url": os.environ["REDIS_URL"], "claim_idle_ms": 500},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(BUS_OPTIONS))
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("out_file")
    parser.add_argument("--hang-after", type=int, default=0)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = os.open(args.out_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    handled = 0

    bus = open_bus(args.kind, **BUS_OPTIONS[args.kind]())
    consumer = Consumer(
        bus,
        "crashy",
        args.group,
        [args.topic],
        # More than the kills a test makes (5) plus one: on Redis, an entry in the batch
        # of a killed consumer comes back with its delivery count up by one, and under
        # load a restarted consumer can claim such a batch late and be killed inside it
        # too. At max_attempts deliveries the SDK calls the entry poison and dead-letters
        # it (RedeliveredTooOften), which here would be a good event lost to the test.
        max_attempts=7,
        backoff_s=0.01,
        backoff_max_s=0.01,  # the failing events' retries stay short: 6 x 10 ms
        heartbeat_interval_s=None,
    )

    @consumer.handler("order.placed")
    def record(event: Event) -> None:
        nonlocal handled
        if event.payload.get("fail"):
            raise RuntimeError("this order always fails")
        if args.hang_after and handled >= args.hang_after:
            threading.Event().wait()  # hang here until SIGKILL
        os.write(out, f"{event.id}\n".encode())
        handled += 1

    try:
        consumer.run(stop)
    finally:
        consumer.close()
        bus.close()
        os.close(out)


if __name__ == "__main__":
    main()
