"""``POST /webhooks/bank/``: a bank notification signed with one of the bank's secrets
(``GridCoin-Signature``, see payments/README.md). The secret that matches identifies the bank,
whose webhook identity invokes the sale."""

from __future__ import annotations

import time
from dataclasses import replace

from ledger import services as ledger
from ledger.models import Organisation, OrgType
from ledger.selectors import organisation_with_msp_id

from ..camt import camt054_notice, looks_like_xml
from ..deliveries import Delivery, WebhookOutcome, WebhookRefused, audit_text, guarded
from ..lifecycle import reverse_delivered
from ..models import BankSecret, Provider, ReversalKind
from ..notices import (
    NoticeError,
    PaymentNotice,
    ReturnNotice,
    bank_notice_from,
    parse_json_object,
    return_notice_from,
)
from ..reversals import PaymentKey
from ..sales import apply_notice
from ..secrets import StaleSecret, bank_secrets, secret_confirmed, webhook_identity_of
from ..signing import NO_MATCH, SignatureError, SignatureHeader, check_freshness, match_secret, parse_signature_header


def bank_webhook_receive(*, raw_body: bytes, signature_header: str | None, now: float | None = None) -> WebhookOutcome:
    """Verify, parse and apply one bank delivery; every outcome is audited."""
    delivery = Delivery(provider=Provider.BANK, raw_body=raw_body, signature_header=signature_header or "")
    at = time.time() if now is None else now

    def receive(d: Delivery) -> WebhookOutcome:
        header = parse_signature_header(signature_header)
        try:
            return _bank_delivery(d, header, at, reload=False)
        except StaleSecret:  # the cached secret was retired (or its identity changed): start afresh
            d.forget()
            try:
                return _bank_delivery(d, header, at, reload=True)
            except StaleSecret:  # retired again between the fresh read and the claim
                d.forget()
                raise SignatureError(NO_MATCH) from None

    return guarded(receive, delivery)


def _bank_delivery(d: Delivery, header: SignatureHeader, now: float, *, reload: bool) -> WebhookOutcome:
    raw_body = d.raw_body
    # The secret that matches identifies the bank: authenticate before parsing anything.
    if reload:
        entries, fresh = bank_secrets.reload(), True
    else:
        entries, fresh = bank_secrets.get()
    secret: BankSecret | None = match_secret(header=header, body=raw_body, secrets=entries)  # type: ignore[assignment]
    if secret is not None and not fresh and webhook_identity_of(secret.organisation) is None:
        secret = None  # the identity would be created for a bank read from the cache: read afresh first
    if secret is None and not fresh:
        entries, fresh = bank_secrets.reload(), True
        secret = match_secret(header=header, body=raw_body, secrets=entries)  # type: ignore[assignment]
    if secret is None:
        raise SignatureError(NO_MATCH)
    try:
        check_freshness(header=header, now=now)
        d.organisation = bank = secret.organisation
        message = _message(d, bank)
        if isinstance(message, ReturnNotice):
            if not fresh and not secret_confirmed(secret):
                raise StaleSecret()  # a return claims nothing that could confirm the secret
            d.event_id, d.event_type = message.event_id, "return"
            return reverse_delivered(d, PaymentKey(Provider.BANK, bank.msp_id, message.end_to_end_id),
                                     reversal_id=message.event_id, kind=ReversalKind.RETURN, amount=message.amount,
                                     currency=message.currency, refund_key=message.refund)
        d.notice = message
        return apply_notice(d, message, bank, scope=bank.msp_id, secret=secret)
    except (SignatureError, NoticeError, WebhookRefused, ledger.LedgerError):
        # Refused after matching a cached secret: refuse for this reason only if the secret
        # is still active, else for the reason a fresh read gives (see BankSecretCache).
        if not fresh and not secret_confirmed(secret):
            raise StaleSecret() from None
        raise


def _message(d: Delivery, bank: Organisation) -> PaymentNotice | ReturnNotice:
    """The delivery's payment or return: camt.054 XML, or JSON (see payments/README.md)."""
    if looks_like_xml(d.raw_body):
        d.event_type = "camt.054"
        message = camt054_notice(d.raw_body, bank=bank.msp_id)
        d.event_id = message.event_id
        if isinstance(message, PaymentNotice) and not message.chaincode:
            message = replace(message, chaincode=_chaincode_for(message.payer))
        return message
    data = parse_json_object(d.raw_body)
    d.event_id, d.event_type = audit_text(data.get("id"), 255), audit_text(data.get("chaincode"), 60) or ""
    message = return_notice_from(data) if "return_of" in data else bank_notice_from(data)
    if isinstance(message, PaymentNotice) and message.purpose:
        d.event_type = ".".join(message.route)
    if str(data.get("bank")) != bank.msp_id:
        _refuse_other_bank(bank, str(data.get("bank")))
    return message


def _chaincode_for(payer: str) -> str:
    """A camt.054 credit names no chaincode: a household pays retail, a utility wholesale."""
    org = organisation_with_msp_id(payer)
    by_type = {OrgType.HOUSEHOLD: "retail-seller", OrgType.UTILITY: "wholesale-seller"}
    if org is None or org.org_type not in by_type:
        raise WebhookRefused(400, f"unknown payer {payer!r}: a household or a utility pays")
    return by_type[org.org_type]


def _refuse_other_bank(bank: Organisation, named: str) -> None:
    other = organisation_with_msp_id(named)
    if other is None or other.org_type != OrgType.BANK:
        raise WebhookRefused(400, f"unknown bank {named!r}")
    raise WebhookRefused(401, f"signed with a secret of {bank.msp_id}, but names bank {named!r}")
