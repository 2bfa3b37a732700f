"""Crediting a payment from outside a webhook delivery (a statement line, say): the same claim,
chaincode and idempotency key as a delivery, so whichever report comes first credits the
payment and every other one finds it credited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from ledger import services as ledger
from ledger.models import OrgType
from ledger.selectors import identity_key_and_organisations, organisation_with_msp_id

from .claims import claim_payment, unclaimable
from .deliveries import Settlement, WebhookRefused, payment_settle
from .notices import NoticeError, PaymentFacts, PaymentNotice, amount_of, chaincode_of, currency_of, msp_id_of
from .sales import SALE_ROUTES, bank_invoker, check_parties, credited, open_accounts, sale_args


@dataclass(frozen=True)
class PaymentOutcome:
    status: str  # "applied" | "duplicate" | "rejected" | "conflict"
    payment: int | None = None  # the Payment row
    tx_hash: str | None = None
    wh: int | None = None
    reason: str = ""
    result: dict[str, Any] | None = None


def payment_credit(*, provider: str, scope: str, payment_id: str, chaincode: str, payer: str, payee: str,
                   amount: int, currency: str, created: datetime, origin: str,
                   processor: str = "") -> PaymentOutcome:
    """Credit one payment at most once, whoever reports it. ``origin`` names the report (e.g.
    ``statement:<id>``) in the refusal reasons; ``processor`` is the organisation that invokes
    for Stripe payments (the ``bank`` of their metadata; bank payments are invoked by the bank
    named by ``scope``). A payment credited before is a duplicate; one reported before with
    other facts a conflict (nothing moves); a ledger refusal is recorded on the payment."""
    try:
        facts = PaymentFacts(provider=provider, scope=scope, payment_id=payment_id, chaincode=chaincode_of(chaincode),
                             payer=msp_id_of("payer", payer), payee=msp_id_of("payee", payee),
                             amount=amount_of(amount), currency=currency_of(currency), created=created)
    except NoticeError as exc:
        return PaymentOutcome("rejected", reason=f"{origin}: {exc}")
    bank = organisation_with_msp_id(scope or processor)
    if bank is None or bank.org_type != OrgType.BANK:
        return PaymentOutcome("rejected", reason=f"{origin}: unknown bank {scope or processor!r}")
    route = SALE_ROUTES[facts.route]
    notice = PaymentNotice(event_id=payment_id, bank=bank.msp_id, payer=facts.payer, payee=facts.payee,
                           chaincode=facts.chaincode, amount=facts.amount, currency=facts.currency, paid_at=created,
                           payment_id=payment_id)
    identity, signer = bank_invoker(bank)
    try:
        with transaction.atomic():
            claimed = claim_payment(facts)
            if claimed is None:
                pk, verdict, tx_hash = unclaimable(facts)
                status = "duplicate" if verdict == "duplicate" else "conflict"
                return PaymentOutcome(status, pk, tx_hash, reason=verdict.removeprefix("conflict: "))
            pk, stored, details = claimed
            _, orgs = identity_key_and_organisations(None, [facts.payer, facts.payee])
            payer_row, payee_row = check_parties(notice, route, orgs)
            open_accounts(route.accounts(notice, payer_row, payee_row), facts.currency)
            result = ledger.invoke(chaincode=route.chaincode, function=route.function, args=sale_args(facts, stored),
                                   invoker=identity, idempotency_key=facts.idempotency_key, signer=signer)
            payment_settle(Settlement(pk, result.tx_hash, result.ok, result.reason or ""))
            if result.ok:
                credited(pk, facts, payer_row, result.result, tx_hash=result.tx_hash, details=details)
    except WebhookRefused as exc:
        return PaymentOutcome("rejected", reason=f"{origin}: {exc.message}")
    if not result.ok:
        return PaymentOutcome("rejected", pk, result.tx_hash, reason=result.reason or "", result=None)
    data = result.result if isinstance(result.result, dict) else {}
    return PaymentOutcome("applied", pk, result.tx_hash, wh=data.get("wh"), result=data)
