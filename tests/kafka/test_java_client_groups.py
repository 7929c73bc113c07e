"""A consumer group driven by Apache Kafka's own Java client, read by the monitor.

The console consumer from the kafka-tools jar (on the classpath `make test-kafka`
resolved) joins once with the classic group protocol and once with the KIP-848
`consumer` protocol, which DescribeGroups does not see on Kafka 4: the adapter asks
ConsumerGroupDescribe. Either way the snapshot must show the group's state, member
count and lag, and Burrow's verdict must turn STOP or STALL once the consumer is gone
while records keep arriving.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from eventhub import broker
from tests.monitor.support import group_row, make_collector, monitor_store  # noqa: F401
from tests.waiting import wait_until

pytestmark = [pytest.mark.usefixtures("monitor_store"), pytest.mark.django_db]


def _console_consumer(bootstrap: str, topic: str, group: str, protocol: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "java",
            "-Xmx128m",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            broker.kafka_classpath(),
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--consumer-property",
            f"group.protocol={protocol}",
            "--consumer-property",
            "auto.commit.interval.ms=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _publish(bus, topic: str, per_partition: dict[int, int]) -> None:
    """Records with keys chosen until each partition got its count (default partitioner)."""
    for partition, count in per_partition.items():
        sent = 0
        key = 0
        while sent < count:
            key += 1
            published = bus.publish(topic, b'{"n": 1}', key=f"{partition}-{key}".encode())
            sent += published.partition == partition
    # Keys that hashed elsewhere landed on the other partition too: the test reads the
    # end offsets back instead of assuming them.


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_java_consumer_group_is_read_right(protocol, bus_kafka, kafka_bootstrap, unique, tmp_path):
    bus = bus_kafka
    topic, group = unique("java-orders"), unique(f"java-{protocol}")
    bus.create_topic(topic, partitions=2)
    _publish(bus, topic, {0: 6, 1: 4})
    ends = bus.end_offsets_many([topic])[topic]

    collector = make_collector("kafka", unique, burrow_window_s=4)
    log = open(tmp_path / "console-consumer.log", "wb")
    consumer = _console_consumer(kafka_bootstrap, topic, group, protocol, log)
    try:
        # Running: one member, Stable, everything consumed and committed.
        def caught_up():
            row = group_row(collector.tick(), group, topic)
            return row if row and row["state"] == "Stable" and row["members"] == 1 and row["lag"] == 0 else None

        row = wait_until(caught_up, 60, f"the {protocol} group to be Stable with one member and no lag")
        assert row["status"] == "OK"
        assert [lag.lag for lag in bus.lag(group, topic)] == [0, 0]
        assert {lag.partition: lag.committed for lag in bus.lag(group, topic)} == ends

        # Stopped: the member leaves; new records are lag on the partitions they went to.
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=30)
        _publish(bus, topic, {0: 3, 1: 2})
        new_ends = bus.end_offsets_many([topic])[topic]
        expected = {p: new_ends[p] - ends[p] for p in ends}

        def stopped():
            row = group_row(collector.tick(), group, topic)
            return row if row and row["members"] == 0 and row["status"] in {"STOP", "STALL"} else None

        row = wait_until(stopped, 30, f"the stopped {protocol} group to turn STOP or STALL")
        assert row["state"] == "Empty"
        assert row["lag"] == sum(expected.values())
        assert {lag.partition: lag.lag for lag in bus.lag(group, topic)} == expected
        assert bus.describe_group(group).state == "Empty"
    finally:
        if consumer.poll() is None:
            consumer.kill()
        collector.close()
        log.close()
