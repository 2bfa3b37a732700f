"""``charity-pool`` through the ledger: a campaign takes money and coins, matches them, disburses
funded windows to its households only, and refunds pro rata when it stops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger import selectors
from ledger import services as ledger
from ledger.batch import Request, invoke_batch
from ledger.chaincodes.charity import shares_by_rule
from ledger.chaincodes.energy_math import fiat_to_wh
from ledger.keys import (
    beneficiaries_key,
    campaign_key,
    credit_account,
    device_account,
    escrow_account,
    household_account,
    match_account,
    pool_account,
    windows_key,
)
from ledger.models import StateEntry
from tests.ledger_helpers import make_member

from .charity_world import PRICE, T0, CharityWorld, assert_conserved, balance, build_charity_world, rejected_with


@pytest.fixture
def cw(db) -> CharityWorld:
    return build_charity_world()


def state(key: str):
    return StateEntry.objects.get(namespace="devices", key=key).value


def books_equal_pool(slug: str) -> None:
    c = state(campaign_key(slug))
    assert balance(pool_account(slug)) == (c["donated_wh"] + c["matched_wh"] + c["returned_wh"] - c["disbursed_wh"]
                                           - c["refunded_wh"] - c["rolled_wh"])


def test_a_campaign_opens_with_its_beneficiaries(cw):
    opened = cw.open_campaign()
    assert opened.ok, opened.reason
    assert opened.result["beneficiaries"] == 3 and opened.result["earmark_end"] == (T0 + timedelta(days=30)).isoformat()
    assert state(beneficiaries_key("heat")) == {d: {"weight": 1, "received": 0} for d in cw.devices.values()}
    assert state(campaign_key("heat"))["status"] == "open"


def test_beneficiaries_must_be_devices_not_owned_by_the_charity(cw):
    rejected_with(cw.open_campaign(beneficiaries=["CH-OFFICE"]), "belongs to the charity itself")
    rejected_with(cw.open_campaign("other", beneficiaries=["NOPE"]), "is not a device account")


def test_a_fiat_donation_buys_coins_at_the_retail_price_into_the_pool_and_keeps_the_remainder(cw):
    cw.open_campaign()
    first = cw.donate("heat", "pay-1", 1001)
    sale = fiat_to_wh(amount=1001, credit=0, price_per_kwh=PRICE)
    assert first.ok, first.reason
    assert (first.result["wh"], first.result["price"], first.result["credit"]) == (sale.wh, PRICE, sale.credit)
    assert balance(pool_account("heat")) == sale.wh and balance(pool_account("heat"), "INR") == sale.credit
    anonymous = cw.donate("heat", "pay-2", 999, payer="")
    assert anonymous.ok and anonymous.result["account"] == ""
    assert balance(pool_account("heat"), "INR") == fiat_to_wh(amount=999, credit=sale.credit, price_per_kwh=PRICE).credit
    books_equal_pool("heat")
    assert_conserved()


def test_donations_are_matched_one_to_one_until_the_reserve_is_used_up(cw):
    cw.open_campaign()
    pledged = cw.pool(cw.households["hh-carol"], "pledge",
                      {"campaign": "heat", "amount": 1500, "from": household_account("hh-carol")})
    assert pledged.ok, pledged.reason
    first, second = cw.give("heat", "g-1", 1000), cw.give("heat", "g-2", 1000, household="hh-bob")
    assert (first.result["matched_wh"], second.result["matched_wh"]) == (1000, 500)
    assert balance(pool_account("heat")) == 3500 and balance(match_account("heat")) == 0
    assert first.result["amount"] == 1000 * PRICE // 1000
    books_equal_pool("heat")
    other = cw.pool(cw.households["hh-alice"], "pledge",
                    {"campaign": "heat", "amount": 10, "from": household_account("hh-alice")})
    rejected_with(other, "is matched by")


def test_a_disbursement_funds_windows_for_the_beneficiaries_and_leaves_the_remainder(cw):
    cw.open_campaign()
    cw.give("heat", "g-1", 1000)
    done = cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"}, at=T0 + timedelta(days=1))
    assert done.ok, done.reason
    assert (done.result["total"], done.result["households"], done.result["remainder"]) == (999, 3, 1)
    for device in cw.devices.values():
        (window,) = state(windows_key(device))
        assert (window["funder"], window["remaining"], window["campaign"]) == (pool_account("heat"), 333, "heat")
        assert balance(device_account(device)) == 333
    assert balance(pool_account("heat")) == 1
    books_equal_pool("heat")
    assert_conserved()


def test_refusals_of_disbursements_are_recorded(cw):
    cw.open_campaign(trigger_start=(T0 + timedelta(days=2)).isoformat(),
                     trigger_end=(T0 + timedelta(days=4)).isoformat())
    cw.give("heat", "g-1", 900)
    inside = T0 + timedelta(days=3)
    rejected_with(cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"},
                          at=T0 + timedelta(days=1)), "trigger period")
    for stranger in ("SL-0001", "CH-OFFICE", "household:helping-hands", pool_account("heat"),
                     device_account("HM-ALICE")):
        rejected_with(cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1", "to": [stranger]},
                              at=inside), "not beneficiaries")
    rejected_with(cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1", "amount": 901},
                          at=inside), "holds 900 Wh")
    rejected_with(cw.pool(cw.utility, "disburse", {"campaign": "heat", "disbursement": "d-1"}, at=inside),
                  "endorsement policy")


def test_earmarked_coins_leave_a_device_only_by_burning_or_settling_to_the_pool(cw):
    cw.open_campaign(end=(T0 + timedelta(days=2)).isoformat())
    cw.give("heat", "g-1", 900)
    cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"}, at=T0 + timedelta(days=1))
    alice, device = cw.households["hh-alice"], device_account("HM-ALICE")
    rejected_with(cw.invoke(alice, "token", "transfer", {"from": device, "to": household_account("hh-alice"),
                                                         "asset": "k", "amount": 1}), "earmarked")
    rejected_with(cw.invoke(alice, "token", "burn", {"from": device, "asset": "k", "amount": 1}), "earmarked")
    rejected_with(cw.invoke(alice, "resident", "fund", {"device": "HM-BOB", "amount": 1, "from": device}),
                  "earmarked")
    cw.mint(device, 50)  # coins of its own stay free
    assert cw.invoke(alice, "token", "transfer", {"from": device, "to": household_account("hh-alice"),
                                                  "asset": "k", "amount": 50}).ok
    settled = cw.invoke(cw.utility, "resident", "settle", {"device": "HM-ALICE"}, at=T0 + timedelta(days=3))
    assert settled.ok, settled.reason
    assert settled.result["returned"] == [{"funder": pool_account("heat"), "returned": 300,
                                           "end": (T0 + timedelta(days=2)).isoformat()}]
    assert state(campaign_key("heat"))["returned_wh"] == 300
    books_equal_pool("heat")


def test_a_cancelled_campaign_refunds_each_donation_once_pro_rata(cw):
    cw.open_campaign()
    cw.donate("heat", "pay-1", 8000)  # 10,000 Wh
    cw.give("heat", "g-1", 10_000, household="hh-bob")
    cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1", "amount": 9_999},
            at=T0 + timedelta(days=1))
    cancelled = cw.pool(cw.charity, "cancel", {"campaign": "heat", "reason": "storm"})
    assert cancelled.ok and cancelled.result["refundable_wh"] == 10_001
    bob_before = balance(household_account("hh-bob"))
    coins = cw.pool(cw.utility, "refund", {"campaign": "heat", "donation": "g-1"})
    fiat = cw.pool(cw.charity, "refund", {"campaign": "heat", "donation": "pay-1"})
    assert coins.ok and fiat.ok, (coins.reason, fiat.reason)
    assert (coins.result["refunded_wh"], fiat.result["refunded_wh"]) == (5000, 5000)
    assert fiat.result["refunded_amount"] == 4000 and fiat.result["event_id"] == "pay-1"
    assert balance(household_account("hh-bob")) == bob_before + 5000
    rejected_with(cw.pool(cw.utility, "refund", {"campaign": "heat", "donation": "g-1"}), "refunded already")
    books_equal_pool("heat")
    assert_conserved()


def test_group_funding_reaching_its_goal_funds_one_window_per_contributor(cw):
    opened = cw.open_group()
    assert opened.ok, opened.reason
    assert cw.pool(cw.households["hh-alice"], "contribute", {"group": "lamp", "contribution": "c-1", "amount": 600}).ok
    done = cw.pool(cw.households["hh-bob"], "contribute", {"group": "lamp", "contribution": "c-2", "amount": 600})
    assert done.ok and done.result["funded"] and done.result["windows"] == 2
    assert balance(device_account("SL-0001")) == 1200
    assert [w["funder"] for w in state(windows_key("SL-0001"))] == [household_account("hh-alice"),
                                                                     household_account("hh-bob")]


def test_group_funding_missing_its_goal_refunds_everyone(cw):
    cw.open_group()
    before = balance(household_account("hh-alice"))
    cw.pool(cw.households["hh-alice"], "contribute", {"group": "lamp", "contribution": "c-1", "amount": 600})
    rejected_with(cw.pool(cw.utility, "group_expire", {"group": "lamp"}), "runs until")
    expired = cw.pool(cw.utility, "group_expire", {"group": "lamp"}, at=T0 + timedelta(days=1))
    assert expired.ok and expired.result["refunded_wh"] == 600
    assert balance(household_account("hh-alice")) == before
    assert_conserved()


def test_shares_by_rule():
    listed = {"a": {"weight": 1, "received": 0}, "b": {"weight": 3, "received": 0}, "c": {"weight": 1, "received": 90}}
    assert shares_by_rule("equal", 100, listed, None) == {"a": 33, "b": 33, "c": 33}
    assert shares_by_rule("weights", 100, listed, None) == {"a": 20, "b": 60, "c": 20}
    assert shares_by_rule("cap", 100, listed, 100) == {"c": 10, "a": 45, "b": 45}


def test_only_the_campaigns_charity_disburses_and_only_while_open_and_running(cw):
    cw.open_campaign()
    cw.give("heat", "g-1", 900)
    rival = make_member("other-charity", "charity")
    rejected_with(cw.pool(rival, "disburse", {"campaign": "heat", "disbursement": "d-1"}), "only the charity")
    rejected_with(cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"},
                          at=T0 - timedelta(hours=1)), "disburses only from")
    rejected_with(cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"},
                          at=T0 + timedelta(days=30)), "disburses only from")
    assert cw.pool(cw.charity, "cancel", {"campaign": "heat", "reason": "storm"}).ok
    rejected_with(cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"}), "is cancelled")


def test_donations_refused_outside_the_campaign_or_twice(cw):
    cw.open_campaign()
    rejected_with(cw.donate("heat", "pay-1", 1000, at=T0 + timedelta(days=30)), "takes donations from")
    assert cw.donate("heat", "pay-1", 1000).ok
    rejected_with(cw.donate("heat", "pay-1", 1000), "exists already")
    wrong = cw.pool(cw.bank, "donate", {"event_id": "pay-2", "payer": "", "payee": "utility", "amount": 100,
                                        "currency": "EUR", "paid_at": (T0 + timedelta(hours=1)).isoformat(),
                                        "campaign": "heat"})
    rejected_with(wrong, "takes INR paid to utility")
    stolen = cw.pool(cw.households["hh-bob"], "give", {"campaign": "heat", "donation": "g-1", "amount": 10,
                                                      "from": household_account("hh-alice")})
    rejected_with(stolen, "does not belong to the invoker's organisation")


def test_earmarked_coins_cannot_be_given_or_pledged_or_contributed_away(cw):
    cw.open_campaign()
    cw.give("heat", "g-1", 900)
    cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"})
    alice, device = cw.households["hh-alice"], device_account("HM-ALICE")
    rejected_with(cw.pool(alice, "give", {"campaign": "heat", "donation": "g-2", "amount": 1, "from": device}),
                  "earmarked")
    cw.open_pool("other")
    rejected_with(cw.pool(alice, "pledge", {"campaign": "heat", "amount": 1, "from": device}), "earmarked")


def test_burns_at_beneficiaries_report_the_campaign_they_drew_on(cw):
    cw.open_campaign()
    cw.give("heat", "g-1", 900)
    cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"})
    cw.mint(device_account("HM-BOB"), 1000)
    burned = cw.burn("HM-ALICE", 100)
    assert burned.ok and burned.result["campaigns"] == {"heat": 100}
    plain = cw.mint(device_account("HM-CAROL"), 10) or cw.burn("HM-CAROL", 400)
    assert plain.result["campaigns"] == {"heat": 300} and plain.result["burned"] == 310
    assert "campaigns" not in cw.burn("HM-ALICE", 500, at=T0 + timedelta(days=31)).result  # window over: own coins


def test_a_campaign_below_its_minimum_fails_and_refunds_fiat_to_the_utility(cw):
    cw.open_campaign()
    cw.donate("heat", "pay-1", 800)
    rejected_with(cw.pool(cw.utility, "close", {"campaign": "heat"}), "runs until")
    closed = cw.pool(cw.utility, "close", {"campaign": "heat"}, at=T0 + timedelta(days=30))
    assert closed.ok and closed.result["status"] == "failed"
    stock = sum(balance(f"utility:utility:{n}") for n in range(16))
    refunded = cw.pool(cw.utility, "refund", {"campaign": "heat", "donation": "pay-1"})
    assert refunded.result["refunded_wh"] == 1000 and refunded.result["refunded_amount"] == 800
    assert sum(balance(f"utility:utility:{n}") for n in range(16)) == stock + 1000
    books_equal_pool("heat")
    assert_conserved()


def test_a_successful_campaign_rolls_its_pool_into_the_next_and_the_sponsor_gets_the_rest(cw):
    cw.open_campaign("winter", minimum=0, start=T0.isoformat(), end=(T0 + timedelta(days=90)).isoformat())
    cw.open_campaign(leftover="roll", next="winter", minimum=100)
    cw.pool(cw.households["hh-carol"], "pledge", {"campaign": "heat", "amount": 700,
                                                  "from": household_account("hh-carol")})
    cw.give("heat", "g-1", 500)
    closed = cw.pool(cw.charity, "close", {"campaign": "heat"}, at=T0 + timedelta(days=30))
    assert closed.ok, closed.reason
    assert (closed.result["status"], closed.result["rolled_wh"], closed.result["next"]) == ("closed", 1000, "winter")
    assert balance(pool_account("winter")) == 1000 and state(campaign_key("winter"))["donated_wh"] == 1000
    sponsor = cw.pool(cw.utility, "refund_sponsor", {"campaign": "heat"})
    assert sponsor.ok and (sponsor.result["refunded_wh"], sponsor.result["unused_wh"]) == (0, 200)
    for slug in ("heat", "winter"):
        books_equal_pool(slug)
    assert_conserved()


def test_a_sponsor_gets_the_matched_share_back_when_the_campaign_is_cancelled(cw):
    cw.open_campaign()
    cw.pool(cw.households["hh-carol"], "pledge", {"campaign": "heat", "amount": 700,
                                                  "from": household_account("hh-carol")})
    cw.give("heat", "g-1", 500)
    cw.pool(cw.charity, "cancel", {"campaign": "heat", "reason": "no heat wave"})
    carol = balance(household_account("hh-carol"))
    sponsor = cw.pool(cw.charity, "refund_sponsor", {"campaign": "heat"})
    assert (sponsor.result["refunded_wh"], sponsor.result["unused_wh"]) == (500, 200)
    assert balance(household_account("hh-carol")) == carol + 700
    rejected_with(cw.pool(cw.charity, "refund_sponsor", {"campaign": "heat"}), "refunded already")
    books_equal_pool("heat")


def test_a_paid_group_contribution_buys_coins_into_escrow_for_the_household(cw):
    cw.open_group(goal=5000)
    ledger.account_open(key=credit_account("hh-bob", "utility"), asset="INR",
                        organisation=cw.households["hh-bob"].organisation)
    paid = cw.pool(cw.bank, "contribute_paid", {"event_id": "pay-9", "payer": "hh-bob", "payee": "utility",
                                                "amount": 801, "currency": "INR",
                                                "paid_at": (T0 + timedelta(hours=1)).isoformat(), "group": "lamp"})
    assert paid.ok, paid.reason
    assert (paid.result["wh"], paid.result["account"], paid.result["credit"]) == (1001, "household:hh-bob", 0)
    assert balance(escrow_account("lamp")) == 1001
    rejected_with(cw.open_group("street", device="SL-0001", escrow=False), "no k account")
    rejected_with(cw.open_group("street", device="HM-ALICE"), "not a public device")


def test_a_disbursement_through_invoke_batch_matches_invoke(cw):
    cw.open_campaign(rule="weights", beneficiaries=None)
    cw.give("heat", "g-1", 1000)
    charity = cw.charity
    (outcome,) = invoke_batch([Request(chaincode="charity-pool", function="disburse", invoker=charity.identity,
                                       signer=charity.key, idempotency_key="batch-d-1",
                                       proposed_at=T0 + timedelta(days=1),
                                       args={"campaign": "heat", "disbursement": "d-1", "to": ["HM-ALICE", "HM-BOB"]})])
    assert outcome.ok, outcome.reason
    assert (outcome.result["total"], outcome.result["households"]) == (1000, 2)
    assert state(windows_key("HM-ALICE"))[0]["remaining"] == 500
    assert state(beneficiaries_key("heat"))["HM-BOB"]["received"] == 500
    books_equal_pool("heat")


def test_a_refunded_roll_goes_back_to_the_earlier_campaign_which_refunds_its_donors(cw):
    cw.open_campaign("winter", minimum=0, start=T0.isoformat(), end=(T0 + timedelta(days=90)).isoformat())
    cw.open_campaign(leftover="roll", next="winter", minimum=100)
    cw.give("heat", "g-1", 500)
    cw.give("heat", "g-2", 1500, household="hh-bob")
    cw.pool(cw.charity, "close", {"campaign": "heat"}, at=T0 + timedelta(days=30))
    cw.give("winter", "w-1", 2000, household="hh-carol", at=T0 + timedelta(days=31))
    cw.pool(cw.charity, "cancel", {"campaign": "winter", "reason": "mild winter"}, at=T0 + timedelta(days=32))
    back = cw.pool(cw.charity, "refund", {"campaign": "winter", "donation": "roll-heat"})
    assert back.ok and (back.result["refunded_wh"], back.result["account"]) == (2000, pool_account("heat"))
    heat = state(campaign_key("heat"))
    assert (heat["status"], heat["refundable_wh"], heat["rolled_wh"]) == ("refunding", 2000, 0)
    bob = balance(household_account("hh-bob"))
    assert cw.pool(cw.utility, "refund", {"campaign": "heat", "donation": "g-2"}).result["refunded_wh"] == 1500
    assert balance(household_account("hh-bob")) == bob + 1500
    for slug in ("heat", "winter"):
        books_equal_pool(slug)
    assert_conserved()


def test_burned_energy_per_day_of_a_campaign(cw):
    cw.open_campaign()
    cw.give("heat", "g-1", 900)
    cw.pool(cw.charity, "disburse", {"campaign": "heat", "disbursement": "d-1"})
    cw.mint(device_account("HM-BOB"), 1000)
    day_one, day_two = T0 + timedelta(hours=2), T0 + timedelta(days=1, hours=2)
    cw.burn("HM-ALICE", 100, at=day_one)
    cw.burn("HM-BOB", 50, at=day_one)
    cw.burn("HM-BOB", 1000, at=day_two)  # 250 from the window, the rest its own coins
    cw.burn("HM-CAROL", 10_000, at=T0 + timedelta(days=40))  # after the earmark: none of it counts
    per_day = selectors.campaign_burned_by_period("heat", since=T0, until=T0 + timedelta(days=60), bucket="day")
    assert per_day == {day_one.date(): 150, day_two.date(): 250}
    assert selectors.campaign_burned_by_period("other", since=T0, until=T0 + timedelta(days=60), bucket="day") == {}


def test_the_charity_changes_its_beneficiaries_and_nobody_else(cw):
    cw.open_campaign(beneficiaries=["HM-ALICE"])
    rival = make_member("other-charity", "charity")
    rejected_with(cw.pool(rival, "beneficiaries", {"campaign": "heat", "add": [{"device": "HM-BOB", "weight": 2}]}),
                  "only the charity")
    rejected_with(cw.pool(cw.charity, "beneficiaries", {"campaign": "heat", "add": [{"device": "CH-OFFICE"}]}),
                  "belongs to the charity itself")
    changed = cw.pool(cw.charity, "beneficiaries", {"campaign": "heat", "add": [{"device": "HM-BOB", "weight": 2}],
                                                    "remove": ["HM-ALICE"]})
    assert changed.ok and (changed.result["added"], changed.result["removed"]) == (["HM-BOB"], ["HM-ALICE"])
    assert state(beneficiaries_key("heat")) == {"HM-BOB": {"weight": 2, "received": 0}}
    cw.open_pool("theirs")
    stolen = cw.pool(rival, "open", {"campaign": "theirs", "utility": "utility", "currency": "INR", "goal": 100,
                                     "minimum": 0, "start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat(),
                                     "rule": "equal", "leftover": "refund"}, at=T0)
    rejected_with(stolen, "does not belong to the invoker's organisation")
