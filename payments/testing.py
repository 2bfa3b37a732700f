"""Test and benchmark building blocks: a small energy market and a bank that signs webhooks.
Built only through services and chaincode, like the demo."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from django.test import Client

from accounts.services import energy_accounts_open, invoke_as, service_identity, user_signup
from ledger import services as ledger
from ledger.keys import (
    ENERGY,
    UTILITY_SHARDS,
    credit_account,
    device_account,
    escrow_account,
    household_account,
    match_account,
    pool_account,
    utility_account,
)
from ledger.models import Account, AccountKind, Identity, Organisation, OrgType

from .secrets import bank_secret_create
from .signing import signature_header

PAID_AT = "2026-03-01T12:00:00+00:00"  # after the prices' effective time
PRICES_FROM = "2026-01-01T00:00:00+00:00"
CAMPAIGN_END = "2030-01-01T00:00:00+00:00"  # campaigns and group fundings outlast the tests' clock
CHARITY_MSP = "helping-hands"
RETAIL_PRICE, WHOLESALE_PRICE = 800, 500  # paise per kWh
SHARD_STOCK = 1_000_000  # Wh minted into each utility shard
BANK_SECRET = "gcwh_test_primary_secret"

_ids = itertools.count(1)


def balance(key: str, asset: str = "k") -> int:
    row = Account.objects.filter(key=key, asset_id=asset).values_list("balance", flat=True).first()
    return row or 0


@dataclass
class Market:
    utility: Organisation
    operator: Identity
    household: Organisation
    producer: Organisation
    bank: Organisation
    secret: str
    resident: Any  # the household's owner (a user)

    # --- ledger set-up --------------------------------------------------------------------
    def operate(self, chaincode: str, function: str, args: dict[str, Any]) -> ledger.InvokeResult:
        result = invoke_as(identity=self.operator, chaincode=chaincode, function=function, args=args,
                           idempotency_key=f"market-{next(_ids)}-{time.monotonic_ns()}")
        assert result.ok, result.reason
        return result

    def set_price(self, kind: str, price: int, *, currency: str = "INR", effective_from: str = PRICES_FROM) -> None:
        self.operate("pricing", "set", {"kind": kind, "currency": currency, "price": price,
                                        "effective_from": effective_from})

    def utility_stock(self) -> int:
        return sum(balance(utility_account(self.utility.msp_id, n)) for n in range(UTILITY_SHARDS))

    def household_balance(self, household: Organisation | None = None) -> int:
        return balance(household_account((household or self.household).msp_id))

    def credit(self, payer: str | None = None, payee: str | None = None, currency: str = "INR") -> int:
        return balance(credit_account(payer or self.household.msp_id, payee or self.utility.msp_id), currency)

    def add_household(self, msp_id: str) -> Organisation:
        org = ledger.organisation_create(msp_id=msp_id, name=msp_id, org_type=OrgType.HOUSEHOLD)
        energy_accounts_open(organisation=org)
        return org

    # --- charity campaigns and group fundings (charity-pool) --------------------------------
    def charity(self) -> tuple[Organisation, Identity]:
        """The charity running the tests' campaigns, and its operator (created once)."""
        org = Organisation.objects.filter(msp_id=CHARITY_MSP).first()
        if org is None:
            org = ledger.organisation_create(msp_id=CHARITY_MSP, name="Helping Hands", org_type=OrgType.CHARITY)
            return org, service_identity(organisation=org, name="operator")
        return org, Identity.objects.get(organisation=org, name="operator")

    def charity_invoke(self, function: str, args: dict[str, Any], *, as_utility: bool = False) -> ledger.InvokeResult:
        identity = self.operator if as_utility else self.charity()[1]
        return invoke_as(identity=identity, chaincode="charity-pool", function=function, args=args,
                         idempotency_key=f"charity-{next(_ids)}-{time.monotonic_ns()}")

    def open_campaign(self, slug: str, **overrides: Any) -> ledger.InvokeResult:
        """A campaign of the utility's, in INR, taking donations from PRICES_FROM on: its pool
        opened as the charity app does, then ``charity-pool.open``."""
        org, _ = self.charity()
        for key, asset in ((pool_account(slug), ENERGY), (pool_account(slug), "INR"), (match_account(slug), ENERGY)):
            ledger.account_open(key=key, asset=asset, organisation=org, kind=AccountKind.POOL)
        args = {"campaign": slug, "utility": self.utility.msp_id, "currency": "INR", "goal": 1_000_000,
                "minimum": 0, "start": PRICES_FROM, "end": CAMPAIGN_END, "rule": "equal", "leftover": "refund",
                "beneficiaries": []}
        args.update(overrides)
        result = self.charity_invoke("open", args)
        assert result.ok, result.reason
        return result

    def open_group(self, slug: str, *, goal: int = 1_000_000, device: str = "SL-PAY-1") -> ledger.InvokeResult:
        """A group funding for a street light of the utility's, its escrow opened as the app does."""
        if not Account.objects.filter(key=device_account(device)).exists():
            ledger.account_open(key=device_account(device), asset=ENERGY, organisation=self.utility,
                                kind=AccountKind.DEVICE)
        ledger.account_open(key=escrow_account(slug), asset=ENERGY, organisation=self.utility,
                            kind=AccountKind.ESCROW)
        result = invoke_as(identity=self.operator, chaincode="charity-pool", function="group_open",
                           args={"group": slug, "device": device, "goal": goal, "deadline": "2029-06-01T00:00:00+00:00",
                                 "window_start": "2029-06-01T00:00:00+00:00",
                                 "window_end": "2029-06-02T00:00:00+00:00"},
                           idempotency_key=f"group-{next(_ids)}-{time.monotonic_ns()}")
        assert result.ok, result.reason
        return result

    def donation(self, campaign: str, **overrides: Any) -> dict[str, Any]:
        """A bank's notification of a donation to ``campaign`` (metadata names it)."""
        body = self.notification(chaincode="charity-pool", metadata={"campaign": campaign})
        body.update(overrides)
        return body

    # --- the bank's side ------------------------------------------------------------------
    def notification(self, **overrides: Any) -> dict[str, Any]:
        body = {"id": f"evt-{next(_ids)}", "bank": self.bank.msp_id, "payer": self.household.msp_id,
                "payee": self.utility.msp_id, "chaincode": "retail-seller", "amount": 1000, "currency": "INR",
                "created": PAID_AT}
        body.update(overrides)
        return body

    def signed(self, body: dict[str, Any] | bytes, *, secrets: list[str] | None = None,
               t: int | None = None) -> tuple[bytes, str]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        header = signature_header(secrets if secrets is not None else [self.secret],
                                  int(time.time()) if t is None else t, raw)
        return raw, header

    def deliver(self, body: dict[str, Any] | bytes, *, client: Client | None = None, **sign: Any):
        raw, header = self.signed(body, **sign)
        return post_bank_webhook(raw, header, client=client)


def post_bank_webhook(raw: bytes, header: str | None, *, client: Client | None = None):
    extra = {} if header is None else {"headers": {"GridCoin-Signature": header}}
    return (client or Client()).post("/webhooks/bank/", data=raw, content_type="application/json", **extra)


def build_market(*, username: str = "alice", utility_msp: str = "utility", bank_msp: str = "testbank",
                 stock: int = SHARD_STOCK, prices: bool = True) -> Market:
    utility = ledger.organisation_create(msp_id=utility_msp, name="Utility", org_type=OrgType.UTILITY)
    for code, name, scale, unit in [("k", "Energy coin", 3, "kWh"), ("INR", "Indian rupee credit", 2, "INR")]:
        ledger.asset_create(code=code, name=name, scale=scale, display_unit=unit, issuer=utility)
    energy_accounts_open(organisation=utility)
    operator = service_identity(organisation=utility, name="operator")
    producer = ledger.organisation_create(msp_id="sunfarm", name="SunFarm", org_type=OrgType.PRODUCER)
    energy_accounts_open(organisation=producer)
    bank = ledger.organisation_create(msp_id=bank_msp, name="Test Bank", org_type=OrgType.BANK)
    bank_secret_create(organisation=bank, label="primary", secret=BANK_SECRET)
    resident = user_signup(username=username, password=f"{username}-password-1")
    household = Organisation.objects.get(msp_id=f"hh-{username}")
    market = Market(utility=utility, operator=operator, household=household, producer=producer, bank=bank,
                    secret=BANK_SECRET, resident=resident)
    for n in range(UTILITY_SHARDS):
        if stock:
            market.operate("token", "mint", {"to": utility_account(utility_msp, n), "asset": "k", "amount": stock})
    if prices:
        market.set_price("retail", RETAIL_PRICE)
        market.set_price("wholesale", WHOLESALE_PRICE)
    return market
