"""Event ids: random (version 4) UUIDs, drawn from the OS's random source 256 at a time.

`uuid.uuid4()` asks the kernel for 16 random bytes per id; on some machines (sandboxes,
VMs) that system call costs more than the rest of publishing an event. The same bytes,
fetched in batches, make the same ids: 122 random bits each, from `os.urandom`.
"""

from __future__ import annotations

import os
import threading

_BATCH = 256
_lock = threading.Lock()
_pool = b""
_at = 0


def new_event_id() -> str:
    """A random UUID as text (8-4-4-4-12 lower-case hex), like `str(uuid.uuid4())`."""
    global _pool, _at
    with _lock:
        if _at >= len(_pool):
            _pool, _at = os.urandom(16 * _BATCH), 0
        raw = bytearray(_pool[_at : _at + 16])
        _at += 16
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _forget_after_fork() -> None:
    # A forked child must not hand out the ids its parent still has in its pool.
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget_after_fork)
