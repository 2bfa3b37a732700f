"""How campaigns end: cancelled, failed below the minimum, leftover refunded, or rolled into the
next campaign; refunds run from the close task and are never paid twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from charity import services, tasks
from charity.chain import campaign_state, pool_balance
from charity.models import Campaign, Donation
from ledger.models import Transaction
from tests.charity.world import COINS, assert_books_equal_the_ledger, assert_ledger_verifies, burn, k, worth

pytestmark = [pytest.mark.postgres]


def after_the_end(campaign: Campaign) -> str:
    return (campaign.ends_at + timedelta(minutes=1)).isoformat()


def test_cancellation_refunds_every_coin_donor_through_the_task(world):
    campaign = world.campaign("heatwave")
    world.give(world.alice, campaign, 3_000)
    world.give(world.bob, campaign, 1_000)
    with pytest.raises(services.CharityError, match="why"):
        services.campaign_cancel(user=world.staff, campaign=campaign, reason=" ")
    cancelled = services.campaign_cancel(user=world.staff, campaign=campaign, reason="Rain came.")
    assert cancelled.status == "cancelled" and campaign_state("heatwave")["status"] == "cancelled"
    with pytest.raises(services.CharityError, match="no longer"):
        world.give(world.alice, cancelled, 100)

    assert tasks.close_ended_campaigns.apply().get() == {"closed": 0, "refunded_campaigns": 1}
    assert world.coins(world.alice) == COINS and world.coins(world.bob) == COINS
    assert pool_balance("heatwave") == 0
    assert all(d.refund_tx_hash and d.refunded_wh == d.wh for d in Donation.objects.all())
    campaign.refresh_from_db()
    assert campaign.refunds_done_at is not None
    # The next pass has nothing left to do, and nothing is refunded twice.
    refunds = Transaction.objects.filter(function="refund").count()
    assert tasks.close_ended_campaigns.apply().get() == {"closed": 0, "refunded_campaigns": 0}
    steps = []
    report = services.campaign_refund_all(campaign=campaign, progress=lambda n, total, label: steps.append((n, total)))
    assert report.complete and report.refunded == 2 and steps == [(1, 2), (2, 2)]  # by hand, again: replays
    assert Transaction.objects.filter(function="refund").count() == refunds
    assert world.coins(world.alice) == COINS
    assert_books_equal_the_ledger("heatwave")
    assert_ledger_verifies()


def test_below_the_minimum_at_the_end_the_campaign_fails_and_coin_donors_are_refunded(world):
    campaign = world.campaign("heatwave", minimum=5_000)
    world.give(world.alice, campaign, 2_000)  # worth 1,600 < 5,000
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_the_end(campaign)}).get() == {
        "closed": 1, "refunded_campaigns": 1}
    campaign.refresh_from_db()
    assert campaign.status == "failed" and campaign.closed_tx
    assert world.coins(world.alice) == COINS
    assert_books_equal_the_ledger("heatwave")


def test_the_refund_rule_returns_the_leftover_pro_rata(world):
    campaign = world.campaign("heatwave", minimum=1_000, leftover="refund")
    world.give(world.alice, campaign, 6_000)
    world.give(world.bob, campaign, 2_000)
    services.disbursement_make(user=world.staff, campaign=campaign, amount_wh=4_000, idempotency_key="d1")
    assert pool_balance("heatwave") == 4_000 and k("device:HM-GRAN-1") == 2_000
    burn(world.homes[0], 1, 1_000)  # Gran 1's fan uses 1 kWh of her share
    tasks.close_ended_campaigns.apply(kwargs={"now": after_the_end(campaign)}).get()
    campaign.refresh_from_db()
    assert campaign.status == "refunding"
    # Before the close reckoned the pool, the ended earmarks came home (3 kWh unburned), so 7 of
    # the 8 kWh given are refunded pro rata: Alice 6 × 7/8, Bob 2 × 7/8.
    assert k("device:HM-GRAN-1") == 0 and k("device:HM-GRAN-2") == 0
    assert world.coins(world.alice) == COINS - 750 and world.coins(world.bob) == COINS - 250
    assert pool_balance("heatwave") == 0
    state = assert_books_equal_the_ledger("heatwave")
    assert state["returned_wh"] == 3_000 and state["refunded_wh"] == 7_000
    assert_ledger_verifies()


def test_the_roll_rule_moves_the_leftover_into_the_next_campaign(world):
    later = world.campaign("winter", ends_at=timezone.now() + timedelta(days=60))
    campaign = world.campaign("heatwave", minimum=1_000, leftover="roll", next_campaign=later)
    world.give(world.alice, campaign, 5_000)
    tasks.close_ended_campaigns.apply(kwargs={"now": after_the_end(campaign)}).get()
    campaign.refresh_from_db()
    assert campaign.status == "closed"
    assert pool_balance("heatwave") == 0 and pool_balance("winter") == 5_000
    assert world.coins(world.alice) == COINS - 5_000  # nothing refunded: it rolled
    (rolled,) = later.donations.all()
    assert rolled.kind == "roll" and rolled.wh == 5_000 and rolled.receipt_number
    assert campaign_state("heatwave")["rolled_wh"] == 5_000
    assert_books_equal_the_ledger("heatwave")
    assert_books_equal_the_ledger("winter")

    # The winter campaign is called off: the rolled coins go back to the heat wave's pool, and
    # the same pass of the task refunds the heat wave's own donors.
    services.campaign_cancel(user=world.staff, campaign=later, reason="A mild winter.")
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_the_end(campaign)}).get() == {
        "closed": 0, "refunded_campaigns": 2}
    campaign.refresh_from_db()
    assert campaign.status == "refunding" and campaign.refunds_done_at is not None
    assert world.coins(world.alice) == COINS
    assert pool_balance("heatwave") == 0 and pool_balance("winter") == 0
    assert_books_equal_the_ledger("heatwave")
    assert_books_equal_the_ledger("winter")
    assert_ledger_verifies()


def test_a_campaign_cannot_be_closed_before_its_end(world):
    campaign = world.campaign("heatwave")
    with pytest.raises(services.CharityError, match="runs until"):
        services.campaign_close(campaign=campaign, user=world.staff)
    assert tasks.close_ended_campaigns.apply().get() == {"closed": 0, "refunded_campaigns": 0}
    campaign.refresh_from_db()
    assert campaign.status == "open"
    assert worth(1000) == 800


def test_a_refusal_that_no_longer_holds_does_not_stick(world):
    """The ledger answers a reused key with its first result: a close refused once (asked too
    early) must not keep the campaign open for ever."""
    from charity.chain import automation_identity, invoke

    campaign = world.campaign("heatwave", minimum=0)
    world.give(world.alice, campaign, 1_000)
    identity = automation_identity(world.charity)
    with pytest.raises(services.LedgerRefused, match="runs until"):
        invoke(identity, "close", {"campaign": "heatwave"}, "charity-close:heatwave")
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_the_end(campaign)}).get()["closed"] == 1
    campaign.refresh_from_db()
    assert campaign.status == "refunding" and world.coins(world.alice) == COINS
    assert Transaction.objects.get(tx_hash=campaign.closed_tx).idempotency_key == "charity-close:heatwave#2"


def test_a_roll_into_a_campaign_that_is_not_open_is_refused_before_the_ledger(world):
    later = world.campaign("winter", ends_at=timezone.now() + timedelta(days=60))
    campaign = world.campaign("heatwave", minimum=0, leftover="roll", next_campaign=later)
    services.campaign_cancel(user=world.staff, campaign=later, reason="Merged with another.")
    before = Transaction.objects.exclude(chaincode="config").count()  # a device may be registered
    with pytest.raises(services.CharityError, match="not open"):
        services.campaign_close(campaign=campaign, now=campaign.ends_at + timedelta(minutes=1))
    assert Transaction.objects.exclude(chaincode="config").count() == before


def test_a_campaign_the_ledger_closed_already_catches_up(world):
    from charity.chain import invoke

    campaign = world.campaign("heatwave", minimum=0)
    utility_operator = world.market.operator
    invoke(utility_operator, "close", {"campaign": "heatwave"}, "utility-close",
           proposed_at=campaign.ends_at + timedelta(minutes=1))
    closed = services.campaign_close(campaign=campaign, now=campaign.ends_at + timedelta(minutes=2))
    assert closed.status == "refunding"
    assert Transaction.objects.filter(function="close").count() == 1
