"""Persona tests for GET/POST /api/v1/prices/ (utility staff set prices via pricing.set)."""

from __future__ import annotations

import pytest

from ledger.models import StateEntry
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db
PRICES = "/api/v1/prices/"
PAST = "2024-01-01T00:00:00+00:00"


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def post_price(client, **body):
    data = {"kind": "retail", "currency": "INR", "price": 800, "effective_from": PAST, **body}
    return client.post(PRICES, data, format="json")


def test_utility_adds_a_price_and_everyone_reads_it(mw):
    response = post_price(mw.client("uma"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["utility"] == "utility" and body["current"] == 800 and body["tx_hash"]
    assert StateEntry.objects.get(namespace="pricing", key="utility/retail/INR").value == [{"from": PAST, "price": 800}]
    post_price(mw.client("uma"), price=900, effective_from="2099-01-01T00:00:00+00:00")
    for persona in ("anonymous", "alice", "charlie", "uma"):
        (schedule,) = mw.client(persona).get(PRICES).json()["schedules"]
        assert schedule["current"] == 800 and [e["price"] for e in schedule["entries"]] == [800, 900]


@pytest.mark.parametrize("persona,status", [("alice", 403), ("bob", 403), ("charlie", 403), ("anonymous", 403)])
def test_only_utility_staff_set_prices(mw, persona, status):
    assert post_price(mw.client(persona)).status_code == status
    assert not StateEntry.objects.filter(namespace="pricing").exists()


@pytest.mark.parametrize("body,message", [({"kind": "bargain"}, "valid choice"), ({"price": 0}, "greater than"),
                                          ({"effective_from": "soon"}, "Datetime has wrong format")])
def test_bad_prices_are_400(mw, body, message):
    response = post_price(mw.client("uma"), **body)
    assert response.status_code == 400 and message in str(response.json())


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_405(mw, method):
    assert getattr(mw.client("uma"), method)(PRICES).status_code == 405
