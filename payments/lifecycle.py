"""Deliveries that change a payment without crediting it: wait, fail, reverse, dispute. Each
runs in one transaction with its audit row, which names the payment it matched."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .deliveries import Delivery, WebhookOutcome, WebhookRefused
from .models import DeliveryStatus, Payment
from .notices import PaymentNotice
from .refunds import refund_reported
from .reversals import (
    NotCreditedYet,
    PaymentKey,
    invoking_bank,
    payment_dispute_mark,
    payment_fail,
    payment_pending,
    payment_reverse,
)


def _matched(d: Delivery, payment: Payment | None, key: PaymentKey) -> None:
    d.payment_key = key.payment_id
    if payment is not None:
        d.payment = payment.pk
        if d.organisation is None:  # a Stripe event without metadata: the processor that credited it
            d.organisation = invoking_bank(payment)


def _recorded(d: Delivery, status: str, reason: str, **extra: Any) -> WebhookOutcome:
    return d.record(status=DeliveryStatus.RECORDED, http_status=200, reason=reason,
                    body={"status": status, "event_id": d.event_id, **extra})


def wait_delivered(d: Delivery, notice: PaymentNotice, *, scope: str) -> WebhookOutcome:
    facts = notice.facts(provider=d.provider, scope=scope)
    with transaction.atomic():
        payment = payment_pending(facts)
        _matched(d, payment, PaymentKey(d.provider, scope, facts.payment_id))
        return _recorded(d, payment.state, "payment reported, not paid yet" if payment.state == "pending"
                         else f"payment already {payment.state}")


def fail_delivered(d: Delivery, key: PaymentKey, reason: str, notice: PaymentNotice | None) -> WebhookOutcome:
    with transaction.atomic():
        if notice is not None:
            payment_pending(notice.facts(provider=key.provider, scope=key.scope))
        payment = payment_fail(key, reason)
        _matched(d, payment, key)
        if payment is None:
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason="failure of an unknown payment",
                            body={"status": "ignored", "event_id": d.event_id, "reason": "unknown payment"})
        return _recorded(d, payment.state, reason if payment.state == "failed" else "credited already: left alone")


def dispute_delivered(d: Delivery, key: PaymentKey, dispute_id: str, state: str) -> WebhookOutcome:
    with transaction.atomic():
        payment = payment_dispute_mark(key, state)
        _matched(d, payment, key)
        if payment is None:
            raise WebhookRefused(409, f"dispute {dispute_id} names unknown payment {key.payment_id!r}; retry later")
        return _recorded(d, f"dispute_{state}", f"dispute {dispute_id} {state}; nothing moved", dispute=dispute_id)


def reverse_delivered(d: Delivery, key: PaymentKey, *, reversal_id: str, kind: str, amount: int | None = None,
                      refunded_total: int | None = None, currency: str | None = None,
                      refund_key: str = "") -> WebhookOutcome:
    """Reverse through the chaincode and audit, in one transaction. Before the payment's credit
    the delivery is refused 409 (retryable: the processor redelivers once the credit is in). A
    charity payment's reversal (our own refund coming back, say) is recorded: nothing moves."""
    with transaction.atomic():
        try:
            outcome = payment_reverse(key, reversal_id=reversal_id, kind=kind, amount=amount,
                                      refunded_total=refunded_total, currency=currency, refund_key=refund_key)
        except NotCreditedYet as exc:
            d.payment_key = key.payment_id
            raise WebhookRefused(409, f"{exc}; retry later") from None
        d.payment, d.payment_key = outcome.payment, key.payment_id
        if d.organisation is None and outcome.payment is not None:
            d.organisation = invoking_bank(Payment.objects.get(pk=outcome.payment))
        body: dict[str, Any] = {"status": outcome.status, "event_id": d.event_id, "reversal_id": reversal_id,
                                "kind": kind}
        if outcome.tx_hash:
            body.update(tx_hash=outcome.tx_hash, tx_url=f"/explorer/tx/{outcome.tx_hash}/")
        if outcome.status == "applied":
            result = outcome.result or {}
            body.update({k: result[k] for k in ("amount", "wh", "taken_back", "owed", "reversed_amount") if k in result})
            return d.record(status=DeliveryStatus.APPLIED, http_status=200, tx_hash=outcome.tx_hash,
                            result=outcome.result, body=body)
        if outcome.status == "recorded":
            result = outcome.result or {}
            body.update({k: result[k] for k in ("amount", "own_refunds", "own_amount", "reversed_amount")})
            return d.record(status=DeliveryStatus.RECORDED, http_status=200, reason=outcome.reason,
                            result=result, body={**body, "reason": outcome.reason})
        if outcome.status == "duplicate":
            return d.record(status=DeliveryStatus.DUPLICATE, http_status=200, reason=outcome.reason,
                            tx_hash=outcome.tx_hash, body={**body, "reason": outcome.reason})
        return d.record(status=DeliveryStatus.REJECTED, http_status=422, reason=outcome.reason,
                        tx_hash=outcome.tx_hash, body={**body, "error": outcome.reason, "retry": False})



def refund_report_delivered(d: Delivery, payment_key: PaymentKey, *, refund_id: str, status: str, key: str,
                            failure: str) -> WebhookOutcome:
    """A refund's own event: one of ours takes its reference and state; another is ignored
    (``charge.refunded`` reverses it)."""
    with transaction.atomic():
        refund = refund_reported(payment_id=payment_key.payment_id, refund_id=refund_id, status=status, key=key,
                                 failure=failure)
        if refund is None:
            return d.record(status=DeliveryStatus.IGNORED, http_status=200, reason="not a refund GridCoin sent",
                            body={"status": "ignored", "event_id": d.event_id, "reason": "not our refund"})
        _matched(d, refund.payment, payment_key)
        return _recorded(d, f"refund_{refund.state}", f"our refund {refund.idempotency_key} is {refund.state} "
                         f"(Stripe: {status})", refund=refund.idempotency_key)
