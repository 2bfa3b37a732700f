"""Signing in on a 390×844 phone in the system Chromium, as a new user would: the lockout
message after repeated failures, a staff member enrolling an authenticator app and logging in
with its code, a passkey registered and used through Chromium's virtual authenticator (DevTools
protocol ``WebAuthn``), and a sign-up started from a device's page landing back on it."""

from __future__ import annotations

import base64

import pytest

from tests.frontend.test_browser_phone import PHONE, phone_browser

PASSWORD = "phone-pass-2024"
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# The people and devices are made before the browser starts, and the test bodies check through
# the pages, not the ORM: with Playwright's event loop running in this thread, Django would open
# another database connection (one per async context) and leave it open behind the test.
@pytest.fixture
def mira(transactional_db):
    from accounts.services import user_signup

    return user_signup(username="mira", password=PASSWORD)


@pytest.fixture
def uma(transactional_db):
    from tests.accounts.sign_in_world import utility_staff

    user = utility_staff("uma")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def street_light(transactional_db, settings):
    from tests.meters_world import build_meter_world

    return build_meter_world(settings).light


@pytest.fixture
def browser_context(monkeypatch):
    with phone_browser(monkeypatch) as context:
        yield context


@pytest.fixture
def phone(browser_context):
    return browser_context.new_page()


def totp_code(secret_base32: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for this key now, or ``steps_ahead`` 30-second steps
    later (RFC 6238, django-otp's own TOTP)."""
    from django_otp.oath import TOTP

    padded = secret_base32 + "=" * (-len(secret_base32) % 8)
    totp = TOTP(base64.b32decode(padded))
    totp.time = totp.time + 30 * steps_ahead
    return f"{totp.token():06d}"


def log_in(page, base: str, username: str, password: str = PASSWORD, next_path: str = "") -> int:
    """Submit the login form; the status of the answer to the POST."""
    page.goto(f"{base}/accounts/login/" + (f"?next={next_path}" if next_path else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_response(lambda r: r.request.method == "POST" and "/accounts/login/" in r.url) as answer:
        page.click("main button[type=submit]")
    page.wait_for_load_state()
    return answer.value.status


def log_out(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in").first).to_be_visible()


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_lockout_message_after_repeated_failures(live_server, mira, phone):
    from playwright.sync_api import expect

    statuses = [log_in(phone, live_server.url, "mira", f"guess-{n}") for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    lockout = phone.get_by_role("alert").filter(has_text="Too many failed attempts")
    expect(lockout).to_have_text("Too many failed attempts. Try again in 15 minutes.")
    assert fits(phone)
    # The right password now is refused too, and says so.
    assert log_in(phone, live_server.url, "mira") == 429
    expect(lockout).to_be_visible()
    expect(phone.get_by_text("Signed in as")).to_have_count(0)


def test_staff_enrol_an_authenticator_and_log_in_with_its_code(live_server, uma, phone):
    from playwright.sync_api import expect

    base = live_server.url

    # First login: the password is right, and staff are sent to set up a second factor.
    log_in(phone, base, "uma", next_path="/explorer/")
    phone.wait_for_url(f"{base}/accounts/two-factor/?next=%2Fexplorer%2F")
    expect(phone.locator(".totp-qr svg")).to_be_visible()
    assert fits(phone)
    secret = phone.locator("[data-totp-secret]").inner_text()
    phone.fill("#id_code", totp_code(secret))
    phone.get_by_role("button", name="Confirm").click()
    expect(phone.get_by_role("heading", name="Your backup codes")).to_be_visible()
    expect(phone.locator(".backup-codes li")).to_have_count(10)
    phone.get_by_role("link", name="Continue").click()
    phone.wait_for_url(f"{base}/explorer/")
    log_out(phone)

    # Next login: password, then the code.
    log_in(phone, base, "uma", next_path="/explorer/")
    phone.wait_for_url(f"{base}/accounts/login/verify/?next=%2Fexplorer%2F")
    expect(phone.get_by_text("Signed in as")).to_have_count(0)
    assert fits(phone)
    # A code is accepted once: this login uses the app's next code (the server allows one step
    # of clock drift), as if the user logged in again half a minute later.
    phone.fill("#id_code", totp_code(secret, steps_ahead=1))
    phone.get_by_role("button", name="Verify").click()
    phone.wait_for_url(f"{base}/explorer/")
    expect(phone.get_by_text("Signed in as")).to_be_visible()


def test_a_passkey_registered_and_used_with_a_virtual_authenticator(live_server, uma, browser_context):
    from playwright.sync_api import expect

    base = live_server.url.replace("127.0.0.1", "localhost")  # a passkey needs a domain, not an IP
    page = browser_context.new_page()
    cdp = browser_context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})

    log_in(page, base, "uma")
    page.wait_for_url(f"{base}/accounts/two-factor/?next=%2F")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(f"{base}/")  # on to where the login was going: the passkey verified this session
    page.goto(f"{base}/accounts/two-factor/")
    expect(page.locator(".passkeys li")).to_have_count(1)
    expect(page.locator(".passkeys li")).not_to_contain_text("last used")
    page.goto(f"{base}/explorer/")
    page.wait_for_url(f"{base}/explorer/")
    log_out(page)

    log_in(page, base, "uma", next_path="/explorer/")
    page.wait_for_url(f"{base}/accounts/login/verify/?next=%2Fexplorer%2F")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(f"{base}/explorer/")
    expect(page.get_by_text("Signed in as")).to_be_visible()
    page.goto(f"{base}/accounts/two-factor/")
    expect(page.locator(".passkeys li")).to_contain_text("last used")


def test_signing_up_from_a_device_page_lands_back_on_it(live_server, street_light, phone):
    from playwright.sync_api import expect

    base = live_server.url
    phone.goto(f"{base}/d/{street_light.public_id}")
    phone.get_by_role("link", name="Sign up to fund it").click()
    phone.wait_for_url(f"{base}/accounts/signup/?next=/d/SL-0001")
    phone.fill("#id_username", "newbie")
    phone.fill("#id_password1", PASSWORD)
    phone.fill("#id_password2", PASSWORD + "x")  # a mistake first: next must survive it
    phone.click("main button[type=submit]")
    expect(phone.get_by_text("The two password fields didn’t match.")).to_be_visible()
    phone.fill("#id_password1", PASSWORD)
    phone.fill("#id_password2", PASSWORD)
    phone.click("main button[type=submit]")
    phone.wait_for_url(f"{base}/d/SL-0001")
    expect(phone.get_by_role("heading", name="Fund this device")).to_be_visible()
    assert fits(phone)
