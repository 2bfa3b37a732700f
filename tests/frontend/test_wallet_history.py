"""The resident's history and balances in plain words: meter readings one row per device per
day, fundings worded by whose device it is, signs right for every kind of transaction, amounts
with their worth at today's retail price, no ledger keys outside "Technical details"."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.services import invoke_as
from frontend import simulators
from frontend.wording import resident_history
from ledger.keys import household_account
from ledger.models import Identity
from meters import services
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def html_for(user, path: str = "/wallet/") -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def rows_of(html: str) -> list[str]:
    return re.findall(r'<li class="history-item[^"]*">(.*?)</li>', html, re.S)


def test_meter_readings_are_one_row_per_device_per_day_with_the_days_total(mw):
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=700, idempotency_key="top")
    for wh, at in [(100, local(3, 10)), (101, local(3, 20)), (102, local(2, 9)), (103, local(2, 9, 30))]:
        assert simulators.meter_tick(device=mw.meter, wh=wh, now=at).ok
    html = html_for(mw.alice.user)
    days = [row for row in rows_of(html) if "meter reading" in row]
    assert len(days) == 2 and html.count('class="history-item history-day"') == 2
    assert "Alice&#x27;s meter used 0.205 kWh" in days[0] and "2 meter readings" in days[0]
    assert "<strong>-0.205</strong> kWh" in days[0] and local(2, 0).strftime("%Y-%m-%d") in days[0]
    assert "Alice&#x27;s meter used 0.201 kWh" in days[1] and "<strong>-0.201</strong> kWh" in days[1]
    assert 'href="/d/HM-ALICE#readings"' in days[0]
    # The day's total holds even when the page ends in the middle of the day's readings.
    first, _older = resident_history(mw.alice.user, limit=1)
    assert first[0].device_wh == -205 and first[0].readings == 2


def test_a_days_readings_are_not_shown_again_on_the_next_page(mw):
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=100, idempotency_key="first")
    for n in range(3):
        assert simulators.meter_tick(device=mw.meter, wh=10, now=local(2, 8 + n)).ok
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=5, idempotency_key="late")
    seen = []
    rows, older = resident_history(mw.alice.user, limit=2)
    seen += rows
    while older is not None:
        rows, older = resident_history(mw.alice.user, before=older, limit=2)
        seen += rows
    assert [r.device_wh for r in seen if r.is_day] == [-30]
    assert len({r.tx.pk for r in seen}) == len(seen)


def test_topping_up_your_own_meter_says_so_with_the_real_amount(mw):
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=700, idempotency_key="top")
    (row,) = [r for r in rows_of(html_for(mw.alice.user)) if "Topped up" in r]
    assert "Topped up your meter (Alice&#x27;s meter) with 0.700 kWh" in row
    assert "<strong>-0.700</strong> kWh" in row and "+0.000" not in row and "Funded a device" not in row


def test_funding_a_street_light_for_tonight_names_the_light_and_the_window(mw):
    start = timezone.now() + timedelta(minutes=1)
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=900, idempotency_key="f",
                         window_start=start, window_end=start + timedelta(hours=2))
    (row,) = [r for r in rows_of(html_for(mw.alice.user)) if "Funded" in r]
    assert "Funded Beach Road light" in row and "<strong>-0.900</strong> kWh" in row
    assert timezone.localtime(start).strftime("%H:%M") in row  # the window in the utility's time
    later = local(-2, 18)  # the day after tomorrow, 18:00
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=100, idempotency_key="g",
                         window_start=later, window_end=later + timedelta(hours=5))
    (row,) = [r for r in rows_of(html_for(mw.alice.user)) if "Funded" in r and "0.100" in r]
    assert f"for {later:%a} {later.day} {later:%b} 18:00–23:00" in row
    # The light's owner sees it from the other side.
    theirs = [r for r in rows_of(html_for(mw.uma.user)) if "Beach Road light" in r][-1]
    assert "Beach Road light was funded by alice&#x27;s household" in theirs and "<strong>+0.900</strong>" in theirs


def test_unused_window_coins_come_back_with_a_plus(mw):
    start = timezone.now() + timedelta(minutes=1)
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=900, idempotency_key="f",
                         window_start=start, window_end=start + timedelta(hours=1))
    (settled,) = services.windows_settle_due(now=start + timedelta(hours=2))
    assert settled.ok, settled.reason
    (row,) = [r for r in rows_of(html_for(mw.alice.user)) if "came back" in r]
    assert "Unused coins came back from Beach Road light" in row and "<strong>+0.900</strong> kWh" in row


def test_transfers_are_sent_and_received(mw):
    sent = [r for r in rows_of(html_for(mw.alice.user)) if "Sent to" in r]
    received = [r for r in rows_of(html_for(mw.charlie.user)) if "Received from" in r]
    assert sent and all("<strong>-" in r for r in sent)
    assert received and all("<strong>+" in r for r in received)
    assert "Sent to charlie&#x27;s household" in sent[0] and "Received from alice&#x27;s household" in received[0]


def test_buy_spend_refund_debt_and_repayment_have_the_right_signs(db):
    from payments.reversals import PaymentKey, payment_reverse
    from payments.testing import build_market

    market = build_market()
    market.deliver(market.notification(id="pay-1", amount=2000))
    identity = Identity.objects.filter(organisation=market.household).first()
    assert invoke_as(identity=identity, chaincode="token", function="burn", idempotency_key="spend-1",
                     args={"from": household_account(market.household.msp_id), "asset": "k", "amount": 1000}).ok
    with transaction.atomic():
        payment_reverse(PaymentKey("bank", "testbank", "pay-1"), reversal_id="r-1", kind="refund", amount=2000)
    market.deliver(market.notification(id="pay-2", amount=1200))
    rows, _older = resident_history(market.resident)
    facts = [(r.title, r.coins_wh, r.debt_wh) for r in rows]
    assert facts == [("Coins you bought", 500, -1000), ("Purchase refunded", -1500, 1000),
                     ("Coins removed", -1000, None), ("Coins you bought", 2500, None)]
    html = html_for(market.resident)
    assert "paid back 1.000 kWh you owed" in html and "you now owe 1.000 kWh more" in html
    assert "1.000 kWh paid what you owed first" in html and "paid ₹12.00 at ₹8.00 per kWh" in html
    assert "<strong>+2.500</strong> kWh" in html and "<strong>-1.500</strong> kWh" in html


def test_amounts_show_their_worth_at_todays_retail_price(mw):
    from wallet.services import price_set

    price_set(user=mw.uma.user, kind="retail", currency="INR", price=800,
              effective_from=timezone.now() - timedelta(days=1), idempotency_key="p1")
    price_set(user=mw.uma.user, kind="retail", currency="INR", price=1000,
              effective_from=timezone.now() + timedelta(days=1), idempotency_key="p2")  # not yet
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=1500, idempotency_key="w")
    html = html_for(mw.alice.user)
    assert '<strong class="energy-total">2.299</strong>' in html
    assert "worth ₹18.39 at today's price" in html  # 2.299 kWh × ₹8.00
    (row,) = [r for r in rows_of(html) if "Funded" in r]
    assert "≈&nbsp;₹12.00" in row


def test_no_ledger_keys_or_coordinates_outside_technical_details(mw):
    from ledger.services import account_open

    account_open(key="credit:hh-alice@utility", asset="INR", organisation=mw.alice.organisation)
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=5, idempotency_key="k")
    for path in ("/", "/wallet/", "/d/SL-0001", "/d/HM-ALICE"):
        html = html_for(mw.alice.user, path)
        shown = re.sub(r"<details class=\"[^\"]*tech.*?</details>", "", html, flags=re.S)
        shown = re.sub(r"<[^>]*>", " ", shown)  # what a person reads, not links' addresses
        for word in ("credit:", "household:", "device:", "hh-alice", "k-owed", "76.2421", "retail-seller"):
            assert word not in shown, (path, word)
    home = html_for(mw.alice.user, "/")
    assert "Your coins" in home and "Your credit with Utility" in home and "Alice&#x27;s meter" in home
    assert "<code class=\"account-key\">credit:hh-alice@utility</code>" in home  # kept for the curious


def test_a_refused_funding_is_shown_as_refused_and_moved_nothing(mw):
    from accounts.services import membership_for

    membership = membership_for(mw.alice.user, None)
    refused = invoke_as(identity=membership.identity, chaincode="resident", function="fund",
                        args={"device": "SL-0001", "amount": 10_000_000}, idempotency_key="too-much")
    assert not refused.ok
    (row,) = [r for r in rows_of(html_for(mw.alice.user)) if "refused" in r]
    assert "Funded Beach Road light (refused)" in row and "<strong>" not in row and "Refused" in row


def test_windows_are_worded_tonight_today_or_by_date():
    from frontend.wording import _window_text

    funded = datetime.fromisoformat("2026-12-06T14:25:00+00:00")  # 19:55 IST
    tonight = {"start": "2026-12-06T14:25:00+00:00", "end": "2026-12-06T17:30:00+00:00"}
    morning = {"start": "2026-12-06T03:30:00+00:00", "end": "2026-12-06T05:30:00+00:00"}
    later = {"start": "2026-12-24T12:30:00+00:00", "end": "2026-12-24T19:30:00+00:00"}
    assert _window_text(tonight, funded) == "tonight 19:55–23:00"
    assert _window_text(morning, funded) == "today 09:00–11:00"
    assert _window_text(later, funded) == "Thu 24 Dec 18:00–01:00"
