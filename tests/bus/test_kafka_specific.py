"""Kafka-only behaviour: partitions, end offsets on Tansu, a broker that goes away."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec

from eventhub import broker
from eventhub.bus import BusTimeout, BusUnavailable, open_bus
from eventhub.bus.kafka import KAFKA_SESSION_MS, TANSU_SESSION_MS, KafkaBus
from tests.bus import consume
from tests.waiting import returns_within


@pytest.fixture
def kafka():
    bus = open_bus("kafka", bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], linger_ms=20)
    yield bus
    bus.close()


def test_end_offsets_and_lag_count_every_record_of_a_batch(kafka, unique):
    """Batched records: ListOffsets(LATEST) says "last batch + 1" on Tansu; we must say N."""
    topic, group = unique("batched"), unique("g")
    kafka.create_topic(topic, partitions=3)
    for i in range(60):
        kafka.send(topic, b"%d" % i, key=b"key-%d" % (i % 5))
    kafka.flush()

    ends = kafka.end_offsets(topic)
    with kafka.consumer(group, [topic]) as consumer:
        records = consume(consumer, 60)
        per_partition = Counter(r.partition for r in records)
        assert ends == {p: per_partition[p] for p in range(3)}
        assert sum(ends.values()) == 60

        partial = [r for r in records if r.partition == 0][:3]
        consumer.commit(partial)

    rows = {row.partition: row for row in kafka.lag(group, topic)}
    assert rows[0].committed == 3
    assert rows[0].lag == ends[0] - 3
    assert {p: rows[p].committed for p in (1, 2)} == {1: None, 2: None}
    assert sum(row.lag for row in rows.values()) == 60 - 3
    assert kafka.end_offsets_many([topic]) == {topic: ends}


def test_end_offsets_survive_the_tansu_list_offsets_bug(kafka, unique, kafka_bootstrap):
    """Shows why the adapter reads high watermarks: the raw LATEST answer may be short."""
    topic = unique("latest")
    kafka.create_topic(topic)
    for i in range(10):
        kafka.send(topic, b"%d" % i)
    kafka.flush()

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        raw = admin.list_partition_offsets({TopicPartition(topic, 0): OffsetSpec.LATEST})
    finally:
        admin.close()
    if kafka._admin().tansu_like:  # the bug is there to be dodged
        assert raw[TopicPartition(topic, 0)].offset < 10
    else:  # Apache Kafka answers right, and the adapter asks it directly
        assert raw[TopicPartition(topic, 0)].offset == 10
    assert kafka.end_offsets(topic) == {0: 10}


def _thread_cpu_s(native_id: int) -> float:
    """CPU seconds one thread of this process has used (Linux: utime + stime of its task)."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("deleted", [False, True], ids=["kept", "one-deleted"])
def test_a_producer_that_sent_to_several_topics_idles_when_nothing_is_sent(kafka, unique, deleted):
    """Its sender thread sleeps: on Tansu it looped asking for metadata (a third of a core) once
    a producer had sent to two topics, because Tansu answers a Metadata request naming no topic
    with every topic (docs/kafka-compat.md)."""
    topics = [unique("idle") for _ in range(3)]
    for topic in topics:
        kafka.create_topic(topic)
        kafka.publish(topic, b"x")
    if deleted:
        kafka.delete_topic(topics[1])
    sender = kafka._producer_client._sender
    before = _thread_cpu_s(sender.native_id)
    time.sleep(1.0)  # the window measured, not a wait for something
    used = _thread_cpu_s(sender.native_id) - before
    assert used < 0.1, f"the producer's sender used {used:.2f} s of CPU in an idle second"
    kafka.publish(topics[0], b"still sends")


def test_same_key_same_partition(kafka, unique):
    topic = unique("keys")
    kafka.create_topic(topic, partitions=4)
    partitions = {kafka.publish(topic, b"v", key=b"customer-42").partition for _ in range(5)}
    assert len(partitions) == 1
    assert {t.name: t.partitions for t in kafka.list_topics()}[topic] == 4


def test_group_timeouts_default_to_what_the_broker_allows(kafka, broker_kind, unique):
    """Tansu joins a group in about session/2, so short sessions there; Apache Kafka refuses under 6 s."""
    topic = unique("t")
    kafka.create_topic(topic)
    with kafka.consumer(unique("g"), [topic]) as consumer:
        config = consumer._consumer.config
        expected = TANSU_SESSION_MS if broker_kind == "tansu" else KAFKA_SESSION_MS
        assert (config["session_timeout_ms"], config["heartbeat_interval_ms"]) == expected
        assert kafka._admin().tansu_like is (broker_kind == "tansu")


def test_group_timeouts_are_constructor_options(kafka_bootstrap, unique):
    bus = KafkaBus(kafka_bootstrap, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    try:
        topic = unique("t")
        bus.create_topic(topic)
        with bus.consumer(unique("g"), [topic], client_id="billing-1") as consumer:
            config = consumer._consumer.config
            assert (config["session_timeout_ms"], config["heartbeat_interval_ms"]) == (6000, 1000)
            assert config["client_id"] == "billing-1"
    finally:
        bus.close()


@pytest.mark.fault
def test_a_broker_that_goes_away_is_reported_within_bounds(unique):
    """Every call fails with BusUnavailable instead of retrying. The 15 s deadline only catches a
    hang (a call left to kafka-python's 60 s defaults): with the timeouts given here a publish spends
    at most 4.5 s (its request timeout, then topic_exists and ping to name the error)."""
    process, bootstrap = broker.start()
    bus = open_bus("kafka", bootstrap_servers=bootstrap, request_timeout_ms=1500, connect_timeout_ms=1000)
    try:
        topic = unique("t")
        bus.create_topic(topic)
        bus.publish(topic, b"before")

        process.kill()  # a crash; also Tansu takes 5 s to honour SIGTERM
        process.wait()

        calls = {"ping": bus.ping, "list_topics": bus.list_topics, "publish": lambda: bus.publish(topic, b"after")}
        for name, call in calls.items():
            with pytest.raises((BusUnavailable, BusTimeout)) as caught:
                returns_within(call, 15, f"{name} after the broker died")
            assert isinstance(caught.value, BusUnavailable), caught.value
    finally:
        broker.stop(process)
        returns_within(bus.close, 15, "close after the broker died")
