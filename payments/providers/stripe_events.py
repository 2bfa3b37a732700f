"""Stripe's payment lifecycle, event type by event type: what each event means for the payment
it reports (credit it, wait, fail it, reverse part of it, mark a dispute, or nothing). Pure: the
dispatch table maps a verified event to an action; ``stripe.py`` carries actions out.

A payment is Stripe's PaymentIntent: a Checkout session names it in ``payment_intent``, a charge,
a refund and a dispute in ``payment_intent`` too. Only objects carrying the GridCoin
``metadata`` (payer, payee, chaincode, bank) can credit a payment; later events find it by id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..notices import NoticeError, PaymentNotice, event_id_of, stripe_notice_from

ROUTING = ("payer", "payee", "chaincode", "bank")


@dataclass(frozen=True)
class Credit:
    notice: PaymentNotice


@dataclass(frozen=True)
class Wait:
    """Reported but not paid yet (a bank debit in flight): recorded pending, credited later."""

    notice: PaymentNotice


@dataclass(frozen=True)
class Fail:
    payment_id: str
    reason: str
    notice: PaymentNotice | None  # when the event can route it (recorded failed even if unseen before)


@dataclass(frozen=True)
class Reverse:
    payment_id: str
    reversal_id: str
    kind: str  # refund | dispute
    amount: int | None = None
    refunded_total: int | None = None  # cumulative (charge.amount_refunded)


@dataclass(frozen=True)
class Dispute:
    payment_id: str
    dispute_id: str
    state: str  # open | won


@dataclass(frozen=True)
class RefundReport:
    """A refund's own event: tells whether one of our refunds was made or failed. Money moves
    (or, for our refunds of charity payments, is recorded) only with ``charge.refunded``."""

    payment_id: str
    refund_id: str
    status: str
    key: str  # our idempotency key, from the refund's metadata
    failure: str


@dataclass(frozen=True)
class Ignore:
    reason: str


Action = Credit | Wait | Fail | Reverse | Dispute | RefundReport | Ignore


def _object(event: dict[str, Any]) -> dict[str, Any]:
    obj = event["data"]["object"]
    if not isinstance(obj, dict):
        raise TypeError("data.object is not an object")
    return obj


def _routed(obj: dict[str, Any]) -> bool:
    metadata = obj.get("metadata")
    return isinstance(metadata, dict) and any(metadata.get(name) for name in ROUTING)


def _intent_of(obj: dict[str, Any], field: str = "payment_intent") -> str:
    value = obj.get(field)
    if isinstance(value, dict):  # an expanded object
        value = value.get("id")
    return event_id_of(value, field)


def _session_notice(event: dict[str, Any], obj: dict[str, Any]) -> PaymentNotice:
    return stripe_notice_from(event_id=event.get("id"), amount=obj.get("amount_total"), currency=obj.get("currency"),
                              created=event.get("created"), metadata=obj.get("metadata"),
                              payment_id=_intent_of(obj))


def _intent_notice(event: dict[str, Any], obj: dict[str, Any], amount_field: str) -> PaymentNotice:
    return stripe_notice_from(event_id=event.get("id"), amount=obj.get(amount_field), currency=obj.get("currency"),
                              created=event.get("created"), metadata=obj.get("metadata"),
                              payment_id=_intent_of(obj, "id"))


def checkout_completed(event: dict[str, Any]) -> Action:
    session = _object(event)
    status = session.get("payment_status")
    if status == "paid":
        return Credit(_session_notice(event, session))
    if status == "unpaid":  # delayed methods (bank debits): async_payment_succeeded follows
        return Wait(_session_notice(event, session))
    return Ignore(f"checkout session payment_status is {status!r}: nothing to credit")


def checkout_async_succeeded(event: dict[str, Any]) -> Action:
    return Credit(_session_notice(event, _object(event)))


def checkout_async_failed(event: dict[str, Any]) -> Action:
    session = _object(event)
    notice = _session_notice(event, session) if _routed(session) else None
    return Fail(_intent_of(session), "the delayed payment failed", notice)


def intent_succeeded(event: dict[str, Any]) -> Action:
    intent = _object(event)
    if not _routed(intent):  # created by Checkout without payment_intent_data.metadata
        return Ignore("the PaymentIntent carries no GridCoin metadata; its Checkout session reports the payment")
    return Credit(_intent_notice(event, intent, "amount_received"))


def intent_failed(event: dict[str, Any]) -> Action:
    intent = _object(event)
    error = intent.get("last_payment_error")
    reason = error.get("message") if isinstance(error, dict) and isinstance(error.get("message"), str) else None
    notice = _intent_notice(event, intent, "amount") if _routed(intent) else None
    return Fail(_intent_of(intent, "id"), (reason or "the payment failed")[:500], notice)


def _minor(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NoticeError(f"{field!r} must be a non-negative integer of minor units")
    return value


def charge_refunded(event: dict[str, Any]) -> Action:
    charge = _object(event)
    total = _minor(charge, "amount_refunded")
    if total == 0:
        return Ignore("nothing refunded")
    charge_id = event_id_of(charge.get("id"), "charge id")
    # One reversal per cumulative step: redeliveries and out-of-order steps find it applied.
    return Reverse(_intent_of(charge), f"{charge_id}:refunded:{total}", "refund", refunded_total=total)


def refund_event(event: dict[str, Any]) -> Action:
    refund = _object(event)
    if not refund.get("payment_intent"):
        return Ignore("the refund names no PaymentIntent")
    metadata = refund.get("metadata")
    key = metadata.get("gridcoin_refund") if isinstance(metadata, dict) else None
    status, failure = refund.get("status"), refund.get("failure_reason")
    return RefundReport(_intent_of(refund), event_id_of(refund.get("id"), "refund id"),
                        status if isinstance(status, str) else "", key if isinstance(key, str) else "",
                        failure if isinstance(failure, str) else "")


def dispute_created(event: dict[str, Any]) -> Action:
    dispute = _object(event)
    return Dispute(_intent_of(dispute), event_id_of(dispute.get("id"), "dispute id"), "open")


def dispute_closed(event: dict[str, Any]) -> Action:
    dispute = _object(event)
    dispute_id = event_id_of(dispute.get("id"), "dispute id")
    status = dispute.get("status")
    if status == "lost":
        return Reverse(_intent_of(dispute), dispute_id, "dispute", amount=_minor(dispute, "amount"))
    if status in ("won", "warning_closed"):
        return Dispute(_intent_of(dispute), dispute_id, "won")
    raise NoticeError(f"a closed dispute has status won, lost or warning_closed, not {status!r}")


# Stripe event type → action. Other types are acknowledged (200 ignored) and audited.
STRIPE_EVENTS: dict[str, Callable[[dict[str, Any]], Action]] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": checkout_async_succeeded,
    "checkout.session.async_payment_failed": checkout_async_failed,
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
    "charge.refunded": charge_refunded,
    "refund.created": refund_event,
    "refund.updated": refund_event,
    "refund.failed": refund_event,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}
