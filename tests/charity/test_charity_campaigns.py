"""Opening and editing campaigns: who may, what the ledger gets, and that a refusal leaves
nothing off-chain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from charity import services
from charity.chain import campaign_state
from charity.models import Beneficiary, Campaign, CampaignUpdate
from ledger.keys import match_account, pool_account
from ledger.models import Account, Transaction
from ledger.selectors import world_state
from tests.charity.world import assert_ledger_verifies, key

pytestmark = [pytest.mark.postgres]


def test_charity_staff_open_a_campaign_with_its_pool_and_beneficiaries(world):
    campaign = world.campaign("heatwave", trigger_starts_at=timezone.now(),
                              trigger_ends_at=timezone.now() + timedelta(hours=6))
    pool = Account.objects.get(key=pool_account("heatwave"), asset_id="k")
    assert pool.organisation == world.charity and pool.kind == "pool"
    assert Account.objects.get(key=pool_account("heatwave"), asset_id="INR").organisation == world.charity
    assert Account.objects.get(key=match_account("heatwave"), asset_id="k").organisation == world.charity
    state = campaign_state("heatwave")
    assert state["status"] == "open" and state["goal"] == 10_000 and state["minimum"] == 5_000
    assert state["charity"] == "sunshine" or state.get("charity_org") == "sunshine"
    beneficiaries = world_state("devices", ["beneficiaries/heatwave"])["beneficiaries/heatwave"]
    assert sorted(beneficiaries) == ["HM-GRAN-1", "HM-GRAN-2"]
    assert campaign.opened_tx == Transaction.objects.get(tx_hash=campaign.opened_tx).tx_hash
    assert list(campaign.beneficiaries.values_list("label", flat=True)) == ["household 1", "household 2"]
    # Submitting the same form again returns the campaign and opens nothing twice.
    assert world.campaign("heatwave", trigger_starts_at=None, trigger_ends_at=None).pk == campaign.pk
    assert Transaction.objects.filter(idempotency_key="charity-open:heatwave").count() == 1
    assert_ledger_verifies()


def test_only_charity_staff_may_open_or_change_a_campaign(world):
    with pytest.raises(services.NotPermitted):
        world.campaign("nope", user=world.alice)
    assert not Campaign.objects.filter(slug="nope").exists()
    campaign = world.campaign("heatwave")
    for call in (lambda: services.campaign_edit(user=world.bob, campaign=campaign, title="Mine"),
                 lambda: services.campaign_update_post(user=world.bob, campaign=campaign, title="x", body="y"),
                 lambda: services.campaign_cancel(user=world.bob, campaign=campaign, reason="no"),
                 lambda: services.disbursement_make(user=world.bob, campaign=campaign, idempotency_key=key())):
        with pytest.raises(services.NotPermitted):
            call()
    campaign.refresh_from_db()
    assert campaign.title == "Cool homes heatwave" and campaign.status == "open"


def test_invalid_terms_are_refused_before_the_ledger(world):
    before = Transaction.objects.exclude(chaincode="config").count()  # a device may be registered
    with pytest.raises(services.CharityError, match="minimum at most the goal"):
        world.campaign("bad", minimum=20_000)
    with pytest.raises(services.CharityError, match="end after it starts"):
        world.campaign("bad", ends_at=timezone.now() - timedelta(days=2))
    with pytest.raises(services.CharityError, match="own device"):
        from meters.services import device_register_simulated

        own = device_register_simulated(organisation=world.charity, kind="household_meter", name="Office",
                                        public_id="HM-OFFICE")
        world.campaign("bad", beneficiaries=[{"device": own}])
    with pytest.raises(services.CharityError, match="next campaign"):
        world.campaign("bad", leftover="roll")
    assert Transaction.objects.exclude(chaincode="config").count() == before
    assert not Campaign.objects.filter(slug="bad").exists()


def test_texts_updates_and_beneficiaries_change(world):
    campaign = world.campaign("heatwave")
    services.campaign_edit(user=world.staff, campaign=campaign, title="Heat wave 2026", story="Fans and fridges.")
    update = services.campaign_update_post(user=world.staff, campaign=campaign, title="Day one", body="12 fans.")
    assert CampaignUpdate.objects.get() == update and update.author == world.staff
    campaign.refresh_from_db()
    assert campaign.title == "Heat wave 2026"

    form = key("beneficiaries")
    services.beneficiaries_set(user=world.staff, campaign=campaign, idempotency_key=form,
                               beneficiaries=[{"device": "HM-GRAN-2", "label": "ward 12"}])
    on_ledger = world_state("devices", ["beneficiaries/heatwave"])["beneficiaries/heatwave"]
    assert list(on_ledger) == ["HM-GRAN-2"]
    assert list(Beneficiary.objects.values_list("device__public_id", "label")) == [("HM-GRAN-2", "ward 12")]
    # The same form submitted twice changes nothing more.
    services.beneficiaries_set(user=world.staff, campaign=campaign, idempotency_key=form,
                               beneficiaries=[{"device": "HM-GRAN-2", "label": "ward 12"}])
    assert Transaction.objects.filter(function="beneficiaries").count() == 1


def test_the_pages_calls_without_slug_or_keys_work_and_terms_cannot_change(world):
    """What the staff pages pass: no slug (made from the title, and a resubmitted form gets
    the same campaign), no utility (the network's), the whole edit form back."""
    now = timezone.now()
    fields = {"title": "Heat wave: ward 12", "story": "Fans.", "currency": "INR", "goal": 10_000, "minimum": 1_000,
              "starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(days=3),
              "beneficiaries": [{"device": "HM-GRAN-1", "label": "ward 12"}]}
    campaign = services.campaign_create(user=world.staff, charity=world.charity, **fields)
    assert campaign.slug == "heat-wave-ward-12" and campaign.utility == world.utility
    assert services.campaign_create(user=world.staff, **fields).pk == campaign.pk
    other = services.campaign_create(user=world.staff, **{**fields, "story": "Fridges."})
    assert other.slug == "heat-wave-ward-12-2"

    terms = {"goal": 10_000, "minimum": 1_000, "starts_at": fields["starts_at"], "ends_at": fields["ends_at"],
             "trigger_starts_at": None, "trigger_ends_at": None, "rule": "equal", "cap_wh": None,
             "leftover": "refund", "next_campaign": None}
    services.campaign_edit(user=world.staff, campaign=campaign, title="Heat wave, ward 12", story="Fans!", **terms)
    campaign.refresh_from_db()
    assert campaign.title == "Heat wave, ward 12"
    with pytest.raises(services.CharityError, match="terms"):
        services.campaign_edit(user=world.staff, campaign=campaign, title="x", **{**terms, "goal": 1})
    campaign.refresh_from_db()
    assert campaign.goal == 10_000 and campaign.title == "Heat wave, ward 12"

    # Beneficiaries without a form key: applied once, a retry finds nothing to change.
    wanted = [{"device": "HM-GRAN-1", "label": "ward 12"}, {"device": "HM-GRAN-2", "label": "ward 13"}]
    services.beneficiaries_set(user=world.staff, campaign=campaign, beneficiaries=wanted)
    services.beneficiaries_set(user=world.staff, campaign=campaign, beneficiaries=wanted)
    services.beneficiaries_set(user=world.staff, campaign=campaign, beneficiaries=wanted[:1])
    services.beneficiaries_set(user=world.staff, campaign=campaign, beneficiaries=wanted)
    assert sorted(world_state("devices", [f"beneficiaries/{campaign.slug}"])[f"beneficiaries/{campaign.slug}"]) == [
        "HM-GRAN-1", "HM-GRAN-2"]
    assert Transaction.objects.filter(function="beneficiaries", status="valid").count() == 3
