"""Refunds we send to the processor: the outbox (``PaymentRefund``), its sender, and how the
processor's later report of a refund is recognised as ours.

A refund is requested once per idempotency key (the same key returns the same row) and only
up to what is still refundable. A task sends it: it takes the row by a lease (a compare-and-swap
on ``next_attempt_at``), calls the processor with the row's idempotency key (Stripe dedupes on
it; the bank's return id is derived from it), and saves the answer. A crash between the call and
the save leaves the row ``requested`` with an expired lease: the sweep sends it again, and the
processor answers with the refund it already made (a Stripe retry also first looks the refund up
by its metadata, so Stripe's 24-hour idempotency window does not matter). The state machine
only moves requested → sent or requested → failed (a failure reported later by the processor
may also fail a sent one).

When the processor reports the refund back (Stripe's ``charge.refunded``, a bank's return),
``reversals.payment_reverse`` asks ``own_refunds_covering`` which of our refunds the report
carries out and links them (``echo``). For a charity payment the coins went back with
charity-pool's ``refund`` before the request, so nothing moves again; a seller payment's refund
is reversed on the ledger then, as any refund."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import Payment, PaymentRefund, PaymentState, Provider, RefundState

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a sender's hold on a row; far above the processor call's timeout
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
METADATA_KEY = "gridcoin_refund"  # on the Stripe refund: our idempotency key


class RefundRefused(ValueError):
    """The refund cannot be requested; the message says why (safe to show staff)."""


@dataclass(frozen=True)
class RefundInstruction:
    """What a sender needs: the payment at the processor, how much, and the key it dedupes on."""

    provider: str
    scope: str
    payment_id: str
    amount: int
    currency: str
    reason: str
    idempotency_key: str
    attempt: int  # 1 on the first try


@dataclass(frozen=True)
class SendResult:
    reference: str  # the processor's refund id
    declined: str = ""  # non-empty: the processor refused it for good, and why


Sender = Callable[[RefundInstruction], SendResult]


# --- requesting --------------------------------------------------------------------------------

def refundable(payment: Payment) -> int:
    """Minor units of ``payment`` not yet given back nor promised: its amount less what the
    processor reported reversed and our refunds it has not reported yet (failed ones excepted)."""
    promised = (payment.refunds.filter(echo__isnull=True).exclude(state=RefundState.FAILED)
                .aggregate(s=Sum("amount"))["s"] or 0)
    return payment.amount - payment.amount_reversed - promised


def _same(refund: PaymentRefund, *, provider: str, scope: str, payment_id: str, amount: int) -> PaymentRefund:
    p = refund.payment
    if (p.provider, p.scope, p.payment_id, refund.amount) != (provider, scope, payment_id, amount):
        raise RefundRefused(f"idempotency key {refund.idempotency_key!r} was used for a refund of {refund.amount} "
                            f"of payment {p.provider}:{p.scope}:{p.payment_id}")
    return refund


def payment_refund_request(*, provider: str, scope: str, payment_id: str, amount: int, reason: str,
                           idempotency_key: str) -> PaymentRefund:
    """Record a refund of ``amount`` minor units of a credited payment, once per
    ``idempotency_key`` (the same key returns the same row; reused for another refund it is
    refused), and send it after the caller's transaction commits. Refused (RefundRefused) for an
    unknown or uncredited payment, or beyond what is still refundable."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RefundRefused("the amount must be a positive integer of minor units")
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200:
        raise RefundRefused("the idempotency key must be 1-200 characters")
    match = {"provider": provider, "scope": scope, "payment_id": payment_id, "amount": amount}
    with transaction.atomic():
        existing = PaymentRefund.objects.select_related("payment").filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same(existing, **match)
        payment = Payment.objects.select_for_update().filter(provider=provider, scope=scope,
                                                             payment_id=payment_id).first()
        if payment is None:
            raise RefundRefused(f"no payment {payment_id!r} of {provider} {scope}".rstrip())
        # A concurrent request with this key held the payment's lock before us: its row is ours.
        existing = PaymentRefund.objects.select_related("payment").filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same(existing, **match)
        if payment.state != PaymentState.CREDITED:
            raise RefundRefused(f"payment {payment_id!r} is {payment.state}: only a credited payment is refunded")
        left = refundable(payment)
        if amount > left:
            raise RefundRefused(f"refunding {amount} would exceed payment {payment_id!r}: {left} of "
                                f"{payment.amount} {payment.currency} is still refundable")
        try:
            with transaction.atomic():
                refund = PaymentRefund.objects.create(payment=payment, amount=amount, reason=reason[:2000],
                                                      idempotency_key=idempotency_key,
                                                      next_attempt_at=timezone.now())
        except IntegrityError:  # the same key, requested concurrently for another payment
            existing = PaymentRefund.objects.select_related("payment").get(idempotency_key=idempotency_key)
            return _same(existing, **match)
        transaction.on_commit(lambda pk=refund.pk: _enqueue(pk), robust=True)
    return refund


def _enqueue(refund_id: int) -> None:
    from .tasks import payment_refund_send

    payment_refund_send.delay(refund_id)


# --- sending -----------------------------------------------------------------------------------

def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def _sender(provider: str) -> Sender:
    if provider == Provider.STRIPE:
        return stripe_refund_send
    path = getattr(settings, "PAYMENTS_BANK_REFUND_SENDER", "")
    if not path:
        return _no_bank_sender
    return import_string(path)


def _no_bank_sender(instruction: RefundInstruction) -> SendResult:
    raise RuntimeError("no bank refund sender is configured (PAYMENTS_BANK_REFUND_SENDER)")


def _take(refund_id: int) -> PaymentRefund | None:
    """Take the row for one attempt: only a requested row whose lease or back-off has passed."""
    now = timezone.now()
    taken = (PaymentRefund.objects.filter(pk=refund_id, state=RefundState.REQUESTED, next_attempt_at__lte=now)
             .update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE))
    if not taken:
        return None
    return PaymentRefund.objects.select_related("payment").get(pk=refund_id)


def _mark_sent(refund: PaymentRefund, reference: str) -> None:
    PaymentRefund.objects.filter(pk=refund.pk, state=RefundState.REQUESTED).update(
        state=RefundState.SENT, provider_reference=reference, sent_at=timezone.now(), last_error="")


def _mark_failed(refund_id: int, reason: str, *, reference: str = "") -> None:
    changes: dict[str, Any] = {"state": RefundState.FAILED, "failed_at": timezone.now(), "last_error": reason[:2000]}
    if reference:
        changes["provider_reference"] = reference
    PaymentRefund.objects.filter(pk=refund_id).exclude(state=RefundState.FAILED).update(**changes)


def _retry_later(refund: PaymentRefund, error: str) -> str:
    if refund.attempts >= MAX_ATTEMPTS:
        _mark_failed(refund.pk, f"gave up after {refund.attempts} attempts: {error}")
        return RefundState.FAILED
    PaymentRefund.objects.filter(pk=refund.pk, state=RefundState.REQUESTED).update(
        last_error=error[:2000], next_attempt_at=timezone.now() + _backoff(refund.attempts))
    return RefundState.REQUESTED


def refund_send(refund_id: int) -> str:
    """One attempt at sending a requested refund; returns its state afterwards (a row another
    sender holds, or one already sent or failed, is left alone)."""
    refund = _take(refund_id)
    if refund is None:
        state = PaymentRefund.objects.filter(pk=refund_id).values_list("state", flat=True).first()
        return state or "gone"
    payment = refund.payment
    if refund.echo_id is not None:  # the processor already reported it: it was made
        _mark_sent(refund, refund.provider_reference)
        return RefundState.SENT
    instruction = RefundInstruction(provider=payment.provider, scope=payment.scope, payment_id=payment.payment_id,
                                    amount=refund.amount, currency=payment.currency, reason=refund.reason,
                                    idempotency_key=refund.idempotency_key, attempt=refund.attempts)
    try:
        result = _sender(payment.provider)(instruction)
    except Exception as exc:  # a transient failure (network, the processor's 5xx, configuration): retry
        logger.warning("refund %s: attempt %s failed", refund.idempotency_key, refund.attempts, exc_info=True)
        return _retry_later(refund, f"{type(exc).__name__}: {exc}")
    if result.declined:
        _mark_failed(refund.pk, result.declined, reference=result.reference)
        return RefundState.FAILED
    _mark_sent(refund, result.reference)
    return RefundState.SENT


def refunds_send_due(*, limit: int = 100) -> int:
    """The sweep: one attempt for each requested refund whose lease or back-off has passed
    (a send lost with its worker, a crash between the call and the save, a retry due)."""
    due = list(PaymentRefund.objects.filter(state=RefundState.REQUESTED, next_attempt_at__lte=timezone.now())
               .order_by("next_attempt_at", "id").values_list("pk", flat=True)[:limit])
    for refund_id in due:
        refund_send(refund_id)
    return len(due)


# --- Stripe --------------------------------------------------------------------------------------

def _stripe_made(instruction: RefundInstruction, api_key: str) -> Any:
    """The refund an earlier attempt made, found by our key in its metadata (None if none)."""
    import stripe

    refunds = stripe.Refund.list(payment_intent=instruction.payment_id, limit=100, api_key=api_key,
                                 max_network_retries=0)
    for made in refunds.auto_paging_iter():
        if (made.get("metadata") or {}).get(METADATA_KEY) == instruction.idempotency_key:
            return made
    return None


def stripe_refund_send(instruction: RefundInstruction) -> SendResult:
    """``stripe.Refund.create`` on the PaymentIntent with our idempotency key (a retry replays
    the first answer); a retry first looks for the refund an earlier attempt made. Stripe's
    refusal of the request (already refunded, more than is left) is final; its other errors are
    retried."""
    import stripe

    api_key = getattr(settings, "STRIPE_SECRET_KEY", "")
    if not api_key:
        raise RuntimeError("no Stripe secret key is configured (STRIPE_SECRET_KEY)")
    made = _stripe_made(instruction, api_key) if instruction.attempt > 1 else None
    if made is None:
        try:
            made = stripe.Refund.create(payment_intent=instruction.payment_id, amount=instruction.amount,
                                        metadata={METADATA_KEY: instruction.idempotency_key,
                                                  "reason": instruction.reason[:500]},
                                        idempotency_key=instruction.idempotency_key, api_key=api_key,
                                        max_network_retries=0)
        except (stripe.InvalidRequestError, stripe.IdempotencyError) as exc:
            return SendResult("", f"Stripe refused the refund: {exc.user_message or exc}")
    status = made.get("status")
    if status in ("failed", "canceled"):
        return SendResult(made["id"], f"Stripe reports the refund {status}: {made.get('failure_reason') or ''}".strip())
    return SendResult(made["id"])


# --- the processor's report of a refund ----------------------------------------------------------

def own_refunds_covering(payment: Payment, *, amount: int, reversal_id: str, refund_key: str = "") -> list[PaymentRefund]:
    """Our refunds of ``payment`` (not reported back yet, not failed) that a reported reversal of
    ``amount`` carries out. A report naming one (a bank return's ``refund`` key, or our
    refund's reference as its id) is that refund if the amounts agree; otherwise our refunds
    count in the order requested, each wholly within what the report adds (Stripe reports
    cumulative totals). The caller holds the payment's row lock."""
    waiting = list(payment.refunds.filter(echo__isnull=True).exclude(state=RefundState.FAILED).order_by("id"))
    named = [r for r in waiting if (refund_key and r.idempotency_key == refund_key)
             or (r.provider_reference and r.provider_reference == reversal_id)]
    if named:
        return named[:1] if named[0].amount == amount else []
    covered, left = [], amount
    for refund in waiting:
        if refund.amount <= left:
            covered.append(refund)
            left -= refund.amount
    return covered


def own_refunds_echoed(refunds: list[PaymentRefund], reversal: Any, *, reference: str = "") -> None:
    """Link our refunds to the processor's report of them: they are made (requested → sent)."""
    now = timezone.now()
    for refund in refunds:
        changes: dict[str, Any] = {"echo": reversal}
        if refund.state == RefundState.REQUESTED:
            changes.update(state=RefundState.SENT, sent_at=now)
        if reference and not refund.provider_reference:
            changes["provider_reference"] = reference
        PaymentRefund.objects.filter(pk=refund.pk).update(**changes)


def refund_reported(*, payment_id: str, refund_id: str, status: str, key: str, failure: str) -> PaymentRefund | None:
    """Stripe's ``refund.*`` event about a refund: ours (by reference or by our key in its
    metadata) takes its reference and state (failed or canceled → failed); None if not ours."""
    match = Q(provider_reference=refund_id) | (Q(idempotency_key=key) if key else Q(pk__in=[]))
    refund = (PaymentRefund.objects.select_for_update().select_related("payment")
              .filter(match, payment__provider=Provider.STRIPE, payment__payment_id=payment_id).first())
    if refund is None:
        return None
    if status in ("failed", "canceled"):
        _mark_failed(refund.pk, f"Stripe reports the refund {status}: {failure}".strip(), reference=refund_id)
    elif refund.state == RefundState.REQUESTED:
        PaymentRefund.objects.filter(pk=refund.pk, state=RefundState.REQUESTED).update(
            state=RefundState.SENT, provider_reference=refund_id, sent_at=timezone.now())
    elif not refund.provider_reference:
        PaymentRefund.objects.filter(pk=refund.pk).update(provider_reference=refund_id)
    refund.refresh_from_db()
    return refund


def bank_return_id(idempotency_key: str) -> str:
    """The id of the return a simulated bank sends for our refund instruction: the same for
    every attempt, so a second attempt's return is a redelivery."""
    return "ret-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
