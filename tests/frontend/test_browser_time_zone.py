"""A resident in India (browser time zone Asia/Kolkata, 390×844) funds a street light "for
tonight": the times typed are India Standard Time, the form says so, and the ledger stores the
right UTC instants (Playwright, system Chromium, live server)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.frontend.test_browser_phone import CHROMIUM, CHROMIUM_ARGS, PHONE, tap_size
from tests.frontend.test_wallet_browser import shot


@pytest.fixture
def phone_in_india(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                      timezone_id="Asia/Kolkata", locale="en-IN")
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_funding_a_street_light_for_tonight_in_india(live_server, settings, phone_in_india):
    from django.utils import timezone
    from playwright.sync_api import expect

    from ledger.models import Transaction
    from tests.meters_world import build_meter_world

    assert settings.GRIDCOIN_UTILITY_TZ == "Asia/Kolkata"
    build_meter_world(settings)
    page = phone_in_india
    # The browser's clock agrees with the utility's: both in IST.
    browser_offset = page.evaluate("-new Date().getTimezoneOffset()")
    assert browser_offset == 330

    page.goto(f"{live_server.url}/accounts/login/?next=/d/SL-0001")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/d/SL-0001")
    expect(page.get_by_text("Times in India Standard Time (IST)").first).to_be_visible()
    for field in ("#id_window_day", "#id_window_start", "#id_window_end"):
        assert tap_size(page, field)[1] >= 44

    # "Tonight from 18:00 to 23:00", typed at 19:55: the same shape, relative to the real clock.
    now = timezone.localtime()
    began, ends = now - timedelta(hours=1, minutes=55), now + timedelta(hours=3, minutes=5)
    page.fill("#id_amount_kwh", "0.5")
    page.fill("#id_window_start", began.strftime("%H:%M"))
    page.fill("#id_window_end", ends.strftime("%H:%M"))
    page.click("#fund-panel button[type=submit]")
    expect(page.locator(".fund-balance")).to_have_text("0.500 kWh")
    expect(page.locator(".fund-window")).to_contain_text(f"until {ends:%a %-d %b %H:%M} (IST)")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "fund-tonight-ist")

    window = Transaction.objects.filter(chaincode="resident", function="fund").get().result["window"]
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    assert start.utcoffset() == end.utcoffset() == timedelta(0)  # stored as UTC
    assert end == ends.replace(second=0, microsecond=0)  # 23:00 IST, not 23:00 UTC
    assert now - timedelta(seconds=5) <= start <= timezone.now()  # already begun: from now
    # The light's page lists the window in IST, and the light is on now.
    page.goto(f"{live_server.url}/d/SL-0001")
    expect(page.locator(".windows li.active")).to_contain_text(f"{ends:%a %-d %b %H:%M}")
    expect(page.locator(".relay.big")).to_have_text("ON")
    shot(page, "device-tonight-ist")
