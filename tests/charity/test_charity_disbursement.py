"""Disbursement: by hand and by the automatic task inside the campaign's window and trigger
period; the shares become funded windows at the beneficiaries that only their meters can burn,
and what a window leaves returns to the pool when it ends (the window settlement scheduler)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from charity import services, tasks
from charity.chain import campaign_state, pool_balance
from charity.models import Disbursement
from ledger.keys import pool_account
from ledger.models import Transaction
from ledger.selectors import device_windows
from meters.services import windows_settle_due
from tests.charity.world import assert_books_equal_the_ledger, assert_ledger_verifies, k, key

pytestmark = [pytest.mark.postgres]


def test_staff_disburse_the_pool_as_earmarked_windows(world):
    campaign = world.campaign("heatwave")
    world.give(world.alice, campaign, 5_001)
    disbursement = services.disbursement_make(user=world.staff, campaign=campaign, idempotency_key="button-1")
    assert disbursement.total_wh == 5_000 and disbursement.remainder_wh == 1 and disbursement.households == 2
    assert not disbursement.automatic and disbursement.by == world.staff
    assert k("device:HM-GRAN-1") == 2_500 and k("device:HM-GRAN-2") == 2_500 and pool_balance("heatwave") == 1
    windows = device_windows(["HM-GRAN-1"])["HM-GRAN-1"]
    assert [(w["funder"], w["amount"], w.get("campaign")) for w in windows] == [
        (pool_account("heatwave"), 2_500, "heatwave")]
    # The same button pressed twice disburses once.
    again = services.disbursement_make(user=world.staff, campaign=campaign, idempotency_key="button-1")
    assert again.pk == disbursement.pk and Disbursement.objects.count() == 1
    assert campaign_state("heatwave")["disbursed_wh"] == 5_000
    assert_books_equal_the_ledger("heatwave")

    # The earmark ends: the window settlement scheduler returns what was not burned to the pool.
    end = datetime.fromisoformat(windows[0]["end"])
    settled = windows_settle_due(now=end + timedelta(minutes=1))
    assert sorted(r.ok for r in settled) == [True, True]
    assert pool_balance("heatwave") == 5_001 and k("device:HM-GRAN-1") == 0
    assert campaign_state("heatwave")["returned_wh"] == 5_000
    assert_books_equal_the_ledger("heatwave")
    assert_ledger_verifies()


def test_an_empty_pool_or_an_outsider_cannot_disburse(world):
    campaign = world.campaign("heatwave")
    with pytest.raises(services.CharityError, match="pool holds"):
        services.disbursement_make(user=world.staff, campaign=campaign, idempotency_key=key())
    with pytest.raises(services.NotPermitted):
        services.disbursement_make(user=world.alice, campaign=campaign, idempotency_key=key())
    assert not Disbursement.objects.exists()


def test_outside_the_trigger_period_the_ledger_refuses_and_nothing_is_recorded(world):
    now = timezone.now()
    campaign = world.campaign("heatwave", trigger_starts_at=now + timedelta(hours=2),
                              trigger_ends_at=now + timedelta(hours=8))
    world.give(world.alice, campaign, 2_000)
    with pytest.raises(services.LedgerRefused):
        services.disbursement_make(user=world.staff, campaign=campaign, idempotency_key=key())
    assert not Disbursement.objects.exists() and pool_balance("heatwave") == 2_000
    assert Transaction.objects.filter(function="disburse", status="rejected").count() == 1


def test_the_automatic_task_disburses_inside_the_trigger_period_only_once_per_period(world):
    now = timezone.now()
    hot = world.campaign("hot", auto_disburse=True, trigger_starts_at=now - timedelta(minutes=30),
                         trigger_ends_at=now + timedelta(hours=5))
    later = world.campaign("later", auto_disburse=True, trigger_starts_at=now + timedelta(hours=2),
                           trigger_ends_at=now + timedelta(hours=8))
    manual = world.campaign("manual", auto_disburse=False)
    for campaign in (hot, later, manual):
        world.give(world.alice, campaign, 1_000)

    this_period = now.isoformat()
    assert tasks.disburse_due_campaigns.apply(kwargs={"now": this_period}).get() == 1
    (auto,) = Disbursement.objects.all()
    assert auto.campaign == hot and auto.automatic and auto.total_wh == 1_000
    assert pool_balance("hot") == 0 and pool_balance("later") == 1_000 and pool_balance("manual") == 1_000
    # New coins in the same period wait for the next one.
    world.give(world.bob, hot, 1_000)
    assert tasks.disburse_due_campaigns.apply(kwargs={"now": this_period}).get() == 0
    assert Disbursement.objects.count() == 1 and pool_balance("hot") == 1_000

    # Inside the later campaign's trigger period (and a new period) both disburse.
    inside = (now + timedelta(hours=3)).isoformat()
    assert tasks.disburse_due_campaigns.apply(kwargs={"now": inside}).get() == 2
    assert pool_balance("later") == 0 and pool_balance("hot") == 0 and pool_balance("manual") == 1_000
    # An empty pool in a new period: nothing asked of the ledger, so no refusal recorded.
    assert tasks.disburse_due_campaigns.apply(kwargs={"now": (now + timedelta(hours=4)).isoformat()}).get() == 0
    assert not Transaction.objects.filter(function="disburse", status="rejected").exists()
    for slug in ("hot", "later", "manual"):
        assert_books_equal_the_ledger(slug)
    assert_ledger_verifies()
