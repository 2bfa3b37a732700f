"""A resident in India (browser time zone Asia/Kolkata, 390×844) funds a street light "for
tonight": the times typed are India Standard Time, the form says so, and the ledger stores the
right UTC instants (Playwright, system Chromium, live server)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.browser_sign_in import sign_in
from tests.frontend.test_browser_phone import PHONE, phone_browser, tap_size
from tests.frontend.test_wallet_browser import shot


def phone_in(zone: str, monkeypatch):
    with phone_browser(monkeypatch, timezone_id=zone, locale="en-IN") as context:
        yield context.new_page()


@pytest.fixture
def phone_in_india(monkeypatch):
    yield from phone_in("Asia/Kolkata", monkeypatch)


@pytest.fixture
def phone_in_new_york(monkeypatch):
    yield from phone_in("America/New_York", monkeypatch)


def log_in(page, base: str, next_path: str) -> None:
    sign_in(page, base, "alice", "alice-password-1", next_path=next_path)
    page.wait_for_url(f"{base}{next_path}")


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

    log_in(page, live_server.url, "/d/SL-0001")
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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_phone_in_another_zone_still_reads_the_utilitys_time(settings, phone_in_new_york):
    """Away from home (browser in New York), Alice's meter page shows times in IST, live
    readings included, and the window she types is still India's evening."""
    from django.utils import timezone
    from playwright.sync_api import expect

    from meters import services
    from tests.frontend.test_browser_devices import asgi_server_url
    from tests.meters_world import build_meter_world

    mw = build_meter_world(settings)
    base = asgi_server_url()  # websockets: the live readings
    services.device_fund(user=mw.alice.user, public_id="HM-ALICE", amount_wh=500, idempotency_key="top")
    page = phone_in_new_york
    assert page.evaluate("-new Date().getTimezoneOffset()") in (-300, -240)
    log_in(page, base, "/d/HM-ALICE")
    expect(page.get_by_text("Times in India Standard Time (IST)").first).to_be_visible()
    expect(page.locator("[data-device-live]")).to_have_attribute("data-live-connected", "true")
    # A reading through the server (as the simulator page sends it), pushed to this page live.
    status = page.evaluate("""async () => {
      const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
      const body = new URLSearchParams({ wh: "234" });
      const response = await fetch("/simulators/meters/HM-ALICE/tick", {
        method: "POST", headers: { "X-CSRFToken": token }, body, credentials: "same-origin" });
      return response.status;
    }""")
    assert status == 200
    shown = timezone.localtime()  # IST on the server
    first = page.locator('[data-live="readings"] li').first
    expect(first).to_contain_text("0.234 kWh")
    text = first.locator("time").inner_text()
    assert text[:2] in {f"{(shown - timedelta(minutes=1)):%H}", f"{shown:%H}"}, text  # IST, not New York
