"""Pictures on a 390×844 phone (Playwright, system Chromium, live server): Alice's meter reports
signed readings through the gateway's ingest service and her device page draws them (the canvas
holds the bars' pixels) with a table listing the same numbers; the devices list shows a Leaflet
map with OpenStreetMap tiles, and the server-drawn map when the tiles cannot be fetched."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import pytest

from tests.browser_sign_in import sign_in
from tests.frontend.test_browser_phone import PHONE, phone  # noqa: F401  (fixture)

SHOTS = os.environ.get("GRIDCOIN_SCREENSHOTS", "")
TILES = "https://tile.openstreetmap.org/**"
# A 1×1 PNG: what the tile server answers when the test lets tiles "load".
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

# Counts green pixels (the consumption bars' colour, #15803d) on the chart's canvas.
GREEN_PIXELS = """(selector) => {
  const canvas = document.querySelector(selector + ' canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let green = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 128 && g > r + 40 && g > b + 40) green++;
  }
  return green;
}"""


@pytest.fixture
def metered(transactional_db, settings):
    """The meter world with Alice's household meter having reported four hourly readings."""
    from django.utils import timezone

    from iot_gateway.fleet import simulated_meter
    from iot_gateway.services import readings_ingest
    from tests.meters_world import build_meter_world

    mw = build_meter_world(settings)
    meter = simulated_meter(mw.meter)
    now = timezone.now()
    registers = [(now - timedelta(hours=3), 1_250), (now - timedelta(hours=2), 1_750),
                 (now - timedelta(hours=1), 2_990), (now, 3_400)]
    messages = [meter.reading(counter=n, import_wh=wh, export_wh=0, timestamp=at)
                for n, (at, wh) in enumerate(registers, start=1)]
    assert all(o.status == "applied" for o in readings_ingest(messages, received_via="http"))
    # What each local hour should show: the register's rise reported in it (the first from 0);
    # the readings are an hour apart, so each is in an hour of its own.
    rises = [wh - before for (_, wh), before in zip(registers, [0] + [wh for _, wh in registers], strict=False)]
    expected = {timezone.localtime(at).strftime("%H:00"): f"{rise / 1000:.3f}"
                for (at, _), rise in zip(registers, rises, strict=True)}
    assert expected == dict(zip(expected, ["1.250", "0.500", "1.240", "0.410"], strict=True))
    return mw, expected


def shot(page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def log_in(page, url: str, target: str) -> None:
    sign_in(page, url, "alice", "alice-password-1", next_path=target)
    page.wait_for_url(f"{url}{target}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_device_consumption_chart_is_drawn_and_its_table_lists_the_same_numbers(metered, live_server,
                                                                                 phone):  # noqa: F811
    from playwright.sync_api import expect

    _, expected = metered
    page = phone
    log_in(page, live_server.url, "/d/HM-ALICE/")

    hourly = page.locator("#chart-device-hour")
    expect(hourly.locator(".chart-canvas[data-drawn=true] canvas")).to_be_visible()
    canvas = hourly.locator("canvas").first
    assert canvas.get_attribute("role") == "img"
    assert "3.400 kWh in all" in canvas.get_attribute("aria-label")
    assert page.evaluate(GREEN_PIXELS, "#chart-device-hour") > 100  # bars, not only axes
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    hourly.get_by_text("Show as table").click()
    rows = hourly.locator("tbody tr")
    expect(rows).to_have_count(24)
    shown = {}
    for n in range(24):
        row = rows.nth(n)
        shown[row.locator("th").inner_text()] = row.locator("td").inner_text()
    assert {label: value for label, value in shown.items() if value != "0.000"} == expected
    assert tuple(shown)[-1] in expected  # the current hour comes last

    daily = page.locator("#chart-device-day")
    expect(daily.locator(".chart-canvas[data-drawn=true] canvas")).to_be_visible()
    assert page.evaluate(GREEN_PIXELS, "#chart-device-day") > 100
    shot(page, "device-charts")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_device_map_falls_back_to_the_drawing_when_tiles_are_blocked(metered, live_server, phone):  # noqa: F811
    from playwright.sync_api import expect

    page = phone
    page.route(TILES, lambda route: route.abort())
    page.goto(f"{live_server.url}/devices/")
    expect(page.locator("#device-map-live")).to_have_attribute("data-state", "tiles-failed")
    assert page.evaluate("typeof L !== 'undefined' && L.version") == "1.9.4"
    expect(page.locator("#device-map-live")).to_be_hidden()
    expect(page.locator("#device-map-drawing svg")).to_be_visible()
    expect(page.locator("#device-map-drawing a.marker[data-public-id=SL-0001]")).to_be_visible()
    shot(page, "map-offline")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_device_map_shows_tiles_pins_and_attribution_when_online(metered, live_server, phone):  # noqa: F811
    from playwright.sync_api import expect

    page = phone
    fetched = []

    def tile(route):
        fetched.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=PNG)

    page.route(TILES, tile)
    page.goto(f"{live_server.url}/devices/")
    live = page.locator("#device-map-live")
    expect(live).to_have_attribute("data-state", "tiles")
    expect(live).to_be_visible()
    expect(page.locator("#device-map-drawing")).to_be_hidden()
    assert fetched and all(u.startswith("https://tile.openstreetmap.org/") for u in fetched)
    expect(live.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap")
    pin = live.locator(".map-pin[data-public-id=SL-0001]")
    expect(pin).to_be_visible()
    box = pin.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    shot(page, "map-online")
    pin.click()
    link = live.locator(".leaflet-popup a.button")
    expect(link).to_have_attribute("href", "/d/SL-0001")
    # The resident sees the device's name, never its coordinates.
    popup = live.locator(".leaflet-popup").inner_text()
    assert "Beach Road light" in popup and "9.96" not in popup and "76.24" not in popup
    # Followed from the keyboard: a pointer click lands wherever the popup was when Playwright
    # measured it, and Leaflet may still be panning the popup into view (a missed click navigated
    # nowhere on a loaded machine). Enter on the focused link is the same navigation, wherever it is.
    link.focus()
    with page.expect_navigation(url=f"{live_server.url}/d/SL-0001", wait_until="domcontentloaded",
                                timeout=30_000):
        page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Beach Road light")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_device_map_keeps_the_drawing_when_the_phone_is_offline(metered, live_server, phone):  # noqa: F811
    from playwright.sync_api import expect

    page = phone
    fetched = []
    page.route(TILES, lambda route: (fetched.append(route.request.url), route.abort()))
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'onLine', {get: () => false})")
    page.goto(f"{live_server.url}/devices/")
    expect(page.locator("#device-map-live")).to_have_attribute("data-state", "offline")
    expect(page.locator("#device-map-live")).to_be_hidden()
    expect(page.locator("#device-map-drawing svg")).to_be_visible()
    assert fetched == []  # no tile was even asked for


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_utility_dashboard_draws_its_charts_on_a_phone(metered, live_server, phone):  # noqa: F811
    from playwright.sync_api import expect

    page = phone
    sign_in(page, live_server.url, "uma", "uma-password-1", next_path="/dashboard/")
    assert page.url == f"{live_server.url}/dashboard/"
    chart = page.locator("#chart-issuance-hour")
    expect(chart.locator(".chart-canvas[data-drawn=true] canvas")).to_be_visible()
    assert chart.locator("canvas").first.get_attribute("role") == "img"
    expect(chart.locator(".u-legend")).to_contain_text("Burned")
    expect(page.locator("[data-presence=online]")).to_have_text("1")  # Alice's meter reported just now
    expect(page.locator("[data-presence=offline]")).to_have_text("1")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "dashboard")
