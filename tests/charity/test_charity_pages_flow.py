"""The campaign pages' forms end to end, through ``charity.services`` and the ``charity-pool``
chaincode (the world of tests/charity/world.py): charity staff open a campaign from the form, a
resident gives coins (named with consent), another gives anonymously, staff disburse, a
beneficiary's meter burns the campaign's coins and the transparency chart shows it, staff post
an update, edit the texts (terms refused), cancel; a neighbour starts a group funding for a
public light and others chip in. Refusals come back as messages on the page, not errors."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from charity import selectors
from charity.models import Campaign, CampaignStatus, Donation, GroupFunding
from frontend import simulators
from tests.cache import clear_cache
from tests.charity.world import CharityWorld, worth

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def local_minute(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def campaign_form(world: CharityWorld, **changes) -> dict:
    now = timezone.now()
    data = {
        "charity": str(world.charity.pk), "title": "Fans for ward 12", "story": "Elderly neighbours need fans.",
        "currency": "INR", "goal": "100.00", "minimum": "10.00", "starts_at": local_minute(now - timedelta(hours=1)),
        "ends_at": local_minute(now + timedelta(days=5)), "trigger_starts_at": "", "trigger_ends_at": "",
        "rule": "equal", "cap_kwh": "", "leftover": "refund", "next_campaign": "",
        "b-TOTAL_FORMS": "3", "b-INITIAL_FORMS": "0", "b-MIN_NUM_FORMS": "0", "b-MAX_NUM_FORMS": "200",
        "b-0-device": "HM-GRAN-1", "b-0-label": "Household in ward 12", "b-0-weight": "1",
        "b-1-device": "HM-GRAN-2", "b-1-label": "Elderly couple, ward 12", "b-1-weight": "1",
        "b-2-device": "", "b-2-label": "", "b-2-weight": "",
    }
    data.update(changes)
    return data


def open_campaign(world: CharityWorld) -> Campaign:
    response = client_for(world.staff).post("/campaigns/new/", campaign_form(world))
    assert response.status_code == 302, response.content.decode()[-3000:]
    campaign = Campaign.objects.get(title="Fans for ward 12")
    assert response["Location"] == f"/campaigns/{campaign.slug}/"
    return campaign


def give(user, campaign: Campaign, kwh: str, **extra) -> object:
    return client_for(user).post(f"/campaigns/{campaign.slug}/donate/",
                                 {"amount_kwh": kwh, "idempotency_key": str(uuid.uuid4()), **extra})


def test_a_campaign_from_opening_to_burned_kwh(world):
    campaign = open_campaign(world)
    assert [b.label for b in campaign.beneficiaries.order_by("id")] == ["Household in ward 12",
                                                                        "Elderly couple, ward 12"]
    assert campaign.opened_tx and campaign.goal == 10_000 and campaign.minimum == 1_000

    assert give(world.alice, campaign, "1.5", show_name="on", donor_name="Alice A.").status_code == 302
    assert give(world.bob, campaign, "0.5").status_code == 302
    page = Client().get(f"/campaigns/{campaign.slug}/").content.decode()
    raised = worth(1_500) + worth(500)
    progress = selectors.campaign_progress(campaign)
    assert progress.raised == raised and progress.pool_wh == 2_000 and progress.donors == 2
    assert f'value="{progress.percent}"' in page and "Alice A." in page and "Anonymous" in page
    assert "bob" not in page.lower()
    for donation in Donation.objects.filter(campaign=campaign):
        assert f'href="/explorer/tx/{donation.tx_hash}/"' in page

    response = client_for(world.staff).post(f"/campaigns/{campaign.slug}/disburse/",
                                            {"amount_kwh": "", "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302
    disbursement = campaign.disbursements.get()
    assert disbursement.total_wh == 2_000 and disbursement.households == 2
    assert [b.received_wh for b in selectors.campaign_beneficiaries(campaign)] == [1_000, 1_000]

    simulators.meter_tick(device=world.homes[0], wh=250)
    today = timezone.localdate()
    assert selectors.burned_by_day(campaign, first_day=today, last_day=today) == [(today, 250)]
    clear_cache()  # the page's chart is shared for a couple of minutes
    page = Client().get(f"/campaigns/{campaign.slug}/").content.decode()
    assert "<td>0.250</td>" in page and f'href="/explorer/tx/{disbursement.tx_hash}/"' in page

    receipt = client_for(world.alice).get(f"/campaigns/receipts/{Donation.objects.get(donor=world.alice).receipt_number}.pdf")
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF-")


def test_a_refused_donation_is_shown_on_the_page(world):
    campaign = open_campaign(world)
    response = give(world.alice, campaign, "999")  # more than her wallet holds
    assert response.status_code == 400
    assert 'class="form-errors" role="alert"' in response.content.decode()
    assert not Donation.objects.filter(campaign=campaign).exists()


def test_staff_post_updates_edit_texts_and_cancel(world):
    campaign = open_campaign(world)
    staff = client_for(world.staff)
    assert staff.post(f"/campaigns/{campaign.slug}/updates/", {"title": "Fans bought", "body": "Ten of them.",
                                                                "idempotency_key": str(uuid.uuid4())}).status_code == 302
    assert "Fans bought" in Client().get(f"/campaigns/{campaign.slug}/").content.decode()

    edit = staff.get(f"/campaigns/{campaign.slug}/edit/").content.decode()
    assert 'value="Fans for ward 12"' in edit
    back = campaign_form(world, title="Fans and water for ward 12", **{"b-INITIAL_FORMS": "2"})
    del back["charity"], back["currency"]  # disabled when editing
    assert staff.post(f"/campaigns/{campaign.slug}/edit/", back).status_code == 302
    campaign.refresh_from_db()
    assert campaign.title == "Fans and water for ward 12" and campaign.goal == 10_000
    refused = staff.post(f"/campaigns/{campaign.slug}/edit/", {**back, "goal": "500.00"})
    assert refused.status_code == 400 and "cannot change" in refused.content.decode()
    campaign.refresh_from_db()
    assert campaign.goal == 10_000

    assert staff.post(f"/campaigns/{campaign.slug}/cancel/", {"reason": "Heat wave over",
                                                              "idempotency_key": str(uuid.uuid4())}).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert "no longer takes donations" in Client().get(f"/campaigns/{campaign.slug}/").content.decode()


def test_neighbours_light_a_public_device_together(world):
    now = timezone.now()
    response = client_for(world.alice).post("/group/new/SL-SQUARE/", {
        "title": "Saturday market lights", "goal_kwh": "1", "deadline": local_minute(now + timedelta(days=1)),
        "window_start": local_minute(now + timedelta(days=1, hours=1)),
        "window_end": local_minute(now + timedelta(days=1, hours=4)), "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302, response.content.decode()[-2000:]
    group = GroupFunding.objects.get(title="Saturday market lights")
    assert response["Location"] == f"/group/{group.slug}/"
    assert f'href="/group/{group.slug}/"' in Client().get("/d/SL-SQUARE").content.decode()

    for user, kwh in ((world.alice, "0.4"), (world.bob, "0.2")):
        assert client_for(user).post(f"/group/{group.slug}/", {"amount_kwh": kwh,
                                                               "idempotency_key": str(uuid.uuid4())}).status_code == 302
    progress = selectors.group_progress(group)
    assert (progress.raised_wh, progress.contributors, progress.percent) == (600, 2, 60)
    page = Client().get(f"/group/{group.slug}/").content.decode()
    assert 'max="100" value="60"' in page and "<dd>2</dd>" in page
