"""Celery tasks of ``billing`` (docs/billing.md, "Automation"): thin; each calls one service
sweep, whose every ledger call carries an idempotency key derived from the request, so a task run
twice, or by beat and the embedded scheduler at once, records and bills nothing twice. ``now``
(ISO 8601) is for replays, simulations and tests; beat passes nothing."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.db import OperationalError

from . import services

logger = logging.getLogger(__name__)


def _when(now: str | None) -> datetime | None:
    return datetime.fromisoformat(now) if now else None


def _summary(report: services.SweepReport) -> dict[str, int]:
    return {"recorded": len(report.recorded), "unchanged": len(report.unchanged), "billed": len(report.billed),
            "waiting": len(report.waiting), "failed": len(report.failed)}


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def record_units(now: str | None = None) -> dict[str, int]:
    """Each station's closed slots since its watermark, and earlier slots late readings changed:
    units from the meters' signed readings (``initStationUnits``)."""
    report = services.units_record_due(now=_when(now))
    if report.recorded:
        logger.info("recorded units of %d station slot(s)", len(report.recorded))
    return _summary(report)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60, max_retries=5)
def bill_closed_slots(now: str | None = None) -> dict[str, int]:
    """Bill (``initStationBill``) every recorded slot with a frequency and no bill, or whose
    frequency or units changed since its bill; slots without a frequency wait."""
    report = services.slots_bill_due(now=_when(now))
    if report.billed:
        logger.info("billed %d station slot(s)", len(report.billed))
    return _summary(report)


# close_days (statements and dues per local day) comes after bill_closed_slots: see
# docs/billing.md, "Automation", and billing.scheduler.STEPS.
