"""Two phones (390×844) and a street light, over a real ASGI server (daphne) so websockets
work: a stranger opens the light's page from its QR code; a resident funds the light on her
phone and the stranger sees the relay turn ON live; she runs the consumer simulator until the
coins are burned (signed readings through the gateway), the bulb goes dark and the stranger
sees the relay turn OFF live; funded again, the bulb lights again.

pytest-django's ``live_server`` is WSGI (no websockets), so this module runs daphne in a
thread of the test process, against the same test database (and the same in-memory channel
layer). Twisted's reactor cannot be restarted, hence one server per test session."""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import pytest

from tests.frontend.test_browser_phone import CHROMIUM, CHROMIUM_ARGS, PHONE

SHOTS = os.environ.get("GRIDCOIN_SCREENSHOTS", "")
_server: dict[str, object] = {}


def shot(page, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def asgi_server_url() -> str:
    """Start (once per session) daphne serving the project's ASGI application with static
    files, in a daemon thread; returns its base URL."""
    if "url" in _server:
        return _server["url"]  # type: ignore[return-value]
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from gridcoin.asgi import application

    port = _free_port()
    ready = threading.Event()

    def serve() -> None:
        from daphne.server import Server

        Server(application=ASGIStaticFilesHandler(application), endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
               signal_handlers=False, ready_callable=ready.set, verbosity=0).run()

    threading.Thread(target=serve, name="daphne-test-server", daemon=True).start()
    assert ready.wait(10), "daphne did not start"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    _server["url"] = f"http://127.0.0.1:{port}"
    return _server["url"]  # type: ignore[return-value]


@pytest.fixture
def world(transactional_db, settings):
    # Built before the browser starts: Playwright's event loop in this thread would make the
    # ledger's after-commit pushes (async_to_sync) refuse to run.
    from tests.meters_world import build_meter_world

    settings.GRIDCOIN_SIMULATORS_OPEN = True
    return build_meter_world(settings)


def has_class(name: str):
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


@pytest.fixture
def browser(world, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def phone_page(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


DECODE_QR = """async (src) => {
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = document.querySelector("[data-scanner]").dataset.jsqr;
    script.onload = resolve; script.onerror = reject; document.head.append(script);
  });
  const image = new Image();
  image.src = src;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  return jsQR(pixels.data, pixels.width, pixels.height)?.data ?? null;
}"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_fund_a_light_live_and_burn_it_to_zero(world, browser):
    from playwright.sync_api import expect

    base = asgi_server_url()

    # The stranger's phone decodes the light's printed QR code (the vendored jsQR on the PNG)
    # and opens what it encodes.
    stranger = phone_page(browser)
    stranger.goto(f"{base}/scan/")
    url = stranger.evaluate(DECODE_QR, f"{base}/d/SL-0001/qr.png")
    assert url == f"{base}/d/SL-0001"
    stranger.goto(url)
    relay = stranger.locator("#device-state [data-live='relay']")
    expect(relay).to_have_text("OFF")
    expect(stranger.locator("[data-device-live][data-live-connected='true']")).to_be_attached()
    assert stranger.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(stranger.locator("#readings")).to_have_count(0)  # no consumption for strangers
    shot(stranger, "device-off")

    # Alice funds it on her own phone.
    alice = phone_page(browser)
    alice.goto(f"{base}/accounts/login/?next=/d/SL-0001")
    alice.fill("#id_username", "alice")
    alice.fill("#id_password", "alice-password-1")
    alice.click("main button[type=submit]")
    alice.wait_for_url(f"{base}/d/SL-0001")
    alice.fill("#id_amount_kwh", "0.06")
    alice.click("#fund-panel button[type=submit]")
    expect(alice.locator(".fund-balance")).to_have_text("0.060 kWh")

    # ... and the stranger's page turns ON without a reload.
    expect(relay).to_have_text("ON")
    expect(relay).to_have_class(has_class("relay-on"))
    expect(stranger.locator(".device-balance")).to_have_text("0.060")
    shot(stranger, "device-on")

    # Alice switches on the bulb in the consumer simulator: 20 Wh per second until it is dark.
    alice.goto(f"{base}/simulators/consumer/SL-0001/")
    assert alice.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(alice.locator("[data-device-live][data-live-connected='true']")).to_be_attached()
    alice.click("[data-toggle]")
    simulator = alice.locator("[data-simulator]")
    expect(simulator).to_have_class(has_class("running"))
    shot(alice, "simulator-running")
    expect(relay).to_have_text("OFF", timeout=20_000)
    expect(stranger.locator(".device-balance")).to_have_text("0.000")
    expect(simulator).not_to_have_class(has_class("running"))  # switched on, but dark
    expect(simulator).to_have_class(has_class("switched-on"))
    expect(alice.locator("[data-hint]")).to_contain_text("Out of coins")
    shot(alice, "simulator-dark")
    shot(stranger, "device-burned")

    # Funded again from a phone: the bulb lights again by itself (websocket → relay ON).
    funder = phone_page(browser)
    funder.goto(f"{base}/accounts/login/?next=/d/SL-0001")
    funder.fill("#id_username", "alice")
    funder.fill("#id_password", "alice-password-1")
    funder.click("main button[type=submit]")
    funder.wait_for_url(f"{base}/d/SL-0001")
    funder.fill("#id_amount_kwh", "0.5")
    funder.click("#fund-panel button[type=submit]")
    expect(simulator).to_have_class(has_class("running"))
    expect(relay).to_have_text("ON")
    alice.click("[data-toggle]")  # switch off so the page stops ticking
    expect(simulator).not_to_have_class(has_class("switched-on"))
