"""A world for the campaign pages' tests: the meter world (Alice's household and meter, Charlie,
the utility and its public street light) plus a charity, Hope Trust, with staff member Hana,
another charity with staff member Otto, one campaign whose beneficiary is Alice's meter, and
rows as ``charity.services`` writes them after the ledger accepted: two donations (Alice named,
Charlie anonymous) and a disbursement, each carrying a real transaction hash of the world
(sealed ones, and one still unsealed). The ledger's world state ``campaign/<slug>`` and
``beneficiaries/<slug>`` are written as the ``charity-pool`` chaincode keeps them."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Role
from accounts.services import membership_create
from charity.models import Beneficiary, Campaign, CampaignUpdate, Disbursement, Donation, GroupFunding
from ledger import services as ledger
from ledger.keys import DEVICES_NAMESPACE, beneficiaries_key, campaign_key
from ledger.models import Organisation, OrgType, StateEntry, Transaction, TxStatus
from meters.models import Device
from tests.meters_world import MeterWorld, build_meter_world

SLUG = "heatwave-ward-12"
_versions = itertools.count(1)


@dataclass
class PagesWorld:
    mw: MeterWorld
    charity: Organisation
    other_charity: Organisation
    hana: object  # Hope Trust staff
    otto: object  # staff of another charity
    campaign: Campaign
    named: Donation  # Alice's, name shown
    anonymous: Donation  # Charlie's, no consent
    disbursement: Disbursement

    def __getattr__(self, name):
        return getattr(self.mw, name)


def write_state(key: str, value: dict) -> None:
    """World state as the chaincode leaves it (the read side's input)."""
    StateEntry.objects.update_or_create(namespace=DEVICES_NAMESPACE, key=key,
                                        defaults={"value": value, "version": next(_versions)})


def campaign_state(**changes) -> dict:
    state = {"charity": "hope-trust", "currency": "INR", "goal": 5_000_000, "minimum": 1_000_000, "status": "open",
             "raised": 1_250_000, "donated_wh": 150_000, "matched_wh": 0, "disbursed_wh": 40_000,
             "returned_wh": 0, "refunded_wh": 0, "donations": 2, "disbursements": 1}
    state.update(changes)
    return state


def burn_row(device: Device, *, at: datetime, campaigns: dict[str, int], burned: int = 0) -> Transaction:
    """A ``consumer.burn`` as the meter path records it once the burn drew on campaign-funded
    windows (result ``campaigns: {slug: Wh}``)."""
    return Transaction.objects.create(
        chaincode="consumer", function="burn", args={"meter": device.public_id}, invoker_id=device.identity_id,
        body_digest=secrets.token_hex(32), proposed_at=at, signature="00" * 64, status=TxStatus.VALID,
        result={"burned": burned or sum(campaigns.values()), "campaigns": campaigns}, tx_hash=secrets.token_hex(32))


def build_pages_world(settings) -> PagesWorld:
    mw = build_meter_world(settings)
    users = get_user_model().objects
    charity = ledger.organisation_create(msp_id="hope-trust", name="Hope Trust", org_type=OrgType.CHARITY)
    other = ledger.organisation_create(msp_id="other-aid", name="Other Aid", org_type=OrgType.CHARITY)
    hana = users.create_user(username="hana", password="hana-password-1")
    membership_create(user=hana, organisation=charity, role=Role.OWNER)
    otto = users.create_user(username="otto", password="otto-password-1")
    membership_create(user=otto, organisation=other, role=Role.OWNER)

    now = timezone.now()
    campaign = Campaign.objects.create(
        slug=SLUG, charity=charity, utility=mw.uma.organisation, title="Cool homes in the heat wave",
        story="Elderly neighbours in ward 12 cannot run a fan.\n\nEvery rupee buys them electricity.",
        currency="INR", goal=5_000_000, minimum=1_000_000, starts_at=now - timedelta(days=3),
        ends_at=now + timedelta(days=20), opened_tx=mw.tx["mint_charlie"], created_by=hana)
    Beneficiary.objects.create(campaign=campaign, device=mw.meter, label="Household in ward 12", weight=2)
    CampaignUpdate.objects.create(campaign=campaign, title="First fans running", body="Thank you all.", author=hana)
    named = Donation.objects.create(
        campaign=campaign, donation_id="give-1", kind="coins", donor=mw.alice.user, donor_name="Alice Kumar",
        show_name=True, amount=1_000_000, currency="INR", wh=120_000, tx_hash=mw.tx["mint_alice"],
        receipt_number="HT-2026-0001")
    anonymous = Donation.objects.create(
        campaign=campaign, donation_id="give-2", kind="fiat", donor=mw.charlie.user, donor_name="Charlie Secret",
        show_name=False, amount=250_000, currency="INR", wh=30_000, tx_hash=mw.tx["unsealed"],
        receipt_number="HT-2026-0002")
    disbursement = Disbursement.objects.create(
        campaign=campaign, disbursement_id="d-1", total_wh=40_000, households=1, remainder_wh=0, by=hana,
        tx_hash=mw.tx["alice_to_charlie"])
    write_state(campaign_key(SLUG), campaign_state())
    write_state(beneficiaries_key(SLUG), {mw.meter.public_id: {"weight": 2, "received": 40_000}})
    return PagesWorld(mw=mw, charity=charity, other_charity=other, hana=hana, otto=otto, campaign=campaign,
                      named=named, anonymous=anonymous, disbursement=disbursement)


def group_for_light(pw: PagesWorld, *, slug: str = "market-night") -> GroupFunding:
    now = timezone.now()
    return GroupFunding.objects.create(slug=slug, device=pw.light, organiser=pw.alice.organisation,
                                       title="Lights for the night market", goal_wh=5_000,
                                       deadline=now + timedelta(days=2), window_start=now + timedelta(days=2, hours=1),
                                       window_end=now + timedelta(days=2, hours=5), created_by=pw.alice.user)
