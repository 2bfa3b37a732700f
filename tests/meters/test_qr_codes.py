"""Device QR codes (PNG, SVG) encode the absolute URL of the device page; the utility's
sticker sheet, by persona (house style #7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import segno
from django.contrib.staticfiles import finders
from django.test import Client

from meters import qr
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db

URL = "http://testserver/d/SL-0001"


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def client_of(mw, name: str) -> Client:
    client = Client()
    if name != "anonymous":
        client.force_login(mw.persona(name).user)
    return client


def test_device_url_joins_base_and_id():
    assert qr.device_url("https://grid.example/", "SL-0001") == "https://grid.example/d/SL-0001"
    assert qr.device_url("https://grid.example", "SL-0001") == "https://grid.example/d/SL-0001"


def test_the_code_carries_exactly_the_device_url():
    code = qr.device_qr(URL)
    assert code.matrix == segno.make(URL, error="m", micro=False, boost_error=False).matrix
    assert code.matrix != segno.make(URL + "/", error="m", micro=False, boost_error=False).matrix
    assert code.error == "M" and not code.is_micro


@pytest.mark.parametrize("name", ["anonymous", "charlie", "alice"])
def test_png_is_public_and_encodes_the_page_url(mw, name):
    response = client_of(mw, name).get("/d/SL-0001/qr.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response.content == qr.qr_png(URL)  # segno is deterministic: same data, same image


def test_svg_encodes_the_page_url(mw):
    response = Client().get("/d/SL-0001/qr.svg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<?xml") and b"<svg" in response.content
    assert response.content == qr.qr_svg(URL, title="SL-0001 Beach Road light")


def test_public_url_setting_wins_over_the_request_host(mw, settings):
    settings.GRIDCOIN_PUBLIC_URL = "https://pay.gridco.example"
    response = Client().get("/d/SL-0001/qr.png")
    assert response.content == qr.qr_png("https://pay.gridco.example/d/SL-0001")


def test_unknown_device_has_no_code(mw):
    assert Client().get("/d/NOPE-1/qr.png").status_code == 404
    assert Client().get("/d/NOPE-1/qr.svg").status_code == 404


def test_qr_is_read_only(mw):
    assert Client().post("/d/SL-0001/qr.png").status_code == 405


# --- sticker sheet ------------------------------------------------------------------------------

STICKERS = "/devices/stickers/"


def test_anonymous_is_sent_to_log_in(mw):
    response = Client().get(STICKERS)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("name", ["alice", "bob", "charlie"])
def test_residents_may_not_print_stickers(mw, name):
    assert client_of(mw, name).get(STICKERS).status_code == 403


def test_utility_staff_print_all_active_devices(mw):
    response = client_of(mw, "uma").get(STICKERS)
    assert response.status_code == 200
    html = response.content.decode()
    # The print layout (A4 @page) is a stylesheet of its own: the CSP allows no inline <style>.
    assert '<link rel="stylesheet" href="/static/frontend/stickers.css">' in html
    assert "@page" in Path(finders.find("frontend/stickers.css")).read_text()
    assert 'data-public-id="SL-0001"' in html and 'data-public-id="HM-ALICE"' in html
    assert 'data-public-id="SL-0099"' not in html  # retired
    assert html.count('class="sticker"') == 2
    assert qr.qr_svg_inline(URL, title="SL-0001") in html
    assert URL in html


def test_utility_staff_pick_devices_by_id_and_are_told_what_is_missing(mw):
    response = client_of(mw, "uma").get(STICKERS, {"ids": "HM-ALICE,NOPE-9"})
    html = response.content.decode()
    assert html.count('class="sticker"') == 1 and 'data-public-id="HM-ALICE"' in html
    assert "Not found: NOPE-9" in html


def test_utility_staff_pick_one_organisations_devices(mw):
    response = client_of(mw, "uma").get(STICKERS, {"org": mw.alice.organisation.msp_id})
    html = response.content.decode()
    assert html.count('class="sticker"') == 1 and 'data-public-id="HM-ALICE"' in html


def test_a_deactivated_utility_user_cannot_print(mw):
    client = client_of(mw, "uma")
    mw.uma.user.is_active = False
    mw.uma.user.save()
    assert client.get(STICKERS).status_code in (302, 403)


# --- stickers printed from a local address ------------------------------------------------------

LOCAL_WARNING = "These codes point at a local address phones cannot reach; set GRIDCOIN_PUBLIC_URL."


@pytest.mark.parametrize("url", [
    "http://localhost:8000/", "http://127.0.0.1:8000/", "http://127.8.9.10/", "http://[::1]:8000/",
    "http://10.1.2.3/", "http://192.168.1.20:8000/", "http://172.16.0.5/", "http://172.31.255.1/",
    "http://gridbox.local/", "http://app.localhost/", "http://[fe80::1]/", "http://0.0.0.0:8000/",
])
def test_local_addresses_are_recognised(url):
    from frontend.device_views import is_local_address

    assert is_local_address(url)


@pytest.mark.parametrize("url", [
    "https://pay.gridco.example/", "http://172.32.0.1/", "http://172.15.0.1/", "http://8.8.8.8/",
    "https://local.gridco.example/", "https://[2001:4860::8888]/",
])
def test_public_addresses_are_not_local(url):
    from frontend.device_views import is_local_address

    assert not is_local_address(url)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "192.168.1.20:8000", "gridbox.local"])
def test_stickers_served_from_a_local_host_warn(mw, settings, host):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1", "localhost", "192.168.1.20", "gridbox.local"]
    settings.GRIDCOIN_PUBLIC_URL = ""
    html = client_of(mw, "uma").get(STICKERS, HTTP_HOST=host).content.decode()
    assert LOCAL_WARNING in html
    assert f"They open http://{host}/." in html
    assert f"http://{host}/d/SL-0001" in html  # what the codes really carry


def test_a_local_public_url_warns_even_from_a_public_host(mw, settings):
    settings.GRIDCOIN_PUBLIC_URL = "http://10.0.0.7:8000"
    html = client_of(mw, "uma").get(STICKERS).content.decode()
    assert LOCAL_WARNING in html


def test_a_public_url_prints_without_a_warning_even_when_served_locally(mw, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    settings.GRIDCOIN_PUBLIC_URL = "https://pay.gridco.example"
    response = client_of(mw, "uma").get(STICKERS, HTTP_HOST="127.0.0.1:8000")
    html = response.content.decode()
    assert "https://pay.gridco.example/d/SL-0001" in html
    assert "local address" not in html
