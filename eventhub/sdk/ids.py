"""Event ids: random (version 4) UUIDs, drawn from the OS's random source 256 at a time.

`uuid.uuid4()` asks the kernel for 16 random bytes per id; on some machines (sandboxes,
VMs) that system call costs more than the rest of publishing an event. The same bytes,
fetched in batches, make the same ids: 122 random bits each, from `os.urandom`.

A batch is also formatted at once (version and variant bits set with one mask over the
whole batch, one hex conversion), so drawing an id is a `list.pop`: atomic, so threads
need no lock and never get the same id.
"""

from __future__ import annotations

import os

_BATCH = 256
_ID_BYTES = 16
# Per id: clear the version nibble and the two variant bits, then set version 4 and RFC 4122.
_KEEP = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * _BATCH, "big")
_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * _BATCH, "big")

_pool: list[str] = []


def _draw_batch() -> list[str]:
    raw = (int.from_bytes(os.urandom(_ID_BYTES * _BATCH), "big") & _KEEP) | _SET
    text = raw.to_bytes(_ID_BYTES * _BATCH, "big").hex()
    return [
        f"{text[at : at + 8]}-{text[at + 8 : at + 12]}-{text[at + 12 : at + 16]}-{text[at + 16 : at + 20]}-{text[at + 20 : at + 32]}"
        for at in range(0, len(text), 2 * _ID_BYTES)
    ]


def new_event_id() -> str:
    """A random UUID as text (8-4-4-4-12 lower-case hex), like `str(uuid.uuid4())`."""
    try:
        return _pool.pop()
    except IndexError:
        # Two threads may refill at once: each batch is fresh randomness, so both just add ids.
        _pool.extend(_draw_batch())
        return new_event_id()


def _forget_after_fork() -> None:
    # A forked child must not hand out the ids its parent still has in its pool.
    _pool.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
