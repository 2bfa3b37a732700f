"""Nothing is ever lost: a campaign cancelled while its households' windows still run refunds
what its pool holds then, and when the windows end and settle what was not burned back into
the pool, the refund task runs a second round that gives it back pro rata (coins to coin donors
and the sponsor, money to payers through payments), each once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from charity import services, tasks
from charity.chain import campaign_state, pool_balance
from charity.models import Donation, MatchPledge
from ledger.models import Transaction
from meters.services import windows_settle_due
from payments.models import PaymentRefund
from tests.charity.test_charity_fiat import pay
from tests.charity.world import COINS, assert_books_equal_the_ledger, assert_ledger_verifies, burn, k, key

pytestmark = [pytest.mark.postgres]


def test_coins_settled_back_after_a_cancellation_are_refunded_in_a_second_round(world):
    campaign = world.campaign("heatwave")
    services.match_pledge(user=world.sponsor, campaign=campaign, amount_wh=500, idempotency_key=key("pledge"))
    pay(world, 1_000, "heatwave", donor_name="Alice")  # 1,250 Wh, 500 of them matched
    world.give(world.bob, campaign, 3_250)  # the reserve is used up: unmatched
    # refunds share by 5,000 Wh: the money's 1,250, Bob's 3,250, the sponsor's matched 500
    services.disbursement_make(user=world.staff, campaign=campaign, amount_wh=4_000, idempotency_key=key("d"))
    burn(world.homes[0], 1, 1_000)  # Gran 1 uses half of her 2 kWh window
    stock = world.market.utility_stock()
    services.campaign_cancel(user=world.staff, campaign=campaign, reason="The heat wave passed.")

    # Round 1: the 1,000 Wh in the pool at the cancellation.
    assert tasks.close_ended_campaigns.apply().get() == {"closed": 0, "refunded_campaigns": 1}
    fiat = Donation.objects.get(kind="fiat")
    first = PaymentRefund.objects.get()
    assert (first.amount, first.idempotency_key) == (200, f"charity-refund:heatwave:{fiat.donation_id}")
    assert world.coins(world.bob) == COINS - 3_250 + 650 and world.coins(world.sponsor) == COINS - 500 + 100
    assert pool_balance("heatwave") == 0 and campaign_state("heatwave")["refund_round"] == 1
    assert tasks.close_ended_campaigns.apply().get() == {"closed": 0, "refunded_campaigns": 0}

    # The earmark ends: 1,000 Wh of Gran 1's window and all of Gran 2's come back.
    after_end = campaign.ends_at + timedelta(minutes=1)
    assert all(r.ok for r in windows_settle_due(after_end))
    assert pool_balance("heatwave") == 3_000 and k("device:HM-GRAN-1") == 0

    # Round 2 shares the 3,000 Wh the same way: 750 to the money, 1,950 to Bob, 300 to the sponsor.
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_end.isoformat()}).get() == {
        "closed": 0, "refunded_campaigns": 1}
    state = assert_books_equal_the_ledger("heatwave")
    assert (state["refund_round"], state["refunded_wh"], state["returned_wh"]) == (2, 4_000, 3_000)
    assert pool_balance("heatwave") == 0
    assert world.market.utility_stock() == stock + 250 + 750
    assert world.coins(world.bob) == COINS - 3_250 + 650 + 1_950
    assert world.coins(world.sponsor) == COINS - 500 + 100 + 300
    # 1,000 of the 1,250 Wh bought came back: 800 of the 1,000 paid, 200 of which round 1 gave.
    second = PaymentRefund.objects.exclude(pk=first.pk).get()
    assert (second.amount, second.idempotency_key) == (600, f"charity-refund:heatwave:{fiat.donation_id}:round-2")
    fiat.refresh_from_db()
    assert (fiat.refunded_wh, fiat.refunded_amount) == (1_000, 800) and fiat.refund_tx_hash
    assert Donation.objects.get(kind="coins").refunded_wh == 650 + 1_950
    assert MatchPledge.objects.get().returned_wh == 400

    # Retries and a second worker move nothing again.
    refunds = Transaction.objects.filter(function__in=["refund", "refund_sponsor", "next_refund_round"]).count()
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_end.isoformat()}).get() == {
        "closed": 0, "refunded_campaigns": 0}
    report = services.campaign_refund_all(campaign=campaign, now=after_end)
    assert report.complete and report.round == 2 and report.refunded == 2
    assert Transaction.objects.filter(function__in=["refund", "refund_sponsor", "next_refund_round"]).count() == refunds
    assert PaymentRefund.objects.count() == 2 and sum(r.amount for r in PaymentRefund.objects.all()) == 800
    assert world.coins(world.bob) == COINS - 3_250 + 2_600
    assert_books_equal_the_ledger("heatwave")
    assert_ledger_verifies()


def test_a_refunded_roll_gives_the_earlier_campaigns_sponsor_its_matched_share(world):
    """Closed by its roll, a campaign returned only its sponsor's unused reserve; when the next
    campaign refunds the roll, the earlier one's round 1 gives the sponsor the matched coins too."""
    from django.utils import timezone

    later = world.campaign("winter", ends_at=timezone.now() + timedelta(days=60))
    campaign = world.campaign("heatwave", minimum=100, leftover="roll", next_campaign=later)
    services.match_pledge(user=world.sponsor, campaign=campaign, amount_wh=1_500, idempotency_key=key("pledge"))
    world.give(world.alice, campaign, 1_000)  # matched 1,000; 500 of the reserve unused
    after_end = (campaign.ends_at + timedelta(minutes=1)).isoformat()
    tasks.close_ended_campaigns.apply(kwargs={"now": after_end}).get()
    assert pool_balance("winter") == 2_000 and world.coins(world.sponsor) == COINS - 1_000

    services.campaign_cancel(user=world.staff, campaign=later, reason="A mild winter.")
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_end}).get() == {
        "closed": 0, "refunded_campaigns": 2}
    assert world.coins(world.alice) == COINS and world.coins(world.sponsor) == COINS
    assert pool_balance("heatwave") == 0 and pool_balance("winter") == 0
    assert sorted(Transaction.objects.filter(function="refund_sponsor").values_list("idempotency_key", flat=True)) == [
        "charity-refund-sponsor:heatwave:close", "charity-refund-sponsor:heatwave:round-1"]
    assert MatchPledge.objects.get().returned_wh == 1_500
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_end}).get()["refunded_campaigns"] == 0
    assert world.coins(world.sponsor) == COINS
    assert_books_equal_the_ledger("heatwave")
    assert_books_equal_the_ledger("winter")
