"""The payment system simulator: plays the bank, so that the pages and the demo move money
through exactly the code path of ``POST /webhooks/bank/``."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from ledger.models import Organisation

from .deliveries import WebhookOutcome, WebhookRefused
from .models import BankSecret
from .providers.bank import bank_webhook_receive
from .secrets import bank_secret_reveal
from .signing import signature_header


def bank_notification_body(*, event_id: str, bank: str, payer: str, payee: str, chaincode: str, amount: int,
                           currency: str, created: int | str) -> bytes:
    """The raw body a bank sends (compact JSON, the fields payments/README.md lists)."""
    return json.dumps({"id": event_id, "bank": bank, "payer": payer, "payee": payee, "chaincode": chaincode,
                       "amount": amount, "currency": currency, "created": created}, separators=(",", ":")).encode()


def simulated_payment_send(*, bank: Organisation, payer: str, payee: str, chaincode: str, amount: int,
                           currency: str) -> WebhookOutcome:
    """Play the bank: build a notification, sign it with the bank's newest active secret and
    deliver it through the same code path as ``POST /webhooks/bank/``."""
    secret = BankSecret.objects.filter(organisation=bank, active=True).order_by("-created_at", "-id").first()
    if secret is None:
        raise WebhookRefused(400, f"bank {bank.msp_id} has no active webhook secret")
    now = int(time.time())
    body = bank_notification_body(event_id=f"sim-{uuid.uuid4().hex}", bank=bank.msp_id, payer=payer, payee=payee,
                                  chaincode=chaincode, amount=amount, currency=currency,
                                  created=datetime.fromtimestamp(now, tz=UTC).isoformat())
    header = signature_header([bank_secret_reveal(secret)], now, body)
    return bank_webhook_receive(raw_body=body, signature_header=header, now=now)
