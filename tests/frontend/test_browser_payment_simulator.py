"""A resident on a phone buys coins through the payment simulator (a real signed bank webhook)
and sees them arrive in the wallet (Playwright, system Chromium, 390×844, live server)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.frontend.test_browser_phone import PHONE, phone  # noqa: F401  (fixture)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_simulator_payment_shows_up_in_the_wallet(live_server, phone):  # noqa: F811
    from playwright.sync_api import expect

    from ledger.models import Account, Transaction
    from payments.models import WebhookEvent

    call_command("seed_demo")  # demo bank, prices (₹8.00/kWh retail), utility stock; alice holds 1.5 kWh
    page = phone
    page.goto(f"{live_server.url}/accounts/login/?next=/wallet/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "gridcoin-demo")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/wallet/")
    expect(page.locator(".energy-total")).to_have_text("1.500")

    page.click("a.buy")
    page.wait_for_url("**/payments/simulator/**")
    page.fill("#id_amount", "10.00")  # ₹10.00 at ₹8.00/kWh → 1.250 kWh
    page.click("main form button[type=submit]")
    result = page.locator("#simulator-result .result")
    expect(result).to_contain_text("Payment applied")
    expect(result).to_contain_text("1.250 kWh")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # It went through the bank webhook endpoint's code path and is a ledger transaction.
    event = WebhookEvent.objects.get(status="applied", payer="hh-alice", amount=1000)
    tx = Transaction.objects.get(tx_hash=event.tx_hash)
    assert (tx.chaincode, tx.function, tx.status) == ("retail-seller", "sell", "valid")

    page.goto(f"{live_server.url}/wallet/")
    expect(page.locator(".energy-total")).to_have_text("2.750")
    assert Account.objects.get(key="household:hh-alice", asset_id="k").balance == 2_750
