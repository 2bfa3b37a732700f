"""Starting a run's task: on a Celery worker in the full stack; in-process in the embedded
default (no broker), on a thread when the web process runs its background threads, so the page
shows the progress bar instead of waiting for the whole run."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import connection


def _run_here(run_id: int) -> None:
    from payments.tasks import reconcile_payments

    try:
        reconcile_payments.apply(args=[run_id], throw=False)
    finally:
        connection.close()


def reconciliation_start(run_id: int) -> None:
    from payments.tasks import reconcile_payments

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        reconcile_payments.delay(run_id)
    elif settings.GRIDCOIN_BACKGROUND_SCHEDULER:
        threading.Thread(target=_run_here, args=[run_id], name=f"reconcile-{run_id}", daemon=True).start()
    else:
        reconcile_payments.apply(args=[run_id], throw=True)
