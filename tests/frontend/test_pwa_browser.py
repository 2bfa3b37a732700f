"""The installable app in the system Chromium at 390×844, against the live server on
http://localhost (a secure context, so the service worker runs):

- Chromium's own checks: the manifest parses with no errors and there is no installability error;
- offline, a page that was never visited shows the app's offline page;
- a balance is never served from the cache: changed on the server, a reload offline shows the
  offline page and a reload online the new balance; the Cache Storage holds only the shell;
- offline, a money action is refused with a plain message and nothing reaches the server; a
  network error on one says nothing was queued;
- a new worker version shows "Updated — reload" and drops the old cache.
"""

from __future__ import annotations

import json

import pytest

from tests.browser_sign_in import sign_in
from tests.frontend.test_browser_phone import CHROMIUM, CHROMIUM_ARGS, PHONE

OFFLINE_HEADING = "You're offline"
OFFLINE_MONEY = "You're offline. Nothing was sent; try again when you're connected."

CACHE_ENTRIES = """async () => {
  const entries = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      entries.push({cache: name, url: request.url, type: response.headers.get("Content-Type") || ""});
    }
  }
  return entries;
}"""


def wait_until(page, expression: str, attempts: int = 150) -> None:
    """Poll ``expression`` in the page until it is true. (``wait_for_function`` evaluates a
    string, which the app's Content-Security-Policy rightly refuses: no 'unsafe-eval'.)"""
    for _ in range(attempts):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


def wait_for_worker(page) -> None:
    """Until the service worker is active and controls the page. The worker claims open pages
    when it activates, but a document whose navigation was still in flight at that moment can
    miss the claim (Chromium); a reload once the worker is active is always controlled, as the
    next visit would be."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    try:
        wait_until(page, "navigator.serviceWorker.controller !== null", attempts=30)
    except AssertionError:
        page.reload()
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        wait_until(page, "navigator.serviceWorker.controller !== null")


def log_in(page, base: str, username: str, password: str, next_path: str) -> None:
    sign_in(page, base, username, password, next_path=next_path)
    page.wait_for_url(f"{base}{next_path}")


@pytest.fixture
def phone(monkeypatch, tmp_path):
    """A phone browser with a profile on disk: Chromium counts an off-the-record context (what
    ``new_context`` gives) as not installable, so the installability check needs a real one."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # Playwright applies the offline switch (and routes) to service workers only with this set;
    # without it the worker would still reach the server while the page is "offline".
    monkeypatch.setenv("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()


@pytest.fixture
def meter_world(transactional_db, settings):
    from tests.meters_world import build_meter_world

    return build_meter_world(settings)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_chromium_finds_the_app_installable(live_server, meter_world, phone):
    page = phone
    assert live_server.url.startswith("http://localhost:")
    page.goto(f"{live_server.url}/")
    wait_for_worker(page)

    cdp = page.context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"] == f"{live_server.url}/manifest.webmanifest"
    assert manifest["errors"] == []
    data = json.loads(manifest["data"])
    assert data["display"] == "standalone"
    assert data["scope"] == "/"
    assert {icon["purpose"] for icon in data["icons"]} == {"any", "maskable"}
    assert [s["url"] for s in data["shortcuts"]] == ["/scan/", "/wallet/"]
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []

    # Every icon the manifest names is a real PNG of the size it claims.
    for icon in data["icons"] + [i for s in data["shortcuts"] for i in s["icons"]]:
        response = page.request.get(f"{live_server.url}{icon['src']}")
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        body = response.body()
        assert body[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
        assert f"{width}x{height}" == icon["sizes"]

    # The device page a QR code opens is inside the app's scope and works signed out.
    page.goto(f"{live_server.url}/d/SL-0001")
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    assert page.get_by_role("heading", name="Beach Road light").is_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_offline_a_new_page_shows_the_offline_page(live_server, meter_world, phone):
    from playwright.sync_api import expect

    page = phone
    page.goto(f"{live_server.url}/")
    wait_for_worker(page)

    page.context.set_offline(True)
    page.goto(f"{live_server.url}/devices/")
    expect(page.get_by_role("heading", name=OFFLINE_HEADING)).to_be_visible()
    # The shell came from the cache: the page is styled (the top bar is the theme green).
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor") == "rgb(20, 83, 45)"

    page.context.set_offline(False)
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_text("Beach Road light")).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_offline_page_speaks_the_language_chosen_after_install(live_server, meter_world, phone):
    """The offline page is cached at install, in English; a resident who then switches to Hindi
    reads it in Hindi."""
    from playwright.sync_api import expect

    page = phone
    page.goto(f"{live_server.url}/")
    wait_for_worker(page)
    page.locator("footer button[value=hi]").click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "hi"

    page.context.set_offline(True)
    page.goto(f"{live_server.url}/devices/")
    expect(page.get_by_role("heading", name="आप ऑफ़लाइन हैं")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "hi"
    expect(page.get_by_role("heading", name=OFFLINE_HEADING)).to_have_count(0)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_balance_is_never_served_from_the_cache(live_server, meter_world, phone):
    from playwright.sync_api import expect

    from frontend import pwa
    from meters.services import device_fund

    page = phone
    log_in(page, live_server.url, "alice", "alice-password-1", "/wallet/")
    wait_for_worker(page)
    page.reload()  # now loaded through the worker
    expect(page.locator(".energy-total")).to_have_text("3.799")

    # The balance changes on the server, through the real service.
    device_fund(user=meter_world.alice.user, public_id="SL-0001", amount_wh=1_000, idempotency_key="pwa-stale-test")

    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_role("heading", name=OFFLINE_HEADING)).to_be_visible()
    assert page.locator(".energy-total").count() == 0
    assert "3.799" not in page.content()

    page.context.set_offline(False)
    page.reload()
    expect(page.locator(".energy-total")).to_have_text("2.799")

    # The cache holds the shell and nothing else: no wallet, no API, no signed-in page.
    entries = page.evaluate(CACHE_ENTRIES)
    shell = {f"{live_server.url}{path}" for path in pwa.precache_urls()}
    assert {entry["url"] for entry in entries} == shell
    for entry in entries:
        assert "/wallet/" not in entry["url"] and "/api/" not in entry["url"]
        if entry["type"].startswith("text/html"):
            assert entry["url"] == f"{live_server.url}/offline/"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_offline_a_money_action_is_refused_and_nothing_is_sent(live_server, meter_world, phone):
    from playwright.sync_api import expect

    from ledger.models import Transaction

    page = phone
    log_in(page, live_server.url, "alice", "alice-password-1", "/wallet/")
    wait_for_worker(page)
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    before = Transaction.objects.count()

    page.fill("#id_public_id", "SL-0001")
    page.fill("#id_amount_kwh", "1")
    page.context.set_offline(True)
    page.click("#fund-panel button[type=submit]")
    refusal = page.locator("#fund-panel [role=alert]", has_text=OFFLINE_MONEY)
    expect(refusal).to_be_visible()
    # Nothing waits to be sent later either: back online, still nothing moved.
    page.context.set_offline(False)
    page.wait_for_timeout(500)
    assert posts == []
    assert Transaction.objects.count() == before
    expect(page.locator(".energy-total")).to_have_text("3.799")

    # Online, the same form goes through.
    page.click("#fund-panel button[type=submit]")
    expect(page.locator(".fund-balance")).to_have_text("1.000 kWh")
    assert Transaction.objects.count() == before + 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_network_error_on_a_money_action_says_nothing_was_queued(live_server, meter_world, phone):
    """The request dies on the way (aborted by the browser): the form says so, the progress
    state ends, and nothing reached the ledger."""
    from playwright.sync_api import expect

    from ledger.models import Transaction

    page = phone
    log_in(page, live_server.url, "alice", "alice-password-1", "/wallet/")
    before = Transaction.objects.count()
    # Record the request states htmx shows while the request runs.
    page.evaluate("""() => {
      window.seen = [];
      document.addEventListener("htmx:beforeSend", () => {
        const button = document.querySelector("#fund-panel button[type=submit]");
        window.seen.push({disabled: button.disabled, busy: document.documentElement.classList.contains("htmx-busy"),
                          ariaBusy: document.querySelector("#fund-panel").getAttribute("aria-busy")});
      });
    }""")
    page.route("**/wallet/", lambda route: route.abort("internetdisconnected") if route.request.method == "POST"
               else route.continue_())
    page.fill("#id_public_id", "SL-0001")
    page.fill("#id_amount_kwh", "1")
    page.click("#fund-panel button[type=submit]")
    expect(page.locator("#fund-panel [role=alert]", has_text="nothing was queued")).to_be_visible()
    expect(page.locator("[data-app-status]")).to_have_text("Could not reach GridCoin. Check your connection and try again.")
    assert page.evaluate("window.seen") == [{"disabled": True, "busy": True, "ariaBusy": "true"}]
    assert page.locator("#fund-panel button[type=submit]").is_enabled()
    assert not page.evaluate("document.documentElement.classList.contains('htmx-busy')")
    assert Transaction.objects.count() == before

    # A server error is said plainly too, and the button comes back.
    page.unroute("**/wallet/")
    page.route("**/wallet/", lambda route: route.fulfill(status=502, body="Bad gateway")
               if route.request.method == "POST" else route.continue_())
    page.click("#fund-panel button[type=submit]")
    expect(page.locator("[data-app-status]")).to_contain_text("the server answered with an error")
    expect(page.locator("#fund-panel button[type=submit]")).to_be_enabled()
    assert Transaction.objects.count() == before


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_new_worker_version_offers_a_reload(live_server, meter_world, phone, monkeypatch):
    from playwright.sync_api import expect

    from frontend import pwa

    page = phone
    page.goto(f"{live_server.url}/prices/")
    wait_for_worker(page)
    old = pwa.shell_version()
    assert page.evaluate("caches.keys()") == [f"gridcoin-shell-{old}"]
    banner = page.locator("[data-update-banner]")
    expect(banner).to_be_hidden()

    monkeypatch.setattr(pwa, "shell_version", lambda: "0123456789abcdef")
    page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Updated — reload")
    # The new worker took over as it activated; its activate step then drops the old cache.
    wait_until(page, "caches.keys().then((keys) => keys.join() === 'gridcoin-shell-0123456789abcdef')")

    banner.get_by_role("button", name="Reload").click()
    page.wait_for_load_state()
    expect(page.locator("[data-update-banner]")).to_be_hidden()
