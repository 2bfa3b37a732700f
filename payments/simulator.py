"""The payment system simulator: plays the bank, so that the pages and the demo move money
through exactly the code path of ``POST /webhooks/bank/``, and carries out the refunds GridCoin
sends to a bank (it accepts them and sends the bank's return back through the same endpoint)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from ledger.models import Organisation, OrgType

from .deliveries import WebhookOutcome, WebhookRefused
from .models import BankSecret
from .providers.bank import bank_webhook_receive
from .refunds import RefundInstruction, SendResult, bank_return_id
from .secrets import bank_secret_reveal
from .signing import signature_header

logger = logging.getLogger(__name__)


def bank_notification_body(*, event_id: str, bank: str, payer: str, payee: str, chaincode: str, amount: int,
                           currency: str, created: int | str, metadata: dict[str, Any] | None = None) -> bytes:
    """The raw body a bank sends (compact JSON, the fields payments/README.md lists); a charity
    payment's ``metadata`` names its campaign or group and the donor's off-chain details."""
    body: dict[str, Any] = {"id": event_id, "bank": bank, "payer": payer, "payee": payee, "chaincode": chaincode,
                            "amount": amount, "currency": currency, "created": created}
    if metadata:
        body["metadata"] = metadata
    return json.dumps(body, separators=(",", ":")).encode()


def _signing_secret(bank: Organisation) -> BankSecret:
    secret = BankSecret.objects.filter(organisation=bank, active=True).order_by("-created_at", "-id").first()
    if secret is None:
        raise WebhookRefused(400, f"bank {bank.msp_id} has no active webhook secret")
    return secret


def _deliver(bank: Organisation, body: bytes, now: int) -> WebhookOutcome:
    header = signature_header([bank_secret_reveal(_signing_secret(bank))], now, body)
    return bank_webhook_receive(raw_body=body, signature_header=header, now=now)


def simulated_payment_send(*, bank: Organisation, payer: str, payee: str, chaincode: str, amount: int,
                           currency: str, metadata: dict[str, Any] | None = None) -> WebhookOutcome:
    """Play the bank: build a notification, sign it with the bank's newest active secret and
    deliver it through the same code path as ``POST /webhooks/bank/``."""
    _signing_secret(bank)
    now = int(time.time())
    body = bank_notification_body(event_id=f"sim-{uuid.uuid4().hex}", bank=bank.msp_id, payer=payer, payee=payee,
                                  chaincode=chaincode, amount=amount, currency=currency,
                                  created=datetime.fromtimestamp(now, tz=UTC).isoformat(), metadata=metadata)
    return _deliver(bank, body, now)


def simulated_bank_refund(instruction: RefundInstruction) -> SendResult:
    """The simulated bank carries out a refund instruction (``PAYMENTS_BANK_REFUND_SENDER`` in
    the embedded default and the demo): it accepts it and reports the money it sent back as a
    return of the payment, delivered through ``POST /webhooks/bank/``'s code path. The return's
    id comes from the instruction's idempotency key, so a repeated instruction's return is a
    redelivery and the payer is refunded once."""
    bank = Organisation.objects.filter(msp_id=instruction.scope, org_type=OrgType.BANK).first()
    if bank is None:
        return SendResult("", f"unknown bank {instruction.scope!r}")
    reference = bank_return_id(instruction.idempotency_key)
    body = json.dumps({"id": reference, "bank": bank.msp_id, "return_of": instruction.payment_id,
                       "amount": instruction.amount, "currency": instruction.currency,
                       "reason": instruction.reason[:200], "refund": instruction.idempotency_key},
                      separators=(",", ":")).encode()
    outcome = _deliver(bank, body, int(time.time()))
    if outcome.http_status != 200:
        logger.warning("the simulated bank's return %s was refused: %s", reference, outcome.body)
    return SendResult(reference)
