"""A ledger-only world for ``charity-pool`` tests: a utility with stock in its shards and a
retail price, a charity with a campaign's pool and matching reserve, a bank, households with
metered devices, a public street light and a group escrow. Time is explicit (``at``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import services as ledger
from ledger.crypto import generate_private_key, public_bytes
from ledger.keys import (
    ENERGY,
    UTILITY_SHARDS,
    device_account,
    escrow_account,
    household_account,
    match_account,
    pool_account,
    utility_account,
)
from ledger.models import Account, AccountKind, IdentityKind, Transaction
from ledger.verify import verify_chain
from tests.ledger_helpers import Member, make_member

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # the campaign starts; every test's clock counts from here
PRICE = 800  # INR minor units per kWh
STOCK = 10_000_000  # Wh in the utility's shards
HOUSEHOLDS = ("hh-alice", "hh-bob", "hh-carol")
_keys = itertools.count(1)


@dataclass
class CharityWorld:
    utility: Member
    charity: Member
    bank: Member
    households: dict[str, Member]
    devices: dict[str, str] = field(default_factory=dict)  # household msp -> its meter's public id
    meters: dict[str, Member] = field(default_factory=dict)  # public id -> the device's own signing identity

    def invoke(self, member: Member, chaincode: str, function: str, args: dict[str, Any], *,
               at: datetime | None = None, key: str | None = None) -> ledger.InvokeResult:
        return ledger.invoke(chaincode=chaincode, function=function, args=args, invoker=member.identity,
                             idempotency_key=key or f"charity-test-{next(_keys)}", signer=member.key,
                             proposed_at=at or T0 + timedelta(hours=1))

    def pool(self, member: Member, function: str, args: dict[str, Any], **kw) -> ledger.InvokeResult:
        return self.invoke(member, "charity-pool", function, args, **kw)

    def open_campaign(self, slug: str = "heat", *, beneficiaries: list[str] | None = None,
                      **overrides) -> ledger.InvokeResult:
        self.open_pool(slug)
        args = {"campaign": slug, "utility": "utility", "currency": "INR", "goal": 100_000, "minimum": 10_000,
                "start": T0.isoformat(), "end": (T0 + timedelta(days=30)).isoformat(), "rule": "equal",
                "leftover": "refund",
                "beneficiaries": [{"device": d, "weight": 1} for d in (beneficiaries or list(self.devices.values()))]}
        args.update(overrides)
        return self.pool(self.charity, "open", {k: v for k, v in args.items() if v is not None}, at=T0)

    def open_pool(self, slug: str) -> None:
        org = self.charity.organisation
        ledger.account_open(key=pool_account(slug), asset=ENERGY, organisation=org, kind=AccountKind.POOL)
        ledger.account_open(key=pool_account(slug), asset="INR", organisation=org, kind=AccountKind.POOL)
        ledger.account_open(key=match_account(slug), asset=ENERGY, organisation=org, kind=AccountKind.POOL)

    def open_escrow(self, group: str) -> None:
        ledger.account_open(key=escrow_account(group), asset=ENERGY, organisation=self.utility.organisation,
                            kind=AccountKind.ESCROW)

    def open_group(self, group: str = "lamp", *, device: str = "SL-0001", goal: int = 1000,
                   escrow: bool = True) -> ledger.InvokeResult:
        """A group funding by Alice: deadline and window start a day after T0, the window lasts a day."""
        if escrow:
            self.open_escrow(group)
        return self.pool(self.households["hh-alice"], "group_open", {
            "group": group, "device": device, "goal": goal, "deadline": (T0 + timedelta(days=1)).isoformat(),
            "window_start": (T0 + timedelta(days=1)).isoformat(), "window_end": (T0 + timedelta(days=2)).isoformat()},
            at=T0)

    def donate(self, slug: str, event_id: str, amount: int, *, payer: str = "hh-alice",
               at: datetime | None = None) -> ledger.InvokeResult:
        paid_at = at or T0 + timedelta(hours=1)
        return self.pool(self.bank, "donate", {"event_id": event_id, "payer": payer, "payee": "utility",
                                               "amount": amount, "currency": "INR", "paid_at": paid_at.isoformat(),
                                               "campaign": slug}, at=paid_at)

    def give(self, slug: str, donation: str, wh: int, *, household: str = "hh-alice",
             at: datetime | None = None) -> ledger.InvokeResult:
        return self.pool(self.households[household], "give", {"campaign": slug, "donation": donation, "amount": wh},
                         at=at)

    def burn(self, device: str, wh: int, *, at: datetime | None = None) -> ledger.InvokeResult:
        return self.invoke(self.meters[device], "consumer", "burn", {"amount": wh}, at=at)

    def mint(self, account: str, wh: int) -> None:
        result = self.invoke(self.utility, "token", "mint", {"to": account, "asset": ENERGY, "amount": wh})
        assert result.ok, result.reason


def balance(key: str, asset: str = ENERGY) -> int:
    return Account.objects.get(key=key, asset_id=asset).balance


def assert_conserved() -> None:
    """Every asset sums to zero over all its accounts (issuance included), and the recorded
    transactions replay to the balances and world state (``ledger_verify``)."""
    for asset in ("k", "INR"):
        total = sum(Account.objects.filter(asset_id=asset).values_list("balance", flat=True))
        assert total == 0, f"{asset} sums to {total}"
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


def rejected_with(result: ledger.InvokeResult, words: str) -> None:
    """Refused with ``words`` in the reason, and the refusal recorded with it, moving nothing."""
    assert not result.ok, result.result
    assert words in result.reason, result.reason
    tx = Transaction.objects.get(pk=result.tx_id)
    assert tx.status == "rejected" and words in tx.reason
    assert not tx.postings.exists() and not tx.state_writes.exists()


def build_charity_world() -> CharityWorld:
    utility = make_member("utility", "utility")
    ledger.asset_create(code=ENERGY, name="Energy coin", scale=3, display_unit="kWh", issuer=utility.organisation)
    ledger.asset_create(code="INR", name="Indian rupee credit", scale=2, display_unit="INR",
                        issuer=utility.organisation)
    charity = make_member("helping-hands", "charity")
    bank = make_member("testbank", "bank")
    households = {msp: make_member(msp, "household") for msp in HOUSEHOLDS}
    world = CharityWorld(utility, charity, bank, households)
    for n in range(UTILITY_SHARDS):
        ledger.account_open(key=utility_account("utility", n), asset=ENERGY, organisation=utility.organisation)
    for msp, member in households.items():
        ledger.account_open(key=household_account(msp), asset=ENERGY, organisation=member.organisation)
        device = f"HM-{msp.removeprefix('hh-').upper()}"
        ledger.account_open(key=device_account(device), asset=ENERGY, organisation=member.organisation,
                            kind=AccountKind.DEVICE)
        world.devices[msp] = device
        key = generate_private_key()
        identity = ledger.identity_register(organisation=member.organisation, name=device, public_key=public_bytes(key),
                                            kind=IdentityKind.DEVICE)
        world.meters[device] = Member(member.organisation, identity, key)
    for device, owner in (("SL-0001", utility), ("CH-OFFICE", charity)):
        ledger.account_open(key=device_account(device), asset=ENERGY, organisation=owner.organisation,
                            kind=AccountKind.DEVICE)
    ledger.account_open(key=household_account("helping-hands"), asset=ENERGY, organisation=charity.organisation)
    priced = world.invoke(utility, "pricing", "set", {"kind": "retail", "currency": "INR", "price": PRICE,
                                                      "effective_from": (T0 - timedelta(days=30)).isoformat()},
                          at=T0 - timedelta(days=30))
    assert priced.ok, priced.reason
    per_shard = STOCK // UTILITY_SHARDS
    for n in range(UTILITY_SHARDS):
        world.mint(utility_account("utility", n), per_shard)
    for msp in HOUSEHOLDS:
        world.mint(household_account(msp), 100_000)
    return world
