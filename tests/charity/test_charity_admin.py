"""The admin shows the charity's mirrors read-only, and its actions run the same services as the
scheduled tasks."""

from __future__ import annotations

import pytest
from django.test import Client

from charity.models import Campaign
from tests.charity.world import COINS

pytestmark = [pytest.mark.postgres]

MODELS = ["campaign", "donation", "matchpledge", "disbursement", "campaignupdate", "groupfunding"]


@pytest.fixture
def admin_client(world):
    world.staff.is_staff = world.staff.is_superuser = True
    world.staff.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    client.force_login(world.staff)
    return client


def test_every_charity_model_is_listed_and_read_only(world, admin_client):
    campaign = world.campaign("heatwave")
    donation = world.give(world.alice, campaign, 1_000)
    for model in MODELS:
        assert admin_client.get(f"/admin/charity/{model}/").status_code == 200, model
        assert admin_client.get(f"/admin/charity/{model}/add/").status_code == 403, model
    page = admin_client.get(f"/admin/charity/donation/{donation.pk}/change/")
    assert page.status_code == 200 and donation.receipt_number in page.content.decode()
    assert admin_client.post(f"/admin/charity/donation/{donation.pk}/delete/").status_code == 403


def test_the_refund_action_refunds_a_cancelled_campaign(world, admin_client):
    from charity import services

    campaign = world.campaign("heatwave")
    world.give(world.alice, campaign, 1_000)
    services.campaign_cancel(user=world.staff, campaign=campaign, reason="Called off.")
    response = admin_client.post("/admin/charity/campaign/", {"action": "refund_now", "_selected_action": [campaign.pk]})
    assert response.status_code == 302
    assert world.coins(world.alice) == COINS
    assert Campaign.objects.get(pk=campaign.pk).refunds_done_at is not None
