"""A resident on a 390×844 phone funds a street light from the wallet, then opens the light's
QR page and funds it again (Playwright, system Chromium, live server)."""

from __future__ import annotations

import os

import pytest

from tests.frontend.test_browser_phone import PHONE, phone, tap_size  # noqa: F401  (fixture)

SHOTS = os.environ.get("GRIDCOIN_SCREENSHOTS", "")


def shot(page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_fund_a_street_light_on_a_phone(live_server, settings, phone):  # noqa: F811
    from playwright.sync_api import expect

    from tests.meters_world import build_meter_world

    mw = build_meter_world(settings)
    page = phone
    page.goto(f"{live_server.url}/accounts/login/?next=/wallet/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/wallet/")
    expect(page.locator(".energy-total")).to_have_text("3.799")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tap_size(page, "#id_amount_kwh")[1] >= 44
    shot(page, "wallet")

    page.fill("#id_public_id", "SL-0001")
    page.fill("#id_amount_kwh", "1.25")
    page.click("#fund-panel button[type=submit]")
    expect(page.locator(".fund-balance")).to_have_text("1.250 kWh")
    expect(page.locator("#fund-panel .relay")).to_have_text("ON")
    expect(page.locator(".energy-total")).to_have_text("2.549")  # updated in place by htmx
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "wallet-funded")

    page.fill("#id_amount_kwh", "99")
    page.click("#fund-panel button[type=submit]")
    expect(page.get_by_text("Not enough coins")).to_be_visible()

    page.goto(f"{live_server.url}/d/SL-0001")
    expect(page.locator(".device-balance")).to_have_text("1.250")
    page.fill("#id_amount_kwh", "0.5")
    page.click("#fund-panel button[type=submit]")
    expect(page.locator(".fund-balance")).to_have_text("1.750 kWh")
    expect(page.locator(".device-balance")).to_have_text("1.750")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "device")

    page.goto(f"{live_server.url}/devices/")
    expect(page.get_by_text("Beach Road light")).to_be_visible()
    shot(page, "devices")
    page.goto(f"{live_server.url}/prices/")
    shot(page, "prices")
    page.goto(f"{live_server.url}/wallet/")
    page.locator(".history-title").first.click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "receipt")
    assert mw.light.public_id == "SL-0001"
