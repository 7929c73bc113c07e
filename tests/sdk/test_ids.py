"""Event ids: version 4 UUIDs from batched OS randomness, unique across threads and forks."""

from __future__ import annotations

import os
import threading
import uuid

from eventhub.sdk.ids import new_event_id


def test_ids_are_random_version_4_uuids_as_text():
    ids = [new_event_id() for _ in range(2000)]
    parsed = [uuid.UUID(text) for text in ids]
    assert all(str(u) == text for u, text in zip(parsed, ids, strict=True))
    assert {u.version for u in parsed} == {4} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)


def test_threads_never_share_an_id():
    seen: list[str] = []

    def draw() -> None:
        seen.extend(new_event_id() for _ in range(1000))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 4000


def test_a_forked_child_draws_other_ids_than_its_parent():
    new_event_id()  # the parent now holds a pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        os.write(write, " ".join(new_event_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 10_000).decode().split()
    os.waitpid(pid, 0)
    parent = [new_event_id() for _ in range(10)]
    assert len(child) == 10 and not set(child) & set(parent)
