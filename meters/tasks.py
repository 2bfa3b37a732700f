"""Celery tasks of ``meters``: thin, retry-aware; the ledger's idempotency keys make reruns safe."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from . import services

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=5)
def settle_due_windows() -> int:
    """Return the unspent coins of ended funded windows (scheduled every minute by beat)."""
    results = services.windows_settle_due()
    settled = sum(1 for r in results if r.ok and not r.replayed)
    if settled:
        logger.info("settled %d ended window(s)", settled)
    return settled
