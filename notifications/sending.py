"""Sending a delivery (a notification on one channel), the body of the Celery task, and the
sweep that queues again deliveries whose task was lost. Part of the write path that
``notifications.services`` gathers."""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.languages import stored_language

from . import push, selectors, texts
from .models import Channel, Delivery, DeliveryStatus, Notification, PushSubscription

logger = logging.getLogger(__name__)

# A claimed delivery whose task died without finishing is taken over after this long.
DELIVERY_CLAIM_TIMEOUT = timedelta(minutes=10)
# Attempts per delivery, whoever makes them (the task's retries, the sweep after a lost task).
MAX_ATTEMPTS = 7
RESEND_FIRST_WAIT = timedelta(seconds=30)
RESEND_MAX_WAIT = timedelta(hours=1)
# A delivery never attempted this long after it was recorded lost its task (a broker outage).
UNSENT_GRACE = timedelta(minutes=5)


class DeliveryRetry(Exception):
    """The channel failed for now (network, SMTP, a push service busy): the task retries."""


def delivery_enqueuer(delivery_id: int):
    def enqueue_delivery() -> None:  # a named function: Django logs a failing hook by its name
        from .tasks import deliver_notification

        deliver_notification.delay(delivery_id)
    return enqueue_delivery


def _claim(delivery_id: int) -> Delivery | None:
    """Take the delivery for this task: None if it is done, or another task holds it."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update().select_related("notification__user")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED):
            return None
        if (delivery.status == DeliveryStatus.SENDING and delivery.claimed_at is not None
                and delivery.claimed_at > now - DELIVERY_CLAIM_TIMEOUT):
            return None
        if delivery.attempts >= MAX_ATTEMPTS:  # every attempt ended without an answer (tasks that died)
            delivery.status, delivery.last_error = DeliveryStatus.FAILED, f"gave up after {delivery.attempts} attempts"
            delivery.save(update_fields=["status", "last_error"])
            return None
        delivery.status, delivery.claimed_at, delivery.attempts = DeliveryStatus.SENDING, now, delivery.attempts + 1
        delivery.save(update_fields=["status", "claimed_at", "attempts"])
    return delivery


def _finish(delivery: Delivery, status: str, error: str = "") -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, last_error=error[:2000], sent_to=delivery.sent_to,
        sent_at=timezone.now() if status == DeliveryStatus.SENT else None)


def delivery_send(*, delivery_id: int, final_attempt: bool) -> str:
    """Send one delivery on its channel, at most once: the row is claimed first and marked when
    done, so a duplicate or late task finds it taken or finished. A passing failure leaves it
    pending and raises DeliveryRetry (on the last attempt it is marked failed instead).
    Returns the delivery's status afterwards ("" when this task had nothing to do)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return ""
    final_attempt = final_attempt or delivery.attempts >= MAX_ATTEMPTS
    notification = delivery.notification
    if not selectors.preferences_for(notification.user)[(notification.kind, delivery.channel)]:
        _finish(delivery, DeliveryStatus.SKIPPED, "turned off by the user before it was sent")
        return DeliveryStatus.SKIPPED
    send = _send_email if delivery.channel == Channel.EMAIL else _send_push
    try:
        # Written in the recipient's language (their stored choice), not the worker's.
        with translation.override(stored_language(notification.user) or settings.LANGUAGE_CODE):
            status = send(delivery)
    except DeliveryRetry as exc:
        _finish(delivery, DeliveryStatus.FAILED if final_attempt else DeliveryStatus.PENDING, str(exc))
        if final_attempt:
            logger.warning("giving up on delivery %s: %s", delivery.pk, exc)
            return DeliveryStatus.FAILED
        raise
    except Exception as exc:  # a bug or a misconfiguration: left to the sweep, which backs off
        _finish(delivery, DeliveryStatus.FAILED if final_attempt else DeliveryStatus.PENDING,
                f"{exc.__class__.__name__}: {exc}")
        raise
    return status


def resend_wait(attempts: int) -> timedelta:
    return min(RESEND_FIRST_WAIT * 2 ** max(attempts - 1, 0), RESEND_MAX_WAIT)


def deliveries_resend_due(*, now: datetime | None = None) -> int:
    """Queue again the deliveries whose task was lost: left pending after a failed attempt and
    not retried (the embedded default runs tasks in-process and cannot wait to retry), claimed
    by a task that died, or never attempted (the broker was down after commit). One step of
    the sweep that beat (or the embedded scheduler thread) runs every minute."""
    now = now or timezone.now()
    due = []
    for pk, status, attempts, claimed_at, created_at in (
            Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
            .values_list("pk", "status", "attempts", "claimed_at", "notification__created_at")):
        if status == DeliveryStatus.SENDING:
            stale = claimed_at is None or claimed_at <= now - DELIVERY_CLAIM_TIMEOUT
        elif attempts == 0:
            stale = created_at <= now - UNSENT_GRACE
        else:
            stale = claimed_at is None or claimed_at <= now - resend_wait(attempts)
        if stale:
            due.append(pk)
    for pk in due:
        try:
            delivery_enqueuer(pk)()
        except Exception:  # the sweep goes on; this delivery is due again next time
            logger.warning("delivery %s could not be sent again", pk, exc_info=True)
    return len(due)


def _send_email(delivery: Delivery) -> str:
    notification = delivery.notification
    user = notification.user
    if not user.email:
        _finish(delivery, DeliveryStatus.SKIPPED, "the user has no e-mail address")
        return DeliveryStatus.SKIPPED
    context = {"user": user, "title": texts.title(notification.kind, notification.data),
               "body": texts.body(notification.kind, notification.data), "link": _absolute(notification.url),
               "settings_link": _absolute(reverse("notifications:settings"))}
    subject = " ".join(render_to_string("notifications/email/subject.txt", context).split())
    message = EmailMultiAlternatives(subject=subject, body=render_to_string("notifications/email/body.txt", context),
                                     to=[user.email], headers={"X-GridCoin-Event": notification.event_key})
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryRetry(f"e-mail not sent: {exc.__class__.__name__}: {exc}") from exc
    _finish(delivery, DeliveryStatus.SENT)
    return DeliveryStatus.SENT


def _absolute(path: str) -> str:
    base = settings.GRIDCOIN_PUBLIC_URL.rstrip("/")
    return f"{base}{path}" if base and path.startswith("/") else path


def push_payload(notification: Notification) -> dict[str, Any]:
    return {"id": notification.pk, "event": notification.event_key, "kind": notification.kind,
            "title": texts.title(notification.kind, notification.data),
            "body": texts.body(notification.kind, notification.data), "url": notification.url or "/notifications/"}


def _send_push(delivery: Delivery) -> str:
    """To every subscription of the user not yet reached by this delivery; one that is gone
    (404/410) is removed."""
    notification = delivery.notification
    subscriptions = list(selectors.push_subscriptions_of(notification.user_id).exclude(pk__in=delivery.sent_to))
    if not subscriptions and not delivery.sent_to:
        _finish(delivery, DeliveryStatus.SKIPPED, "no push subscription")
        return DeliveryStatus.SKIPPED
    payload = push_payload(notification)
    errors = []
    for sub in subscriptions:
        try:
            push.push_send(push.Subscription(sub.endpoint, sub.p256dh, sub.auth), payload)
        except push.PushGone:
            PushSubscription.objects.filter(pk=sub.pk).delete()
            errors.append(f"subscription {sub.pk} gone, removed")
        except push.PushRefused as exc:
            errors.append(f"subscription {sub.pk}: {exc}")
        except push.PushTransient as exc:
            # What reached other subscriptions stays recorded: the retry skips them.
            Delivery.objects.filter(pk=delivery.pk).update(sent_to=delivery.sent_to)
            raise DeliveryRetry(str(exc)) from exc
        else:
            delivery.sent_to = [*delivery.sent_to, sub.pk]
            Delivery.objects.filter(pk=delivery.pk).update(sent_to=delivery.sent_to)
    status = DeliveryStatus.SENT if delivery.sent_to else DeliveryStatus.FAILED
    _finish(delivery, status, "; ".join(errors))
    return status
