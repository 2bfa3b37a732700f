"""``charity-pool`` refund rounds: coins that come back to a stopped campaign's pool after its
refunds were reckoned (windows settled after a cancellation) are refunded pro rata in a new
round, to every donation and the sponsor once per round; only dust no share turns into a whole
Wh stays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.keys import UTILITY_SHARDS, campaign_key, donation_key, household_account, pool_account, utility_account
from ledger.models import StateEntry
from tests.ledger_helpers import make_member

from .charity_world import T0, CharityWorld, assert_conserved, balance, build_charity_world, rejected_with

pytestmark = pytest.mark.postgres


@pytest.fixture
def cw(db) -> CharityWorld:
    return build_charity_world()


def state(key: str):
    return StateEntry.objects.get(namespace="devices", key=key).value


def books_equal_pool(slug: str) -> dict:
    c = state(campaign_key(slug))
    assert balance(pool_account(slug)) == (c["donated_wh"] + c["matched_wh"] + c["returned_wh"] - c["disbursed_wh"]
                                           - c["refunded_wh"] - c["rolled_wh"]), c
    return c


def utility_stock() -> int:
    return sum(balance(utility_account("utility", n)) for n in range(UTILITY_SHARDS))


def refund(cw: CharityWorld, donation: str, at):
    return cw.pool(cw.utility, "refund", {"campaign": "heat", "donation": donation}, at=at)


def test_coins_settled_back_after_a_cancellation_are_refunded_in_a_second_round(cw):
    cw.open_campaign()
    carol = household_account("hh-carol")
    assert cw.pool(cw.households["hh-carol"], "pledge", {"campaign": "heat", "amount": 1000, "from": carol}).ok
    assert cw.donate("heat", "pay-1", 8000).ok  # 10,000 Wh, 1,000 of them matched
    assert cw.give("heat", "g-1", 5000, household="hh-bob").ok  # the reserve is used up: unmatched
    # basis 16,000 Wh: the money 10,000, Bob's coins 5,000, the sponsor's matched 1,000
    disbursed = cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1", "amount": 12_000},
                        at=T0 + timedelta(days=1))
    assert disbursed.ok and disbursed.result["total"] == 12_000  # 4,000 Wh windows to each of three homes
    assert cw.burn("HM-ALICE", 1000, at=T0 + timedelta(days=2)).ok
    day3 = T0 + timedelta(days=3)
    assert cw.pool(cw.charity, "cancel", {"campaign": "heat", "reason": "storm"}, at=day3).ok

    stock, bob, sponsor = utility_stock(), balance(household_account("hh-bob")), balance(carol)
    fiat = refund(cw, "pay-1", day3)
    rejected_with(cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}, at=day3),
                  "refund round 1 of campaign heat is not done")
    coins = refund(cw, "g-1", day3)
    rejected_with(cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}, at=day3), "the sponsor not yet")
    matched = cw.pool(cw.charity, "refund_sponsor", {"campaign": "heat"}, at=day3)
    assert (fiat.result["refunded_wh"], fiat.result["refunded_amount"], coins.result["refunded_wh"],
            matched.result["refunded_wh"]) == (2500, 2000, 1250, 250)  # 4,000 Wh × 10/16, 5/16, 1/16
    assert matched.result["round_done"] and balance(pool_account("heat")) == 0
    rejected_with(cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}, at=day3), "nothing to share")

    # The earmark ends; the windows settle what the homes did not burn back to the pool.
    later = T0 + timedelta(days=31)
    for device in ("HM-ALICE", "HM-BOB", "HM-CAROL"):
        assert cw.invoke(cw.utility, "resident", "settle", {"device": device}, at=later).ok
    assert balance(pool_account("heat")) == 11_000 and books_equal_pool("heat")["returned_wh"] == 11_000
    rejected_with(refund(cw, "g-1", later), "refunded already in refund round 1")

    opened = cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}, at=later)
    assert opened.ok, opened.reason
    assert (opened.result["round"], opened.result["refundable_wh"]) == (2, 11_000)
    rejected_with(cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}, at=later),
                  "refund round 2 of campaign heat is not done: 0 of 2 donations refunded")
    coins2 = refund(cw, "g-1", later)  # another order than round 1: the shares do not depend on it
    matched2 = cw.pool(cw.utility, "refund_sponsor", {"campaign": "heat"}, at=later)
    fiat2 = refund(cw, "pay-1", later)
    assert (coins2.result["refunded_wh"], matched2.result["refunded_wh"], fiat2.result["refunded_wh"]) == (
        3437, 687, 6875)  # 11,000 Wh × 5/16, 1/16, 10/16, floored
    # 9,375 of the 10,000 Wh bought returned over both rounds: 7,500 of the 8,000 paid, 2,000 of
    # which round 1 gave back.
    assert (fiat2.result["refunded_amount"], fiat2.result["total_refunded_amount"]) == (5500, 7500)
    assert (fiat2.result["round"], fiat2.result["total_refunded_wh"]) == (2, 9375)
    rejected_with(refund(cw, "pay-1", later), "refunded already in refund round 2")
    rejected_with(cw.pool(cw.charity, "refund_sponsor", {"campaign": "heat"}, at=later), "refunded already")

    assert utility_stock() == stock + 2500 + 6875
    assert balance(household_account("hh-bob")) == bob + 1250 + 3437
    assert balance(carol) == sponsor + 250 + 687
    donation = state(donation_key("heat", "pay-1"))
    assert (donation["refunded"], donation["refunded_round"], donation["refunded_wh"],
            donation["refunded_amount"]) == (True, 2, 9375, 7500)
    assert donation["refunds"] == {"1": {"wh": 2500, "amount": 2000}, "2": {"wh": 6875, "amount": 5500}}
    c = books_equal_pool("heat")
    assert (c["refund_round"], c["refunded_amount"], c["sponsor_refunded_wh"]) == (2, 7500, 937)
    assert balance(pool_account("heat")) == 1  # the floor dust: no share of it is a whole Wh
    rejected_with(cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}, at=later), "nothing to share")
    assert_conserved()


def test_a_round_shares_what_came_back_while_the_previous_one_ran(cw):
    cw.open_campaign()
    assert cw.give("heat", "g-1", 3000).ok
    assert cw.give("heat", "g-2", 1000, household="hh-bob").ok
    assert cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1", "amount": 3000,
                                            "to": ["HM-CAROL"]}, at=T0 + timedelta(days=1)).ok
    day3 = T0 + timedelta(days=3)
    assert cw.pool(cw.charity, "cancel", {"campaign": "heat", "reason": "storm"}, at=day3).ok
    assert refund(cw, "g-1", day3).result["refunded_wh"] == 750  # of the 1,000 Wh snapshot
    later = T0 + timedelta(days=31)
    assert cw.invoke(cw.utility, "resident", "settle", {"device": "HM-CAROL"}, at=later).ok
    # Bob's round-1 share is still of the snapshot, whatever came back since.
    assert refund(cw, "g-2", later).result["refunded_wh"] == 250
    assert balance(pool_account("heat")) == 3000
    assert cw.pool(cw.utility, "next_refund_round", {"campaign": "heat"}, at=later).result["refundable_wh"] == 3000
    assert refund(cw, "g-2", later).result["refunded_wh"] == 750
    assert refund(cw, "g-1", later).result["refunded_wh"] == 2250
    assert balance(pool_account("heat")) == 0
    books_equal_pool("heat")
    assert_conserved()


def test_only_a_stopped_campaign_has_refund_rounds_and_only_its_charity_or_utility_opens_them(cw):
    cw.open_campaign()
    assert cw.give("heat", "g-1", 3000).ok
    rejected_with(cw.pool(cw.charity, "next_refund_round", {"campaign": "heat"}), "is open: nothing is refunded")
    assert cw.pool(cw.charity, "cancel", {"campaign": "heat", "reason": "storm"}).ok
    assert refund(cw, "g-1", T0 + timedelta(hours=2)).ok
    rejected_with(cw.pool(cw.households["hh-bob"], "next_refund_round", {"campaign": "heat"}),
                  "may be invoked by charity, utility")
    rival = make_member("other-charity", "charity")
    rejected_with(cw.pool(rival, "next_refund_round", {"campaign": "heat"}), "only the charity")
