"""The topic browser's live tail: ONE reader per (bus, topic) in this process, fanned out to every socket.

Where it runs: in the web (Daphne) process that holds the sockets, in a daemon thread per
tailed topic, not in a Celery worker or eventhub/background.py's loops. A tail lives
exactly as long as somebody watches: the first socket on a topic starts its reader
(`join`), the last one to leave stops it (`leave`), and only this process knows its own
sockets. Each reader sends what it reads to a channel-layer group named after this
process and the topic (`group_name`), so with several web processes each fans out to its
own sockets only and no record reaches a socket twice. Filtering, pausing and the
per-socket rate limit are the socket's own (eventstore/consumers.py): a reader reads
every record once, whatever the number of tabs.

A reader starts at the topic's end (`Bus.tail_positions`) and, every POLL_S, scans
oldest-first from where it stopped to the end (`Bus.scan`), with its own bus client.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from typing import Any

from eventhub import connections
from eventhub.bus import BusError, Record, open_bus
from eventhub.sockets import send_to_group

log = logging.getLogger(__name__)

POLL_S = 0.5
RETRY_S = 2.0
CHUNK = 100  # records per channel-layer message
VALUE_MAX = 256 * 1024  # bytes of a value sent on to the sockets (filters see this much)
_PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

_lock = threading.Lock()
_readers: dict[tuple[str, str], _Reader] = {}


def group_name(kind: str, topic: str) -> str:
    """A channel-layer group name (ASCII, < 100 characters) for this process and topic."""
    digest = hashlib.sha256(f"{kind}\x00{topic}".encode("utf-8", "replace")).hexdigest()[:32]
    return f"browse.tail.{_PROCESS}.{digest}"


def join(kind: str, topic: str) -> str:
    """One more socket watches the topic: start its reader if it is the first. Returns the group."""
    with _lock:
        reader = _readers.get((kind, topic))
        if reader is None or not reader.is_alive():
            reader = _readers[(kind, topic)] = _Reader(kind, topic)
            reader.start()
        reader.watchers += 1
    return group_name(kind, topic)


def wait_ready(kind: str, topic: str, timeout_s: float = 10.0) -> bool:
    """Block until the topic's reader knows where the topic ends: records written after this are tailed."""
    with _lock:
        reader = _readers.get((kind, topic))
    return reader is not None and reader.ready.wait(timeout_s)


def leave(kind: str, topic: str) -> None:
    """One socket less: the last one stops the reader."""
    with _lock:
        reader = _readers.get((kind, topic))
        if reader is None:
            return
        reader.watchers -= 1
        if reader.watchers <= 0:
            reader.stop.set()
            del _readers[(kind, topic)]


def readers() -> dict[tuple[str, str], int]:
    """{(bus, topic): sockets watching} of the readers running in this process (for tests and the docs)."""
    with _lock:
        return {key: reader.watchers for key, reader in _readers.items()}


def record_to_message(record: Record) -> dict[str, Any]:
    """A record as the channel layer carries it (msgpack takes bytes; values over VALUE_MAX are cut)."""
    value = record.value
    return {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": record.key,
        "value": value[:VALUE_MAX] if value is not None else None,
        "size": len(value) if value is not None else 0,
        "headers": [[name, data] for name, data in record.headers],
    }


def message_to_record(topic: str, data: dict[str, Any]) -> Record:
    return Record(
        topic=topic,
        partition=data["partition"],
        offset=data["offset"],
        key=data["key"],
        value=data["value"],
        headers=[(name, value) for name, value in data["headers"]],
        timestamp_ms=data["timestamp_ms"],
    )


class _Reader(threading.Thread):
    """Reads one topic from its end on, while `stop` is not set, and sends each batch to the group."""

    def __init__(self, kind: str, topic: str) -> None:
        super().__init__(name=f"browse-tail-{kind}-{topic[:40]}", daemon=True)
        self.kind, self.topic = kind, topic
        self.group = group_name(kind, topic)
        self.watchers = 0
        self.stop = threading.Event()
        self.ready = threading.Event()  # set once the start positions are known

    def run(self) -> None:
        bus = open_bus(self.kind, **connections.bus_options(self.kind))
        positions = None
        try:
            while not self.stop.is_set():
                try:
                    if positions is None:
                        positions = bus.tail_positions(self.topic)
                        self.ready.set()
                    self._read_new(bus, positions)
                except BusError as error:
                    log.info("tail of %s %s: %s: %s", self.kind, self.topic, type(error).__name__, error)
                    self._send({"type": "browse.tail_state", "state": f"the {self.kind} bus does not answer"})
                    self.stop.wait(RETRY_S)
                    continue
                self.stop.wait(POLL_S)
        finally:
            bus.close()

    def _read_new(self, bus, positions: dict) -> None:
        for records in bus.scan(self.topic, dict(positions), newest_first=False):
            for record in records:
                positions[record.partition] = bus.next_position(record, newest_first=False)
            for at in range(0, len(records), CHUNK):
                chunk = records[at : at + CHUNK]
                self._send({"type": "browse.tail", "records": [record_to_message(r) for r in chunk]})
            if self.stop.is_set():
                return

    def _send(self, message: dict[str, Any]) -> None:
        send_to_group(self.group, message)
