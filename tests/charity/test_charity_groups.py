"""Group funding: neighbours' coins wait in escrow; reaching the goal funds the public device for
its window (one funded window per contributor); missing the deadline refunds everyone, by the
expiry task."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from charity import services, tasks
from charity.chain import group_state
from charity.models import Contribution, GroupFunding
from ledger.chaincodes.energy_math import relay_on
from ledger.keys import escrow_account
from ledger.models import Account
from ledger.selectors import device_windows
from tests.charity.world import COINS, assert_ledger_verifies, k, key

pytestmark = [pytest.mark.postgres]


def open_group(world, slug: str = "square-night", goal: int = 5_000) -> GroupFunding:
    now = timezone.now()
    return services.group_create(user=world.alice, slug=slug, title="Light the square on festival night",
                                 device=world.light, goal_wh=goal, deadline=now + timedelta(hours=2),
                                 window_start=now + timedelta(hours=3), window_end=now + timedelta(hours=9))


def test_reaching_the_goal_funds_the_device_for_the_window(world):
    group = open_group(world)
    escrow = Account.objects.get(key=escrow_account("square-night"), asset_id="k")
    assert escrow.organisation == world.utility and escrow.kind == "escrow"
    assert group.opened_tx and group_state("square-night")["status"] == "open"

    services.group_contribute(user=world.alice, group=group, amount_wh=2_000, idempotency_key=key())
    assert k(escrow_account("square-night")) == 2_000
    group.refresh_from_db()
    assert group.status == "open"
    services.group_contribute(user=world.bob, group=group, amount_wh=3_000, idempotency_key=key())
    group.refresh_from_db()
    assert group.status == "funded" and group.settled_tx
    assert k(escrow_account("square-night")) == 0 and k("device:SL-SQUARE") == 5_000
    windows = device_windows(["SL-SQUARE"])["SL-SQUARE"]
    assert sorted((w["funder"], w["amount"]) for w in windows) == [
        (world.account_of(world.alice), 2_000), (world.account_of(world.bob), 3_000)]
    start, end = datetime.fromisoformat(windows[0]["start"]), datetime.fromisoformat(windows[0]["end"])
    assert not relay_on(5_000, windows, start - timedelta(minutes=1))
    assert relay_on(5_000, windows, start + timedelta(minutes=1))
    assert not relay_on(5_000, windows, end)
    # Past the deadline a funded group is left alone by the expiry task.
    late = (group.deadline + timedelta(minutes=1)).isoformat()
    assert tasks.expire_group_fundings.apply(kwargs={"now": late}).get() == 0
    assert_ledger_verifies()


def test_missing_the_deadline_refunds_everyone_through_the_task(world):
    group = open_group(world)
    services.group_contribute(user=world.alice, group=group, amount_wh=1_000, idempotency_key=key())
    services.group_contribute(user=world.bob, group=group, amount_wh=1_500, idempotency_key=key())
    assert world.coins(world.alice) == COINS - 1_000
    # Before the deadline nothing expires.
    assert tasks.expire_group_fundings.apply().get() == 0
    late = (group.deadline + timedelta(minutes=1)).isoformat()
    assert tasks.expire_group_fundings.apply(kwargs={"now": late}).get() == 1
    group.refresh_from_db()
    assert group.status == "refunded" and group_state("square-night")["status"] == "refunded"
    assert world.coins(world.alice) == COINS and world.coins(world.bob) == COINS
    assert k(escrow_account("square-night")) == 0
    assert all(c.refunded for c in Contribution.objects.all())
    assert tasks.expire_group_fundings.apply(kwargs={"now": late}).get() == 0
    assert_ledger_verifies()


def test_group_refusals(world):
    with pytest.raises(services.CharityError, match="public device"):
        services.group_create(user=world.alice, slug="my-home", title="x", device=world.homes[0], goal_wh=10,
                              deadline=timezone.now() + timedelta(hours=1),
                              window_start=timezone.now() + timedelta(hours=2),
                              window_end=timezone.now() + timedelta(hours=3))
    group = open_group(world)
    with pytest.raises(services.CharityError, match="Not enough coins"):
        services.group_contribute(user=world.alice, group=group, amount_wh=COINS + 1, idempotency_key=key())
    assert not Contribution.objects.exists() and not GroupFunding.objects.filter(slug="my-home").exists()


def test_a_group_without_a_slug_is_started_once_per_form(world):
    now = timezone.now()
    fields = {"title": "Festival night", "device": "SL-SQUARE", "goal_wh": 1_000, "deadline": now + timedelta(hours=1),
              "window_start": now + timedelta(hours=2), "window_end": now + timedelta(hours=4)}
    first = services.group_create(user=world.bob, idempotency_key="form-a", **fields)
    again = services.group_create(user=world.bob, idempotency_key="form-a", **fields)
    other = services.group_create(user=world.bob, idempotency_key="form-b", **fields)
    assert first.pk == again.pk != other.pk and first.slug.startswith("festival-night-")
    assert GroupFunding.objects.count() == 2
