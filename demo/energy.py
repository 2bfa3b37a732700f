"""The demo's coins move the way real ones do: the producer's meter mints, then the bank
reports the utility's wholesale purchase and a resident's retail purchase through signed
notifications on the same code path as ``POST /webhooks/bank/`` (prices from ``fiat``)."""

from __future__ import annotations

import time

from ledger import services as ledger
from ledger.documents import body_digest
from ledger.models import Transaction
from meters.models import Device
from meters.services import simulated_signer
from payments import services as payments
from payments.models import BankSecret, ProcessedEvent
from payments.signing import signature_header

from .errors import DemoSeedError
from .organisations import BANK, PRODUCER, UTILITY

GENERATED_WH = 1_000_000  # 1,000 kWh
GENERATE_KEY = "seed-demo-generate"
# (event id, payer, payee, chaincode, amount in paise)
WHOLESALE = ("seed-demo-wholesale", UTILITY, PRODUCER, "wholesale-seller", 200_000)  # ₹2,000.00 → 400 kWh
RETAIL = ("seed-demo-retail-alice", "hh-alice", UTILITY, "retail-seller", 4_000)  # ₹40.00 → 5 kWh


def generation_seed() -> list[str]:
    """The producer's meter mints ``GENERATED_WH`` once, under a fixed idempotency key."""
    meter = Device.objects.select_related("identity").get(public_id="PM-0001")
    args = {"amount": GENERATED_WH}
    done = Transaction.objects.filter(invoker=meter.identity, idempotency_key=GENERATE_KEY).first()
    if done is not None:
        if done.body_digest != body_digest("generator", "mint", args):
            raise DemoSeedError(f"{GENERATE_KEY} was already used for something else ({done.tx_hash})")
        return []
    result = ledger.invoke(chaincode="generator", function="mint", args=args, invoker=meter.identity,
                           idempotency_key=GENERATE_KEY, signer=simulated_signer(meter))
    if not result.ok:
        raise DemoSeedError(f"generator.mint was rejected: {result.reason}")
    return [f"generator.mint {GENERATED_WH} Wh by PM-0001"]


def purchases_seed() -> list[str]:
    """The wholesale and retail payments, each delivered once: an event already claimed is not
    redelivered, because a redelivery would carry a new payment time, i.e. another body."""
    created: list[str] = []
    secret = BankSecret.objects.filter(organisation__msp_id=BANK, active=True).order_by("-id").first()
    if secret is None:
        raise DemoSeedError(f"the demo bank {BANK} has no active webhook secret")
    for event_id, payer, payee, chaincode, amount in (WHOLESALE, RETAIL):
        if ProcessedEvent.objects.filter(provider="bank", scope=BANK, event_id=event_id).exists():
            continue
        now = int(time.time())
        body = payments.bank_notification_body(event_id=event_id, bank=BANK, payer=payer, payee=payee,
                                               chaincode=chaincode, amount=amount, currency="INR", created=now)
        header = signature_header([payments.bank_secret_reveal(secret)], now, body)
        outcome = payments.bank_webhook_receive(raw_body=body, now=now, signature_header=header)
        if outcome.http_status != 200:
            raise DemoSeedError(f"{chaincode} {event_id} was refused: {outcome.body}")
        if outcome.body.get("status") == "applied":
            created.append(f"{chaincode}.sell {event_id}")
    return created


def energy_seed() -> list[str]:
    """Mint, then buy; return what was created. The caller holds the transaction."""
    return generation_seed() + purchases_seed()
