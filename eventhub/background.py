"""Background work with Celery, or inside the web process when Redis is absent.

With Redis, Celery worker and beat run the periodic loops (collector, dead-letter
ingester) and the jobs (redrive). Without it, `make run` sets
EVENTHUB_WORKERS=inprocess and EVENTHUB_RUN_LOOPS=1 for the one web process,
which then runs the same loops in daemon threads. Code that starts work calls
`submit()` and does not care which.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction

log = logging.getLogger(__name__)

# "module:function" taking a threading.Event; each runs until the event is set.
LOOPS = (
    "monitor.loops:run_collector",
    "monitor.loops:run_ingester",
    "monitor.redrive:run_resumer",
)

_stop = threading.Event()
_started = False


def _resolve(path: str) -> Callable:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def start_if_configured() -> None:
    """Start the in-process loops once, when this process is asked to run them."""
    global _started
    if _started or settings.EVENTHUB_WORKERS != "inprocess" or os.environ.get("EVENTHUB_RUN_LOOPS") != "1":
        return
    _started = True
    for path in LOOPS:
        try:
            loop = _resolve(path)
        except (ImportError, AttributeError) as error:
            log.warning("background loop %s unavailable: %s", path, error)
            continue
        threading.Thread(target=_guarded, args=(path, loop), name=path, daemon=True).start()
        log.info("started in-process loop %s", path)


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
