"""The billing pages in a 390×844 phone (system Chromium): axe-core, touch targets and no
sideways scrolling on every billing page each role opens, and the household's chart drawn."""

from __future__ import annotations

import pytest

from tests.billing.pages_world import DAY, build_pages_world
from tests.browser_sign_in import sign_in
from tests.frontend.test_accessibility_browser import audit_pages
from tests.frontend.test_browser_devices import shot
from tests.frontend.test_browser_phone import PHONE, phone_browser

ROLE_PAGES = {
    "alice": [f"/billing/household/?date={DAY}", "/billing/household/"],
    "dina": [f"/billing/distributor/?date={DAY}"],
    "gina": [f"/billing/grid/?date={DAY}"],
    "uma": [f"/billing/grid/?date={DAY}", f"/billing/distributor/?date={DAY}", "/billing/tariffs/"],
}
PASSWORDS = {name: f"{name}-password-1" for name in ROLE_PAGES}


@pytest.fixture
def world(transactional_db):
    return build_pages_world()


@pytest.mark.browser
@pytest.mark.parametrize("who", sorted(ROLE_PAGES))
def test_every_billing_page_passes_the_phone_audit(world, live_server, monkeypatch, who):
    seeds = ROLE_PAGES[who]
    with phone_browser(monkeypatch, bypass_csp=True) as context:
        page = context.new_page()
        sign_in(page, live_server.url, who, PASSWORDS[who])
        visited, problems = audit_pages(page, live_server.url, seeds)
        for path in seeds:
            assert path in visited, path
        shot(page, f"billing-audit-{who}")
    ours = [p for p in problems if p.startswith("/billing/")]
    assert not ours, "\n".join(ours)


@pytest.mark.browser
def test_the_household_day_draws_its_charts_on_a_phone(world, live_server, monkeypatch):
    from playwright.sync_api import expect

    with phone_browser(monkeypatch) as context:  # with the CSP: the charts' script is no inline script
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, live_server.url, "alice", PASSWORDS["alice"])
        page.goto(f"{live_server.url}/billing/household/?date={DAY}")
        for name in ("household-energy", "household-price", "household-bill"):
            expect(page.locator(f"#chart-{name} .chart-canvas")).to_have_attribute("data-drawn", "true")
        expect(page.locator("[data-day-bill]")).to_have_text("-₹1.13")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert not errors, errors
        shot(page, "billing-household-day")
