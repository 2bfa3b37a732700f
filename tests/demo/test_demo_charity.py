"""``seed_demo`` shows every charity capability on real ledger data: the heat-wave campaign's
page has progress, donors (named with consent, anonymous, a donor without an account), the
sponsor's match, an update, beneficiaries by label only, transparency rows with their
transactions and proofs, and a burned-kWh chart that adds up to what the households' meters drew
from their earmarked shares; the charity's demo login manages it, Alice finds her donation and its
receipt, and two group fundings (one collecting, one funded) have their pages."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from charity import selectors
from charity.models import Campaign, CampaignStatus, GroupFunding, GroupStatus
from demo import charity
from ledger.sealing import lease_acquire, lease_release, seal_next_block
from ledger.selectors import device_windows

pytestmark = pytest.mark.django_db

PAGE = f"/campaigns/{charity.CAMPAIGN}/"


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=StringIO())
    return Campaign.objects.get(slug=charity.CAMPAIGN)


def signed_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_the_campaign_page_shows_progress_donors_sponsor_update_and_labels(client, demo):
    assert demo.status == CampaignStatus.OPEN and demo.charity.msp_id == "warmhomes"
    progress = selectors.campaign_progress(demo)
    # ₹400.00 from the club, 2 kWh (₹16.00) from Alice and 1 kWh (₹8.00) anonymous, of ₹1,000.00
    assert (progress.raised, progress.goal, progress.percent) == (42_400, 100_000, 42)
    assert (progress.donations, progress.donors, progress.matched_wh) == (3, 3, charity.MATCH_WH)
    assert progress.disbursed_wh == 2_000 + 1_000 + 50_000 + charity.MATCH_WH and progress.pool_wh == 0

    listed = client.get("/campaigns/").content.decode()
    assert charity.TITLE in listed and PAGE in listed

    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="42"' in html  # the bar
    assert charity.FIAT_DONOR in html and "<strong>Alice</strong>" in html and "<strong>Anonymous</strong>" in html
    assert "Matched by the sponsor" in html and charity.UPDATE_TITLE in html
    assert "household in ward 1" in html and "household in ward 2" in html
    for private in ("HM-ALICE", "HM-BOB", "Alice&#x27;s household", "hh-bob"):
        assert private not in html, private


def test_transparency_rows_link_every_movement_to_its_transaction_and_proof(client, demo):
    rows = selectors.transparency_rows(demo)
    assert sorted(r.kind for r in rows) == ["disbursement", "donation", "donation", "donation", "match"]
    (disbursement,) = [r for r in rows if r.kind == "disbursement"]
    assert disbursement.extra["households"] == 2 and disbursement.wh == 63_000
    assert lease_acquire(holder="t")
    while seal_next_block(holder="t", force=True):
        pass
    lease_release(holder="t")
    html = client.get(PAGE).content.decode()
    for row in rows:
        assert f"/explorer/tx/{row.tx_hash}/" in html
        assert f"{PAGE}proofs/{row.tx_hash}/" in html
    fiat = demo.donations.get(donation_id=charity.FIAT_EVENT)
    assert "Verified by this server" in client.get(f"{PAGE}proofs/{fiat.tx_hash}/").content.decode()
    proof = client.get(f"{PAGE}proofs/{fiat.tx_hash}.json")
    assert proof.status_code == 200 and proof.json()["block"]["merkle_root"]


def test_the_burned_chart_is_what_the_meters_drew_from_their_shares(client, demo):
    shares = {"HM-ALICE": 21_000, "HM-BOB": 42_000}  # 63 kWh by weight 1:2
    drawn = sum(shares[meter] - window["remaining"]
                for meter, windows in device_windows(list(shares)).items() for window in windows)
    assert drawn > 0
    chart = selectors.burned_chart(demo)
    values = chart.series[0].values
    assert chart.has_data and sum(values) == drawn
    # The heat wave (and the disbursement) began three days ago: three or four local days burned.
    assert 3 <= sum(1 for v in values if v) <= 4
    days = selectors.burned_by_day(demo, first_day=timezone.localdate(demo.starts_at), last_day=timezone.localdate())
    assert sum(wh for _day, wh in days) == drawn
    html = client.get(PAGE).content.decode()
    assert f'id="{chart.element_id}"' in html and "Nothing to show for this period yet." not in html


def test_the_charity_login_manages_the_campaign_and_alice_finds_her_receipt(demo):
    staff = signed_in("charity")
    html = staff.get(PAGE).content.decode()
    assert "For the charity" in html and "Disburse to the households" in html
    assert staff.get(f"{PAGE}edit/").status_code == 200
    assert "For the charity" not in signed_in("bob").get(PAGE).content.decode()

    alice = signed_in("alice")
    mine = alice.get("/campaigns/mine/").content.decode()
    (donation,) = demo.donations.filter(donor__username="alice")
    assert charity.TITLE in mine and donation.receipt_number in mine
    receipt = alice.get(f"/campaigns/receipts/{donation.receipt_number}.pdf")
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")


def test_the_group_fundings_collect_and_light_the_public_devices(client, demo):
    match, market = GroupFunding.objects.get(slug="saturday-match"), GroupFunding.objects.get(slug="friday-night-market")
    assert (match.device.public_id, match.status) == ("ST-0001", GroupStatus.OPEN)
    assert (market.device.public_id, market.status) == ("MS-0001", GroupStatus.FUNDED)
    assert selectors.group_progress(match).percent == 25  # 3 of 12 kWh
    assert timezone.localtime(match.window_start).weekday() == 5  # Saturday
    html = client.get("/group/saturday-match/").content.decode()
    assert "Saturday&#x27;s match" in html and 'value="25"' in html
    assert client.get("/group/friday-night-market/").status_code == 200
    assert selectors.group_progress(market).percent == 100
    # The stadium's page links to the collecting group funding.
    assert "/group/saturday-match/" in signed_in("alice").get("/d/ST-0001").content.decode()


def test_the_back_dated_sweep_never_disburses_a_campaign_the_demo_did_not_open(db):
    """The demo's disbursement is the automatic sweep at the heat wave's start; on a database
    with an automatic campaign of its own, due then too, the seed refuses instead of moving it."""
    from datetime import timedelta

    from charity import services
    from demo.charity import charity_seed
    from demo.devices import devices_seed
    from demo.energy import energy_seed
    from demo.errors import DemoSeedError
    from demo.fiat import fiat_seed
    from demo.organisations import organisations_seed
    from demo.statements import statements_seed

    organisations_seed(), fiat_seed(), devices_seed(), energy_seed(), statements_seed()
    now = timezone.now()
    services.campaign_create(user=get_user_model().objects.get(username="charity"), slug="older", title="Older",
                             story="Ours.", currency="INR", goal=10_000, minimum=0, auto_disburse=True,
                             starts_at=now - timedelta(days=6), ends_at=now + timedelta(days=1),
                             beneficiaries=[{"device": "HM-BOB", "label": "a household"}])
    services.donation_give(user=get_user_model().objects.get(username="alice"), campaign="older", amount_wh=1_000,
                           idempotency_key="older-gift")
    with pytest.raises(DemoSeedError, match="campaign older would be disbursed"):
        charity_seed()
    assert not Campaign.objects.get(slug="older").disbursements.exists()


def test_transparency_rows_are_dated_by_the_ledger(demo):
    """The demo's automatic disbursement ran at the heat wave's start, days before its row was
    mirrored: the row shows when the ledger made it, as every row does."""
    from ledger.models import Transaction

    rows = selectors.transparency_rows(demo)
    assert rows
    for row in rows:
        assert row.at == Transaction.objects.get(tx_hash=row.tx_hash).proposed_at, row.kind
    [disbursement] = [r for r in rows if r.kind == "disbursement"]
    assert disbursement.at < timezone.now() - timedelta(days=2)
