"""The embedded default has no Celery beat: each app's periodic sweep runs in a daemon thread
instead, one pass per interval. A pass that fails is logged and the next one runs anyway (a
transient database error must not end the sweep), and the thread's connection is closed after
every pass so it never holds one idle between passes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connection

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
_started: dict[str, threading.Event] = {}
_lock = threading.Lock()


def run_periodically(name: str, step: Callable[[], object], stopped: threading.Event,
                     interval: float = INTERVAL_SECONDS) -> None:
    """Call ``step`` every ``interval`` seconds until ``stopped`` is set (the thread's body)."""
    while not stopped.wait(interval):
        try:
            step()
        except Exception:
            logger.exception("%s pass failed", name)
        finally:
            connection.close()


def start_periodic(name: str, step: Callable[[], object], interval: float = INTERVAL_SECONDS) -> threading.Event:
    """Start the thread ``gridcoin-<name>`` once per process; returns the event that stops it."""
    with _lock:
        if name not in _started:
            stopped = _started[name] = threading.Event()
            threading.Thread(target=run_periodically, args=[name, step, stopped, interval],
                             name=f"gridcoin-{name}", daemon=True).start()
        return _started[name]
