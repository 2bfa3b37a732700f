"""A resident on a 390×844 phone: sign up, land on home, see the empty household wallet,
log out and log in again (Playwright with the system Chromium against the live server)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

CHROMIUM = os.environ.get("GRIDCOIN_CHROMIUM", "/usr/bin/chromium")

PASSWORD = "phone-pass-2024"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}


@contextmanager
def phone_browser(monkeypatch, **options):
    """A browser context of a 390×844 phone in the system Chromium; ``options`` go to
    ``new_context`` (time zone, locale, bypass_csp)."""
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made here
    # (by the test itself) would otherwise be refused as unsafe from async context.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                      **options)
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
            browser.close()


@pytest.fixture
def phone(monkeypatch):
    with phone_browser(monkeypatch) as context:
        yield context.new_page()


@pytest.fixture
def energy_asset(transactional_db):
    from ledger import services as ledger

    utility = ledger.organisation_create(msp_id="gridco-utility", name="GridCo", org_type="utility")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)


def tap_size(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box["width"], box["height"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sign_up_log_out_and_log_in_on_a_phone(live_server, energy_asset, phone):
    from playwright.sync_api import expect

    page = phone
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Sign up").first.click()
    page.wait_for_url(f"{live_server.url}/accounts/signup/")

    # Fits the phone: no sideways scrolling, inputs and the button are comfortable to tap.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    width, height = tap_size(page, "#id_username")
    assert height >= 44 and width >= 300
    assert tap_size(page, "main button[type=submit]")[1] >= 44

    # A mismatched password is explained and nothing is created.
    page.fill("#id_username", "mira")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD + "!")
    page.click("main button[type=submit]")
    expect(page.get_by_text("The two password fields didn’t match.")).to_be_visible()

    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    household = page.locator("article.org", has_text="mira's household")
    expect(household).to_be_visible()
    expect(household.locator(".balance")).to_have_text("0.000 kWh")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Logging out lands on the same URL, so wait for the signed-out page rather than the URL.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in").first).to_be_visible()
    expect(page.locator("article.org")).to_have_count(0)

    page.get_by_role("link", name="Log in").first.click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "mira")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.locator("article.org", has_text="mira's household")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_be_visible()
