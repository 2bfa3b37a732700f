"""Coin donations, matching and receipts: every coin through charity-pool, a retried form never
gives twice, a refusal records nothing off-chain, and the campaign's books equal the ledger."""

from __future__ import annotations

import pytest

from charity import services
from charity.chain import campaign_state, invoke, pool_balance
from charity.models import Donation, MatchPledge
from ledger.keys import match_account
from ledger.models import Transaction
from tests.charity.world import COINS, assert_books_equal_the_ledger, assert_ledger_verifies, k, key, worth

pytestmark = [pytest.mark.postgres]


def test_a_coin_donation_moves_coins_into_the_pool_once(world):
    campaign = world.campaign("heatwave")
    form = key("give")
    donation = services.donation_give(user=world.alice, campaign=campaign, amount_wh=2_000, idempotency_key=form,
                                      show_name=True)
    again = services.donation_give(user=world.alice, campaign=campaign, amount_wh=2_000, idempotency_key=form,
                                   show_name=True)
    assert again.pk == donation.pk and Donation.objects.count() == 1
    assert world.coins(world.alice) == COINS - 2_000 and pool_balance("heatwave") == 2_000
    assert donation.kind == "coins" and donation.wh == 2_000 and donation.amount == worth(2_000)
    assert donation.donor == world.alice and donation.show_name and donation.donor_name == "alice"
    assert Transaction.objects.get(tx_hash=donation.tx_hash).function == "give"
    assert campaign_state("heatwave")["raised"] == worth(2_000)
    assert_books_equal_the_ledger("heatwave")


def test_anonymous_donations_keep_no_name(world):
    campaign = world.campaign("heatwave")
    donation = world.give(world.bob, campaign, 1_000, anonymous=True, show_name=True, donor_name="Bob B.")
    assert donation.donor_name == "" and not donation.show_name and donation.donor == world.bob


def test_receipt_numbers_are_unique_and_stable(world):
    campaign = world.campaign("heatwave")
    first, second = world.give(world.alice, campaign, 1_000), world.give(world.alice, campaign, 1_000)
    assert first.receipt_number != second.receipt_number
    number = first.receipt_number
    assert number.startswith("GC-") and len(number) == 22
    # Recorded again (a retry of the recording), the number is the same.
    from charity.chain import receipt_number

    assert receipt_number("heatwave", first.donation_id) == number


def test_refusals_are_clear_and_record_nothing_off_chain(world):
    campaign = world.campaign("heatwave")
    with pytest.raises(services.CharityError, match="Not enough coins"):
        world.give(world.alice, campaign, COINS + 1)
    with pytest.raises(services.CharityError, match="positive"):
        world.give(world.alice, campaign, 0)
    with pytest.raises(services.CharityError, match="no campaign"):
        services.donation_give(user=world.alice, campaign="nowhere", amount_wh=10, idempotency_key=key())
    # The ledger itself refuses a give from an account the donor does not own: recorded there,
    # nothing here.
    rejected_before = Transaction.objects.filter(status="rejected").count()
    with pytest.raises(services.LedgerRefused):
        invoke(world.alice.memberships.get().identity, "give",
                              {"campaign": "heatwave", "donation": "steal", "amount": 10,
                               "from": world.account_of(world.bob)}, "steal-1")
    assert Transaction.objects.filter(status="rejected").count() == rejected_before + 1
    assert Donation.objects.count() == 0 and pool_balance("heatwave") == 0


def test_a_sponsor_matches_one_to_one_up_to_the_cap_and_gets_the_unused_reserve_back(world):
    campaign = world.campaign("heatwave")
    pledge = services.match_pledge(user=world.sponsor, campaign=campaign, amount_wh=5_000,
                                   idempotency_key=key("pledge"), sponsor_name="Acme Foods")
    assert k(match_account("heatwave")) == 5_000 and world.coins(world.sponsor) == COINS - 5_000
    first = world.give(world.alice, campaign, 3_000)
    assert first.matched_wh == 3_000
    second = world.give(world.bob, campaign, 1_000)
    assert second.matched_wh == 1_000
    assert k(match_account("heatwave")) == 1_000 and pool_balance("heatwave") == 8_000
    state = assert_books_equal_the_ledger("heatwave")
    assert state["matched_wh"] == 4_000
    # A top-up by the same sponsor adds to the pledge; another sponsor is refused.
    services.match_pledge(user=world.sponsor, campaign=campaign, amount_wh=1_000, idempotency_key=key("pledge"))
    pledge.refresh_from_db()
    assert pledge.cap_wh == 6_000 and MatchPledge.objects.count() == 1
    with pytest.raises(services.CharityError):
        services.match_pledge(user=world.bob, campaign=campaign, amount_wh=1_000, idempotency_key=key("pledge"))
    third = world.give(world.bob, campaign, 5_000)
    assert third.matched_wh == 2_000  # what was left of the reserve
    assert k(match_account("heatwave")) == 0

    # Cancelled: donors get their coins back pro rata, the sponsor its matched share (all of it:
    # nothing was disbursed) plus any unused reserve.
    services.campaign_cancel(user=world.staff, campaign=campaign, reason="The heat wave did not come.")
    report = services.campaign_refund_all(campaign=campaign)
    assert report.complete and report.total == 3
    assert world.coins(world.alice) == COINS and world.coins(world.bob) == COINS
    assert world.coins(world.sponsor) == COINS
    assert pool_balance("heatwave") == 0 and k(match_account("heatwave")) == 0
    pledge.refresh_from_db()
    assert pledge.returned_wh == 6_000 and pledge.refund_tx_hash
    assert_ledger_verifies()


def test_unused_reserve_returns_to_the_sponsor(world):
    campaign = world.campaign("heatwave")
    services.match_pledge(user=world.sponsor, campaign=campaign, amount_wh=10_000, idempotency_key=key("pledge"))
    world.give(world.alice, campaign, 4_000)
    services.campaign_cancel(user=world.staff, campaign=campaign, reason="Called off.")
    services.campaign_refund_all(campaign=campaign)
    assert world.coins(world.sponsor) == COINS  # 4 kWh matched share + 6 kWh never used
    assert k(match_account("heatwave")) == 0
    assert_books_equal_the_ledger("heatwave")


def test_a_form_key_of_the_longest_length_still_gives_once(world):
    campaign = world.campaign("a" * 60)
    form = "k" * 200
    first = services.donation_give(user=world.alice, campaign=campaign, amount_wh=500, idempotency_key=form)
    again = services.donation_give(user=world.alice, campaign=campaign, amount_wh=500, idempotency_key=form)
    assert first.pk == again.pk and world.coins(world.alice) == COINS - 500
    assert len(Transaction.objects.get(tx_hash=first.tx_hash).idempotency_key) <= 200


def test_charity_staff_give_from_their_household_not_the_charity(world):
    from accounts.models import Role
    from accounts.services import membership_create

    campaign = world.campaign("heatwave")
    membership_create(user=world.staff, organisation=world.alice.memberships.get().organisation, role=Role.MEMBER)
    donation = world.give(world.staff, campaign, 700)
    assert donation.donor == world.staff and world.coins(world.alice) == COINS - 700
