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
        for path in seeds:  # each opens for this role (the crawl would audit a refusal page too)
            assert page.goto(live_server.url + path).status == 200, path
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


# --- the walk over the seeded demo -------------------------------------------------------

@pytest.fixture
def demo(transactional_db):
    # Seeded before the browser starts (Playwright's loop in this thread refuses async_to_sync).
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture
def billed_demo(transactional_db):
    """The demo with its two billed days (``seed_demo --billing-days``, as ``make run``): the
    grid's frequencies, Alice's and Bob's units from their meters' signed readings, every slot
    billed and both days closed into dues by the billing tasks; Alice's household is fined."""
    from django.core.management import call_command

    call_command("seed_demo", "--billing-days", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.browser
def test_a_household_sees_its_day_pays_its_dues_through_the_bank_and_sees_them_cleared(billed_demo, monkeypatch):
    """Alice, on a phone: her day's chart and bill, her dues with the fine, Pay → the payment
    simulator (a signed bank webhook → energy-billing.payDues), back to Billing: nothing owed."""
    from datetime import timedelta

    from playwright.sync_api import expect

    from billing import selectors
    from demo.organisations import DEMO_PASSWORD
    from frontend.formatting import format_money
    from ledger.keys import dues_key
    from payments.models import Payment
    from tests.billing.world import state
    from tests.frontend.test_browser_devices import asgi_server_url

    day = selectors.today() - timedelta(days=1)
    rows = selectors.household_day("hh-alice", day)
    day_bill = sum(r.amount or 0 for r in rows)
    dues = selectors.dues_of("hh-alice")
    fine = selectors.config()["fine"]
    assert all(r.amount is not None for r in rows) and day_bill > 0  # every slot billed from the meter
    assert dues.in_breach and dues.open_fines == fine and dues.outstanding >= day_bill + fine

    base = asgi_server_url()
    with phone_browser(monkeypatch) as context:
        page = context.new_page()
        sign_in(page, base, "alice", DEMO_PASSWORD, next_path="/billing/")
        page.goto(base + "/billing/")
        page.wait_for_url("**/billing/household/")
        # The date picker takes her to the day.
        page.fill("#day-date", day.isoformat())
        page.click(".day-pick button[type=submit]")
        page.wait_for_url(f"**/billing/household/?date={day.isoformat()}")
        for name in ("household-energy", "household-price", "household-bill"):
            expect(page.locator(f"#chart-{name} .chart-canvas")).to_have_attribute("data-drawn", "true")
        expect(page.locator("[data-day-bill]")).to_have_text(format_money(day_bill, "INR"))
        first = rows[0]
        expect(page.locator("table.slots tbody tr").first).to_contain_text(format_money(first.amount, "INR"))
        outstanding = page.locator("[data-dues-outstanding]")
        expect(outstanding).to_have_text(format_money(dues.outstanding, "INR"))
        expect(page.locator("#dues")).to_contain_text("a fine was added")
        expect(page.locator("#dues")).to_contain_text(format_money(fine, "INR"))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "billing-demo-household-owes")

        # Pay: the simulator, pre-filled with the bill account and what she owes.
        page.locator("[data-pay-dues]").click()
        page.wait_for_url("**/payments/simulator/?bill_account=bill:hh-alice*")
        expect(page.locator("#id_bill_account")).to_have_value("bill:hh-alice")
        expect(page.locator("#id_chaincode")).to_have_value("energy-billing")
        expect(page.locator("#id_payer")).to_have_value("hh-alice")
        expect(page.locator("#id_amount")).to_have_value(f"{dues.outstanding // 100}.{dues.outstanding % 100:02d}")
        page.click("main form button[type=submit]")
        result = page.locator("#simulator-result .result")
        expect(result).to_contain_text("Dues paid")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "billing-demo-paid")

        # Back through the Billing tab: nothing owed, no fine.
        page.locator(".tabbar a", has_text="Billing").click()
        page.wait_for_url("**/billing/household/")
        expect(outstanding).to_have_text("Nothing to pay")
        expect(page.locator("#dues")).not_to_contain_text("a fine was added")
        shot(page, "billing-demo-cleared")

    # The bank's webhook recorded the payment and payDues cleared the dues on the ledger.
    payment = Payment.objects.get(purpose="bill:hh-alice")
    assert payment.amount == dues.outstanding
    after = state(dues_key("hh-alice"))
    assert after["outstanding"] == 0 and not after["in_breach"] and all(i["open"] == 0 for i in after["items"])


DEMO_PAGES = {
    "alice": ["/billing/household/"],
    "distributor": ["/billing/distributor/"],
    "grid": ["/billing/grid/"],
    "utility": ["/billing/grid/", "/billing/distributor/", "/billing/tariffs/", "/billing/simulate/"],
}


@pytest.mark.browser
@pytest.mark.parametrize("who", sorted(DEMO_PAGES))
def test_the_demo_billing_pages_pass_the_phone_audit(demo, live_server, monkeypatch, who):
    """The demo's logins on their billing pages (with the demo's meter days, as seeded)."""
    from demo.organisations import DEMO_PASSWORD

    seeds = DEMO_PAGES[who]
    with phone_browser(monkeypatch, bypass_csp=True) as context:
        page = context.new_page()
        sign_in(page, live_server.url, who, DEMO_PASSWORD)
        for path in seeds:  # each opens for this role (the crawl would audit a refusal page too)
            assert page.goto(live_server.url + path).status == 200, path
        visited, problems = audit_pages(page, live_server.url, seeds)
        for path in seeds:
            assert path in visited, path
        shot(page, f"billing-demo-audit-{who}")
    ours = [p for p in problems if p.startswith("/billing/")]
    assert not ours, "\n".join(ours)
