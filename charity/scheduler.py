"""The embedded default's campaign scheduler (Celery beat runs the same tasks in the full
stack): a daemon thread runs ``charity.tasks``' periodic tasks in-process, one pass a minute.
``step`` is one pass, for tests."""

from __future__ import annotations

import logging
import threading

from gridcoin.background import start_periodic

logger = logging.getLogger(__name__)


def step() -> None:
    from . import tasks

    for task in (tasks.disburse_due_campaigns, tasks.close_ended_campaigns, tasks.expire_group_fundings):
        try:
            task()  # calling a task object runs its body here, as the worker would
        except Exception:  # one sweep's failure must not stop the others
            logger.exception("%s failed", task.name)


def start_background_scheduler() -> threading.Event:
    return start_periodic("campaigns", step)
