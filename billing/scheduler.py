"""The embedded default's billing scheduler (Celery beat runs the same tasks in the full stack):
a daemon thread runs ``billing.tasks``' periodic tasks in-process, one pass a minute, in order
(units before bills, bills before a day is closed). ``step`` is one pass, for tests."""

from __future__ import annotations

import logging
import threading

from gridcoin.background import start_periodic

logger = logging.getLogger(__name__)

# Task names in ``billing.tasks``, in the order one pass runs them.
STEPS = ("record_units", "bill_closed_slots")


def step(now: str | None = None) -> None:
    from . import tasks

    for name in STEPS:
        task = getattr(tasks, name)
        try:
            task(now=now)  # calling a task object runs its body here, as the worker would
        except Exception:  # one sweep's failure must not stop the next pass
            logger.exception("%s failed", task.name)


def start_background_scheduler() -> threading.Event:
    return start_periodic("billing", step)
