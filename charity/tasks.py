"""Celery tasks of ``charity``: thin and retry-aware. Each sweep calls one service; every ledger
call there carries an idempotency key derived from the campaign (and the period, the donation),
so a task run twice, or by beat and the embedded scheduler at once, moves nothing twice.
``now`` (ISO 8601) is for replays and tests; beat passes nothing."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.db import OperationalError

from . import services
from .models import Campaign

logger = logging.getLogger(__name__)


def _when(now: str | None) -> datetime | None:
    return datetime.fromisoformat(now) if now else None


def _progress(task):
    """celery-progress's recorder when a worker runs the task with a result backend (pages may
    follow it by id); nothing in-process (called directly or eagerly, there is no task id)."""
    request = getattr(task, "request", None)
    if (task is None or not getattr(request, "id", None) or getattr(request, "is_eager", True)
            or type(task.backend).__name__ == "DisabledBackend"):
        return None
    from celery_progress.backend import ProgressRecorder

    recorder = ProgressRecorder(task)
    return lambda current, total, label: recorder.set_progress(current, total, label)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def disburse_due_campaigns(now: str | None = None) -> int:
    """Automatic disbursement for campaigns inside their window and trigger period."""
    done = services.campaigns_disburse_due(now=_when(now))
    if done:
        logger.info("disbursed %d campaign pool(s) automatically", len(done))
    return len(done)


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
             retry_backoff_max=60, max_retries=5)
def close_ended_campaigns(self, now: str | None = None) -> dict[str, int]:
    """Close campaigns past their end (failed below the minimum, refund or roll by their rule),
    then refund every cancelled, failed or refunding campaign not yet fully refunded."""
    when = _when(now)
    closed = services.campaigns_close_due(now=when)
    reports = services.campaigns_refund_due(now=when, progress=_progress(self))
    return {"closed": len(closed), "refunded_campaigns": sum(1 for r in reports.values() if r.complete)}


@shared_task(bind=True, acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
             retry_backoff_max=60, max_retries=5)
def refund_campaign(self, campaign_id: int) -> dict[str, int]:
    """Refund one ended campaign's donors and sponsor (queued after a cancellation)."""
    campaign = Campaign.objects.select_related("charity").filter(pk=campaign_id).first()
    if campaign is None:
        logger.warning("refund_campaign: campaign %s is gone", campaign_id)
        return {}
    report = services.campaign_refund_all(campaign=campaign, progress=_progress(self))
    return {"total": report.total, "refunded": report.refunded, "refused": len(report.refused),
            "payment_refunds": report.payment_refunds}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def expire_group_fundings(now: str | None = None) -> int:
    """Refund every group funding past its deadline that did not reach its goal."""
    return len(services.groups_expire_due(now=_when(now)))
