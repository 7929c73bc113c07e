"""The broker frozen (SIGSTOP) for 10 s while a service publishes: nothing lost, nothing hangs.

A PRIVATE Tansu (eventhub.broker.start, never the session's) is frozen with
SIGSTOP while a publishing loop sends events one at a time through the SDK
(publish_nowait + flush: the ack, or an error, for each event). A frozen broker
is worse than a dead one: connections are accepted by the kernel and requests
simply get no answer. The loop retries an event whose publish failed, the way
a careful service does. Then:
1. every publish attempt ends within a bound: acknowledged, or BusError /
   BusTimeout raised after at most FLUSH_S plus the adapter's own checks
   (topic_exists and ping, each bounded by request_timeout_ms);
2. the errors are bounded (each failed attempt lasted at least FLUSH_S, so at
   most PAUSE_S / FLUSH_S + 2 of them);
3. no hang: after SIGCONT the loop publishes again and finishes within a deadline;
4. every event was acknowledged in the end (none given up), and each
   acknowledged event (its ce_id) is on the topic exactly once. Attempts that
   raised may still have landed once the broker woke up (the producer kept them
   queued): they show as extra copies of an order id, counted and bounded by
   the number of failed attempts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from eventhub import broker
from eventhub.bus import BusError
from eventhub.bus.kafka import KafkaBus
from eventhub.sdk import LocalSchemas, Producer
from tests.fault import header_text, read_topic
from tests.waiting import wait_until

pytestmark = pytest.mark.fault

PAUSE_S = 10.0
FLUSH_S = 2.0
REQUEST_TIMEOUT_MS = 2000
# One attempt: the flush wait, then topic_exists and ping (each one request timeout), plus slack.
ATTEMPT_BOUND_S = FLUSH_S + 2 * REQUEST_TIMEOUT_MS / 1000 + 2.0
BEFORE, AFTER = 300, 300  # events acknowledged before the pause, and after it, before the loop stops
MAX_EVENTS = 20_000
MAX_ATTEMPTS = 50  # per event: far more than a 10 s pause needs
SCHEMA = {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}}


class PublishingLoop(threading.Thread):
    """Publishes order o-0, o-1, ... one at a time, retrying each until acknowledged."""

    def __init__(self, producer: Producer) -> None:
        super().__init__(name="publishing-loop", daemon=True)
        self.producer = producer
        self.acked: dict[str, int] = {}  # ce_id -> order number
        self.errors: list[tuple[str, float]] = []  # (exception class, seconds the attempt took)
        self.given_up: list[int] = []
        self.acked_after_resume = 0
        self.resumed = threading.Event()
        self.first_ack_after_resume: float | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        for n in range(MAX_EVENTS):
            if self.resumed.is_set() and self.acked_after_resume >= AFTER:
                break
            for _attempt in range(MAX_ATTEMPTS):
                started = time.monotonic()
                try:
                    event_id = self.producer.publish_nowait("order.placed", {"order_id": f"o-{n}"}, key=f"o-{n}")
                    self.producer.flush(FLUSH_S)
                except BusError as error:
                    self.errors.append((type(error).__name__, time.monotonic() - started))
                    continue
                self.acked[event_id] = n
                if self.resumed.is_set():
                    self.acked_after_resume += 1
                    if self.first_ack_after_resume is None:
                        self.first_ack_after_resume = time.monotonic()
                break
            else:
                self.given_up.append(n)
        self.finished_at = time.monotonic()


def test_publishing_through_a_frozen_broker(tmp_path, observed):
    process, bootstrap = broker.start(log_path=tmp_path / "tansu.log")
    topic = f"fault-pause-{os.urandom(4).hex()}"
    bus = KafkaBus(bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS, connect_timeout_ms=REQUEST_TIMEOUT_MS)
    loop = None
    try:
        bus.create_topic(topic, partitions=3)
        schemas = LocalSchemas({"order.placed": {"schema": SCHEMA, "topic": topic}})
        producer = Producer(bus, "shop", schemas, heartbeat_interval_s=None)
        loop = PublishingLoop(producer)
        loop.start()
        wait_until(lambda: len(loop.acked) >= BEFORE, 60, f"{BEFORE} events acknowledged before the pause")

        os.kill(process.pid, signal.SIGSTOP)
        paused_at = time.monotonic()
        # The fault itself lasts PAUSE_S; meanwhile the loop must keep failing, not hang.
        wait_until(lambda: loop.errors, PAUSE_S, "a publish to fail while the broker is frozen")
        observed["first_error_after_s"] = time.monotonic() - paused_at
        threading.Event().wait(max(0.0, PAUSE_S - (time.monotonic() - paused_at)))
        errors_during_pause = len(loop.errors)
        os.kill(process.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        loop.resumed.set()

        loop.join(60)
        assert not loop.is_alive(), "the publishing loop hangs after the broker woke up"
        observed["finished_after_resume_s"] = loop.finished_at - resumed_at
        observed["first_ack_after_resume_s"] = loop.first_ack_after_resume - resumed_at
        records = read_topic(bus, topic)
    finally:
        if loop is not None:
            loop.resumed.set()
        os.kill(process.pid, signal.SIGCONT)  # a stopped process ignores SIGTERM
        bus.close()
        broker.stop(process)

    errors = loop.errors
    observed["events"] = len(loop.acked)
    observed["errors"] = len(errors)
    observed["errors_during_pause"] = errors_during_pause
    observed["error_classes"] = ",".join(sorted({name for name, _ in errors}))
    observed["slowest_failed_attempt_s"] = max(seconds for _, seconds in errors)

    assert loop.given_up == []  # every event acknowledged in the end
    assert errors, "the pause went unnoticed: the test proves nothing"
    assert max(seconds for _, seconds in errors) <= ATTEMPT_BOUND_S  # each failure came in bounded time
    assert len(errors) <= PAUSE_S / FLUSH_S + 2  # errors bounded
    assert observed.values["finished_after_resume_s"] < 30  # no hang

    by_id = Counter(header_text(record, "ce_id") for record in records)
    acked = set(loop.acked)
    assert all(by_id[event_id] == 1 for event_id in acked)  # each acknowledged event exactly once
    orders = Counter(loop.acked.values())
    assert set(orders) == set(range(len(orders)))  # o-0 .. o-(n-1), none missing
    extra = len(records) - len(acked)  # attempts that raised and still landed
    observed["landed_after_error"] = extra
    assert 0 <= extra <= len(errors)
