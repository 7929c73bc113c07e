"""Tests that only Apache Kafka can run: real Java clients, the KIP-848 consumer protocol.

They are collected by `make test-kafka` (EVENTHUB_BROKER=apache-kafka) and left out,
not skipped, on the embedded Tansu: nothing here is missing there, it does not apply.
"""

import os

if os.environ.get("EVENTHUB_BROKER") != "apache-kafka":
    collect_ignore_glob = ["test_*.py"]

import pytest  # noqa: E402

from eventhub.bus import open_bus  # noqa: E402


@pytest.fixture
def bus_kafka():
    bus = open_bus("kafka", bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    yield bus
    bus.close()
