"""The topic browser's scan against the raw Kafka client reading the same records.

browse_scan_ratio: a filtered scan of N records (default one million,
EVENTHUB_BENCH_BROWSE_RECORDS) through `Bus.scan` with the browser's filters applied to
every record as it comes (`eventhub.bus.filters.Filters`, here `type` plus
`field=customer.id=...` matching no record, so the whole topic is read and every value's
JSON decoded: the browser's costliest filter), over a raw group-less kafka-python consumer
reading the same partition from the start to its end (each the best of two runs). Both
clocks include the client's start. The detail adds the rate of a key filter (no JSON decoded).
Target >= 0.5 (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import Results
from eventhub.bus import open_bus
from eventhub.bus.filters import Filters
from eventhub.sdk import headers as h

N = int(os.environ.get("EVENTHUB_BENCH_BROWSE_RECORDS", "1000000"))


def _fill(bootstrap: str, topic: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    headers = [(h.CE_TYPE, b"order.placed"), (h.CE_SOURCE, b"/services/shop"), (h.CONTENT_TYPE, b"application/json")]
    for i in range(n):
        value = json.dumps({"order_id": f"o-{i}", "customer": {"id": f"c-{i % 1000}"}, "total": i % 97}).encode()
        producer.send(topic, value=value, key=f"o-{i}".encode(), headers=headers)
    producer.flush()
    producer.close()


def _raw_rate(bootstrap: str, topic: str, end: int) -> float:
    started = time.perf_counter()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, max_poll_records=500)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    seen = 0
    while consumer.position(tp) < end:
        seen += sum(len(records) for records in consumer.poll(timeout_ms=500).values())
    consumer.close()
    return seen / (time.perf_counter() - started)


def _scan_rate(bus, topic: str, filters: Filters) -> tuple[float, int, int]:
    """(records/s, scanned, matched) of a whole oldest-first scan, as eventstore/browse.py runs it."""
    started = time.perf_counter()
    positions = bus.scan_positions(topic, newest_first=False)
    scanned = matched = 0
    for records in bus.scan(topic, positions, newest_first=False):
        for record in records:
            scanned += 1
            positions[record.partition] = bus.next_position(record, False)
            if filters.matches(record):
                matched += 1
    return scanned / (time.perf_counter() - started), scanned, matched


def run(results: Results, bootstrap: str) -> None:
    topic = f"bench-browse-{uuid.uuid4().hex[:6]}"
    bus = open_bus("kafka", bootstrap_servers=bootstrap)
    try:
        bus.create_topic(topic)
        _fill(bootstrap, topic, N)
        end = bus.end_offsets(topic)[0]
        raw = max(_raw_rate(bootstrap, topic, end) for _ in range(2))
        by_field = Filters(type="order.placed", fields=((("customer", "id"), "c-none"),))
        # The best of two, as for the raw read: on a shared machine one disturbed run would decide the figure.
        scan, scanned, matched = max(_scan_rate(bus, topic, by_field) for _ in range(2))
        by_key, _, key_matched = _scan_rate(bus, topic, Filters(key=b"o-7"))
        assert scanned == end and matched == 0 and key_matched == 1, (scanned, end, matched, key_matched)
        results.add(
            "browse_scan_ratio",
            scan / raw,
            "ratio",
            f"type+field scan {scan:,.0f} records/s, key filter {by_key:,.0f}/s, raw consumer {raw:,.0f}/s "
            f"({end:,} records)",
        )
    finally:
        try:
            bus.delete_topic(topic)
        finally:
            bus.close()
