"""Celery tasks of ``payments``: thin, retry-aware, taking ids. Reconciliation is idempotent by
construction (a run's steps are claimed by compare-and-swap; every credit goes through the
payment's unique claim), so a task delivered twice changes nothing."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError

from . import refunds
from .reconciliation import services
from .reconciliation.models import ReconciliationRun
from .reconciliation.progress import RunProgressRecorder

logger = logging.getLogger(__name__)
STALE_RUN = timedelta(days=1)


@shared_task(bind=True, ignore_result=False, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
             retry_backoff_max=60, max_retries=5)
def reconcile_payments(self, run_id: int, take_over: bool = False) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Reconcile one stored statement (a ``ReconciliationRun``); returns its counts per outcome.
    ``take_over``: resume a run whose own task was lost (started over a day ago and unfinished)."""
    if not ReconciliationRun.objects.filter(pk=run_id).exists():
        logger.warning("reconcile_payments: run %s is gone", run_id)
        return {}
    recorder = RunProgressRecorder(run_id=run_id, task=self)
    run = services.reconciliation_run_execute(run_id=run_id, token=self.request.id or "", progress=recorder,
                                              take_over_after=STALE_RUN if take_over else None)
    return dict(run.counts)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def reconcile_statements_inbox(source: str, scope: str = "") -> list[int]:
    """Beat's daily entry per bank and processor: every new statement in the inbox becomes a run,
    each reconciled by its own task; a run left unfinished by a lost task a day ago is resumed."""
    run_ids = services.reconciliation_inbox_collect(source=source, scope=scope)
    for run_id in run_ids:
        reconcile_payments.delay(run_id, take_over=True)
    return run_ids


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def payment_refund_send(refund_id: int) -> str:
    """One attempt at sending a requested refund (see payments/refunds.py): delivered twice, the
    second finds the row taken or sent; a failed attempt is retried by the sweep."""
    return refunds.refund_send(refund_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def payment_refunds_sweep() -> int:
    """Beat's entry: send the refunds still requested whose lease or back-off has passed."""
    return refunds.refunds_send_due()
