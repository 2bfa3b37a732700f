"""The demo's charity side, all through ``charity.services`` and the demo bank's signed webhook:
Warm Homes runs a heat-wave campaign for the demo households' meters (shown only as "household
in ward …"), GridCo matches donations 1:1 up to a cap, a club gives money through the bank,
Alice gives coins under her name and Bob anonymously, the charity posts an update, and the
campaign's automation disburses the pool when the heat wave starts; neighbours collect coins
for the stadium lights on Saturday (part of the goal so far) and fund the market square's lights
for Friday night (goal reached).

Time line: the campaign opened five days ago and the heat wave (its trigger period, inside
which alone it may disburse) began three days ago. ``demo.readings`` back-dates a week of the
meters' readings to before the moment it seeds them, and a burn draws on a funded window only
from the window's start, so the disbursement is dated where the story puts it, at the heat
wave's start (the automatic disbursement service's clock), not at the moment of seeding: the
readings of the last three days then burn the households' earmarked shares, which is what the
campaign page's burned-kWh chart shows. The donations it shared, like the residents' own meter
fundings in ``demo.readings``, carry the time they were seeded. This part must therefore run
before ``demo.readings``; on a demo whose meters reported already it still seeds everything,
and the chart then stays empty until the meters report again.

Seeded once: every step is looked up first (by its row or the ledger's idempotency key)."""

from __future__ import annotations

import time as clock
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts import services as accounts
from charity import services as charity
from charity.models import Campaign, CampaignStatus, GroupFunding, LeftoverRule, MatchPledge, SharingRule
from ledger.keys import UTILITY_SHARDS, utility_account
from ledger.models import Account, Organisation, Transaction
from meters.models import Device
from payments import services as payments
from payments.models import BankSecret, ProcessedEvent
from payments.signing import signature_header

from .errors import DemoSeedError
from .organisations import BANK, CHARITY, UTILITY

CAMPAIGN = "heat-wave-fort-kochi"
TITLE = "Heat wave: keep fans running in Fort Kochi"
STORY = ("The heat wave is here. Elderly neighbours and families with small children cannot afford to run a "
         "fan through the hottest days. Every rupee and every coin you give becomes electricity on their meters, "
         "and can only be spent there: the ledger shows where each unit went.")
GOAL, MINIMUM = 100_000, 20_000  # ₹1,000.00 and ₹200.00 (paise)
# (meter, what the public sees, need-based weight): no names, no addresses.
BENEFICIARIES = [("HM-ALICE", "household in ward 1", 1), ("HM-BOB", "household in ward 2", 2)]
MATCH_WH, MATCH_KEY, SPONSOR = 10_000, "seed-demo-match", "GridCo Utility"
# (username, Wh, idempotency key, anonymous, name shown)
GIFTS = [("alice", 2_000, "seed-demo-give-alice", False, "Alice"), ("bob", 1_000, "seed-demo-give-bob", True, "")]
# The bank's donation: a club without an account pays ₹400.00 → 50 kWh at the demo's ₹8.00/kWh.
FIAT_EVENT, FIAT_AMOUNT, FIAT_DONOR = "seed-demo-donation-rotary", 40_000, "Fort Kochi Rotary Club"
UPDATE_TITLE = "The first coins are on the meters"
UPDATE_BODY = ("Thank you! When the heat wave began, the pool went to the households' meters, shared by need. "
               "The chart below shows what they have used of it each day.")
# (slug, device, title, organiser, goal Wh, weekday of the window (Mon=0), window hours, contributions)
GROUPS = [
    ("saturday-match", "ST-0001", "Saturday's match", "alice", 12_000, 5, (17, 22),
     [("alice", 1_000), ("bob", 2_000)]),
    ("friday-night-market", "MS-0001", "Friday night market", "bob", 2_000, 4, (17, 23),
     [("bob", 1_500), ("alice", 500)]),
]


def _user(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise DemoSeedError(f"the demo user {username!r} is missing")
    return user


def _refused(what: str, exc: Exception) -> DemoSeedError:
    return DemoSeedError(f"{what} was refused: {exc}")


def _timeline() -> dict[str, datetime]:
    """The campaign's dates from the current hour: opened five days ago, heat wave from three
    days ago for a week, campaign open nine days more."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    return {"starts_at": hour - timedelta(days=5), "trigger_starts_at": hour - timedelta(days=3),
            "trigger_ends_at": hour + timedelta(days=4), "ends_at": hour + timedelta(days=9)}


def _campaign_seed(created: list[str]) -> Campaign:
    campaign = Campaign.objects.filter(slug=CAMPAIGN).first()
    if campaign is not None:
        return campaign
    staff = _user("charity")
    devices = {d.public_id: d for d in Device.objects.filter(public_id__in=[b[0] for b in BENEFICIARIES])}
    if len(devices) != len(BENEFICIARIES):
        raise DemoSeedError("the demo households' meters must be registered before the campaign")
    try:
        campaign = charity.campaign_create(
            user=staff, slug=CAMPAIGN, title=TITLE, story=STORY, currency="INR", goal=GOAL, minimum=MINIMUM,
            utility=Organisation.objects.get(msp_id=UTILITY), rule=SharingRule.WEIGHTS,
            leftover=LeftoverRule.REFUND, auto_disburse=True,
            charity=Organisation.objects.get(msp_id=CHARITY), **_timeline(),
            beneficiaries=[{"device": devices[pid], "label": label, "weight": weight}
                           for pid, label, weight in BENEFICIARIES])
    except charity.CharityError as exc:
        raise _refused(f"opening campaign {CAMPAIGN}", exc) from exc
    created.append(f"campaign {CAMPAIGN}")
    return campaign


def _match_seed(campaign: Campaign, created: list[str]) -> None:
    if MatchPledge.objects.filter(campaign=campaign).exists():
        return
    utility = Organisation.objects.get(msp_id=UTILITY)
    # The utility's best-stocked shard: its coins are the reserve.
    shards = [utility_account(UTILITY, n) for n in range(UTILITY_SHARDS)]
    shard = Account.objects.filter(key__in=shards, asset_id="k", organisation=utility).order_by("-balance", "key").first()
    if shard is None or shard.balance < MATCH_WH:
        raise DemoSeedError(f"the utility {UTILITY} holds no {MATCH_WH} Wh to match donations with")
    try:
        charity.match_pledge(user=_user("utility"), campaign=campaign, amount_wh=MATCH_WH,
                             idempotency_key=MATCH_KEY, sponsor_name=SPONSOR, from_account=shard.key,
                             organisation=utility)
    except charity.CharityError as exc:
        raise _refused("GridCo's matching pledge", exc) from exc
    created.append(f"charity-pool.pledge {MATCH_WH} Wh by {UTILITY}")


def _gifts_seed(campaign: Campaign, created: list[str]) -> None:
    for username, wh, key, anonymous, name in GIFTS:
        user = _user(username)
        identity = accounts.membership_for(user).identity
        if Transaction.objects.filter(invoker=identity, idempotency_key=f"charity-give:{key}").exists():
            continue
        try:
            charity.donation_give(user=user, campaign=campaign, amount_wh=wh, idempotency_key=key,
                                  anonymous=anonymous, show_name=not anonymous, donor_name=name)
        except charity.CharityError as exc:
            raise _refused(f"{username}'s coin donation", exc) from exc
        created.append(f"charity-pool.give {wh} Wh by {username}" + (" (anonymous)" if anonymous else ""))


def _fiat_seed(campaign: Campaign, created: list[str]) -> None:
    """The club's money through the demo bank's signed notification, on the code path of
    ``POST /webhooks/bank/``; the metadata names the campaign and the donor (off the chain)."""
    if ProcessedEvent.objects.filter(provider="bank", scope=BANK, event_id=FIAT_EVENT).exists():
        return
    secret = BankSecret.objects.filter(organisation__msp_id=BANK, active=True).order_by("-id").first()
    if secret is None:
        raise DemoSeedError(f"the demo bank {BANK} has no active webhook secret")
    now = int(clock.time())
    body = payments.bank_notification_body(
        event_id=FIAT_EVENT, bank=BANK, payer="", payee=UTILITY, chaincode="charity-pool", amount=FIAT_AMOUNT,
        currency="INR", created=now, metadata={"campaign": campaign.slug, "donor_name": FIAT_DONOR,
                                               "show_name": True})
    header = signature_header([payments.bank_secret_reveal(secret)], now, body)
    outcome = payments.bank_webhook_receive(raw_body=body, now=now, signature_header=header)
    if outcome.http_status != 200 or not campaign.donations.filter(donation_id=FIAT_EVENT).exists():
        raise DemoSeedError(f"the donation {FIAT_EVENT} was refused: {outcome.body}")
    created.append(f"charity-pool.donate {FIAT_EVENT}")


def _update_seed(campaign: Campaign, created: list[str]) -> None:
    if campaign.updates.exists():
        return
    charity.campaign_update_post(user=_user("charity"), campaign=campaign, title=UPDATE_TITLE, body=UPDATE_BODY)
    created.append(f"update on {CAMPAIGN}")


def _disbursement_seed(campaign: Campaign, created: list[str]) -> None:
    """The automatic disbursement at the heat wave's start (see the module's time line)."""
    if campaign.disbursements.exists() or campaign.trigger_starts_at is None:
        return
    at = campaign.trigger_starts_at + timedelta(minutes=30)
    # The sweep disburses every automatic campaign due at that moment: never someone else's.
    others = Campaign.objects.filter(status=CampaignStatus.OPEN, auto_disburse=True, starts_at__lte=at,
                                     ends_at__gt=at).exclude(pk=campaign.pk)
    if others.exists():
        raise DemoSeedError(f"campaign {others.first().slug} would be disbursed with the demo's back-dated sweep; "
                            "seed the demo on a database without campaigns of its own")
    done = [d for d in charity.campaigns_disburse_due(now=at) if d.campaign_id == campaign.pk]
    if not done:
        raise DemoSeedError(f"campaign {CAMPAIGN} disbursed nothing at {at.isoformat()}")
    created.append(f"charity-pool.disburse {done[0].total_wh} Wh to {done[0].households} households")


def _window(weekday: int, hours: tuple[int, int]) -> tuple[datetime, datetime, datetime]:
    """(deadline, window start, window end) of the next such weekday at least a day ahead, in
    the utility's time zone: collecting until noon, lit in the evening."""
    today = timezone.localdate()
    day = today + timedelta(days=(weekday - today.weekday()) % 7 or 7)
    zone = timezone.get_current_timezone()

    def at(hour: int) -> datetime:
        return datetime(day.year, day.month, day.day, hour, tzinfo=zone)

    return at(12), at(hours[0]), at(hours[1])


def _groups_seed(created: list[str]) -> None:
    for slug, public_id, title, organiser, goal, weekday, hours, contributions in GROUPS:
        group = GroupFunding.objects.filter(slug=slug).first()
        if group is None:
            deadline, start, end = _window(weekday, hours)
            try:
                group = charity.group_create(user=_user(organiser), slug=slug, title=title, device=public_id,
                                             goal_wh=goal, deadline=deadline, window_start=start, window_end=end)
            except charity.CharityError as exc:
                raise _refused(f"group funding {slug}", exc) from exc
            created.append(f"group funding {slug}")
        for username, wh in contributions:
            user = _user(username)
            key = f"seed-demo-{slug}-{username}"
            identity = accounts.membership_for(user).identity
            if Transaction.objects.filter(invoker=identity, idempotency_key=f"charity-contribute:{key}").exists():
                continue
            try:
                charity.group_contribute(user=user, group=group, amount_wh=wh, idempotency_key=key)
            except charity.CharityError as exc:
                raise _refused(f"{username}'s contribution to {slug}", exc) from exc
            created.append(f"charity-pool.contribute {wh} Wh by {username} to {slug}")


def charity_seed() -> list[str]:
    """The campaign, its sponsor, donations, update and disbursement, then the group fundings;
    return what was created. Needs the demo's users, bank, prices, meters and coins; must run
    before ``demo.readings``. The caller holds the transaction."""
    if not Organisation.objects.filter(msp_id=CHARITY).exists():
        return []
    created: list[str] = []
    campaign = _campaign_seed(created)
    _match_seed(campaign, created)
    _gifts_seed(campaign, created)
    _fiat_seed(campaign, created)
    _disbursement_seed(campaign, created)
    _update_seed(campaign, created)
    _groups_seed(created)
    return created
