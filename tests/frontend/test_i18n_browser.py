"""Switching to हिन्दी on a 390×844 phone (system Chromium): the switcher in the footer is easy to
tap, needs no JavaScript of its own, keeps the page, and the choice sticks."""

from __future__ import annotations

import re

import pytest

from tests.frontend.test_browser_phone import PHONE, energy_asset, phone, tap_size  # noqa: F401

PASSWORD = "phone-pass-2024"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_switch_to_hindi_on_a_phone_and_keep_it_after_signing_up(live_server, energy_asset, phone):  # noqa: F811
    from playwright.sync_api import expect

    from accounts.models import Profile

    page = phone
    page.goto(f"{live_server.url}/devices/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    switcher = page.locator("form.lang-switch")
    hindi = switcher.get_by_role("button", name="हिन्दी")
    expect(switcher.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    expect(switcher.get_by_role("button", name="Español")).to_be_visible()

    # Comfortable to tap and inside the screen, nothing sideways.
    hindi.scroll_into_view_if_needed()
    for name in ("English", "हिन्दी", "Español"):
        box = switcher.get_by_role("button", name=name).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, (name, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    hindi.click()
    page.wait_for_url(f"{live_server.url}/devices/")
    expect(page.locator("html")).to_have_attribute("lang", "hi")
    expect(page.get_by_role("heading", level=1)).to_have_text("सार्वजनिक डिवाइस")
    expect(page.locator("nav.tabbar").get_by_role("link", name="डिवाइस")).to_be_visible()
    expect(page.locator("form.lang-switch").get_by_role("button", name="हिन्दी")).to_have_attribute(
        "aria-pressed", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Sign up in Hindi: the form speaks Hindi and the choice lands on the new profile.
    page.locator("header").get_by_role("link", name="साइन अप").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("अपना खाता बनाएँ")
    page.fill("#id_username", "asha")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.locator("main button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/signup/"))
    expect(page.locator("html")).to_have_attribute("lang", "hi")
    assert Profile.objects.get(user__username="asha").language == "hi"

    # A fresh browser (another phone) signing in as asha gets Hindi straight away.
    context = page.context.browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        other = context.new_page()
        other.goto(f"{live_server.url}/accounts/login/")
        expect(other.locator("html")).to_have_attribute("lang", "en")
        other.fill("#id_username", "asha")
        other.fill("#id_password", PASSWORD)
        other.locator("main button[type=submit]").click()
        expect(other).not_to_have_url(re.compile(r"/accounts/login/"))
        expect(other.locator("html")).to_have_attribute("lang", "hi")
        expect(other.locator("nav.tabbar").get_by_role("link", name="वॉलेट")).to_be_visible()
    finally:
        context.close()
