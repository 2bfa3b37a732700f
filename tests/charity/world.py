"""The charity tests' world, built only through services and chaincode (as the demo is): the
payments market (a utility with stock and INR prices, a bank, resident Alice), a charity with a
staff member, donors Alice and Bob and a sponsor with coins, two households whose meters a
campaign helps, and a public street light for group funding."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Role
from accounts.services import membership_create, user_signup
from charity import services
from charity.chain import campaign_state, pool_balance
from charity.models import Campaign
from ledger import services as ledger
from ledger.keys import household_account
from ledger.models import Account, Organisation, OrgType
from ledger.verify import verify_chain
from meters.models import Device, DeviceKind
from meters.services import device_register_simulated
from payments.testing import RETAIL_PRICE, Market, build_market

COINS = 50_000  # Wh each donor starts with
_keys = itertools.count(1)


def key(prefix: str = "form") -> str:
    return f"{prefix}-{next(_keys)}"


def k(account: str, asset: str = "k") -> int:
    return Account.objects.filter(key=account, asset_id=asset).values_list("balance", flat=True).first() or 0


@dataclass
class CharityWorld:
    market: Market
    charity: Organisation
    staff: Any
    alice: Any
    bob: Any
    sponsor: Any
    homes: list[Device]
    light: Device

    @property
    def utility(self) -> Organisation:
        return self.market.utility

    def account_of(self, user) -> str:
        return household_account(f"hh-{user.get_username()}")

    def coins(self, user) -> int:
        return k(self.account_of(user))

    def campaign(self, slug: str, **overrides: Any) -> Campaign:
        now = timezone.now()
        values: dict[str, Any] = {
            "user": self.staff, "slug": slug, "title": f"Cool homes {slug}", "story": "Fans for the elderly.",
            "utility": self.utility, "currency": "INR", "goal": 10_000, "minimum": 5_000,
            "starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(days=1),
            "beneficiaries": [{"device": home, "label": f"household {n}"} for n, home in enumerate(self.homes, 1)],
        }
        values.update(overrides)
        return services.campaign_create(**values)

    def give(self, user, campaign: Campaign, wh: int, **extra: Any):
        return services.donation_give(user=user, campaign=campaign, amount_wh=wh, idempotency_key=key("give"),
                                      **extra)


def build_charity_world() -> CharityWorld:
    market = build_market()
    users = get_user_model().objects
    charity = ledger.organisation_create(msp_id="sunshine", name="Sunshine Trust", org_type=OrgType.CHARITY)
    staff = users.create_user(username="carla", password="carla-password-1", first_name="Carla")
    membership_create(user=staff, organisation=charity, role=Role.OWNER)
    alice = market.resident
    bob = user_signup(username="bob", password="bob-password-1")
    sponsor = user_signup(username="acme", password="acme-password-1", household_name="Acme Foods")
    for user in (alice, bob, sponsor):
        market.operate("token", "mint", {"to": household_account(f"hh-{user.get_username()}"), "asset": "k",
                                         "amount": COINS})
    homes = []
    for n in (1, 2):
        home = ledger.organisation_create(msp_id=f"hh-gran{n}", name=f"Gran {n}", org_type=OrgType.HOUSEHOLD)
        homes.append(device_register_simulated(organisation=home, kind=DeviceKind.HOUSEHOLD_METER,
                                               name=f"Gran {n}'s meter", public_id=f"HM-GRAN-{n}"))
    light = device_register_simulated(organisation=market.utility, kind=DeviceKind.STREET_LIGHT, name="Square light",
                                      public_id="SL-SQUARE", place="Market square")
    return CharityWorld(market=market, charity=charity, staff=staff, alice=alice, bob=bob, sponsor=sponsor,
                        homes=homes, light=light)


def burn(device: Device, counter: int, import_wh: int, at=None):
    """The device's meter reports its cumulative import register, signed with its own key."""
    from ledger.readings import reading_payload
    from meters.services import simulated_signer

    at = at or timezone.now()
    payload = reading_payload(device_kind=device.kind, invoker=f"{device.organisation.msp_id}/{device.public_id}",
                              counter=counter, import_wh=import_wh, export_wh=0, timestamp=at)
    result = ledger.invoke(chaincode="consumer", function="burn", invoker=device.identity,
                           args={"counter": counter, "import_wh": import_wh, "export_wh": 0,
                                 "timestamp": at.isoformat()},
                           idempotency_key=f"reading:{counter}",
                           signature=simulated_signer(device).sign(payload), proposed_at=at)
    assert result.ok, result.reason
    return result


def worth(wh: int) -> int:
    """Minor units a coin donation of ``wh`` counts for at the test's retail price."""
    return wh * RETAIL_PRICE // 1000


def assert_books_equal_the_ledger(slug: str) -> dict:
    """The campaign's books (its world state) explain its pool's balance, and its Donation rows
    mirror the ledger's donations."""
    state = campaign_state(slug)
    assert state is not None
    campaign = Campaign.objects.get(slug=slug)
    rolled_in = sum(d.wh for d in campaign.donations.filter(kind="roll"))
    expected = (state["donated_wh"] + state["matched_wh"] + state["returned_wh"] - state["disbursed_wh"]
                - state["refunded_wh"] - state["rolled_wh"])
    # donated_wh counts every donation's coins, rolled-in included
    assert pool_balance(slug) == expected, (pool_balance(slug), state)
    rows = campaign.donations.aggregate(wh=Sum("wh"), matched=Sum("matched_wh"), refunded=Sum("refunded_wh"))
    assert (rows["wh"] or 0) == state["donated_wh"], (rows, state, rolled_in)
    assert (rows["matched"] or 0) == state["matched_wh"]
    return state


def assert_ledger_verifies() -> None:
    report = verify_chain(check_signatures=True)
    assert report.ok, [str(p) for p in report.problems]
