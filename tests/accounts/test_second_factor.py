"""Staff (utility, bank, charity, auditor) sign in with a second factor: without one set up,
every page sends them to set it up; with one, the login asks for it after the password.
Residents are not forced."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import second_factor
from tests.accounts.sign_in_world import login_post, resident, utility_staff
from tests.second_factor import force_login_password_only

pytestmark = pytest.mark.django_db


def code_of(device: TOTPDevice, step_offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + step_offset * device.step
    return f"{totp.token():06d}"


def wait_out_the_throttle(device: TOTPDevice) -> None:
    """django-otp makes a device wait after a wrong code (1 s, doubling): as if that time passed."""
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(minutes=1))


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_staff_without_a_second_factor_are_sent_to_set_one_up(client):
    utility_staff("uma")
    response = login_post(client, "uma", next_url="/explorer/")
    assert response.status_code == 302 and response["Location"] == "/explorer/"
    for path in ["/explorer/", "/", "/wallet/", "/accounts/tokens/"]:
        refused = client.get(path)
        assert refused.status_code == 302 and refused["Location"].startswith("/accounts/two-factor/?next="), path
    assert client.get("/api/v1/wallet/").status_code == 403
    setup = client.get("/accounts/two-factor/?next=/explorer/")
    html = setup.content.decode()
    assert setup.status_code == 200 and "<svg" in html and "Staff accounts need a second factor" in html


def test_admin_is_refused_without_a_verified_device(client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="root-password-1")
    assert login_post(client, "root", "root-password-1").status_code == 302
    assert client.get("/admin/")["Location"].startswith("/accounts/two-factor/")


def test_enrol_with_the_qr_codes_secret_and_get_backup_codes(client):
    uma = utility_staff("uma")
    login_post(client, "uma")
    client.get("/accounts/two-factor/")
    device = TOTPDevice.objects.get(user=uma)
    assert device.confirmed is False
    wrong = client.post("/accounts/two-factor/", {"action": "confirm-totp", "code": "000000"})
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    assert device.confirmed is False
    wait_out_the_throttle(device)
    done = client.post("/accounts/two-factor/", {"action": "confirm-totp", "code": code_of(device)})
    html = done.content.decode()
    assert done.status_code == 200 and "Your backup codes" in html
    assert html.count('<li><code>') == second_factor.BACKUP_CODES
    assert client.get("/explorer/").status_code == 200  # verified now


def test_login_asks_for_the_code_after_the_password(client):
    uma = utility_staff("uma")
    device = second_factor.totp_device_create(user=uma)
    response = login_post(client, "uma", next_url="/explorer/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/verify/")
    assert not signed_in(client)  # the password alone signs nobody in
    assert client.get("/explorer/")["Location"].startswith("/accounts/login/")
    wrong = client.post("/accounts/login/verify/", {"code": "123456", "next": "/explorer/"})
    assert wrong.status_code == 200 and not signed_in(client)
    wait_out_the_throttle(device)
    ok = client.post("/accounts/login/verify/", {"code": code_of(device), "next": "/explorer/"})
    assert ok.status_code == 302 and ok["Location"] == "/explorer/" and signed_in(client)
    assert client.get("/explorer/").status_code == 200


def test_a_backup_code_works_once(client):
    uma = utility_staff("uma")
    second_factor.totp_device_create(user=uma)
    codes = second_factor.backup_codes_regenerate(user=uma)
    login_post(client, "uma")
    assert client.post("/accounts/login/verify/", {"code": codes[0]}).status_code == 302
    client.logout()
    login_post(client, "uma")
    assert client.post("/accounts/login/verify/", {"code": codes[0]}).status_code == 200
    assert not signed_in(client)
    assert StaticToken.objects.filter(token=codes[0]).count() == 0


def test_the_second_step_expires_and_cannot_be_skipped(client):
    uma = utility_staff("uma")
    device = second_factor.totp_device_create(user=uma)
    assert client.post("/accounts/login/verify/", {"code": code_of(device)}).status_code == 302
    assert not signed_in(client)  # no password given: the code alone is nothing
    login_post(client, "uma")
    session = client.session
    session["gridcoin_2fa_pending"]["at"] -= 301
    session.save()
    assert client.post("/accounts/login/verify/", {"code": code_of(device)})["Location"] == "/accounts/login/"
    assert not signed_in(client)


def test_residents_are_not_forced(client):
    resident("rita")
    assert login_post(client, "rita").status_code == 302 and signed_in(client)
    assert client.get("/wallet/").status_code == 200


def test_a_resident_may_add_a_second_factor_and_is_then_asked_for_it(client):
    rita = resident("rita")
    login_post(client, "rita")
    client.get("/accounts/two-factor/")
    device = TOTPDevice.objects.get(user=rita)
    client.post("/accounts/two-factor/", {"action": "confirm-totp", "code": code_of(device)})
    client.logout()
    assert login_post(client, "rita")["Location"].startswith("/accounts/login/verify/")


def test_a_staff_session_that_lost_its_verification_is_asked_again():
    uma = utility_staff("uma")
    device = second_factor.totp_device_create(user=uma)
    client = Client()
    force_login_password_only(client, uma)
    assert client.get("/explorer/")["Location"].startswith("/accounts/two-factor/")
    page = client.get("/accounts/two-factor/?next=/explorer/")
    assert "Confirm it" in page.content.decode()
    # A new factor cannot be added before the existing one is shown.
    assert client.post("/accounts/two-factor/passkeys/options/").status_code == 403
    ok = client.post("/accounts/two-factor/", {"action": "verify", "code": code_of(device), "next": "/explorer/"})
    assert ok["Location"] == "/explorer/" and client.get("/explorer/").status_code == 200


def test_test_clients_force_login_verifies_staff(client):
    # tests/conftest.py: force_login stands for a completed sign-in, second factor included.
    uma = utility_staff("uma")
    client.force_login(uma)
    assert client.get("/explorer/").status_code == 200


def test_the_demo_staff_get_through_with_the_code_the_home_page_shows(client):
    call_command("seed_demo", stdout=StringIO())
    html = client.get("/").content.decode()

    codes = dict(re.findall(r'<code class="username">(\w+)</code>(?:(?!</li>).)*?<code class="totp-code">(\d{6})</code>',
                            html, re.S))
    assert set(codes) == {"utility", "auditor", "charity"}  # the demo's staff; residents and the producer need none
    login_post(client, "utility", "gridcoin-demo")
    assert client.post("/accounts/login/verify/", {"code": codes["utility"]}).status_code == 302
    assert client.get("/explorer/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_websockets_treat_a_staff_session_without_its_second_factor_as_anonymous():
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.test import override_settings

    from gridcoin.asgi import application

    uma = utility_staff("uma")

    def cookie_headers(client: Client) -> list[tuple[bytes, bytes]]:
        name = settings.SESSION_COOKIE_NAME
        return [(b"origin", b"http://testserver"), (b"host", b"testserver"),
                (b"cookie", f"{name}={client.cookies[name].value}".encode())]

    password_only, verified = Client(), Client()
    force_login_password_only(password_only, uma)
    verified.force_login(uma)

    async def connects(headers) -> bool:
        communicator = WebsocketCommunicator(application, "/ws/ledger/", headers=headers)
        connected, _ = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected

    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        assert async_to_sync(connects)(cookie_headers(password_only)) is False
        assert async_to_sync(connects)(cookie_headers(verified)) is True
