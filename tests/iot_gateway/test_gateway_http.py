"""POST /api/v1/meters/<meter_id>/readings: no session, the meter's signature is the
authentication; per-reading outcomes; 400 with a reason when the body is unusable."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from iot_gateway.models import MeterReading
from tests.iot_gateway.test_gateway_ingest import T0, balance, fleet  # noqa: F401  (fixture)


def url(meter_id: str) -> str:
    return f"/api/v1/meters/{meter_id}/readings"


@pytest.fixture
def client():
    return APIClient(enforce_csrf_checks=True)


def post(client, meter_id, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url(meter_id), data=data, content_type=content_type)


def test_one_signed_reading_is_applied_without_any_login(client, fleet):  # noqa: F811
    light, meter = fleet["light"], fleet["light_meter"]
    response = post(client, light.public_id, meter.reading(counter=1, import_wh=700, export_wh=0, timestamp=T0))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["applied"], body["replayed"], body["rejected"]) == (1, 0, 0)
    [outcome] = body["readings"]
    assert outcome["status"] == "applied" and len(outcome["tx_hash"]) == 64
    assert balance(light.account_key) == 4_300
    assert MeterReading.objects.get(device=light).received_via == "http"


def test_a_list_of_readings_and_a_redelivery(client, fleet):  # noqa: F811
    light, meter = fleet["light"], fleet["light_meter"]
    readings = [meter.reading(counter=n, import_wh=100 * n, export_wh=0, timestamp=T0 + timedelta(minutes=n))
                for n in (1, 2, 3)]
    assert post(client, light.public_id, readings).json()["applied"] == 3
    again = post(client, light.public_id, readings[1:]).json()
    assert (again["applied"], again["replayed"]) == (0, 2)
    assert balance(light.account_key) == 4_700


def test_the_meter_id_may_be_left_to_the_url(client, fleet):  # noqa: F811
    light, meter = fleet["light"], fleet["light_meter"]
    reading = meter.reading(counter=1, import_wh=10, export_wh=0, timestamp=T0)
    del reading["meter"]
    assert post(client, light.public_id, reading).json()["applied"] == 1


def test_forged_and_malformed_readings_are_answered_per_reading(client, fleet):  # noqa: F811
    light, meter = fleet["light"], fleet["light_meter"]
    forged = meter.reading(counter=1, import_wh=10, export_wh=0, timestamp=T0) | {"import_wh": 9_999}
    malformed = meter.reading(counter=2, import_wh=20, export_wh=0, timestamp=T0) | {"counter": "two"}
    body = post(client, light.public_id, [forged, malformed]).json()
    assert [r["status"] for r in body["readings"]] == ["rejected", "rejected"]
    assert "signature" in body["readings"][0]["reason"] and "'counter'" in body["readings"][1]["reason"]
    assert balance(light.account_key) == 5_000 and MeterReading.objects.count() == 2


@pytest.mark.parametrize("body, content_type, reason", [
    ("{not json", "application/json", "not valid JSON"),
    ("counter=1", "application/x-www-form-urlencoded", "application/json"),
    ([], "application/json", "empty"),
    (["a string"], "application/json", "JSON object"),
    (42, "application/json", "JSON object"),
])
def test_unusable_bodies_are_400_with_a_reason(client, fleet, body, content_type, reason):  # noqa: F811
    response = post(client, fleet["light"].public_id, body, content_type)
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert MeterReading.objects.count() == 0


def test_another_meters_reading_is_refused(client, fleet):  # noqa: F811
    light, panel = fleet["light"], fleet["panel"]
    reading = fleet["panel_meter"].reading(counter=1, import_wh=0, export_wh=5, timestamp=T0)
    response = post(client, light.public_id, reading)
    assert response.status_code == 400 and panel.public_id in response.json()["detail"]


def test_too_many_readings_in_one_request(client, fleet):  # noqa: F811
    response = post(client, fleet["light"].public_id, [{"counter": n} for n in range(1_001)])
    assert response.status_code == 400 and "at most 1000" in response.json()["detail"]


def test_only_post_is_allowed(client, fleet):  # noqa: F811
    assert client.get(url(fleet["light"].public_id)).status_code == 405


def test_the_endpoint_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    operation = paths["/api/v1/meters/{meter_id}/readings"]["post"]
    assert operation["operationId"] == "meter_readings_submit" and "400" in operation["responses"]
