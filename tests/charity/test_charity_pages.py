"""The campaign pages by persona: anyone reads the list, a campaign's story, progress (from the
ledger's world state), donors (named only with consent), beneficiaries (by label only) and its
transparency rows; residents get the coin donation form; only the campaign's charity staff
create, edit, post updates, disburse and cancel; a donor's receipts are theirs and the
charity's alone."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from charity import selectors
from charity.models import Campaign, Donation
from frontend.pdf import font_covers
from tests.charity.pages_world import SLUG, PagesWorld, build_pages_world, campaign_state, group_for_light, write_state
from tests.personas import seal_all

pytestmark = pytest.mark.django_db

CAMPAIGN = f"/campaigns/{SLUG}/"


@pytest.fixture
def pw(settings) -> PagesWorld:
    return build_pages_world(settings)


def client_of(pw: PagesWorld, name: str) -> Client:
    client = Client()
    if name in ("hana", "otto"):
        client.force_login(getattr(pw, name))
    elif name != "anonymous":
        client.force_login(pw.persona(name).user)
    return client


def html_of(pw, name: str, path: str) -> str:
    response = client_of(pw, name).get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


# --- list and search -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["anonymous", "alice", "hana"])
def test_the_list_shows_campaigns_with_their_progress(pw, name):
    html = html_of(pw, name, "/campaigns/")
    assert "Cool homes in the heat wave" in html and f'href="{CAMPAIGN}"' in html
    assert '<progress class="campaign-bar" max="100" value="25"' in html  # 12,500.00 of 50,000.00
    assert ("/campaigns/new/" in html) is (name == "hana")


@pytest.mark.parametrize("query, found", [("heat", True), ("FAN", True), ("ward 12", True), ("ward 13", False),
                                          ("elderly heat", True), ("elderly flood", False)])
def test_search_matches_title_story_and_place(pw, query, found):
    Campaign.objects.create(slug="flood", charity=pw.charity, utility=pw.uma.organisation, title="Dry beds",
                            story="After the flood", currency="INR", goal=100, minimum=0,
                            starts_at=pw.campaign.starts_at, ends_at=pw.campaign.ends_at)
    html = html_of(pw, "anonymous", f"/campaigns/?q={query}")
    assert ("Cool homes in the heat wave" in html) is found
    assert "Dry beds" not in html


def test_search_as_htmx_returns_only_the_rows(pw):
    response = Client().get("/campaigns/?q=heat", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith('<div id="campaign-rows"') and "<html" not in html
    # going back to a searched list restores the whole page
    restored = Client().get("/campaigns/?q=heat", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restored.content.decode()


# --- the campaign page -----------------------------------------------------------------------

def test_progress_is_read_from_the_ledger_state(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert '<progress id="campaign-bar" class="campaign-bar" max="100" value="25"' in html
    assert "₹12,500.00" in html and "₹50,000.00" in html
    write_state(f"campaign/{SLUG}", campaign_state(raised=5_500_000))
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert 'max="100" value="100"' in html and "₹55,000.00" in html  # over the goal: a full bar


def test_progress_figures(pw):
    progress = selectors.campaign_progress(pw.campaign)
    assert (progress.raised, progress.goal, progress.minimum, progress.percent) == (1_250_000, 5_000_000, 1_000_000, 25)
    assert progress.donors == 2 and progress.donations == 2 and progress.disbursed_wh == 40_000
    assert progress.minimum_reached
    Donation.objects.create(campaign=pw.campaign, donation_id="give-3", kind="coins", donor=pw.alice.user,
                            amount=10, currency="INR", wh=1, tx_hash="ab" * 32, receipt_number="HT-3")
    assert selectors.campaign_progress(pw.campaign).donors == 2  # Alice again: still two people


def test_progress_json_for_polling(pw):
    response = Client().get(f"{CAMPAIGN}progress.json")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = json.loads(response.content)
    assert body["raised"] == 1_250_000 and body["percent"] == 25 and body["currency"] == "INR"
    assert Client().get("/campaigns/no-such/progress.json").status_code == 404


def test_anonymous_visitors_get_login_and_card_links_but_no_coin_form(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert f'href="/payments/simulator/?campaign={SLUG}"' in html
    assert f'action="/campaigns/{SLUG}/donate/"' not in html and "/accounts/login/?next=" in html


def test_residents_get_the_coin_donation_form_marked_as_moving_money(pw):
    html = html_of(pw, "alice", CAMPAIGN)
    form = html.split(f'action="/campaigns/{SLUG}/donate/"', 1)[1].split("</form>", 1)[0]
    assert "data-money-action" in form and 'name="amount_kwh"' in form and 'name="idempotency_key"' in form
    assert 'value="alice"' in form  # the name to show, prefilled
    assert "For the charity" not in html and "/disburse/" not in html


def test_charity_staff_get_their_tools(pw):
    html = html_of(pw, "hana", CAMPAIGN)
    for action in ("edit/", "updates/", "disburse/", "cancel/"):
        assert f"/campaigns/{SLUG}/{action}" in html
    assert "For the charity" not in html_of(pw, "otto", CAMPAIGN)


def test_donors_are_named_only_with_consent(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert "Alice Kumar" in html and "Anonymous" in html
    assert "Charlie Secret" not in html and "charlie" not in html


def test_beneficiaries_are_shown_by_label_only(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert "Household in ward 12" in html and "0.040 kWh received" not in html  # 40 kWh:
    assert "40.000 kWh received" in html
    assert "HM-ALICE" not in html and "Alice&#x27;s meter" not in html and "hh-alice" not in html


def test_updates_and_story_are_shown(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert "First fans running" in html and "<p>Every rupee buys them electricity.</p>" in html


def test_unknown_campaign_is_404(pw):
    assert Client().get("/campaigns/no-such/").status_code == 404


# --- transparency ----------------------------------------------------------------------------

def test_transparency_rows_link_every_transaction_to_the_explorer(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    for tx_hash in (pw.named.tx_hash, pw.anonymous.tx_hash, pw.disbursement.tx_hash):
        assert f'href="/explorer/tx/{tx_hash}/"' in html
    block = pw.block.number
    assert f'href="/campaigns/{SLUG}/proofs/{pw.named.tx_hash}/"' in html and f"Block {block}" in html
    # the unsealed donation has no proof yet
    assert f"/proofs/{pw.anonymous.tx_hash}" not in html and "not sealed yet" in html


def test_transparency_rows_in_order_with_kinds(pw):
    rows = selectors.transparency_rows(pw.campaign)
    assert {(r.kind, r.tx_hash) for r in rows} == {("donation", pw.named.tx_hash),
                                                   ("donation", pw.anonymous.tx_hash),
                                                   ("disbursement", pw.disbursement.tx_hash)}
    assert [r.block for r in rows if r.tx_hash == pw.anonymous.tx_hash] == [None]
    assert [r.block for r in rows if r.tx_hash == pw.named.tx_hash] == [pw.block.number]
    assert all("Charlie Secret" not in r.what for r in rows)


def test_anyone_may_fetch_the_proof_of_a_campaign_transaction(pw):
    response = Client().get(f"/campaigns/{SLUG}/proofs/{pw.named.tx_hash}.json")
    assert response.status_code == 200
    proof = json.loads(response.content)
    assert proof["tx_hash"] == pw.named.tx_hash and proof["block"]["merkle_root"] == pw.block.merkle_root
    assert proof["tree_size"] == pw.block.tx_count and isinstance(proof["audit_path"], list)
    assert Client().get(f"/campaigns/{SLUG}/proofs/{pw.anonymous.tx_hash}.json").status_code == 409
    seal_all()
    assert Client().get(f"/campaigns/{SLUG}/proofs/{pw.anonymous.tx_hash}.json").status_code == 200


def test_proofs_only_for_the_campaigns_own_transactions(pw):
    other_tx = pw.tx["mint_charlie"]
    pw.campaign.opened_tx = ""
    pw.campaign.save()
    assert Client().get(f"/campaigns/{SLUG}/proofs/{other_tx}.json").status_code == 404


def test_the_burned_chart_has_a_table_fallback(pw):
    html = html_of(pw, "anonymous", CAMPAIGN)
    assert 'id="chart-campaign-burned"' in html
    assert "Nothing to show for this period yet." in html  # no burn from the campaign's coins yet


# --- permissions -----------------------------------------------------------------------------

def test_new_campaign_is_for_charity_staff_only(pw):
    assert Client().get("/campaigns/new/").status_code == 302
    assert client_of(pw, "alice").get("/campaigns/new/").status_code == 403
    assert client_of(pw, "uma").get("/campaigns/new/").status_code == 403
    html = html_of(pw, "hana", "/campaigns/new/")
    assert 'name="title"' in html and 'name="b-0-device"' in html and 'name="b-0-label"' in html
    assert "HM-ALICE" in html  # household meters to choose from
    assert "SL-0001" not in html  # a street light is no household


def test_edit_is_for_the_campaigns_own_charity(pw):
    assert client_of(pw, "alice").get(f"{CAMPAIGN}edit/").status_code == 403
    assert client_of(pw, "otto").get(f"{CAMPAIGN}edit/").status_code == 403
    html = html_of(pw, "hana", f"{CAMPAIGN}edit/")
    assert 'value="Cool homes in the heat wave"' in html and 'value="50000.00"' in html
    assert 'value="Household in ward 12"' in html


@pytest.mark.parametrize("action", ["updates", "disburse", "cancel"])
@pytest.mark.parametrize("name, status", [("alice", 403), ("otto", 403), ("anonymous", 302)])
def test_staff_actions_refuse_everyone_else(pw, action, name, status):
    response = client_of(pw, name).post(f"{CAMPAIGN}{action}/", {"title": "x", "body": "y", "reason": "z",
                                                                 "idempotency_key": "6d1f0c8e-8a4b-4b7e-9a31-1c8f0b2a7d11"})
    assert response.status_code == status


def test_actions_refuse_get(pw):
    for action in ("donate", "updates", "disburse", "cancel"):
        assert client_of(pw, "hana").get(f"{CAMPAIGN}{action}/").status_code == 405


# --- my donations and receipts ---------------------------------------------------------------

def test_my_donations_lists_only_mine_with_receipts(pw):
    html = html_of(pw, "alice", "/campaigns/mine/")
    assert "/campaigns/receipts/HT-2026-0001.pdf" in html and "HT-2026-0002" not in html
    assert Client().get("/campaigns/mine/").status_code == 302


@pytest.mark.parametrize("name, status", [("alice", 200), ("hana", 200), ("charlie", 404), ("otto", 404),
                                          ("uma", 404)])
def test_a_receipt_is_for_its_donor_and_the_charity(pw, name, status):
    response = client_of(pw, name).get("/campaigns/receipts/HT-2026-0001.pdf")
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"


def test_anonymous_visitors_are_sent_to_log_in_for_a_receipt(pw):
    assert Client().get("/campaigns/receipts/HT-2026-0001.pdf").status_code == 302


def test_the_receipt_is_a_pdf_with_the_donations_figures(pw):
    from charity.receipts import receipt_lines

    body = client_of(pw, "alice").get("/campaigns/receipts/HT-2026-0001.pdf").content
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert body.count(b"/Type /Page\n") + body.count(b"/Type /Page ") >= 1
    # The document's metadata carries the numbers in plain text (the page's text is in a subset font).
    assert b"HT-2026-0001 INR 1000000 120000 Wh " + pw.named.tx_hash.encode() in body
    _title, lines, how = receipt_lines(pw.named, verify_url="https://x/explorer/tx/t/", proof_url="https://x/p.json")
    shown = {line.label: line.value for line in lines}
    assert shown["Amount"] == "₹10,000.00" and shown["Energy bought"] == "120.000 kWh"
    assert shown["Charity"] == "Hope Trust" and shown["Campaign"] == "Cool homes in the heat wave"
    assert shown["Ledger transaction"] == pw.named.tx_hash and shown["Receipt number"] == "HT-2026-0001"
    assert "https://x/explorer/tx/t/" in how and "https://x/p.json" in how and "Merkle" in how


@pytest.mark.parametrize("language, title", [("hi", b"/Title (Donation receipt HT-2026-0001)"),
                                             ("es", b"/Title (Recibo de donaci\\363n HT-2026-0001)")])
def test_the_receipt_is_in_the_donors_language_where_the_pdf_font_can_draw_it(pw, language, title):
    """Spanish is printed in Spanish; Hindi's Devanagari has no glyphs in the receipt's font, so
    the receipt falls back to English instead of printing empty boxes."""

    assert not font_covers(["रसीद"]) and font_covers(["Recibo de donación ₹"])
    client = client_of(pw, "alice")
    client.cookies["django_language"] = language
    response = client.get("/campaigns/receipts/HT-2026-0001.pdf")
    assert response.status_code == 200 and title in response.content


# --- HEAD ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/campaigns/", CAMPAIGN, f"{CAMPAIGN}progress.json", "/campaigns/mine/",
                                  "/campaigns/new/", f"{CAMPAIGN}edit/", "/campaigns/receipts/HT-2026-0001.pdf",
                                  "/group/market-night/", "/group/new/SL-0001/"])
def test_head_answers_like_get(pw, path):
    group_for_light(pw)
    client = client_of(pw, "hana")
    client.force_login(pw.hana)
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code and head.content == b""


# --- group funding and the device page -------------------------------------------------------

def test_group_page_shows_goal_deadline_progress_and_contributors(pw):
    group = group_for_light(pw)
    write_state(f"group/{group.slug}", {"device": "SL-0001", "goal": 5_000, "raised": 1_250, "status": "open",
                                        "contributors": {"household:a": 1_000, "household:b": 250}})
    html = html_of(pw, "anonymous", "/group/market-night/")
    assert "Lights for the night market" in html and 'max="100" value="25"' in html
    assert "1.250 kWh" in html and "5.000 kWh" in html and "<dd>2</dd>" in html
    assert 'name="amount_kwh"' not in html
    resident = html_of(pw, "charlie", "/group/market-night/")
    form = resident.split('<form method="post" class="form" data-money-action>', 1)[1].split("</form>", 1)[0]
    assert 'name="amount_kwh"' in form


def test_the_public_device_page_links_its_group_fundings(pw):
    group_for_light(pw)
    html = html_of(pw, "anonymous", "/d/SL-0001")
    assert "Light it together" in html and 'href="/group/market-night/"' in html
    assert "/group/new/SL-0001/" not in html  # starting one needs an account
    assert 'href="/group/new/SL-0001/"' in html_of(pw, "charlie", "/d/SL-0001")
    assert "Light it together" not in html_of(pw, "alice", "/d/HM-ALICE")  # a private meter


def test_starting_a_group_funding_needs_an_account_and_a_public_device(pw):
    assert Client().get("/group/new/SL-0001/").status_code == 302
    assert client_of(pw, "charlie").get("/group/new/HM-ALICE/").status_code == 404
    assert client_of(pw, "charlie").get("/group/new/SL-0099/").status_code == 404  # retired
    html = html_of(pw, "charlie", "/group/new/SL-0001/")
    assert 'name="goal_kwh"' in html and 'name="deadline"' in html and "data-money-action" in html


# --- navigation ------------------------------------------------------------------------------

@pytest.mark.parametrize("path, tab", [("/campaigns/", "Campaigns"), (CAMPAIGN, "Campaigns"),
                                       ("/campaigns/mine/", "Campaigns"), ("/group/market-night/", "Devices"),
                                       ("/group/new/SL-0001/", "Devices")])
def test_the_section_tab_is_marked(pw, path, tab):
    import re

    group_for_light(pw)
    html = html_of(pw, "alice", path)
    tabbar = html.split('class="tabbar"', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', tabbar) == [tab]


@pytest.mark.parametrize("language, words", [("hi", ["पारदर्शिता", "किसकी मदद होती है", "गुमनाम", "अभियान"]),
                                             ("es", ["Transparencia", "A quién se ayuda", "Anónimo", "Campañas"])])
def test_the_campaign_page_speaks_the_visitors_language(pw, language, words):
    client = Client()
    client.cookies["django_language"] = language
    html = client.get(CAMPAIGN).content.decode()
    assert f'<html lang="{language}">' in html
    for word in words:
        assert word in html, word
