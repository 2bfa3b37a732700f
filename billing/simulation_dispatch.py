"""Starting a simulated day's run: on a Celery worker in the full stack; in the embedded default
(no broker) on a thread when the web process runs its background threads, so the page shows the
progress bar instead of waiting for the whole day."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import connection


def _run_here(run_id: int) -> None:
    from .tasks import simulate_day

    try:
        simulate_day.apply(args=[run_id], throw=False)
    finally:
        connection.close()


def simulation_start(run_id: int) -> None:
    from .tasks import simulate_day

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        simulate_day.delay(run_id)
    elif settings.GRIDCOIN_BACKGROUND_SCHEDULER:
        threading.Thread(target=_run_here, args=[run_id], name=f"simulate-day-{run_id}", daemon=True).start()
    else:
        simulate_day.apply(args=[run_id], throw=True)
