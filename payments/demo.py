"""Demo data for payments, called by ``seed_demo``: the demo bank with a signing secret and its
webhook identity, and the utility's retail and wholesale prices. Idempotent: everything is
looked up before it is created; price invocations carry fixed idempotency keys."""

from __future__ import annotations

from django.db import transaction

from accounts.services import invoke_as, service_identity
from ledger import services as ledger
from ledger.documents import body_digest
from ledger.models import Identity, Organisation, OrgType, Transaction, TxStatus

from .models import BankSecret
from .secrets import WEBHOOK_IDENTITY, bank_secret_create

DEMO_BANK = "demobank"
PRICES_FROM = "2026-01-01T00:00:00+00:00"
DEMO_PRICES = [("retail", "INR", 800), ("wholesale", "INR", 500)]  # paise per kWh


class DemoSeedError(RuntimeError):
    pass


@transaction.atomic
def seed_payments() -> list[str]:
    """Create whatever part of the payments demo is missing; return what was created."""
    created: list[str] = []
    bank = Organisation.objects.filter(msp_id=DEMO_BANK).first()
    if bank is None:
        bank = ledger.organisation_create(msp_id=DEMO_BANK, name="Demo Bank", org_type=OrgType.BANK)
        created.append(f"organisation {DEMO_BANK}")
    elif bank.org_type != OrgType.BANK:
        raise DemoSeedError(f"organisation {DEMO_BANK} exists with type {bank.org_type}, not bank")
    if not BankSecret.objects.filter(organisation=bank, active=True).exists():
        bank_secret_create(organisation=bank, label="demo")
        created.append(f"webhook secret {DEMO_BANK}/demo")
    if not Identity.objects.filter(organisation=bank, name=WEBHOOK_IDENTITY).exists():
        service_identity(organisation=bank, name=WEBHOOK_IDENTITY)
        created.append(f"identity {DEMO_BANK}/{WEBHOOK_IDENTITY}")

    utility = Organisation.objects.filter(org_type=OrgType.UTILITY).order_by("id").first()
    if utility is None:
        return created
    operator = service_identity(organisation=utility, name="operator")
    for kind, currency, price in DEMO_PRICES:
        key = f"seed-payments-price-{kind}-{currency}"
        args = {"kind": kind, "currency": currency, "price": price, "effective_from": PRICES_FROM}
        done = Transaction.objects.filter(invoker=operator, idempotency_key=key).first()
        if done is not None:
            if done.body_digest != body_digest("pricing", "set", args) or done.status != TxStatus.VALID:
                raise DemoSeedError(f"{key} was already used for something else ({done.tx_hash})")
            continue
        result = invoke_as(identity=operator, chaincode="pricing", function="set", args=args, idempotency_key=key)
        if not result.ok:
            raise DemoSeedError(f"pricing.set {args} was rejected: {result.reason}")
        created.append(f"price {utility.msp_id} {kind} {currency} {price}/kWh")
    return created
