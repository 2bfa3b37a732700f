"""More of the campaign pages, through ``charity.services`` and the ``charity-pool`` chaincode (the
world of tests/charity/world.py): a sponsor pledges a match from the campaign page and a later
donation is matched; a pledge without coins is refused and leaves nothing; the automatic
disbursement switch is saved and shown; a transaction's proof page shows the server's own check
of the inclusion proof, and says plainly when the stored block no longer checks out."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from accounts.services import user_signup
from charity.models import Campaign, MatchPledge
from ledger.keys import match_account
from ledger.models import Block, Transaction
from tests.charity.world import COINS, CharityWorld, k
from tests.ledger.tampering import flip, superuser
from tests.personas import seal_all

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_of(campaign: Campaign, user=None) -> str:
    response = (client_for(user) if user is not None else Client()).get(f"/campaigns/{campaign.slug}/")
    assert response.status_code == 200
    return response.content.decode()


def match_form_html(html: str, slug: str) -> str:
    assert f'action="/campaigns/{slug}/match/"' in html, "no match form"
    return html.split(f'action="/campaigns/{slug}/match/"', 1)[1].split("</form>", 1)[0]


def pledge(user, campaign: Campaign, kwh: str, *, source: str, name: str = "Acme Foods", key: str | None = None):
    return client_for(user).post(f"/campaigns/{campaign.slug}/match/", {
        "source": source, "amount_kwh": kwh, "sponsor_name": name, "idempotency_key": key or str(uuid.uuid4())})


def give(user, campaign: Campaign, kwh: str):
    return client_for(user).post(f"/campaigns/{campaign.slug}/donate/",
                                 {"amount_kwh": kwh, "idempotency_key": str(uuid.uuid4())})


def text_of(html: str) -> str:
    """The page's words with tags and runs of white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- matching ----------------------------------------------------------------------------------

def test_a_pledge_through_the_page_matches_a_later_donation_and_shows_on_the_page(world: CharityWorld):
    campaign = world.campaign("match-page")
    sponsor_account = world.account_of(world.sponsor)
    form = match_form_html(page_of(campaign, world.sponsor), campaign.slug)
    assert "data-money-action" in form and 'name="idempotency_key"' in form
    assert f'<option value="{sponsor_account}"' in form and 'value="Acme Foods"' in form  # the name, prefilled
    assert "matched 1:1 from your pledge until it is used up; what is unused goes back to you" in page_of(
        campaign, world.sponsor)

    response = pledge(world.sponsor, campaign, "2", source=sponsor_account, name="Acme Foods Ltd")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.slug}/"
    assert world.coins(world.sponsor) == COINS - 2_000 and k(match_account(campaign.slug)) == 2_000
    match = MatchPledge.objects.get(campaign=campaign)
    assert (match.sponsor_name, match.cap_wh) == ("Acme Foods Ltd", 2_000)

    assert give(world.alice, campaign, "1.5").status_code == 302
    donation = campaign.donations.get()
    assert donation.matched_wh == 1_500 and k(match_account(campaign.slug)) == 500

    words = text_of(page_of(campaign))  # anyone sees the match
    assert "Sponsor Acme Foods Ltd" in words
    assert "Pledged 2.000 kWh" in words and "Used to match donations 1.500 kWh" in words
    assert "Left to match 0.500 kWh" in words
    assert "Matching pledge from Acme Foods Ltd" in words and "+1.500 kWh matched" in words
    # Only the sponsor may top up (from the account that pledged); another resident sees no form.
    assert f'action="/campaigns/{campaign.slug}/match/"' not in page_of(campaign, world.bob)
    assert "Top up your match" in page_of(campaign, world.sponsor)
    assert pledge(world.sponsor, campaign, "1", source=sponsor_account).status_code == 302
    match.refresh_from_db()
    assert match.cap_wh == 3_000 and "Left to match 1.500 kWh" in text_of(page_of(campaign))


def test_a_pledge_without_coins_is_refused_and_leaves_nothing(world: CharityWorld):
    campaign = world.campaign("match-refused")
    dora = user_signup(username="dora", password="dora-password-1", household_name="Dora's home")
    account = world.account_of(dora)
    assert world.coins(dora) == 0
    pledges_before = Transaction.objects.filter(chaincode="charity-pool", function="pledge").count()
    key = str(uuid.uuid4())

    response = pledge(dora, campaign, "1.25", source=account, name="Dora", key=key)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="form-errors" role="alert"' in html and "Not enough coins" in html
    form = match_form_html(html, campaign.slug)  # kept as typed, with a new key
    assert 'value="1.25"' in form and 'value="Dora"' in form and key not in form
    assert not MatchPledge.objects.filter(campaign=campaign).exists()
    assert Transaction.objects.filter(chaincode="charity-pool", function="pledge").count() == pledges_before
    assert k(match_account(campaign.slug)) == 0 and world.coins(dora) == 0
    assert "Match donations" not in page_of(campaign)

    # Someone who belongs to no organisation holding coins gets no form, and a post is refused.
    stranger = get_user_model().objects.create_user(username="sam", password="sam-password-1")
    assert f'action="/campaigns/{campaign.slug}/match/"' not in page_of(campaign, stranger)
    refused = pledge(stranger, campaign, "1", source=account)
    assert refused.status_code == 400 and "You hold no coins to match donations with." in refused.content.decode()
    assert world.coins(dora) == 0 and not MatchPledge.objects.exists()
    # The campaign's own charity staff hold only its pools: not theirs to pledge.
    assert f'action="/campaigns/{campaign.slug}/match/"' not in page_of(campaign, world.staff)


# --- automatic disbursement --------------------------------------------------------------------

def local_minute(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def campaign_post(world: CharityWorld, **changes) -> dict:
    now = timezone.now()
    data = {
        "charity": str(world.charity.pk), "title": "Automatic fans", "story": "Fans, shared out by themselves.",
        "currency": "INR", "goal": "100.00", "minimum": "10.00", "starts_at": local_minute(now - timedelta(hours=1)),
        "ends_at": local_minute(now + timedelta(days=5)), "trigger_starts_at": "", "trigger_ends_at": "",
        "rule": "cap", "cap_kwh": "2.5", "leftover": "refund", "next_campaign": "",
        "b-TOTAL_FORMS": "1", "b-INITIAL_FORMS": "0", "b-MIN_NUM_FORMS": "0", "b-MAX_NUM_FORMS": "200",
        "b-0-device": "HM-GRAN-1", "b-0-label": "Household in ward 12", "b-0-weight": "1",
    }
    data.update(changes)
    return data


def test_the_automatic_disbursement_switch_is_saved_and_shown(world: CharityWorld, settings):
    settings.CHARITY_AUTO_DISBURSE_SECONDS = 1800
    staff = client_for(world.staff)
    new = staff.get("/campaigns/new/").content.decode()
    assert 'name="auto_disburse"' in new and 'name="cap_kwh"' in new
    words = text_of(new)
    assert "shares out the whole pool by the sharing rule about every 30 minutes" in words
    assert "inside the disbursement period" in words and "the most one household receives" in words

    response = staff.post("/campaigns/new/", campaign_post(world, auto_disburse="on"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    campaign = Campaign.objects.get(title="Automatic fans")
    assert campaign.auto_disburse and campaign.cap_wh == 2_500
    words = text_of(page_of(campaign))
    assert "Disbursement Automatic: the pool is shared out about every 30 minutes" in words
    assert "at most 2.500 kWh per household" in words

    edit = staff.get(f"/campaigns/{campaign.slug}/edit/").content.decode()
    assert re.search(r'<input type="checkbox" name="auto_disburse"[^>]* checked', edit)
    back = campaign_post(world, **{"b-INITIAL_FORMS": "1"})  # the box unticked
    del back["charity"], back["currency"]
    assert staff.post(f"/campaigns/{campaign.slug}/edit/", back).status_code == 302
    campaign.refresh_from_db()
    assert not campaign.auto_disburse
    assert "Disbursement By the charity, when it decides." in text_of(page_of(campaign))


# --- the proof page ----------------------------------------------------------------------------

def sealed_donation(world: CharityWorld):
    campaign = world.campaign("proof-page")
    assert give(world.alice, campaign, "1.5").status_code == 302
    seal_all()
    donation = campaign.donations.get()
    return campaign, donation, Block.objects.get(transactions__tx_hash=donation.tx_hash)


def test_the_proof_page_shows_a_verified_inclusion(world: CharityWorld):
    campaign, donation, block = sealed_donation(world)
    url = f"/campaigns/{campaign.slug}/proofs/{donation.tx_hash}/"
    page = Client().get(url)
    assert page.status_code == 200
    html = page.content.decode()
    words = text_of(html)
    assert "Donation of 1.500 kWh from Anonymous" in words
    assert (f"The transaction is included in block {block.number}: its hash and the audit path give the block's "
            "root, and the orderer's signature on the header is valid.") in words.replace("&#x27;", "'")
    for value in (donation.tx_hash, block.merkle_root, block.header_hash, block.signature, block.signer_public_key):
        assert value in html
    proof = Client().get(f"/campaigns/{campaign.slug}/proofs/{donation.tx_hash}.json").json()
    assert f"Transaction {proof['leaf_index'] + 1} of {proof['tree_size']}" in words
    assert all(node in html for node in proof["audit_path"]) and proof["audit_path"]
    assert f'href="/campaigns/{campaign.slug}/proofs/{donation.tx_hash}.json"' in html
    assert "Download the proof (JSON)" in html
    assert "does not check out" not in html
    # The transparency row links here; HEAD is answered without a body.
    assert f'href="{url}"' in page_of(campaign)
    head = Client().head(url)
    assert head.status_code == 200 and head.content == b""


def test_the_proof_page_fails_clearly_when_the_stored_merkle_root_is_tampered(world: CharityWorld):
    campaign, donation, block = sealed_donation(world)
    url = f"/campaigns/{campaign.slug}/proofs/{donation.tx_hash}/"
    with superuser():  # an attacker with database rights rewrites the block's root
        Block.objects.filter(pk=block.pk).update(merkle_root=flip(block.merkle_root, 5))
    html = Client().get(url).content.decode()
    assert "The proof does not check out" in html and 'role="alert"' in html
    words = text_of(html).replace("&#x27;", "'")
    assert "The transaction's hash and the audit path do not give the block's Merkle root." in words
    assert "The header hash is not the hash of the block's header." in words  # the root is in the header
    assert "is included in block" not in words


def test_the_proof_page_fails_when_the_orderer_signature_is_forged(world: CharityWorld):
    campaign, donation, block = sealed_donation(world)
    with superuser():
        Block.objects.filter(pk=block.pk).update(signature=flip(block.signature, 7))
    words = text_of(Client().get(f"/campaigns/{campaign.slug}/proofs/{donation.tx_hash}/").content.decode())
    words = words.replace("&#x27;", "'")
    assert "The orderer's signature on the header is not valid." in words
    assert "do not give the block's Merkle root" not in words and "is included in block" not in words


def test_the_proof_page_of_a_transaction_not_sealed_yet_says_so(world: CharityWorld):
    campaign = world.campaign("proof-pending")
    assert give(world.alice, campaign, "0.5").status_code == 302
    donation = campaign.donations.get()
    html = Client().get(f"/campaigns/{campaign.slug}/proofs/{donation.tx_hash}/").content.decode()
    assert "Waiting to be sealed" in html and "Donation of 0.500 kWh" in text_of(html)
    assert ".json" not in html.split("<main", 1)[-1] and "Verified" not in html


def test_the_proof_page_covers_only_the_campaigns_own_transactions(world: CharityWorld):
    campaign, donation, _block = sealed_donation(world)
    other = world.campaign("other-campaign")
    assert Client().get(f"/campaigns/{other.slug}/proofs/{donation.tx_hash}/").status_code == 404
    assert Client().get(f"/campaigns/{campaign.slug}/proofs/{'0' * 64}/").status_code == 404
    # A disbursement reads as one.
    response = client_for(world.staff).post(f"/campaigns/{campaign.slug}/disburse/",
                                            {"amount_kwh": "", "idempotency_key": str(uuid.uuid4())})
    assert response.status_code == 302
    seal_all()
    disbursement = campaign.disbursements.get()
    words = text_of(Client().get(f"/campaigns/{campaign.slug}/proofs/{disbursement.tx_hash}/").content.decode())
    assert "Disbursement of 1.500 kWh to 2 households" in words and "Verified by this server" in words
