"""Waiting with a deadline, never a bare sleep: `wait_until` for a condition, `returns_within` for a call.

    job = wait_until(lambda: RedriveJob.objects.filter(pk=pk, state="done").first(), 30, "the job to finish")
    with pytest.raises(BusUnavailable):
        returns_within(bus.ping, 15, "ping on a closed port")

`wait_until` lives in bench/common.py, shared with the benchmarks (which wait
for the same processes): bench/ must not import tests/, while tests already import bench.

A deadline here guards against a hang (a lost timeout, a retry loop left on a
client library's defaults); it is never a speed limit. How fast something is
belongs in bench/, where it is measured next to a reference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from bench.common import wait_until

__all__ = ["returns_within", "wait_until"]

T = TypeVar("T")


def returns_within(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """Return what `call()` returns, or raise what it raises; AssertionError while it still blocks
    after `timeout_s` (the call goes on in a daemon thread, abandoned)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the caller as is
            outcome["error"] = error

    thread = threading.Thread(target=run, name="returns-within", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise AssertionError(f"{what}: still blocked after {timeout_s:g}s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
