"""The device page ``/d/<id>``, the device list and map, and the scanner page, by persona:
state for everyone, consumption history and funders only for the owner and the utility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from frontend import simulators
from meters import services
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    world = build_meter_world(settings)
    services.device_fund(user=world.alice.user, public_id="HM-ALICE", amount_wh=700, idempotency_key="a1")
    start = timezone.now() + timedelta(minutes=1)
    services.device_fund(user=world.alice.user, public_id="SL-0001", amount_wh=900, idempotency_key="a2",
                         window_start=start, window_end=start + timedelta(hours=2))
    simulators.meter_tick(device=world.meter, wh=123)
    simulators.meter_tick(device=world.light, wh=45)
    return world


def page(mw, name: str, public_id: str) -> str:
    client = Client()
    if name != "anonymous":
        client.force_login(mw.persona(name).user)
    response = client.get(f"/d/{public_id}")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("name", ["anonymous", "charlie"])
def test_strangers_see_state_but_no_consumption(mw, name):
    html = page(mw, name, "HM-ALICE")
    assert "Alice&#x27;s meter" in html and "0.577" in html  # 700 − 123 Wh
    assert 'data-live="relay"' in html and 'data-device-live="HM-ALICE"' in html
    assert "Consumption" not in html and "0.123 kWh" not in html and 'data-live="readings"' not in html


@pytest.mark.parametrize("name", ["alice", "bob", "uma"])
def test_owner_members_and_the_utility_see_consumption(mw, name):
    html = page(mw, name, "HM-ALICE")
    assert 'data-live="readings"' in html
    assert "0.123 kWh" in html
    # Live updates format as the server does: the utility's zone and number locale.
    assert 'data-time-zone="Asia/Kolkata" data-number-locale="en-IN"' in html


def test_a_resident_sees_no_consumption_of_the_utilitys_light(mw):
    html = page(mw, "alice", "SL-0001")
    assert 'data-live="readings"' not in html and "0.045 kWh" not in html
    assert "Fund this device" in html


def test_funders_of_windows_are_hidden_from_strangers(mw):
    funder = escape(mw.alice.organisation.name)
    assert "funded by" not in page(mw, "charlie", "SL-0001")
    assert "funded by" not in page(mw, "anonymous", "SL-0001")
    assert "Funded times" in page(mw, "charlie", "SL-0001")
    staff = page(mw, "uma", "SL-0001")
    assert "funded by" in staff and funder in staff


def test_device_page_shows_its_place_qr_and_the_live_script(mw):
    html = page(mw, "anonymous", "SL-0001")
    assert "Beach Road, ward 5" in html
    assert "9.965" not in html and "76.242" not in html  # a place, never raw coordinates
    assert "/d/SL-0001/qr.svg" in html and "http://testserver/d/SL-0001" in html
    assert "device-live.js" in html
    assert "Log in to fund it" in html


def test_unknown_device_is_404(mw):
    assert Client().get("/d/NOPE-1").status_code == 404


def test_device_list_has_an_offline_map_linking_each_public_device(mw):
    html = Client().get("/devices/").content.decode()
    assert "<svg" in html and 'href="/d/SL-0001"' in html
    # its coins are reserved for a window that has not begun: off until then
    assert 'class="marker marker-off" data-public-id="SL-0001"' in html
    assert "HM-ALICE" not in html  # household meters are never listed


def test_map_projection_keeps_north_up_and_inside_the_box():
    from types import SimpleNamespace

    from frontend.selectors import MAP_HEIGHT, MAP_WIDTH, device_map

    def state(lat, lon):
        return SimpleNamespace(device=SimpleNamespace(latitude=lat, longitude=lon))

    north, south, east = state(10.001, 76.0), state(10.0, 76.0), state(10.0, 76.001)
    markers = {id(m.state): m for m in device_map([north, south, east, state(None, None)])}
    assert len(markers) == 3
    assert markers[id(north)].y < markers[id(south)].y
    assert markers[id(east)].x > markers[id(south)].x
    assert all(0 <= m.x <= MAP_WIDTH and 0 <= m.y <= MAP_HEIGHT for m in markers.values())


def test_scanner_page_and_manual_entry(mw):
    html = Client().get("/scan/").content.decode()
    assert "scan.js" in html and "jsQR-1.4.0.js" in html and 'name="id"' in html
    response = Client().get("/scan/", {"id": "SL-0001"})
    assert response.status_code == 302 and response["Location"] == "/d/SL-0001"
    assert Client().get("/scan/", {"id": "../admin"}).status_code == 404
