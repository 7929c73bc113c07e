"""Consumer on both real buses: retries, dead letters, commit order, replay, poison entries.

Each test drives the consumer with `run_once`, the loop's step function, so it
can look at the broker between steps.
"""

from __future__ import annotations

import itertools
import json
import logging
import struct
import threading
import time
from datetime import UTC, datetime

import pytest

from deadletters import headers as dead_letter_headers
from eventhub.bus import BusUnavailable, open_bus
from eventhub.sdk import (
    Consumer,
    Event,
    HandlerFailed,
    LocalSchemas,
    Producer,
    dead_letter_topic,
)
from tests.sdk import (
    HOSTILE_HEADERS,
    ORDER_SCHEMA,
    POISON_VALUES,
    create_topic_for_big_records,
    publish_raw,
    read_records,
    total_end_offset,
    total_lag,
)
from tests.waiting import wait_until

ORDER = {"order_id": "o-1", "amount": 10}


@pytest.fixture
def topic(bus, unique):
    name = unique("orders")
    bus.create_topic(name)
    return name


@pytest.fixture
def producer(bus, topic):
    schemas = LocalSchemas({"order.placed": {"schema": ORDER_SCHEMA, "version": 2, "topic": topic}})
    with Producer(bus, "checkout", schemas, heartbeat_interval_s=None) as producer:
        yield producer


@pytest.fixture
def make_consumer(bus, topic, unique):
    made: list[Consumer] = []

    def make(**options) -> Consumer:
        options = {
            "max_attempts": 3,
            "backoff_s": 0.05,
            "heartbeat_interval_s": None,
            **options,
        }
        consumer = Consumer(options.pop("bus", bus), "billing", unique("billing"), [topic], **options)
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


def run_until(consumer: Consumer, condition, timeout_s: float = 20.0) -> None:
    """Step the consumer until `condition()` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "consumer did not get there in time"
        consumer.run_once(0.2)


def test_failing_handler_is_retried_then_dead_lettered(bus, topic, producer, make_consumer):
    producer.publish("order.placed", ORDER, key="o-1", headers={"traceparent": "t-1"})
    [original] = read_records(bus, topic, 1)
    consumer = make_consumer()
    attempts: list[tuple[int, float, int]] = []  # attempt, when, lag at that moment

    @consumer.handler("order.placed")
    def charge(event: Event) -> None:
        attempts.append((event.attempt, time.monotonic(), total_lag(bus, consumer.group, topic)))
        raise ValueError("card declined")

    run_until(consumer, lambda: len(attempts) == 3)

    # Retried in process with growing, jittered backoff (at least half of 0.05 * 2**n).
    assert [a for a, _, _ in attempts] == [1, 2, 3]
    gaps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05
    # Not committed while it was being tried...
    assert [lag for _, _, lag in attempts] == [1, 1, 1]
    # ...committed once it was dead-lettered.
    assert total_lag(bus, consumer.group, topic) == 0

    dlq = dead_letter_topic(topic, bus.kind)
    assert dlq == (f"{topic}:dlq" if bus.kind == "redis" else f"{topic}.dlq")
    [dead] = read_records(bus, dlq, 1)
    assert (dead.key, dead.value) == (original.key, original.value)
    assert dead.headers[: len(original.headers)] == original.headers
    failure = dict(dead.headers[len(original.headers) :])

    assert failure["x-eventhub-original-topic"] == topic.encode()
    if bus.kind == "kafka":
        assert failure["x-eventhub-original-partition"] == str(original.partition).encode()
        assert failure["x-eventhub-original-offset"] == str(original.offset).encode()
    else:
        assert failure["x-eventhub-original-entry-id"] == str(original.offset).encode()
    assert failure["x-eventhub-group"] == consumer.group.encode()
    assert failure["x-eventhub-attempts"] == b"3"
    assert failure["x-eventhub-error-class"] == b"ValueError"
    assert failure["x-eventhub-error-message"] == b"card declined"
    assert b'raise ValueError("card declined")' in failure["x-eventhub-stacktrace"]
    failed_at = datetime.fromisoformat(failure["x-eventhub-failed-at"].decode())
    assert failed_at.tzinfo is not None
    assert abs((datetime.now(UTC) - failed_at).total_seconds()) < 60
    assert failure["x-eventhub-service"] == b"billing"

    if bus.kind == "kafka":
        # Spring's family, binary numbers big-endian, as Spring tools read them.
        assert failure["kafka_dlt-original-topic"] == topic.encode()
        (partition,) = struct.unpack(">i", failure["kafka_dlt-original-partition"])
        (offset,) = struct.unpack(">q", failure["kafka_dlt-original-offset"])
        (timestamp,) = struct.unpack(">q", failure["kafka_dlt-original-timestamp"])
        assert (partition, offset, timestamp) == (
            original.partition,
            original.offset,
            original.timestamp_ms,
        )
        assert failure["kafka_dlt-original-consumer-group"] == consumer.group.encode()
        assert failure["kafka_dlt-exception-fqcn"] == b"ValueError"
        assert failure["kafka_dlt-exception-message"] == b"card declined"
        assert b"ValueError" in failure["kafka_dlt-exception-stacktrace"]
    else:
        assert not any(name.startswith("kafka_dlt-") for name in failure)

    # The monitor reads exactly what the SDK writes.
    meta = dead_letter_headers.decode(dead.headers)
    assert (meta.convention, meta.original_topic, meta.attempts) == (
        "eventhub",
        topic,
        3,
    )
    assert (meta.group, meta.service, meta.error_class) == (
        consumer.group,
        "billing",
        "ValueError",
    )
    assert meta.event_type == "order.placed"
    assert meta.problems == []


def test_handler_succeeding_on_second_attempt_is_not_dead_lettered(bus, topic, producer, make_consumer):
    producer.publish("order.placed", ORDER)
    consumer = make_consumer()
    attempts: list[int] = []

    @consumer.handler("order.placed")
    def charge(event: Event) -> None:
        attempts.append(event.attempt)
        if event.attempt == 1:
            raise ConnectionError("payment provider timed out")
        assert event.payload == ORDER and event.type == "order.placed"

    run_until(consumer, lambda: attempts == [1, 2])
    wait_until(lambda: total_lag(bus, consumer.group, topic) == 0, what="commit")
    assert total_end_offset(bus, dead_letter_topic(topic, bus.kind)) == 0


def test_undecodable_payload_goes_straight_to_dead_letters(bus, topic, make_consumer):
    bus.publish(topic, b"\x00not json{", key=b"k", headers=[("ce_type", b"order.placed")])
    consumer = make_consumer()
    called: list[Event] = []
    consumer.handler("order.placed")(called.append)

    dlq = dead_letter_topic(topic, bus.kind)
    run_until(consumer, lambda: total_end_offset(bus, dlq) == 1)
    assert called == []
    [dead] = read_records(bus, dlq, 1)
    assert dead.value == b"\x00not json{"
    assert dead.header("x-eventhub-error-class") == b"eventhub.sdk.PayloadDecodeError"
    assert dead.header("x-eventhub-attempts") == b"0"
    wait_until(lambda: total_lag(bus, consumer.group, topic) == 0, what="commit")


def test_poison_records_are_dead_lettered_and_the_next_one_is_handled(bus, unique):
    """Each hostile value, followed by a good record, under run() (the loop a poison value used
    to end): the poison one is dead-lettered at once (PayloadDecodeError, value and headers as
    they came) and the good one after it handled, all committed."""
    topic = unique("hostile")
    create_topic_for_big_records(bus, topic)
    records = []
    for n, (name, (value, _)) in enumerate(POISON_VALUES.items()):
        records.append((value, name.encode(), HOSTILE_HEADERS))
        records.append((json.dumps({"n": n}).encode(), b"good", HOSTILE_HEADERS))
    publish_raw(bus, topic, records)
    consumer = Consumer(bus, "billing", unique("billing"), [topic], heartbeat_interval_s=None, backoff_max_s=0.2)
    handled: list[Event] = []
    consumer.handler("order.placed")(handled.append)
    dlq = dead_letter_topic(topic, bus.kind)
    stop = threading.Event()
    runner = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(
            lambda: len(handled) == len(POISON_VALUES) and total_end_offset(bus, dlq) == len(POISON_VALUES),
            60,
            "every poison record dead-lettered and every good one handled",
        )
        wait_until(lambda: total_lag(bus, consumer.group, topic) == 0, 30, "the commit")
        assert runner.is_alive()  # still consuming: no poison value ended run()
    finally:
        stop.set()
        runner.join(15)
        consumer.close()

    assert [event.payload for event in handled] == [{"n": n} for n in range(len(POISON_VALUES))]
    headers = handled[0].headers  # hostile headers reach the handler: bytes when not UTF-8, the last of a name
    assert (headers["x-trace"], headers["x-dup"], headers["x-empty"]) == (b"\xff\xfe\x00", "second", "")
    dead = {record.key: record for record in read_records(bus, dlq, len(POISON_VALUES))}
    assert set(dead) == {name.encode() for name in POISON_VALUES}
    for name, (value, reason) in POISON_VALUES.items():
        record = dead[name.encode()]
        assert record.header("x-eventhub-error-class") == b"eventhub.sdk.PayloadDecodeError", name
        assert reason in record.header("x-eventhub-error-message").decode(), name
        assert record.header("x-eventhub-attempts") == b"0"
        assert record.headers[: len(HOSTILE_HEADERS)] == HOSTILE_HEADERS
        if name == "5mb" and bus.kind == "kafka":
            # Too large for the dead-letter topic (1 MB by default): a cut copy and the size it had.
            assert record.value == value[: 64 * 1024]
            assert record.header("x-eventhub-payload-size") == str(len(value)).encode()
        else:
            assert record.value == value, name
            assert record.header("x-eventhub-payload-size") is None


def test_event_without_a_handler_is_dead_lettered(bus, topic, make_consumer):
    bus.publish(topic, b"{}", headers=[("ce_type", b"order.cancelled")])
    consumer = make_consumer()
    consumer.handler("order.placed")(lambda event: None)
    dlq = dead_letter_topic(topic, bus.kind)
    run_until(consumer, lambda: total_end_offset(bus, dlq) == 1)
    [dead] = read_records(bus, dlq, 1)
    assert dead.header("x-eventhub-error-class") == b"eventhub.sdk.NoHandler"


def test_targeted_replay_skips_other_groups(bus, topic, make_consumer):
    consumer = make_consumer()
    seen: list[Event] = []
    consumer.default_handler(seen.append)
    ce = [("ce_type", b"order.placed")]
    bus.publish(topic, b'{"n":1}', headers=[*ce, ("x-eventhub-replay-group", b"other")])
    bus.publish(
        topic,
        b'{"n":2}',
        headers=[
            *ce,
            ("x-eventhub-replay-group", consumer.group.encode()),
            ("x-eventhub-replay-of", b"orders.dlq/0/41"),
        ],
    )
    bus.publish(topic, b'{"n":3}', headers=ce)

    run_until(consumer, lambda: len(seen) == 2)
    assert [e.payload["n"] for e in seen] == [2, 3]
    assert seen[0].headers["x-eventhub-replay-of"] == "orders.dlq/0/41"
    # The skipped record is committed too: nothing is left for the group.
    wait_until(lambda: total_lag(bus, consumer.group, topic) == 0, what="commit")


class _DeadLetterOutage:
    """The real bus, except that publishing to dead-letter topics fails while `down`."""

    def __init__(self, bus):
        self._bus = bus
        self.down = True

    def __getattr__(self, name):
        return getattr(self._bus, name)

    def publish(self, topic, value, key=None, headers=None):
        if self.down and topic.endswith(("dlq",)):
            raise BusUnavailable("dead-letter topic unavailable (test)")
        return self._bus.publish(topic, value, key=key, headers=headers)


def test_nothing_is_committed_when_dead_lettering_fails(bus, topic, producer, make_consumer):
    producer.publish("order.placed", ORDER)
    outage = _DeadLetterOutage(bus)
    consumer = make_consumer(bus=outage, backoff_s=0.01)
    calls: list[int] = []
    consumer.handler("order.placed")(lambda event: calls.append(event.attempt) or 1 / 0)

    with pytest.raises(BusUnavailable):
        run_until(consumer, lambda: False)
    assert calls == [1, 2, 3]
    assert total_lag(bus, consumer.group, topic) == 1

    # Once the dead-letter topic is back, the record comes again and goes there.
    outage.down = False
    dlq = dead_letter_topic(topic, bus.kind)
    run_until(consumer, lambda: total_end_offset(bus, dlq) == 1)
    assert calls == [1, 2, 3, 1, 2, 3]
    wait_until(lambda: total_lag(bus, consumer.group, topic) == 0, what="commit")


def test_without_dead_letters_a_failure_stops_uncommitted(bus, topic, producer, make_consumer):
    producer.publish("order.placed", ORDER)
    consumer = make_consumer(dead_letter=False, max_attempts=1)
    consumer.handler("order.placed")(lambda event: 1 / 0)
    with pytest.raises(HandlerFailed) as caught:
        run_until(consumer, lambda: False)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert total_lag(bus, consumer.group, topic) == 1
    assert total_end_offset(bus, dead_letter_topic(topic, bus.kind)) == 0


def test_validate_flag_dead_letters_invalid_payloads(bus, topic, unique, make_consumer):
    schemas = LocalSchemas({"order.placed": {"schema": ORDER_SCHEMA, "topic": topic}})
    bus.publish(topic, b'{"order_id":"o-1","amount":-1}', headers=[("ce_type", b"order.placed")])
    consumer = make_consumer(schemas=schemas, validate=True)
    called: list[Event] = []
    consumer.handler("order.placed")(called.append)
    dlq = dead_letter_topic(topic, bus.kind)
    run_until(consumer, lambda: total_end_offset(bus, dlq) == 1)
    assert called == []
    [dead] = read_records(bus, dlq, 1)
    assert dead.header("x-eventhub-error-class") == b"eventhub.sdk.InvalidPayload"
    assert b"$.amount" in dead.header("x-eventhub-error-message")
    assert dead.header("x-eventhub-attempts") == b"1"  # not retried


def test_redis_entry_redelivered_too_often_is_dead_lettered(redis_url, unique):
    """A consumer took the entry and died without acking; the next one gives up on it."""
    bus = open_bus("redis", url=redis_url, claim_idle_ms=50)
    topic, group = unique("orders"), unique("billing")
    bus.create_topic(topic)
    bus.publish(topic, b'{"n":1}', headers=[("ce_type", b"order.placed")])
    crashed = bus.consumer(group, [topic], client_id="crashed-worker")
    consumer = Consumer(bus, "billing", group, [topic], max_attempts=2, heartbeat_interval_s=None)
    called: list[Event] = []
    consumer.handler("order.placed")(called.append)
    try:
        [taken] = crashed.poll(1.0)
        assert taken.delivery_count == 1
        dlq = dead_letter_topic(topic, "redis")
        run_until(consumer, lambda: total_end_offset(bus, dlq) == 1)
        assert called == []
        [dead] = read_records(bus, dlq, 1)
        assert dead.header("x-eventhub-error-class") == b"eventhub.sdk.RedeliveredTooOften"
        assert dead.header("x-eventhub-attempts") == b"1"
        assert dead.header("x-eventhub-original-entry-id") == taken.offset.encode()
        assert total_lag(bus, group, topic) == 0
    finally:
        consumer.close()
        crashed.close()
        bus.close()


def test_run_rides_out_a_missing_topic_until_stopped(bus, unique, caplog):
    """run() treats bus errors as passing: it re-joins after a pause and goes on."""
    topic = unique("later")
    consumer = Consumer(bus, "billing", unique("billing"), [topic], backoff_max_s=0.1, heartbeat_interval_s=None)
    seen: list[Event] = []
    consumer.default_handler(seen.append)
    stop = threading.Event()
    runner = threading.Thread(target=consumer.run, args=(stop,))
    runner.start()
    try:
        with caplog.at_level(logging.WARNING, logger="eventhub.sdk.consumer"):
            wait_until(lambda: "bus error UnknownTopic" in caplog.text, what="a failed join")
        bus.create_topic(topic)
        bus.publish(topic, b'{"n":1}', headers=[("ce_type", b"thing.happened")])
        wait_until(lambda: len(seen) == 1, what="the event, once the topic exists")
    finally:
        stop.set()
        runner.join(15)
        consumer.close()
    assert not runner.is_alive()
    assert seen[0].payload == {"n": 1} and seen[0].type == "thing.happened"
