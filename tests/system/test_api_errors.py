"""The API's refusals, one by one: each is a JSON body with a documented status, and refusing
changes nothing. (tests/system/test_api_fuzz.py finds these by generation; these pin them.)"""

from __future__ import annotations

import base64

import pytest

from ledger.models import StateEntry, Transaction
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db
PRICE = {"kind": "retail", "currency": "INR", "price": 800, "effective_from": "2024-01-01T00:00:00+00:00"}


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def _schema(client) -> dict:
    return client.get("/api/schema/", {"format": "json"}).json()


@pytest.mark.parametrize("query, name", [
    ("limit=abc", "limit"), ("limit=0", "limit"), ("limit=501", "limit"), ("offset=-1", "offset"),
    ("offset=1.5", "offset"), ("offset=1&offset=2", "offset"), ("offset=99999999999", "offset"),
])
def test_bad_pagination_is_a_400_naming_the_parameter(mw, query, name):
    response = mw.client("alice").get(f"/api/v1/ledger/blocks/?{query}")
    assert response.status_code == 400 and name in response.json(), response.content


def test_good_pagination_still_pages(mw):
    body = mw.client("alice").get("/api/v1/ledger/accounts/?limit=1&offset=0").json()
    assert len(body["results"]) == 1 and body["count"] > 1 and "offset=1" in body["next"]


def test_unrouted_api_path_is_a_json_404_and_pages_keep_html(mw):
    response = mw.client("alice").get("/api/v1/ledger/blocks/not-a-number/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
    page = mw.client("alice").get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, "ключ"])
def test_fund_refuses_a_malformed_idempotency_key(mw, key):
    txs = Transaction.objects.count()
    response = mw.client("alice").post("/api/v1/devices/SL-0001/fund/", {"amount_wh": 100}, format="json",
                                       HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["detail"]
    assert Transaction.objects.count() == txs


@pytest.mark.parametrize("body", [{"amount_wh": "100"}, {"amount_wh": 100.0}, {"amount_wh": True},
                                  {"amount_wh": 2**53}])
def test_fund_takes_a_json_integer_only(mw, body):
    response = mw.client("alice").post("/api/v1/devices/SL-0001/fund/", body, format="json",
                                       HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 400 and "amount_wh" in response.json()


def test_api_takes_json_bodies_only(mw):
    response = mw.client("uma").post("/api/v1/prices/", PRICE)  # multipart form
    assert response.status_code == 415 and "detail" in response.json()
    assert not StateEntry.objects.filter(namespace="pricing").exists()


@pytest.mark.parametrize("change", [{"currency": 0}, {"currency": ""}, {"price": "800"}])
def test_price_fields_are_strictly_typed(mw, change):
    response = mw.client("uma").post("/api/v1/prices/", {**PRICE, **change}, format="json")
    assert response.status_code == 400 and set(change) <= set(response.json())


def test_price_key_reused_with_another_price_is_409(mw):
    uma = mw.client("uma")
    assert uma.post("/api/v1/prices/", PRICE, format="json", HTTP_IDEMPOTENCY_KEY="p-1").status_code == 201
    again = uma.post("/api/v1/prices/", {**PRICE, "price": 900}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert again.status_code == 409 and "different values" in again.json()["detail"]
    present = uma.post("/api/v1/prices/", PRICE, format="json", HTTP_IDEMPOTENCY_KEY="")
    assert present.status_code == 400  # given but empty is not "absent"


def test_reading_with_a_non_string_meter_is_kept_as_rejected_not_refused(mw):
    body = mw.client("anonymous").post("/api/v1/meters/SL-0001/readings", {"meter": None, "counter": 1},
                                       format="json").json()
    (outcome,) = body["readings"]
    assert outcome["meter"] == "SL-0001" and outcome["status"] == "rejected" and body["rejected"] == 1


def test_schema_documents_the_refusals(mw):
    paths = _schema(mw.client("anonymous"))["paths"]
    fund = paths["/api/v1/devices/{public_id}/fund/"]["post"]["responses"]
    assert {"201", "400", "403", "404", "409"} <= set(fund)
    assert {"200", "400"} <= set(paths["/api/v1/devices/"]["get"]["responses"])
    assert "403" in paths["/api/v1/wallet/"]["get"]["responses"]
    assert "409" in paths["/api/v1/ledger/transactions/{tx_hash}/proof/"]["get"]["responses"]
    readings = paths["/api/v1/meters/{meter_id}/readings"]["post"]
    assert set(readings["requestBody"]["content"]) == {"application/json"}
    assert "403" not in readings["responses"]  # no credentials asked, none refused
    wallet = paths["/api/v1/wallet/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert wallet == {"$ref": "#/components/schemas/Wallet"}


@pytest.mark.parametrize("credentials", ["alice:alice-password-1", "al\x00ice:alice-password-1",
                                         "alice:pass\x00word"])
def test_basic_credentials_are_refused_with_a_bearer_challenge(mw, credentials):
    # HTTP basic auth is gone: even the right password is refused, never tried.
    header = "Basic " + base64.b64encode(credentials.encode()).decode()
    response = mw.client("anonymous").get("/api/v1/wallet/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and "basic authentication is not accepted" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer gct_ab\x00cd", "Bearer", "Bearer gct_a gct_b", "Token not-a-token"])
def test_malformed_tokens_are_a_401_not_a_server_error(mw, header):
    response = mw.client("anonymous").get("/api/v1/wallet/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["detail"]


def test_session_cookie_with_a_nul_byte_is_no_session(mw):
    client = mw.client("anonymous")
    client.cookies["sessionid"] = "abc\x00defghijk"
    assert client.get("/api/v1/devices/").status_code == 200
    assert client.get("/api/v1/wallet/").status_code == 403
