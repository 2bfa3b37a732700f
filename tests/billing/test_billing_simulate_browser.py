"""``/billing/simulate/`` in a 390×844 phone (system Chromium): the form, the runs and a run's
page pass axe-core and the touch-target audit, and a run's progress bar follows the run by
htmx polling under the site's CSP."""

from __future__ import annotations

from datetime import date

import pytest

from billing.models import SimulationRun, SimulationStatus
from billing.simulation_runs import simulation_run_create, simulation_run_execute
from tests.browser_sign_in import sign_in
from tests.frontend.test_accessibility_browser import audit_pages
from tests.frontend.test_browser_phone import PHONE, phone_browser

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

DAY = date(2026, 6, 1)


@pytest.fixture
def demo(transactional_db):
    from demo.seed import demo_seed

    demo_seed()


def test_the_simulate_pages_pass_the_phone_audit(demo, live_server, monkeypatch):
    from demo.organisations import DEMO_PASSWORD

    done = simulation_run_create(households=1, day=DAY, seed="audit")
    simulation_run_execute(run_id=done.pk)
    running = simulation_run_create(households=3, day=DAY, seed="audit-2")
    SimulationRun.objects.filter(pk=running.pk).update(status=SimulationStatus.RUNNING, slots_done=40)
    seeds = ["/billing/simulate/", f"/billing/simulate/{done.pk}/", f"/billing/simulate/{running.pk}/"]
    with phone_browser(monkeypatch, bypass_csp=True) as context:
        page = context.new_page()
        sign_in(page, live_server.url, "utility", DEMO_PASSWORD)
        visited, problems = audit_pages(page, live_server.url, seeds)
    assert set(seeds) <= set(visited)
    ours = [p for p in problems if p.startswith("/billing/simulate/")]
    assert not ours, "\n".join(ours)


def test_the_progress_bar_follows_the_run(demo, live_server, monkeypatch):
    from playwright.sync_api import expect

    from demo.organisations import DEMO_PASSWORD

    run = simulation_run_create(households=2, day=DAY, seed="poll")
    SimulationRun.objects.filter(pk=run.pk).update(status=SimulationStatus.RUNNING, slots_done=12)
    with phone_browser(monkeypatch) as context:  # with the CSP: htmx polls without inline script
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, live_server.url, "utility", DEMO_PASSWORD)
        page.goto(f"{live_server.url}/billing/simulate/{run.pk}/")
        expect(page.locator("#simulation-bar")).to_have_attribute("value", "12")
        SimulationRun.objects.filter(pk=run.pk).update(slots_done=48)
        expect(page.locator("#simulation-bar")).to_have_attribute("value", "50")
        SimulationRun.objects.filter(pk=run.pk).update(status=SimulationStatus.DONE, slots_done=96)
        expect(page.locator("#simulation-progress")).to_contain_text("Every slot of the day is recorded and billed")
        expect(page.locator("#simulation-progress")).not_to_have_attribute("hx-get", f"/billing/simulate/{run.pk}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not errors, errors
