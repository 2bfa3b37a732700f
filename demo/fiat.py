"""The demo's fiat side: the demo bank with a webhook signing secret and the identity that
reports its payments, and the utility's retail and wholesale prices, set by the utility's
operator identity through the pricing chaincode with fixed idempotency keys."""

from __future__ import annotations

from accounts.services import invoke_as, service_identity
from ledger.documents import body_digest
from ledger.models import Identity, Organisation, OrgType, Transaction, TxStatus
from payments import services as payments
from payments.models import BankSecret

from .errors import DemoSeedError
from .organisations import BANK, demo_organisation

PRICES_FROM = "2026-01-01T00:00:00+00:00"
DEMO_PRICES = [("retail", "INR", 800), ("wholesale", "INR", 500)]  # paise per kWh


def bank_seed() -> list[str]:
    """The demo bank, an active signing secret and its webhook identity, each if missing."""
    created: list[str] = []
    bank = demo_organisation(BANK, "Demo Bank", OrgType.BANK, created)
    if not BankSecret.objects.filter(organisation=bank, active=True).exists():
        payments.bank_secret_create(organisation=bank, label="demo")
        created.append(f"webhook secret {BANK}/demo")
    if not Identity.objects.filter(organisation=bank, name=payments.WEBHOOK_IDENTITY).exists():
        service_identity(organisation=bank, name=payments.WEBHOOK_IDENTITY)
        created.append(f"identity {BANK}/{payments.WEBHOOK_IDENTITY}")
    return created


def prices_seed() -> list[str]:
    """The demo prices in the schedule of the first utility (none yet: nothing to price)."""
    created: list[str] = []
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


def fiat_seed() -> list[str]:
    """The bank, then the prices; return what was created. The caller holds the transaction."""
    return bank_seed() + prices_seed()
