"""Redis-only behaviour: the entry encoding, pending entries, claims, nil lag."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from eventhub.bus import BusError, open_bus, redis_streams
from eventhub.bus.redis_streams import RELEASED
from tests.bus import consume
from tests.waiting import returns_within, wait_until

ROOT = Path(__file__).resolve().parents[2]


def redis_bus(**options):
    return open_bus("redis", url=os.environ["REDIS_URL"], **options)


@pytest.fixture
def rbus():
    bus = redis_bus(claim_idle_ms=200, session_timeout_ms=500)
    yield bus
    bus.close()


@pytest.fixture
def raw():
    """A plain client whose XRANGE replies are left unparsed (redis-py would merge repeated fields)."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.set_response_callback("XRANGE", lambda response, **options: response)
    yield client
    client.close()


@pytest.fixture
def topic(rbus, unique):
    name = unique("stream")
    rbus.create_topic(name)
    return name


def test_entry_encoding(rbus, raw, topic):
    rbus.publish(
        topic, b"\x00value", key=b"\xffkey", headers=[("trace", b"\x00\xff\x10"), ("tag", b"a"), ("tag", b"b")]
    )
    rbus.publish(topic, None, key=b"gone")

    [(_id1, first), (_id2, tombstone)] = raw.execute_command("XRANGE", topic, "-", "+")

    assert first == [b"v", b"\x00value", b"k", b"\xffkey", b"h:trace", b"\x00\xff\x10", b"h:tag", b"a", b"h:tag", b"b"]
    assert tombstone == [b"k", b"gone"]


def test_foreign_entries_are_read_with_their_fields_as_headers(rbus, raw, topic, unique):
    raw.xadd(topic, {"payload": b'{"id": 1}', "v": b"body"})

    with rbus.consumer(unique("g"), [topic]) as consumer:
        [record] = consume(consumer, 1)

    assert (record.value, record.key, record.headers) == (b"body", None, [("payload", b'{"id": 1}')])
    assert record.delivery_count == 1
    assert record.offset == record.offset.strip() and "-" in record.offset


def test_send_reaches_the_stream_without_flush(rbus, topic):
    for i in range(10):
        rbus.send(topic, b"%d" % i)
    wait_until(lambda: rbus.end_offsets(topic) == {0: 10}, timeout_s=5)

    rbus.send(topic, b"later")  # the writer is idle now: one record must wake it
    wait_until(lambda: rbus.end_offsets(topic) == {0: 11}, timeout_s=5)


def test_sent_entries_are_encoded_as_published_ones(rbus, raw, topic):
    """`send` goes through the background writer's own packing; the entry must not differ."""
    headers = [("trace", bytearray(b"\x00\xff")), ("tag", memoryview(b"a")), ("tag", b"b"), ("caf\u00e9", b"")]
    rbus.publish(topic, b"\x00value", key=b"\xffkey", headers=headers)
    rbus.send(topic, b"\x00value", key=b"\xffkey", headers=headers)
    rbus.flush()

    [(_id1, published), (_id2, sent)] = raw.execute_command("XRANGE", topic, "-", "+")

    assert sent == published == [
        b"v", b"\x00value", b"k", b"\xffkey",
        b"h:trace", b"\x00\xff", b"h:tag", b"a", b"h:tag", b"b", "h:caf\u00e9".encode(), b"",
    ]  # fmt: skip


def test_an_entry_redis_refuses_fails_alone_and_is_reported(rbus, raw, topic, unique):
    """A reply that is an error is that entry's: the entries around it land, `flush` raises it,
    `publish_many` reports it in its place, and the connection reads on in step."""
    plain = unique("plain")
    raw.set(plain, b"not a stream")
    for i in range(3):
        rbus.send(topic, b"before %d" % i)
    rbus.send(plain, b"refused")
    for i in range(3):
        rbus.send(topic, b"after %d" % i)
    with pytest.raises(BusError, match="WRONGTYPE"):
        rbus.flush()
    rbus.flush()  # the failure was reported once

    outcomes = rbus.publish_many(
        [(topic, b"one", None, None), (plain, b"two", None, None), (topic, b"three", None, None)]
    )

    assert isinstance(outcomes[1], BusError) and "WRONGTYPE" in str(outcomes[1])
    assert [outcome.topic for outcome in (outcomes[0], outcomes[2])] == [topic, topic]
    values = [dict(zip(fields[::2], fields[1::2], strict=True))[b"v"] for _id, fields in raw.xrange(topic)]
    assert values == [b"before 0", b"before 1", b"before 2", b"after 0", b"after 1", b"after 2", b"one", b"three"]
    assert rbus.publish(topic, b"next").topic == topic


def test_full_batches_go_out_at_once_and_in_order(topic, raw):
    """The `send` that fills a batch sends it: with a linger far too long to matter, the full
    batches are in Redis before any flush; the rest follows on flush, all in send order."""
    bus = redis_bus(batch_size=100, linger_ms=60_000)
    try:
        for i in range(1050):
            bus.send(topic, b"%d" % i, key=b"k", headers=[("i", b"%d" % i)])
        wait_until(lambda: bus.end_offsets(topic)[0] >= 1000, timeout_s=5)
        bus.flush()
    finally:
        bus.close()

    entries = raw.execute_command("XRANGE", topic, "-", "+")
    assert [fields for _id, fields in entries] == [
        [b"v", b"%d" % i, b"k", b"k", b"h:i", b"%d" % i] for i in range(1050)
    ]


def test_a_quiet_sender_reads_every_reply_without_flush(topic):
    """Once the caller stops sending, the batches it left in flight are answered and counted
    within a few linger periods: a failure among them is known before `flush`, and the
    background thread goes back to sleep instead of waking every linger period."""
    bus = redis_bus(batch_size=100, linger_ms=2)
    try:
        for i in range(250):
            bus.send(topic, b"%d" % i)
        sender = bus._sender
        wait_until(lambda: sender._done == sender._queued == 250, timeout_s=5)
        assert bus.end_offsets(topic) == {0: 250}
    finally:
        bus.close()


def test_a_lost_connection_is_retried_and_nothing_is_lost(topic, raw):
    """Batches in flight on a connection Redis drops are sent again on a new one (at least
    once: an entry Redis wrote before the drop may appear twice), and flush succeeds."""
    bus = redis_bus(batch_size=50, linger_ms=60_000)
    try:
        for i in range(120):
            bus.send(topic, b"%d" % i)
        # Only the sender's connection: the Redis server is shared with the other test workers.
        host, port = bus._sender._connection._sock.getsockname()[:2]
        raw.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
        for i in range(120, 200):
            bus.send(topic, b"%d" % i)
        bus.flush()
    finally:
        bus.close()

    values = [dict(zip(fields[::2], fields[1::2], strict=True))[b"v"] for _id, fields in raw.xrange(topic)]
    assert list(dict.fromkeys(values)) == [b"%d" % i for i in range(200)]


@pytest.mark.parametrize(
    "args",
    [
        [b"XADD", b"orders", b"NOMKSTREAM", b"*", b"v", b"{}", b"k", b"o-1", b"h:ce_id", b"\x00\xff"],
        [b"XADD", "caf\u00e9".encode(), b"NOMKSTREAM", b"*", b"v", b"", b"h:empty", b""],
        [b"XADD", b"big", b"NOMKSTREAM", b"*", b"v", b"x" * 10_000],
    ],
)
def test_without_hiredis_commands_are_packed_to_the_same_bytes(args):
    import hiredis  # in requirements.txt: missing, this fails rather than skips

    assert redis_streams._python_pack(args) == hiredis.pack_command(tuple(args))


def test_a_record_needs_a_value_or_a_key(rbus, topic):
    with pytest.raises(ValueError):
        rbus.publish(topic, None)


def test_poll_asks_redis_to_block_no_longer_than_its_timeout(rbus, topic, unique, monkeypatch):
    """An empty poll(0.2) blocks in XREADGROUP for at most 200 ms, poll(0) not at all (BLOCK 0 would
    be forever): read from the commands the consumer sends, not from a clock."""
    reads = []
    execute = rbus.client.execute_command

    def recording(*args, **options):
        if args[0] == "XREADGROUP":
            reads.append(args[args.index("BLOCK") + 1] if "BLOCK" in args else None)
        return execute(*args, **options)

    monkeypatch.setattr(rbus.client, "execute_command", recording)
    with rbus.consumer(unique("g"), [topic]) as consumer:
        reads.clear()
        assert returns_within(lambda: consumer.poll(timeout_s=0.2), 10, "poll(timeout_s=0.2)") == []
        assert reads and all(block is None or 1 <= block <= 200 for block in reads), reads

        reads.clear()
        assert returns_within(lambda: consumer.poll(timeout_s=0), 10, "poll(timeout_s=0)") == []
        assert reads and all(block is None for block in reads), reads


def test_entries_of_a_silent_consumer_are_claimed_by_another(rbus, topic, unique):
    group = unique("g")
    for i in range(3):
        rbus.publish(topic, b"%d" % i)
    stuck = rbus.consumer(group, [topic], client_id="stuck")
    assert len(consume(stuck, 3)) == 3  # ...and never acked nor closed, like a hung worker

    with rbus.consumer(group, [topic], client_id="rescuer") as rescuer:
        claimed = consume(rescuer, 3, timeout_s=5)
        assert [r.value for r in claimed] == [b"0", b"1", b"2"]
        assert [r.delivery_count for r in claimed] == [2, 2, 2]
        assert sum(row.lag for row in rbus.lag(group, topic)) == 3
        rescuer.commit(claimed)

    assert sum(row.lag for row in rbus.lag(group, topic)) == 0


def test_a_restarted_consumer_gets_its_own_pending_entries_first(rbus, topic, unique):
    group = unique("g")
    bus = redis_bus()  # default claim_idle_ms: nothing is claimed by anyone else here
    try:
        for i in range(2):
            bus.publish(topic, b"old-%d" % i)
        before = bus.consumer(group, [topic], client_id="worker-1")
        assert len(consume(before, 2)) == 2  # then the process "restarts" without acking
        bus.publish(topic, b"new")

        with bus.consumer(group, [topic], client_id="worker-1") as after:
            again = consume(after, 3)
    finally:
        bus.close()

    assert [(r.value, r.delivery_count) for r in again] == [(b"old-0", 2), (b"old-1", 2), (b"new", 1)]


def test_close_hands_unacked_entries_back_and_leaves_the_group(rbus, topic, unique):
    group = unique("g")
    for i in range(4):
        rbus.publish(topic, b"%d" % i)
    with rbus.consumer(group, [topic], client_id="leaver") as leaver:
        leaver.commit(consume(leaver, 4)[:1])

    consumers = {c["name"]: c["pending"] for c in rbus.client.xinfo_consumers(topic, group)}
    assert consumers == {RELEASED.encode(): 3}
    assert rbus.describe_group(group).state == "Empty"

    with rbus.consumer(group, [topic]) as taker:
        taker.commit(consume(taker, 3))
    # Once drained, the placeholder consumer is tidied away.
    assert rbus.client.xinfo_consumers(topic, group) == []


def test_a_running_member_takes_over_what_a_closing_one_hands_back(topic, unique):
    group = unique("g")
    bus = redis_bus()  # default claim_idle_ms (30 s): the handover must not wait for it
    try:
        stayer = bus.consumer(group, [topic], client_id="stayer")
        assert stayer.poll(timeout_s=0) == []
        for i in range(4):
            bus.publish(topic, b"%d" % i)
        with bus.consumer(group, [topic], client_id="leaver") as leaver:
            leaver.commit(consume(leaver, 4)[:1])

        # Handed back by the leaver's close: within consume's 5 s, where a claim would wait 30 s.
        taken = consume(stayer, 3, timeout_s=5)
        assert [r.value for r in taken] == [b"1", b"2", b"3"]
        stayer.close()
    finally:
        bus.close()


def test_lag_when_redis_reports_none(rbus, raw, topic, unique):
    group = unique("g")
    ids = [rbus.publish(topic, b"%d" % i).offset for i in range(5)]
    with rbus.consumer(group, [topic]) as consumer:
        consumer.commit(consume(consumer, 2))
    raw.xdel(topic, ids[3])  # a tombstone after the group's position: Redis 7.0's lag turns nil
    assert {g["name"].decode(): g["lag"] for g in raw.xinfo_groups(topic)}[group] is None

    [row] = rbus.lag(group, topic)
    assert (row.end_offset, row.lag) == (5, 2)

    late = unique("late")
    raw.xgroup_create(topic, late, id="$")  # created by someone else, at the end
    rbus.publish(topic, b"after")
    assert {g["name"].decode(): g["entries-read"] for g in raw.xinfo_groups(topic)}[late] is None
    assert rbus.lag(late, topic)[0].lag == 1


def test_group_turns_empty_when_its_consumers_go_silent(rbus, topic, unique):
    group = unique("g")
    silent = rbus.consumer(group, [topic])
    silent.poll(timeout_s=0)
    assert rbus.describe_group(group).state == "Stable"

    wait_until(lambda: rbus.describe_group(group).state == "Empty", timeout_s=5)


def test_create_topic_refuses_a_key_of_another_type(rbus, raw, unique):
    name = unique("plain")
    raw.set(name, b"not a stream")
    with pytest.raises(BusError):
        rbus.create_topic(name)
    assert not rbus.topic_exists(name)


CHILD = textwrap.dedent(
    """
    import os, sys
    from eventhub.bus import open_bus
    bus = open_bus("redis", url=os.environ["REDIS_URL"])
    consumer = bus.consumer(sys.argv[1], [sys.argv[2]], client_id="victim")
    got = []
    while len(got) < 3:
        got += consumer.poll(0.5)
    print("got", len(got), flush=True)
    sys.stdin.read()  # hold the entries, unacked, until killed
    """
)


@pytest.mark.fault
def test_entries_of_a_sigkilled_consumer_are_redelivered(rbus, topic, unique):
    group = unique("g")
    for i in range(3):
        rbus.publish(topic, b"%d" % i)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, group, topic],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 15)
        assert ready and child.stdout.readline().strip() == b"got 3"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=5)

        with rbus.consumer(group, [topic]) as survivor:
            redelivered = consume(survivor, 3, timeout_s=5)
            survivor.commit(redelivered)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert [(r.value, r.delivery_count) for r in redelivered] == [(b"0", 2), (b"1", 2), (b"2", 2)]
    assert rbus.lag(group, topic)[0].lag == 0
    # The dead consumer, drained and idle, was reaped.
    wait_until(lambda: b"victim" not in {c["name"] for c in rbus.client.xinfo_consumers(topic, group)}, timeout_s=5)
