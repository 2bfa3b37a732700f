"""The campaign pages on a 390×844 phone in the system Chromium: the progress bar moves live
over the websocket (daphne, as the device pages' test), falls back to polling when the browser
has no websocket, and every campaign page passes the accessibility audit (axe-core, 44 px tap
targets, nothing wider than the phone) for a visitor, a resident and the charity's staff."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.charity.pages_world import SLUG, build_pages_world, campaign_state, group_for_light, write_state
from tests.frontend.test_accessibility_browser import AXE, audit_pages  # noqa: F401  (AXE: the vendored file)
from tests.frontend.test_browser_devices import asgi_server_url, shot
from tests.frontend.test_browser_phone import PHONE, phone_browser

CAMPAIGN = f"/campaigns/{SLUG}/"


@pytest.fixture
def pw(transactional_db, settings):
    # Built before the browser starts (Playwright's loop in this thread refuses async_to_sync).
    world = build_pages_world(settings)
    group_for_light(world)
    return world


def in_another_thread(function) -> None:
    """Ledger writes and pushes from outside Playwright's event loop, as a service would."""
    failure: list[BaseException] = []

    def target():
        try:
            function()
        except BaseException as exc:  # noqa: BLE001  (re-raised below in the test's thread)
            failure.append(exc)
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert not failure, failure


def raise_to(raised: int) -> None:
    from charity import live

    write_state(f"campaign/{SLUG}", campaign_state(raised=raised))
    live.progress_broadcast(SLUG)


def session_cookie_for(user, base: str) -> dict:
    client = Client()
    client.force_login(user)
    name = django_settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": base}


@pytest.mark.browser
def test_the_bar_moves_live_when_a_donation_lands(pw, monkeypatch):
    from playwright.sync_api import expect

    base = asgi_server_url()
    with phone_browser(monkeypatch) as context:
        page = context.new_page()
        page.goto(base + CAMPAIGN)
        expect(page.locator("[data-campaign-live][data-live-connected='true']")).to_be_attached()
        bar = page.locator("#campaign-bar")
        expect(bar).to_have_attribute("value", "25")
        in_another_thread(lambda: raise_to(3_000_000))
        expect(bar).to_have_attribute("value", "60")
        expect(page.locator("[data-live='percent']")).to_have_text("60")
        expect(page.locator("[data-live='raised']")).to_have_text("₹30,000.00")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "campaign-live")


# Without websockets, and with the poll interval shortened so the test need not wait 20 s.
NO_WEBSOCKET = """
delete window.WebSocket;
const interval = window.setInterval.bind(window);
window.setInterval = (callback, ms, ...rest) => interval(callback, Math.min(ms, 300), ...rest);
"""


@pytest.mark.browser
def test_without_a_websocket_the_page_polls_the_progress(pw, live_server, monkeypatch):
    from playwright.sync_api import expect

    with phone_browser(monkeypatch) as context:
        context.add_init_script(NO_WEBSOCKET)
        page = context.new_page()
        page.goto(live_server.url + CAMPAIGN)
        expect(page.locator("[data-campaign-live][data-live-polling='true']")).to_be_attached()
        write_state(f"campaign/{SLUG}", campaign_state(raised=4_000_000))
        expect(page.locator("#campaign-bar")).to_have_attribute("value", "80")
        expect(page.locator("[data-live='raised']")).to_have_text("₹40,000.00")


@pytest.mark.browser
@pytest.mark.parametrize("who", ["anonymous", "alice", "hana"])
def test_campaign_pages_pass_the_phone_audit(pw, live_server, monkeypatch, who):
    seeds = ["/campaigns/", CAMPAIGN, "/campaigns/?q=ward", "/group/market-night/", "/d/SL-0001"]
    if who != "anonymous":
        seeds += ["/campaigns/mine/", "/group/new/SL-0001/"]
    if who == "hana":
        seeds += ["/campaigns/new/", f"{CAMPAIGN}edit/"]
    with phone_browser(monkeypatch, bypass_csp=True) as context:
        if who != "anonymous":
            user = pw.hana if who == "hana" else pw.persona(who).user
            context.add_cookies([session_cookie_for(user, live_server.url)])
        page = context.new_page()
        visited, problems = audit_pages(page, live_server.url, seeds)
        for path in seeds:
            assert path in visited, path
        shot(page, f"campaign-audit-{who}")
    # The pages of this issue; others the crawl reaches (the explorer) have their own audit.
    ours = [p for p in problems if p.startswith(("/campaigns/", "/group/", "/d/"))]
    assert not ours, "\n".join(ours)
