"""Celery tasks of ``notifications``: one per delivery (a notification on one channel), thin and
retry-aware; the delivery row makes a retry or a duplicate task send nothing twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services

MAX_RETRIES = services.MAX_ATTEMPTS - 1


@shared_task(bind=True, autoretry_for=(services.DeliveryRetry, OperationalError), retry_backoff=5,
             retry_backoff_max=600, retry_jitter=True, max_retries=MAX_RETRIES)
def deliver_notification(self, delivery_id: int) -> str:
    """Send delivery ``delivery_id`` (e-mail or push); a missing row is nothing to do."""
    return services.delivery_send(delivery_id=delivery_id, final_attempt=self.request.retries >= MAX_RETRIES)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=30, max_retries=3)
def resend_due_deliveries() -> int:
    """Queue again deliveries whose task was lost (scheduled every minute by beat)."""
    return services.deliveries_resend_due()
