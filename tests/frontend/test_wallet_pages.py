"""Persona tests for the resident pages: /wallet/, fund form (plain and htmx), history,
receipts, /devices/, /d/<public_id>."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ledger.models import Account, Transaction
from meters import services
from tests.meters_world import MeterWorld, build_meter_world
from tests.personas import seal_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def client_for(mw, name: str) -> Client:
    client = Client()
    if name != "anonymous":
        client.force_login(mw.persona(name).user)
    return client


def k(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


def form_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', html).group(1)


def test_anonymous_is_sent_to_login(mw):
    response = client_for(mw, "anonymous").get("/wallet/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=/wallet/")
    tx_hash = mw.tx["mint_alice"]
    assert client_for(mw, "anonymous").get(f"/wallet/receipts/{tx_hash}/").status_code == 302


@pytest.mark.parametrize("persona,energy", [("alice", "3.799"), ("bob", "3.799"), ("charlie", "1.901")])
def test_wallet_shows_the_households_balance_and_buy_link(mw, persona, energy):
    html = client_for(mw, persona).get("/wallet/").content.decode()
    assert f'<strong class="energy-total">{energy}</strong>' in html
    msp = mw.persona(persona).organisation.msp_id
    assert f'href="/payments/simulator/?payer={msp}&amp;chaincode=retail-seller"' in html


def test_wallet_shows_fiat_credit_with_two_decimals(mw):
    from ledger.models import Account as LedgerAccount
    from ledger.services import account_open

    account_open(key="credit:hh-alice@utility", asset="INR", organisation=mw.alice.organisation)
    mw.uma.invoke("token", "mint", {"to": "credit:hh-alice@utility", "asset": "INR", "amount": 1234})
    assert LedgerAccount.objects.get(key="credit:hh-alice@utility").balance == 1234
    html = client_for(mw, "alice").get("/wallet/").content.decode()
    assert "<strong>₹12.34</strong>" in html and "Your credit with" in html


def test_fund_form_without_javascript(mw):
    client = client_for(mw, "alice")
    key = form_key(client.get("/wallet/").content.decode())
    data = {"public_id": "SL-0001", "amount_kwh": "1.5", "idempotency_key": key}
    response = client.post("/wallet/", data)
    html = response.content.decode()
    assert response.status_code == 200 and "Funded!" in html
    assert '<strong class="fund-balance">1.500 kWh</strong>' in html and "relay-on" in html
    assert k("device:SL-0001") == 1500 and k("household:hh-alice") == 2299
    assert form_key(html) != key  # the next funding gets a new key
    # Submitting the same page again moves nothing and says so.
    again = client.post("/wallet/", data).content.decode()
    assert "nothing moved twice" in again and k("device:SL-0001") == 1500


def test_fund_form_with_htmx_returns_the_panel_and_new_balances(mw):
    client = client_for(mw, "alice")
    key = str(uuid.uuid4())
    response = client.post("/wallet/", {"public_id": "SL-0001", "amount_kwh": "0.250", "idempotency_key": key},
                           HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.startswith('<div id="fund-panel">') and "<html" not in html
    assert '<strong class="fund-balance">0.250 kWh</strong>' in html
    assert 'id="balances" hx-swap-oob="true"' in html and '<strong class="energy-total">3.549</strong>' in html


@pytest.mark.parametrize("data,message", [
    ({"amount_kwh": "5"}, "Not enough coins: alice&#x27;s household holds 3.799 kWh"),
    ({"amount_kwh": "0"}, "greater than or equal to 0.001"),
    ({"amount_kwh": "1.0001"}, "no more than 3 decimal places"),
    ({"public_id": "XX-404"}, "There is no device"),
    ({"public_id": "SL-0099"}, "retired"),
    ({"window_start": "20:00"}, "both a start and an end"),
    ({"window_day": "2030-01-01", "window_end": "20:00"}, "both a start and an end"),
    ({"window_start": "20:00", "window_end": "20:00"}, "must end after it starts"),
    ({"window_day": "2020-01-01", "window_start": "18:00", "window_end": "20:00"}, "already ended"),
    ({"window_start": "25:00", "window_end": "20:00"}, "Enter a valid time"),
])
def test_fund_form_errors_change_nothing(mw, data, message):
    client = client_for(mw, "alice")
    txs = Transaction.objects.count()
    post = {"public_id": "SL-0001", "amount_kwh": "1", "idempotency_key": str(uuid.uuid4()), **data}
    html = client.post("/wallet/", post).content.decode()
    assert message in html, html
    assert "Funded!" not in html
    assert Transaction.objects.count() == txs and k("household:hh-alice") == 3799


def test_fund_form_window_in_local_time(mw, settings):
    settings.TIME_ZONE = "Asia/Kolkata"
    client = client_for(mw, "alice")
    post = {"public_id": "SL-0001", "amount_kwh": "1", "idempotency_key": str(uuid.uuid4()),
            "window_day": "2030-01-01", "window_start": "18:00", "window_end": "23:00"}
    assert "Funded!" in client.post("/wallet/", post).content.decode()
    window = Transaction.objects.filter(chaincode="resident").last().result["window"]
    assert window == {"start": "2030-01-01T12:30:00+00:00", "end": "2030-01-01T17:30:00+00:00"}  # stored as UTC


def test_history_lists_transactions_newest_first_with_links(mw):
    result = services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=100, idempotency_key="h")
    html = client_for(mw, "alice").get("/wallet/").content.decode()
    titles = re.findall(r'class="history-title">([^<]+)<', html)
    assert titles[0] == "Funded Beach Road light", titles
    assert f'href="/wallet/receipts/{result.tx_hash}/"' in html
    assert "<strong>-0.100</strong> kWh" in html and "device:SL-0001" not in html
    # Charlie's history does not include Alice's funding.
    assert result.tx_hash not in client_for(mw, "charlie").get("/wallet/").content.decode()


def test_history_pages_back(mw):
    for n in range(25):
        services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=1, idempotency_key=f"p{n}")
    client = client_for(mw, "alice")
    html = client.get("/wallet/").content.decode()
    assert html.count('class="history-item"') == 20
    older = re.search(r'href="/wallet/\?before=(\d+)"', html).group(1)
    rows = client.get(f"/wallet/?before={older}", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in rows and rows.count('class="history-item"') == 3 + 25 - 20
    assert client.get("/wallet/?before=x").status_code == 404


@pytest.mark.parametrize("persona,status", [("alice", 200), ("bob", 200), ("charlie", 404), ("uma", 200)])
def test_receipt_by_persona(mw, persona, status):
    result = services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=1234, idempotency_key="r")
    seal_all()
    response = client_for(mw, persona).get(f"/wallet/receipts/{result.tx_hash}/")
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        title = "Beach Road light was funded by alice&#x27;s household" if persona == "uma" else "Funded Beach Road light"
        assert title in html and "1.234 kWh" in html and "<code>SL-0001</code>" in html
        assert f'href="/explorer/tx/{result.tx_hash}/"' in html
        assert re.search(r'Block</dt><dd><a href="/explorer/blocks/\d+/">', html)


def test_receipt_of_a_retail_purchase_shows_price_and_fiat(mw):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.services import energy_accounts_open
    from ledger.services import account_open
    from tests.ledger_helpers import make_member
    from wallet.services import price_set

    bank = make_member("demobank", "bank")
    price_set(user=mw.uma.user, kind="retail", currency="INR", price=3000,
              effective_from=timezone.now() - timedelta(days=1), idempotency_key="p")
    energy_accounts_open(organisation=mw.uma.organisation)
    mw.uma.invoke("token", "mint", {"to": "utility:utility:0", "asset": "k", "amount": 10_000})
    account_open(key="credit:hh-alice@utility", asset="INR", organisation=mw.alice.organisation)
    sale = bank.invoke("retail-seller", "sell", {"payer": "hh-alice", "payee": "utility", "amount": 1000,
                                                 "currency": "INR", "paid_at": timezone.now().isoformat(),
                                                 "event_id": "evt-1"})
    assert sale.ok, sale.reason
    html = client_for(mw, "alice").get(f"/wallet/receipts/{sale.tx_hash}/").content.decode()
    assert "Coins you bought" in html and "+0.333 kWh" in html
    assert "₹30.00 per kWh" in html and "<dd>₹9.99</dd>" in html and "<dd>₹0.01</dd>" in html
    assert "+₹0.01" in html  # the credit kept, as a change of Alice's credit account


def test_unknown_receipt_is_404(mw):
    assert client_for(mw, "alice").get(f"/wallet/receipts/{'ab' * 32}/").status_code == 404


@pytest.mark.parametrize("persona", ["anonymous", "alice", "charlie"])
def test_device_list_shows_public_devices_only(mw, persona):
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=2000, idempotency_key="l")
    html = client_for(mw, persona).get("/devices/").content.decode()
    assert "Beach Road light" in html and 'href="/d/SL-0001"' in html and "<strong>2.000</strong> kWh" in html
    assert "HM-ALICE" not in html and "SL-0099" not in html


@pytest.mark.parametrize("persona,form", [("anonymous", False), ("alice", True), ("charlie", True)])
def test_device_page_by_persona(mw, persona, form):
    response = client_for(mw, persona).get("/d/SL-0001")
    html = response.content.decode()
    assert response.status_code == 200 and "Beach Road light" in html and "relay-off" in html
    assert ('name="amount_kwh"' in html) is form
    assert ("Log in to fund it" in html) is not form


def test_device_page_funds_its_device_and_hides_consumption(mw):
    client = client_for(mw, "charlie")
    key = form_key(client.get("/d/HM-ALICE").content.decode())
    html = client.post("/d/HM-ALICE", {"amount_kwh": "0.5", "idempotency_key": key, "public_id": "SL-0001"},
                       HTTP_HX_REQUEST="true").content.decode()
    assert '<strong class="fund-balance">0.500 kWh</strong>' in html  # the page's device, not the posted id
    assert 'id="device-state" hx-swap-oob="true"' in html
    assert k("device:HM-ALICE") == 500 and k("device:SL-0001") == 0
    assert "consum" not in client.get("/d/HM-ALICE").content.decode().lower()


def test_device_page_unknown_retired_and_anonymous_post(mw):
    assert client_for(mw, "alice").get("/d/NOPE-1").status_code == 404
    assert client_for(mw, "alice").get("/d/SL-0001/").status_code == 200
    retired = client_for(mw, "alice").get("/d/SL-0099").content.decode()
    assert "retired" in retired and 'name="amount_kwh"' not in retired
    response = client_for(mw, "anonymous").post("/d/SL-0001", {"amount_kwh": "1"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client_for(mw, "alice").delete("/d/SL-0001").status_code == 405


def test_fund_form_window_of_times_today_started_already_starts_now(mw):
    """Times only: today's window in the utility's time zone; begun already, it starts now."""
    client = client_for(mw, "alice")
    before = timezone.now()
    local_now = timezone.localtime(before)
    start, end = (local_now - timedelta(hours=1)).strftime("%H:%M"), (local_now + timedelta(hours=1)).strftime("%H:%M")
    post = {"public_id": "SL-0001", "amount_kwh": "1", "idempotency_key": str(uuid.uuid4()),
            "window_start": start, "window_end": end}
    html = client.post("/wallet/", post).content.decode()
    assert "Funded!" in html and "India Standard Time (IST)" in html  # the form says whose times
    window = Transaction.objects.filter(chaincode="resident").last().result["window"]
    stored_start, stored_end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    assert stored_start.utcoffset() == timedelta(0) and before <= stored_start <= timezone.now()
    expected_end = (local_now + timedelta(hours=1)).replace(second=0, microsecond=0)
    assert stored_end == expected_end
    assert f"until <time>{timezone.localtime(stored_end):%a %-d %b %H:%M}</time> (IST)" in html


def test_api_windows_in_any_offset_are_kept_as_utc(mw):
    start = timezone.make_aware(datetime(2030, 1, 1, 18, 0))  # 18:00 IST
    result = services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=10, idempotency_key="utc",
                                  window_start=start, window_end=start + timedelta(hours=5))
    assert result.window == {"start": "2030-01-01T12:30:00+00:00", "end": "2030-01-01T17:30:00+00:00"}
