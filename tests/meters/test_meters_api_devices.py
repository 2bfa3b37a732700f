"""Persona tests for /api/v1/devices/, /api/v1/devices/<public_id>/ and .../fund/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.models import Account, Transaction
from tests.meters_world import MeterWorld, build_meter_world
from tests.personas import WRITE_METHODS

pytestmark = pytest.mark.django_db
DEVICES = "/api/v1/devices/"


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def fund_url(public_id: str) -> str:
    return f"{DEVICES}{public_id}/fund/"


def post_fund(client, public_id="SL-0001", key="key-1", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(fund_url(public_id), {"amount_wh": 1000, **body}, format="json", **headers)


def k(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


@pytest.mark.parametrize("persona", ["anonymous", "alice", "charlie", "uma"])
def test_device_list_is_public_state(mw, persona):
    body = mw.client(persona).get(DEVICES).json()
    assert [d["public_id"] for d in body["results"]] == ["SL-0001"]
    light = body["results"][0]
    assert light["relay"] == "off" and light["balance_wh"] == 0 and light["kind"] == "street_light"
    assert light["latitude"] == "9.965400" and light["owner"] == "utility"


@pytest.mark.parametrize("persona", ["anonymous", "alice", "charlie"])
def test_device_detail_by_persona(mw, persona):
    now = timezone.now()
    post_fund(mw.client("alice"), amount_wh=600, window_start=(now + timedelta(hours=1)).isoformat(),
              window_end=(now + timedelta(hours=2)).isoformat())
    body = mw.client(persona).get(f"{DEVICES}SL-0001/").json()
    assert (body["balance_wh"], body["reserved_wh"], body["spendable_wh"], body["relay"]) == (600, 600, 0, "off")
    assert body["balance_kwh"] == "0.600"
    (window,) = body["windows"]
    assert window["amount"] == 600 and "funder" not in window  # who funded stays private
    assert mw.client(persona).get(f"{DEVICES}HM-ALICE/").status_code == 200  # known id, not listed
    assert mw.client(persona).get(f"{DEVICES}NOPE-1/").status_code == 404


@pytest.mark.parametrize("persona,source", [("alice", "household:hh-alice"), ("bob", "household:hh-alice"),
                                            ("charlie", "household:hh-charlie")])
def test_fund_by_persona(mw, persona, source):
    before = k(source)
    response = post_fund(mw.client(persona), amount_wh=700)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["device"] == "SL-0001" and body["balance_wh"] == 700 and body["relay"] == "on"
    assert body["replayed"] is False and body["transaction"] == f"/api/v1/ledger/transactions/{body['tx_hash']}/"
    assert k(source) == before - 700


def test_anonymous_cannot_fund(mw):
    assert post_fund(mw.client("anonymous")).status_code == 403
    assert k("device:SL-0001") == 0


def test_utility_staff_without_household_get_a_clear_400(mw):
    response = post_fund(mw.client("uma"))
    assert response.status_code == 400 and "no energy account" in response.json()["detail"]


@pytest.mark.parametrize("body,key,status,message", [
    ({"amount_wh": 5000}, "a", 400, "Not enough coins"),
    ({"amount_wh": 0}, "a", 400, "greater than or equal to 1"),
    ({"amount_wh": "lots"}, "a", 400, "valid integer"),
    ({}, None, 400, "Idempotency-Key header is required"),
    ({"window_start": "2030-01-01T18:00:00+00:00"}, "a", 400, "both a start and an end"),
    ({"window_start": "2020-01-01T18:00:00+00:00", "window_end": "2020-01-01T19:00:00+00:00"}, "a", 400,
     "already ended"),
])
def test_fund_errors_are_400_and_change_nothing(mw, body, key, status, message):
    txs = Transaction.objects.count()
    response = post_fund(mw.client("alice"), key=key, **body)
    assert response.status_code == status and message in str(response.json()), response.json()
    assert Transaction.objects.count() == txs and k("household:hh-alice") == 3799


def test_fund_unknown_device_is_404_and_retired_is_400(mw):
    assert post_fund(mw.client("alice"), public_id="NOPE-1").status_code == 404
    retired = post_fund(mw.client("alice"), public_id="SL-0099")
    assert retired.status_code == 400 and "retired" in retired.json()["detail"]


def test_retry_with_the_same_key_replays_and_another_body_conflicts(mw):
    client = mw.client("alice")
    first = post_fund(client, key="retry", amount_wh=300).json()
    again = post_fund(client, key="retry", amount_wh=300)
    assert again.status_code == 201 and again.json()["tx_hash"] == first["tx_hash"] and again.json()["replayed"]
    conflict = post_fund(client, key="retry", amount_wh=301)
    assert conflict.status_code == 409 and "different values" in conflict.json()["detail"]
    assert k("device:SL-0001") == 300


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_fund_other_methods_are_405(mw, method):
    assert getattr(mw.client("alice"), method)(fund_url("SL-0001")).status_code == 405


@pytest.mark.parametrize("method", WRITE_METHODS)
def test_device_reads_refuse_writes(mw, method):
    for url in (DEVICES, f"{DEVICES}SL-0001/"):
        assert getattr(mw.client("alice"), method)(url).status_code == 405


def test_endpoints_are_in_the_openapi_schema(mw):
    schema = mw.client("alice").get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/wallet/", "/api/v1/wallet/history/", "/api/v1/devices/", "/api/v1/devices/{public_id}/",
                 "/api/v1/devices/{public_id}/fund/", "/api/v1/prices/"):
        assert path in schema, path
