"""Background work with Celery, or inside the web process when Redis is absent.

With Redis, Celery worker and beat run the periodic loops (collector, dead-letter
ingester) and the jobs (redrive). Without it, `make run` sets
EVENTHUB_WORKERS=inprocess and EVENTHUB_RUN_LOOPS=1 for the one web process,
which then runs the same loops in daemon threads. Code that starts work calls
`submit()` and does not care which.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connection, reset_queries, transaction

log = logging.getLogger(__name__)

# The long-running loops, each "module:function" taking a threading.Event and running
# until it is set. Named by string so that this module imports no app.
LOOPS = {
    "collector": "monitor.loops:run_collector",
    "ingester": "deadletters.ingest:run_forever",
    "redrive-resumer": "deadletters.redrive:run_resumer",
    "indexer": "eventstore.indexer:run_forever",
    "flow-checks": "eventstore.flow_checks:run_forever",
}

_stop = threading.Event()
_started = False
_settled = False
_lock = threading.Lock()


GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Take what the process has built so far (Django, the apps, the clients) out of the
    garbage collector's sight, once per process; the long-running loops call it once set up.

    A loop that allocates per record triggers full collections every few batches, and each
    walked the whole process, Django included: without this, the indexer took 112 µs of CPU
    per row instead of 100, the dead-letter ingester 178-181 instead of 165-168 (the bench,
    docs/performance.md). Frozen objects are still freed when nothing refers to them; only a
    cycle among them would stay.

    Then the youngest generation is collected every GC_YOUNG_THRESHOLD allocations instead
    of 700: a collector tick at 5,000 group x topic rows allocates a few hundred thousand
    objects and almost none of them in cycles; at Python's default it ran about 50
    collections a tick, 0.13 s of its CPU, against 0.045 s at this threshold (broker-free
    `Collector._part`, 25 ticks).
    """
    global _settled
    with _lock:
        if _settled:
            return
        _settled = True
        gc.collect()
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def between_steps() -> None:
    """What a long-running loop does before each step, as Django does around a request.

    Drop this thread's database connection when it is broken or past its age, and forget
    the queries logged so far. Under DEBUG (`make run`) Django logs every query, up to 9,000
    per thread, and empties the log only when a request starts: the collector and ingester
    process grew by 1 MiB a minute for half an hour before its logs were full.
    """
    close_old_connections()
    reset_queries()


def loop(name: str) -> Callable[[threading.Event], None]:
    """The function of one of LOOPS."""
    module, _, function = LOOPS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def start_if_configured() -> None:
    """Start the in-process loops once, when this process is asked to run them."""
    global _started
    if _started or settings.EVENTHUB_WORKERS != "inprocess" or os.environ.get("EVENTHUB_RUN_LOOPS") != "1":
        return
    _started = True
    for name in LOOPS:
        threading.Thread(target=_guarded, args=(name, loop(name)), name=name, daemon=True).start()
        log.info("started in-process loop %s", name)


def _guarded(path: str, loop: Callable) -> None:
    try:
        loop(_stop)
    except Exception:
        log.exception("in-process loop %s died", path)
    finally:
        # A thread's connection dies with the thread: close it rather than leave it to the server.
        connection.close()


def submit(task, *args) -> None:
    """Run a Celery task after the current transaction commits, or in a thread."""
    if settings.EVENTHUB_WORKERS == "celery":
        transaction.on_commit(lambda: task.delay(*args))
    else:
        transaction.on_commit(lambda: threading.Thread(target=_run_inline, args=(task, args), daemon=True).start())


def _run_inline(task, args) -> None:
    try:
        task.run(*args)
    except Exception:
        log.exception("in-process task %s failed", task.name)
    finally:
        connection.close()
