"""The monitor's long-running loop, `run_collector(stop: threading.Event)`.

It runs in the `run_monitor` process (with Redis) or in daemon threads of the
web process (without it, see `eventhub.background.LOOPS`).
"""

from __future__ import annotations

import logging
import threading

from django.db import connection

from eventhub import background

log = logging.getLogger(__name__)

BUS_KINDS = ("kafka", "redis")


def run_collector(stop: threading.Event) -> None:
    """One collector loop per bus, each in its own thread, until `stop` is set.

    Separate threads so a broker that hangs does not stall the other bus. Each
    loop collects only while it holds its bus's lease (see monitor.collector).
    """
    from monitor.collector import Collector

    threads = []
    for kind in BUS_KINDS:
        collector = Collector(kind, history_thread=True)
        thread = threading.Thread(
            target=_guarded, args=(collector.run, stop, kind), name=f"collector-{kind}", daemon=True
        )
        thread.start()
        threads.append(thread)
    background.settle_heap()
    for thread in threads:
        thread.join()


def _guarded(loop, stop: threading.Event, kind: str) -> None:
    try:
        loop(stop)
    except Exception:
        log.exception("collector loop for %s died", kind)
    finally:
        connection.close()  # this thread's connection; the thread ends here
