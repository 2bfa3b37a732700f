"""Money donations: the bank's payment for a campaign lands in its pool through charity-pool, is
recorded once with the donor's consented name, and when the campaign fails below its minimum
the coins go back to the utility and the payer's money is requested back through payments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from charity import tasks
from charity.chain import campaign_state, pool_balance
from charity.models import Donation
from payments.models import PaymentRefund
from tests.charity.world import COINS, assert_books_equal_the_ledger, assert_ledger_verifies, worth

pytestmark = [pytest.mark.postgres]


def pay(world, amount: int, campaign: str, **metadata):
    payer = metadata.pop("payer", world.market.household.msp_id)
    body = world.market.notification(payer=payer, amount=amount, created=timezone.now().isoformat(),
                                     metadata={"campaign": campaign, **metadata})
    response = world.market.deliver(body)
    assert response.status_code == 200, response.content
    return body


def test_a_money_donation_is_recorded_once_with_the_donors_consent(world):
    world.campaign("heatwave")
    body = pay(world, 1_000, "heatwave", donor_name="Alice A.", show_name=True, donor_user=world.alice.pk)
    (donation,) = Donation.objects.all()
    assert donation.kind == "fiat" and donation.amount == 1_000 and donation.wh == 1_250  # ₹10 at ₹8/kWh
    assert donation.donor == world.alice and donation.donor_name == "Alice A." and donation.show_name
    assert donation.payment is not None and donation.payment.amount == 1_000
    assert pool_balance("heatwave") == 1_250 and campaign_state("heatwave")["raised"] == 1_000
    # The bank delivers the same notification again: nothing changes.
    assert world.market.deliver(body).status_code == 200
    assert Donation.objects.count() == 1 and pool_balance("heatwave") == 1_250
    assert_books_equal_the_ledger("heatwave")


def test_failing_below_the_minimum_refunds_money_to_payers_and_coins_to_givers(world):
    campaign = world.campaign("heatwave", minimum=5_000)
    stock = world.market.utility_stock()
    pay(world, 1_000, "heatwave", donor_name="Alice")  # 1,250 Wh
    pay(world, 500, "heatwave", payer=None, donor_name="Ravi")  # a donor without an account: 625 Wh
    world.give(world.bob, campaign, 1_000)  # worth 800
    assert campaign_state("heatwave")["raised"] == 1_000 + 500 + worth(1_000) < campaign.minimum
    assert world.market.utility_stock() == stock - 1_875

    after_end = (campaign.ends_at + timedelta(minutes=1)).isoformat()
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_end}).get() == {"closed": 1,
                                                                                  "refunded_campaigns": 1}
    campaign.refresh_from_db()
    assert campaign.status == "failed" and campaign.refunds_done_at is not None
    # The coins bought with money go back to the utility; the coin donor gets coins.
    assert world.market.utility_stock() == stock
    assert world.coins(world.bob) == COINS and pool_balance("heatwave") == 0
    # Each payer's money is requested back, once, for their whole share.
    refunds = {r.payment.amount: r for r in PaymentRefund.objects.select_related("payment")}
    assert sorted(refunds) == [500, 1_000] and all(r.amount == r.payment.amount for r in refunds.values())
    fiat = Donation.objects.filter(kind="fiat")
    assert all(d.refunded_amount == d.amount and d.refund_tx_hash for d in fiat)
    assert tasks.close_ended_campaigns.apply(kwargs={"now": after_end}).get() == {"closed": 0,
                                                                                  "refunded_campaigns": 0}
    assert PaymentRefund.objects.count() == 2
    assert_books_equal_the_ledger("heatwave")
    assert_ledger_verifies()


def test_a_households_money_contribution_to_a_group_is_recorded_and_can_fund_it(world):
    from charity import services
    from charity.models import Contribution

    now = timezone.now()
    group = services.group_create(user=world.bob, slug="square", title="Festival night", device=world.light,
                                  goal_wh=2_250, deadline=now + timedelta(hours=1),
                                  window_start=now + timedelta(hours=2), window_end=now + timedelta(hours=4))
    services.group_contribute(user=world.bob, group=group, amount_wh=1_000, idempotency_key="bob-1")
    body = world.market.notification(amount=1_000, created=now.isoformat(),
                                     metadata={"group": "square", "donor_user": world.alice.pk})
    assert world.market.deliver(body).status_code == 200
    paid = Contribution.objects.get(account=world.account_of(world.alice))
    assert paid.wh == 1_250 and paid.contributor == world.alice
    group.refresh_from_db()
    assert group.status == "funded" and group.settled_tx == paid.tx_hash
    assert world.market.deliver(body).status_code == 200  # redelivered: recorded once
    assert Contribution.objects.count() == 2


def test_the_refund_task_takes_a_campaign_id(world):
    from charity import services

    campaign = world.campaign("heatwave")
    pay(world, 800, "heatwave")
    services.campaign_cancel(user=world.staff, campaign=campaign, reason="Called off.")
    assert tasks.refund_campaign.apply(args=[campaign.pk]).get() == {
        "total": 1, "refunded": 1, "refused": 0, "payment_refunds": 1}
    assert PaymentRefund.objects.get().amount == 800
    assert tasks.refund_campaign.apply(args=[campaign.pk + 1000]).get() == {}
