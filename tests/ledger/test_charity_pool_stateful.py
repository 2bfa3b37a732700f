"""Stateful property test of ``charity-pool``: random sequences of fiat and coin donations,
pledges (matching), disbursements, burns at the beneficiaries, settlements after the earmark
ends, cancellation or closing (refund, failure, roll) and refunds, with the clock moving.

After every step: the campaign's books (its world state) equal its pool's ledger balance, every
asset sums to zero over its accounts (issuance included), no device holds less than its funded
windows reserve, and no donation was refunded twice in a refund round; every refund is the
donation's pro-rata share of its round's snapshot, whatever the order, and a fiat donation's
money over all rounds stays proportional to the coins returned and within what was paid. Once a
stopped campaign's windows have all settled and its refund rounds ran to completion, its pool
holds only floor dust: less than one Wh per shareholder (each donation, and the sponsor).

Each example runs inside a savepoint rolled back at its end (pytest-django's ``db`` fixture is
not reset between examples); the world (members, accounts, prices) is built once.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Count
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.chaincodes.charity import STOPPED
from ledger.chaincodes.energy_math import reserved
from ledger.keys import campaign_key, device_account, donation_key, household_account, pool_account, windows_key
from ledger.models import Account, StateEntry, Transaction

from .charity_world import T0, CharityWorld, build_charity_world

pytestmark = pytest.mark.postgres

END = T0 + timedelta(hours=36)
DEVICES = ("HM-ALICE", "HM-BOB", "HM-CAROL")
_ids = itertools.count(1)


def _state(key: str):
    entry = StateEntry.objects.filter(namespace="devices", key=key).first()
    return None if entry is None or entry.is_deleted else entry.value


def _balance(key: str, asset: str = "k") -> int:
    return Account.objects.get(key=key, asset_id=asset).balance


class CharityMachine(RuleBasedStateMachine):
    world: CharityWorld  # set by the test: built once, shared by the examples

    def __init__(self) -> None:
        super().__init__()
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.now = T0 + timedelta(hours=1)
        self.campaigns: list[str] = []
        self.donations: list[str] = []
        self.refunded: set[tuple[str, int]] = set()  # (donation, refund round)
        self.sponsor_rounds: set[int] = set()
        self.status = "open"  # as the ledger last answered

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)

    # --- helpers ------------------------------------------------------------------------
    def call(self, member, function: str, args: dict):
        result = self.world.pool(member, function, args, at=self.now)
        event(f"{function}: {'valid' if result.ok else 'rejected'}")
        return result

    def campaign(self) -> dict:
        return _state(campaign_key("heat"))

    def running(self) -> bool:
        return self.campaign()["status"] == "open" and self.now < END

    # --- rules --------------------------------------------------------------------------
    @initialize(leftover=st.sampled_from(["refund", "roll"]), minimum=st.sampled_from([0, 3000, 100_000]),
                rule_name=st.sampled_from(["equal", "cap", "weights"]))
    def open_campaigns(self, leftover: str, minimum: int, rule_name: str) -> None:
        w = self.world
        if leftover == "roll":
            opened = w.pool(w.charity, "open", {
                "campaign": "winter", "utility": "utility", "currency": "INR", "goal": 100_000, "minimum": 0,
                "start": T0.isoformat(), "end": (T0 + timedelta(days=60)).isoformat(), "rule": "equal",
                "leftover": "refund", "beneficiaries": [{"device": "HM-ALICE", "weight": 1}]}, at=T0)
            assert opened.ok, opened.reason
            self.campaigns.append("winter")
        args = {"campaign": "heat", "utility": "utility", "currency": "INR", "goal": 100_000, "minimum": minimum,
                "start": T0.isoformat(), "end": END.isoformat(), "rule": rule_name, "leftover": leftover,
                "beneficiaries": [{"device": d, "weight": n + 1} for n, d in enumerate(DEVICES)]}
        if rule_name == "cap":
            args["cap_wh"] = 20_000
        if leftover == "roll":
            args["next"] = "winter"
        opened = w.pool(w.charity, "open", args, at=T0)
        assert opened.ok, opened.reason
        self.campaigns.append("heat")

    @rule(amount=st.integers(1, 5000), payer=st.sampled_from(["hh-alice", "hh-bob", ""]))
    def donate_money(self, amount: int, payer: str) -> None:
        running = self.running()
        result = self.world.donate("heat", f"pay-{next(_ids)}", amount, payer=payer, at=self.now)
        event(f"donate: {'valid' if result.ok else 'rejected'}")
        assert result.ok == running, result.reason
        if result.ok:
            self.donations.append(result.result["donation"])

    @rule(household=st.sampled_from(["hh-alice", "hh-bob"]), wh=st.integers(1, 40_000))
    def give_coins(self, household: str, wh: int) -> None:
        running = self.running()
        can_pay = _balance(household_account(household)) >= wh
        result = self.world.give("heat", f"give-{next(_ids)}", wh, household=household, at=self.now)
        event(f"give: {'valid' if result.ok else 'rejected'}")
        assert result.ok == (running and can_pay), result.reason
        if result.ok:
            self.donations.append(result.result["donation"])

    @rule(wh=st.integers(1, 3000))
    def pledge(self, wh: int) -> None:
        result = self.call(self.world.households["hh-carol"], "pledge",
                           {"campaign": "heat", "amount": wh, "from": household_account("hh-carol")})
        assert result.ok == self.running() or "insufficient" in result.reason, result.reason

    @rule(amount=st.one_of(st.none(), st.integers(1, 20_000)),
          to=st.one_of(st.none(), st.lists(st.sampled_from(DEVICES), min_size=1, max_size=3, unique=True)))
    def disburse(self, amount: int | None, to: list[str] | None) -> None:
        held = _balance(pool_account("heat"))
        args = {"campaign": "heat", "disbursement": f"d-{next(_ids)}"}
        if amount is not None:
            args["amount"] = amount
        if to is not None:
            args["to"] = to
        result = self.call(self.world.charity, "disburse", args)
        if amount is not None and amount > held or not self.running():
            assert not result.ok
        if result.ok:
            assert result.result["total"] + result.result["remainder"] == (held if amount is None else amount)

    @rule(device=st.sampled_from(DEVICES), wh=st.integers(1, 3000))
    def burn(self, device: str, wh: int) -> None:
        result = self.world.burn(device, wh, at=self.now)
        assert result.ok, result.reason
        event("burn drew on a campaign" if "campaigns" in result.result else "burn without campaign coins")

    @rule(device=st.sampled_from(DEVICES))
    def settle(self, device: str) -> None:
        self.settle_device(device)

    def settle_device(self, device: str) -> None:
        result = self.world.invoke(self.world.utility, "resident", "settle", {"device": device}, at=self.now)
        event(f"settle: {'valid' if result.ok else 'rejected'}")
        if result.ok:
            assert all(r["funder"] == pool_account("heat") for r in result.result["returned"])

    @rule(hours=st.integers(1, 20))
    def advance(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @precondition(lambda self: len(self.donations) >= 2)
    @rule(dice=st.integers(0, 1))
    def cancel(self, dice: int) -> None:
        if dice:  # most sequences go on donating and disbursing for a while
            return
        open_before = self.campaign()["status"] == "open"
        result = self.call(self.world.charity, "cancel", {"campaign": "heat", "reason": "test"})
        assert result.ok == open_before, result.reason
        self.status = self.campaign()["status"]

    @precondition(lambda self: self.now >= END)
    @rule()
    def close(self) -> None:
        closable = self.campaign()["status"] == "open" and self.now >= END
        result = self.call(self.world.utility, "close", {"campaign": "heat"})
        assert result.ok == closable, result.reason
        self.status = self.campaign()["status"]

    def round(self) -> int:
        return self.campaign().get("refund_round", 0)

    def stopped(self) -> bool:
        return self.campaign()["status"] in STOPPED

    def refund_one(self, donation_id: str) -> None:
        campaign = self.campaign()
        donation = _state(donation_key("heat", donation_id))
        round_ = campaign["refund_round"]
        result = self.call(self.world.charity, "refund", {"campaign": "heat", "donation": donation_id})
        if (donation_id, round_) in self.refunded or campaign["status"] not in STOPPED:
            assert not result.ok
            return
        assert result.ok, result.reason
        self.refunded.add((donation_id, round_))
        share = campaign["refundable_wh"] * donation["wh"] // campaign["refund_basis"]
        assert (result.result["refunded_wh"], result.result["round"]) == (share, round_)
        if donation["kind"] == "fiat":
            total = donation["refunded_wh"] + share
            owed = donation["amount"] if total >= donation["wh"] else donation["amount"] * total // donation["wh"]
            assert result.result["refunded_amount"] == owed - donation["refunded_amount"]
            assert result.result["total_refunded_amount"] == owed <= donation["amount"]

    def refund_the_sponsor(self) -> None:
        campaign = self.campaign()
        result = self.call(self.world.utility, "refund_sponsor", {"campaign": "heat"})
        round_ = campaign["refund_round"]
        if campaign["sponsor"] is None or round_ in self.sponsor_rounds \
                or campaign["status"] not in (*STOPPED, "closed"):
            assert not result.ok
            return
        assert result.ok, result.reason
        self.sponsor_rounds.add(round_)
        assert result.result["refunded_wh"] == (campaign["refundable_wh"] * campaign["matched_wh"]
                                                // campaign["refund_basis"] if campaign["refund_basis"] else 0)

    def round_done(self) -> bool:
        """Every donation refunded in the current round, and the sponsor if it has a share or
        its reserve has not gone back yet: judged from the machine's own records."""
        c = self.campaign()
        round_ = c["refund_round"]
        donations_done = all((d, round_) in self.refunded for d in self.donations)
        sponsor_owed = c["sponsor"] is not None and round_ not in self.sponsor_rounds and (
            not self.sponsor_rounds or c["matched_wh"] > 0)
        return donations_done and not sponsor_owed

    def next_round(self) -> bool:
        c = self.campaign()
        held = _balance(pool_account("heat"))
        left = c["refundable_wh"] - c["round_refunded_wh"]
        largest = max([_state(donation_key("heat", d))["wh"] for d in self.donations] + [c["matched_wh"]])
        due = (c["status"] in STOPPED and self.round_done() and held > left and c["refund_basis"] > 0
               and held * largest // c["refund_basis"] > 0)
        result = self.call(self.world.utility, "next_refund_round", {"campaign": "heat"})
        assert result.ok == due, (result.reason, c, held)
        if due:
            assert self.campaign()["refundable_wh"] == held and self.round() == c["refund_round"] + 1
        return result.ok

    @precondition(lambda self: self.status != "open")
    @rule(pick=st.integers(0, 1000), again=st.booleans())
    def refund(self, pick: int, again: bool) -> None:
        round_ = self.round()
        candidates = self.donations if again else [d for d in self.donations if (d, round_) not in self.refunded]
        if not candidates:
            return
        self.refund_one(candidates[pick % len(candidates)])

    @precondition(lambda self: self.status != "open")
    @rule()
    def refund_sponsor(self) -> None:
        self.refund_the_sponsor()

    @precondition(lambda self: self.status != "open")
    @rule()
    def next_refund_round(self) -> None:
        self.next_round()

    @precondition(lambda self: self.status != "open")
    @rule()
    def settle_everything_and_refund_to_the_end(self) -> None:
        """After the earmark ends every window settles; then rounds run until none is due: a
        stopped campaign's pool keeps less than one Wh per shareholder."""
        self.now = max(self.now, END + timedelta(hours=1))
        for device in DEVICES:
            self.settle_device(device)
        if not self.stopped():
            return
        while True:
            for donation_id in self.donations:
                if (donation_id, self.round()) not in self.refunded:
                    self.refund_one(donation_id)
            if self.campaign()["sponsor"] is not None and not self.round_done():
                self.refund_the_sponsor()
            if not self.next_round():
                break
        c = self.campaign()
        shareholders = len(self.donations) + (1 if c["matched_wh"] else 0)
        assert _balance(pool_account("heat")) < max(shareholders, 1), c
        event(f"refund rounds run to the end: {c['refund_round']}")

    # --- invariants ---------------------------------------------------------------------
    @invariant()
    def books_equal_the_ledger(self) -> None:
        for slug in self.campaigns:
            c = _state(campaign_key(slug))
            assert _balance(pool_account(slug)) == (c["donated_wh"] + c["matched_wh"] + c["returned_wh"]
                                                    - c["disbursed_wh"] - c["refunded_wh"] - c["rolled_wh"]), c

    @invariant()
    def every_asset_is_conserved(self) -> None:
        totals = dict.fromkeys(("k", "INR"), 0)
        for asset, value in Account.objects.values_list("asset_id", "balance"):
            totals[asset] += value
        assert totals == {"k": 0, "INR": 0}

    @invariant()
    def devices_hold_their_earmarks(self) -> None:
        for device in DEVICES:
            assert _balance(device_account(device)) >= reserved(_state(windows_key(device)) or [])

    @invariant()
    def refunds_stay_within_the_snapshot_and_happen_once(self) -> None:
        if not self.campaigns:
            return
        c = self.campaign()
        if c["status"] in STOPPED:
            assert c["round_refunded_wh"] <= c["refundable_wh"]
        twice = (Transaction.objects.filter(chaincode="charity-pool", function="refund", status="valid")
                 .values("args__donation", "result__round").annotate(n=Count("id")).filter(n__gt=1))
        assert not twice.exists()


def test_charity_pool_books_conservation_and_refunds(db):
    world = build_charity_world()
    world.open_pool("heat")
    world.open_pool("winter")
    CharityMachine.world = world
    run_state_machine_as_test(CharityMachine, settings=settings(
        max_examples=25, stateful_step_count=40, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
