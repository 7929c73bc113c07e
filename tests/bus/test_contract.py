"""The bus contract: every test runs on both real backends with the same assertions."""

from __future__ import annotations

import threading
import time

import pytest

from eventhub import broker
from eventhub.bus import BusUnavailable, UnknownTopic, open_bus
from tests.bus import consume
from tests.waiting import returns_within, wait_until


@pytest.fixture
def topic(bus, unique):
    name = unique("orders")
    assert bus.create_topic(name) is True
    yield name
    try:
        bus.delete_topic(name)
    except UnknownTopic:
        pass


def total_lag(bus, group: str, topic: str) -> int:
    return sum(row.lag for row in bus.lag(group, topic))


def test_ping(bus):
    bus.ping()


def test_create_list_delete_topic(bus, unique):
    name = unique("topic")
    assert bus.create_topic(name) is True
    assert bus.create_topic(name) is False
    assert bus.topic_exists(name)
    assert {t.name: t.partitions for t in bus.list_topics()}[name] == 1
    assert bus.end_offsets(name) == {0: 0}

    bus.delete_topic(name)

    wait_until(lambda: not bus.topic_exists(name))
    assert name not in {t.name for t in bus.list_topics()}
    with pytest.raises(UnknownTopic):
        bus.delete_topic(name)


def test_unknown_topic_errors(bus, unique):
    missing = unique("missing")
    assert not bus.topic_exists(missing)
    with pytest.raises(UnknownTopic):
        bus.publish(missing, b"x")
    with pytest.raises(UnknownTopic):
        bus.send(missing, b"x")
        bus.flush()
    with pytest.raises(UnknownTopic):
        bus.end_offsets(missing)
    with pytest.raises(UnknownTopic):
        bus.lag(unique("g"), missing)
    with pytest.raises(UnknownTopic):
        bus.consumer(unique("g"), [missing])
    # Publishing to it must not have created it (Tansu would, unchecked).
    assert not bus.topic_exists(missing)


def test_records_round_trip_byte_exact(bus, topic, unique):
    sent = [
        (bytes(range(256)), b"\x00key", [("bin", b"\x00\xff\x10"), ("dup", b"1"), ("dup", b"2"), ("empty", b"")]),
        (b"", b"k2", []),  # an empty value is not a missing one
        (None, b"k3", [("reason", b"tombstone")]),
        (b"no key", None, None),
    ]
    published = [bus.publish(topic, value, key=key, headers=headers) for value, key, headers in sent]
    assert [p.partition for p in published] == [0, 0, 0, 0]

    with bus.consumer(unique("g"), [topic]) as consumer:
        records = consume(consumer, len(sent))

    assert [(r.value, r.key, r.headers) for r in records] == [
        (value, key, headers or []) for value, key, headers in sent
    ]
    assert [r.offset for r in records] == [p.offset for p in published]
    assert records[0].header("bin") == b"\x00\xff\x10"
    assert records[0].header("dup") == b"2"
    now_ms = time.time() * 1000
    assert all(abs(r.timestamp_ms - now_ms) < 60_000 for r in records)


def test_bytes_like_header_values_go_out_as_bytes(bus, topic, unique):
    headers = [("array", bytearray(b"\x00a")), ("view", memoryview(b"\xffb")), ("plain", b"c")]
    bus.publish(topic, b"published", headers=headers)
    bus.send(topic, b"sent", headers=headers)
    bus.flush()

    with bus.consumer(unique("g"), [topic]) as consumer:
        records = consume(consumer, 2)

    expected = [("array", b"\x00a"), ("view", b"\xffb"), ("plain", b"c")]
    assert [(r.value, r.headers) for r in records] == [(b"published", expected), (b"sent", expected)]


def test_read_by_position_joins_no_group(bus, topic, unique):
    sent = [(f"v{i}".encode(), f"k{i}".encode(), [("dup", b"1"), ("dup", b"2")]) for i in range(5)]
    published = [bus.publish(topic, value, key=key, headers=headers) for value, key, headers in sent]
    groups_before = {g.group for g in bus.list_groups()}

    one = bus.read(topic, 0, published[2].offset)
    three = bus.read(topic, 0, published[1].offset, limit=3)
    rest = bus.read(topic, 0, published[3].offset, limit=100)

    assert [(r.offset, r.value, r.key, r.headers) for r in one] == [
        (published[2].offset, b"v2", b"k2", [("dup", b"1"), ("dup", b"2")])
    ]
    assert [r.value for r in three] == [b"v1", b"v2", b"v3"]
    assert [r.value for r in rest] == [b"v3", b"v4"]  # the partition ends first
    past_the_end = published[4].offset + 1 if bus.kind == "kafka" else "99999999999999-0"
    assert bus.read(topic, 0, past_the_end) == []
    with pytest.raises(UnknownTopic):
        bus.read(topic, 7, 0)
    with pytest.raises(UnknownTopic):
        bus.read(unique("missing"), 0, 0)
    assert {g.group for g in bus.list_groups()} == groups_before


def test_send_and_flush_batch(bus, topic, unique):
    for i in range(300):
        bus.send(topic, b"%d" % i, key=b"k", headers=[("i", b"%d" % i)])
    bus.flush()

    assert bus.end_offsets(topic) == {0: 300}
    with bus.consumer(unique("g"), [topic]) as consumer:
        records = consume(consumer, 300)
    assert [r.value for r in records] == [b"%d" % i for i in range(300)]


def test_publish_many_acknowledges_each_record_in_order(bus, unique):
    topic, missing = unique("many"), unique("missing")
    bus.create_topic(topic, partitions=3)
    records = [(topic, b"%d" % i, b"k%d" % (i % 5), [("i", b"%d" % i)]) for i in range(200)]
    records.insert(100, (missing, b"lost", b"k0", None))  # one bad record among good ones

    outcomes = bus.publish_many(records)

    assert isinstance(outcomes[100], UnknownTopic)
    landed = outcomes[:100] + outcomes[101:]
    assert all(p.topic == topic for p in landed)
    with bus.consumer(unique("g"), [topic]) as consumer:
        read = consume(consumer, 200)
    where = {(r.partition, r.offset): r.value for r in read}
    # Each acknowledgement names the record's own position, and one key's records keep their order.
    assert [where[(p.partition, p.offset)] for p in landed] == [b"%d" % i for i in range(200)]
    for key in range(5):
        mine = [r for r in read if r.key == b"k%d" % key]
        assert [r.value for r in mine] == [b"%d" % i for i in range(200) if i % 5 == key]
    assert not bus.topic_exists(missing)
    assert bus.publish_many([]) == []


def test_concurrent_publishes(bus, topic):
    published = []

    def worker(n: int) -> None:
        for i in range(25):
            published.append(bus.publish(topic, b"%d-%d" % (n, i)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({p.offset for p in published}) == 100
    assert bus.end_offsets(topic) == {0: 100}


def test_new_group_starts_at_the_beginning(bus, topic, unique):
    for i in range(3):
        bus.publish(topic, b"early-%d" % i)

    with bus.consumer(unique("g"), [topic]) as consumer:
        records = consume(consumer, 3)

    assert [r.value for r in records] == [b"early-0", b"early-1", b"early-2"]


def test_lag_is_produced_minus_committed(bus, topic, unique):
    group = unique("g")
    for i in range(10):
        bus.publish(topic, b"%d" % i)
    with bus.consumer(group, [topic]) as consumer:
        records = consume(consumer, 10)
        assert len(records) == 10

        consumer.commit(records[:4])

        [row] = bus.lag(group, topic)
        assert (row.topic, row.partition, row.end_offset, row.committed, row.lag) == (topic, 0, 10, 4, 6)
        assert bus.committed_offsets(group, topic) == {0: 4}
        assert bus.end_offsets(topic) == {0: 10}
        assert bus.group_lag(group) == [row]

        consumer.commit(records[4:])
        assert total_lag(bus, group, topic) == 0


def test_nothing_is_committed_unless_asked(bus, topic, unique):
    group = unique("g")
    for i in range(5):
        bus.publish(topic, b"%d" % i)

    with bus.consumer(group, [topic]) as consumer:
        assert len(consume(consumer, 5)) == 5

    [row] = bus.lag(group, topic)
    assert row.lag == 5
    assert row.committed in (None, 0)
    with bus.consumer(group, [topic]) as consumer:
        assert [r.value for r in consume(consumer, 5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_commit_survives_close_and_the_group_resumes_after_it(bus, topic, unique):
    group = unique("g")
    for i in range(6):
        bus.publish(topic, b"%d" % i)
    with bus.consumer(group, [topic]) as first:
        records = consume(first, 6)
        first.commit(records[:2])

    assert total_lag(bus, group, topic) == 4
    with bus.consumer(group, [topic]) as second:
        resumed = consume(second, 4)
        assert [r.value for r in resumed] == [b"2", b"3", b"4", b"5"]
        assert second.poll(timeout_s=0.3) == []
        second.commit(resumed)

    assert total_lag(bus, group, topic) == 0
    assert bus.committed_offsets(group, topic) == {0: 6}


def test_group_lag_covers_every_topic_of_the_group(bus, unique):
    group = unique("g")
    first, second = unique("a"), unique("b")
    for name, count in ((first, 3), (second, 5)):
        bus.create_topic(name)
        for i in range(count):
            bus.publish(name, b"%d" % i)

    with bus.consumer(group, [first, second]) as consumer:
        records = consume(consumer, 8)
        consumer.commit([r for r in records if r.topic == first])
        # Tansu reports no member assignments, so a Kafka group's topics are the
        # ones it committed on: commit one record of the second topic too.
        consumer.commit([r for r in records if r.topic == second][:1])

        rows = {row.topic: row for row in bus.group_lag(group)}

    assert set(rows) == {first, second}
    assert (rows[first].lag, rows[second].lag) == (0, 4)
    assert (rows[first].committed, rows[second].committed) == (3, 1)


def test_group_state_and_listing(bus, topic, unique):
    group = unique("g")
    bus.publish(topic, b"x")

    with bus.consumer(group, [topic]) as consumer:
        consumer.commit(consume(consumer, 1))

        info = bus.describe_group(group)
        assert (info.group, info.state, info.members, info.topics) == (group, "Stable", 1, (topic,))
        listed = {g.group: g for g in bus.list_groups()}
        assert (listed[group].state, listed[group].members, listed[group].topics) == ("Stable", 1, (topic,))

    info = wait_until(lambda: (i := bus.describe_group(group)).state == "Empty" and i)
    assert (info.members, info.topics) == (0, (topic,))
    assert bus.describe_group(unique("never")).state == "Dead"


# Above the adapters' own timeouts (connect 2-3 s, request 5 s), far below what the client
# libraries would do left to their defaults (kafka-python retries for up to 60 s; redis-py has no timeout).
HANG_AFTER_S = 15.0


@pytest.mark.parametrize("kind", ["kafka", "redis"])
def test_closed_port_raises_bus_unavailable_instead_of_retrying(kind):
    port = broker.free_port()  # free: nothing listens there
    options = {"bootstrap_servers": f"127.0.0.1:{port}"} if kind == "kafka" else {"url": f"redis://127.0.0.1:{port}/0"}
    bus = open_bus(kind, **options)
    try:
        calls = {
            "ping": bus.ping,
            "publish": lambda: bus.publish("t", b"x"),
            "list_topics": bus.list_topics,
            "end_offsets": lambda: bus.end_offsets("t"),
        }
        for name, call in calls.items():
            with pytest.raises(BusUnavailable) as caught:
                returns_within(call, HANG_AFTER_S, f"{name} on a closed port")
            assert caught.value.__cause__ is not None
        # A batch: every record refused, none tried for long (a redrive job's batch is 100).
        outcomes = returns_within(
            lambda: bus.publish_many([("t", b"x", None, None)] * 100), HANG_AFTER_S, "publish_many on a closed port"
        )
        assert len(outcomes) == 100 and all(isinstance(outcome, BusUnavailable) for outcome in outcomes)
    finally:
        returns_within(bus.close, HANG_AFTER_S, "close on a closed port")


@pytest.mark.parametrize("kind", ["kafka", "redis"])
def test_sends_on_a_closed_port_are_reported_as_bus_unavailable(kind):
    """Queued records that cannot be delivered make `send` or `flush` raise BusUnavailable, soon:
    more than a batch of them too (on Redis the send that fills a batch writes it)."""
    port = broker.free_port()
    options = {"bootstrap_servers": f"127.0.0.1:{port}"} if kind == "kafka" else {"url": f"redis://127.0.0.1:{port}/0"}
    bus = open_bus(kind, **options)

    def send_and_flush() -> None:
        for i in range(1200):
            bus.send("t", b"%d" % i)
        bus.flush()

    try:
        with pytest.raises(BusUnavailable) as caught:
            returns_within(send_and_flush, HANG_AFTER_S * 3, "send and flush on a closed port")
        assert caught.value.__cause__ is not None
    finally:
        returns_within(bus.close, HANG_AFTER_S, "close on a closed port")


# --------------------------------------------------------------------------- scans (the topic browser)
def _scanned(bus, topic, positions, newest_first, batch=3) -> list[bytes]:
    return [r.value for chunk in bus.scan(topic, positions, newest_first=newest_first, batch=batch) for r in chunk]


def test_scan_oldest_first_newest_first_and_continuing(bus, topic):
    values = [f"v{i}".encode() for i in range(7)]
    for value in values:
        bus.publish(topic, value, key=b"k")

    oldest = bus.scan_positions(topic, newest_first=False)
    newest = bus.scan_positions(topic, newest_first=True)
    assert _scanned(bus, topic, oldest, newest_first=False) == values
    assert _scanned(bus, topic, newest, newest_first=True) == values[::-1]

    # Stop after the third record, continue from its next position: the rest, nothing twice.
    for newest_first, expected in ((False, values), (True, values[::-1])):
        start = bus.scan_positions(topic, newest_first=newest_first)
        first = [r for chunk in bus.scan(topic, start, newest_first=newest_first, batch=2) for r in chunk][:3]
        after = {0: bus.next_position(first[-1], newest_first)}
        rest = _scanned(bus, topic, after, newest_first=newest_first)
        assert [r.value for r in first] + rest == expected


def test_scan_from_an_offset_and_from_a_time(bus, topic):
    published = [bus.publish(topic, f"early{i}".encode()) for i in range(3)]
    read_back = bus.read(topic, 0, published[-1].offset)[0]
    wait_until(lambda: time.time() * 1000 > read_back.timestamp_ms + 5, 5, "the clock to move on")
    boundary_ms = int(time.time() * 1000)
    wait_until(lambda: time.time() * 1000 > boundary_ms + 5, 5, "the clock to move on")
    late = [f"late{i}".encode() for i in range(4)]
    for value in late:
        bus.publish(topic, value)

    from_time = bus.scan_positions(topic, newest_first=False, from_time_ms=boundary_ms)
    assert _scanned(bus, topic, from_time, newest_first=False) == late
    from_offset = bus.scan_positions(topic, newest_first=False, from_offset=published[1].offset)
    assert _scanned(bus, topic, from_offset, newest_first=False) == [b"early1", b"early2", *late]
    future = bus.scan_positions(topic, newest_first=False, from_time_ms=boundary_ms + 3_600_000)
    assert _scanned(bus, topic, future, newest_first=False) == []


def test_oldest_first_scan_ends_where_the_topic_ended_when_it_began(bus, topic):
    for i in range(4):
        bus.publish(topic, f"before{i}".encode())
    scan = bus.scan(topic, bus.scan_positions(topic, newest_first=False), newest_first=False, batch=2)
    first = next(scan)
    bus.publish(topic, b"after")
    rest = [r.value for chunk in scan for r in chunk]
    assert [r.value for r in first] + rest == [f"before{i}".encode() for i in range(4)]


def test_scan_of_an_empty_or_missing_topic(bus, topic, unique):
    assert _scanned(bus, topic, bus.scan_positions(topic), newest_first=True) == []
    assert _scanned(bus, topic, bus.scan_positions(topic, newest_first=False), newest_first=False) == []
    with pytest.raises(UnknownTopic):
        bus.scan_positions(unique("missing"))
    with pytest.raises(UnknownTopic):
        bus.scan_positions(topic, partitions=[7])
    with pytest.raises(UnknownTopic):
        list(bus.scan(unique("missing"), {0: 0 if bus.kind == "kafka" else "-"}))


def test_a_scan_from_the_tail_positions_sees_only_later_records(bus, topic):
    bus.publish(topic, b"before")
    start = bus.tail_positions(topic)
    assert _scanned(bus, topic, start, newest_first=False) == []
    bus.publish(topic, b"after")
    assert _scanned(bus, topic, start, newest_first=False) == [b"after"]


def test_scans_cover_every_partition_in_order_within_each(bus, unique):
    name = unique("spread")
    bus.create_topic(name, partitions=3)
    try:
        sent = {f"v{i}".encode() for i in range(30)}
        for i in range(30):
            bus.publish(name, f"v{i}".encode(), key=f"key-{i}".encode())
        for newest_first in (True, False):
            start = bus.scan_positions(name, newest_first=newest_first)
            records = [r for chunk in bus.scan(name, start, newest_first=newest_first, batch=4) for r in chunk]
            assert {r.value for r in records} == sent and len(records) == 30
            for partition in {r.partition for r in records}:
                offsets = [r.offset for r in records if r.partition == partition]
                key = (lambda o: tuple(map(int, o.split("-")))) if bus.kind == "redis" else int
                assert offsets == sorted(offsets, key=key, reverse=newest_first)
        one = bus.scan_positions(name, newest_first=False, partitions=[0])
        assert {r.partition for chunk in bus.scan(name, one, newest_first=False) for r in chunk} <= {0}
    finally:
        bus.delete_topic(name)
