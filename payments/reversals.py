"""A payment's life after its report: waiting (a bank debit not yet paid), failing, disputes,
and reversals (refunds, lost disputes, bank returns) through the seller chaincode's
``reverse``. Every function here runs inside its caller's transaction, which writes the
delivery's audit row (or the statement's result) in the same commit."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Sum

from ledger import services as ledger
from ledger.keys import DEBT, debt_account
from ledger.models import Asset, Organisation
from ledger.selectors import organisation_with_msp_id, transaction_with_hash

from .credits import PaymentOutcome
from .models import DisputeState, Payment, PaymentReversal, PaymentState, ReversalKind
from .notices import BILLING_CHAINCODE, CHARITY_CHAINCODE, PaymentFacts
from .refunds import own_refunds_covering, own_refunds_echoed
from .sales import bank_invoker


@dataclass(frozen=True)
class PaymentKey:
    provider: str
    scope: str
    payment_id: str


class NotCreditedYet(Exception):
    """The payment is unknown or still pending: a reversal cannot apply before its credit (the
    sender should retry; processors redeliver)."""


def _locked(key: PaymentKey) -> Payment | None:
    return (Payment.objects.select_for_update()
            .filter(provider=key.provider, scope=key.scope, payment_id=key.payment_id).first())


def payment_pending(facts: PaymentFacts) -> Payment:
    """Record a reported but unpaid payment (e.g. a Checkout session paid by bank debit); its
    credit waits for the report that it succeeded."""
    Payment.objects.bulk_create([Payment(provider=facts.provider, scope=facts.scope, payment_id=facts.payment_id,
                                         chaincode=facts.chaincode, purpose=facts.purpose, payer=facts.payer,
                                         payee=facts.payee, amount=facts.amount, currency=facts.currency,
                                         created=facts.created, details=facts.details)],
                                ignore_conflicts=True)
    return Payment.objects.get(provider=facts.provider, scope=facts.scope, payment_id=facts.payment_id)


def payment_fail(key: PaymentKey, reason: str) -> Payment | None:
    """A payment that will not be paid: pending → failed; a credited one is left alone (a
    failed attempt before a successful one reports nothing new). None if it is unknown."""
    payment = _locked(key)
    if payment is not None and payment.state == PaymentState.PENDING:
        payment.state, payment.reason = PaymentState.FAILED, reason
        payment.save(update_fields=["state", "reason"])
    return payment


def payment_dispute_mark(key: PaymentKey, state: str) -> Payment | None:
    """Mark the sale disputed (open) or the dispute won: nothing moves either way. A lost
    dispute is a reversal (``payment_reverse``)."""
    payment = _locked(key)
    if payment is not None and payment.disputed != DisputeState.LOST:
        payment.disputed = state
        payment.save(update_fields=["disputed"])
    return payment


def _debt_account_open(payment: Payment) -> None:
    """The buyer's debt account (and its asset, issued by the utility) for a reversal."""
    debtor, creditor = payment.payer, payment.payee
    utility = payment.payee if payment.chaincode == "retail-seller" else payment.payer
    if not Asset.objects.filter(code=DEBT).exists():
        issuer = organisation_with_msp_id(utility)
        assert issuer is not None  # the sale was credited between these organisations
        try:
            ledger.asset_create(code=DEBT, name="Energy owed after a reversal", scale=3, display_unit="kWh",
                                issuer=Organisation.objects.get(pk=issuer.pk))
        except IntegrityError:  # a concurrent first reversal created it (asset_create rolled back its savepoint)
            pass
    ledger.account_open(key=debt_account(debtor, creditor), asset=DEBT,
                        organisation=Organisation.objects.get(msp_id=debtor))


def payment_reverse(key: PaymentKey, *, reversal_id: str, kind: str, amount: int | None = None,
                    refunded_total: int | None = None, currency: str | None = None,
                    refund_key: str = "") -> PaymentOutcome:
    """Reverse part of a credited payment once per ``reversal_id``: ``amount`` minor units, or
    (Stripe refunds, whose events carry the cumulative ``amount_refunded``) whatever
    ``refunded_total`` adds to the refunds reversed so far. Raises NotCreditedYet before the
    credit; a reversal beyond the payment, or one the ledger refuses, is "rejected" and moves
    nothing. Must run in a transaction (it locks the payment's row).

    A refund or return that carries out our own refunds (``refunds.own_refunds_covering``;
    ``refund_key``: the one a bank's return names) is linked to them. A charity payment is never
    reversed on the ledger: its coins went into a pool, and our refunds of it were booked by
    charity-pool's ``refund`` before they were sent; the reversal is "recorded". Neither is a
    payment of dues: the dues it cleared stay cleared, the reversal is "recorded" for the
    utility to settle with the household."""
    assert transaction.get_connection().in_atomic_block
    payment = _locked(key)
    if payment is None or payment.state == PaymentState.PENDING:
        raise NotCreditedYet(f"payment {key.payment_id!r} is not credited yet")
    if payment.state == PaymentState.FAILED:
        return PaymentOutcome("rejected", payment.pk, reason=f"payment {key.payment_id!r} was never credited")
    if currency is not None and currency != payment.currency:
        return PaymentOutcome("rejected", payment.pk, reason=f"payment {key.payment_id!r} was made in "
                              f"{payment.currency}, not {currency}")
    if refunded_total is not None:
        before = payment.reversals.filter(kind=ReversalKind.REFUND).aggregate(s=Sum("amount"))["s"] or 0
        amount = refunded_total - before
        if amount <= 0:
            return PaymentOutcome("duplicate", payment.pk, reason=f"refunds up to {refunded_total} were reversed before")
    assert amount is not None
    done = payment.reversals.filter(reversal_id=reversal_id).first()
    if done is not None:
        return PaymentOutcome("duplicate", payment.pk, done.tx_hash, reason=f"reversal {reversal_id} applied before")
    if amount <= 0 or payment.amount_reversed + amount > payment.amount:
        return PaymentOutcome("rejected", payment.pk, reason=(
            f"reversing {amount} more would exceed the payment: {payment.amount_reversed} of {payment.amount} "
            "reversed already"))
    own = (own_refunds_covering(payment, amount=amount, reversal_id=reversal_id, refund_key=refund_key)
           if kind != ReversalKind.DISPUTE else [])
    if payment.chaincode in (CHARITY_CHAINCODE, BILLING_CHAINCODE):
        return _recorded(payment, reversal_id=reversal_id, kind=kind, amount=amount, own=own)
    sale = transaction_with_hash(payment.credit_tx_hash or "")
    if sale is None or not isinstance(sale.result, dict):
        raise Payment.DoesNotExist(f"the credit of payment {key.payment_id!r} is not on the ledger")
    _debt_account_open(payment)
    identity, signer = bank_invoker(sale.invoker.organisation)
    args = {"payment_id": payment.payment_id, "reversal_id": reversal_id, "kind": kind, "payer": payment.payer,
            "payee": payment.payee, "amount": amount, "currency": payment.currency, "sale_amount": payment.amount,
            "sale_wh": sale.result["wh"], "sale_price": sale.result["price"]}
    result = ledger.invoke(chaincode=payment.chaincode, function="reverse", args=args, invoker=identity,
                           idempotency_key=f"reversal:{key.provider}:{key.scope}:{key.payment_id}:{reversal_id}",
                           signer=signer)
    if not result.ok:
        return PaymentOutcome("rejected", payment.pk, result.tx_hash, reason=result.reason or "")
    _book(payment, reversal_id=reversal_id, kind=kind, amount=amount, tx_hash=result.tx_hash, own=own)
    data = result.result if isinstance(result.result, dict) else {}
    return PaymentOutcome("applied", payment.pk, result.tx_hash, wh=data.get("wh"), result=data)


def _book(payment: Payment, *, reversal_id: str, kind: str, amount: int, tx_hash: str | None,
          own: list) -> PaymentReversal:
    reversal = PaymentReversal.objects.create(payment=payment, reversal_id=reversal_id, kind=kind, amount=amount,
                                              tx_hash=tx_hash)
    payment.amount_reversed += amount
    if kind == ReversalKind.DISPUTE:
        payment.disputed = DisputeState.LOST
    payment.save(update_fields=["amount_reversed", "disputed"])
    own_refunds_echoed(own, reversal, reference=reversal_id if kind == ReversalKind.RETURN else "")
    return reversal


def _recorded(payment: Payment, *, reversal_id: str, kind: str, amount: int, own: list) -> PaymentOutcome:
    """A charity payment's (or a payment of dues') reversal, recorded without touching the ledger."""
    _book(payment, reversal_id=reversal_id, kind=kind, amount=amount, tx_hash=None, own=own)
    ours = sum(r.amount for r in own)
    parts = []
    if ours:
        parts.append(f"{ours} {payment.currency} carries out our refund {', '.join(r.idempotency_key for r in own)}, "
                     "booked on the ledger by charity-pool.refund: nothing moves again")
    if amount > ours and payment.chaincode == BILLING_CHAINCODE:
        parts.append(f"{amount - ours} {payment.currency} was reversed by the processor on a payment of dues "
                     f"({payment.purpose}): the dues it cleared stay cleared; settle it with the household")
    elif amount > ours:
        parts.append(f"{amount - ours} {payment.currency} was reversed by the processor on a charity payment: "
                     "its coins stay in the pool (nothing moved); settle it with the charity")
    return PaymentOutcome("recorded", payment.pk, reason="; ".join(parts),
                          result={"amount": amount, "own_refunds": [r.idempotency_key for r in own],
                                  "own_amount": ours, "reversed_amount": payment.amount_reversed})


def invoking_bank(payment: Payment) -> Organisation | None:
    """The organisation whose identity credited the payment (a Stripe payment's processor)."""
    sale = transaction_with_hash(payment.credit_tx_hash or "")
    return None if sale is None else sale.invoker.organisation
