"""Persona tests for /prices/: everyone reads the schedules; utility staff add prices."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from ledger.models import StateEntry, Transaction
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def client_for(mw, name: str) -> Client:
    client = Client()
    if name != "anonymous":
        client.force_login(mw.persona(name).user)
    return client


def form(**values):
    return {"kind": "retail", "currency": "INR", "price": "8.50", "effective_from": "2024-01-01T00:00",
            "idempotency_key": str(uuid.uuid4()), **values}


def test_utility_adds_a_price_in_currency_units(mw):
    client = client_for(mw, "uma")
    assert 'name="price"' in client.get("/prices/").content.decode()
    response = client.post("/prices/", form(), follow=True)
    html = response.content.decode()
    assert "Retail price in INR added." in html and '<strong class="current-price">₹8.50</strong>' in html
    entry = StateEntry.objects.get(namespace="pricing", key="utility/retail/INR")
    # The form's time is the utility's (GRIDCOIN_UTILITY_TZ, Asia/Kolkata here), stored as UTC.
    assert entry.value == [{"from": "2023-12-31T18:30:00+00:00", "price": 850}]


def test_double_submit_adds_the_price_once(mw):
    client = client_for(mw, "uma")
    data = form()
    client.post("/prices/", data)
    client.post("/prices/", data)
    assert Transaction.objects.filter(chaincode="pricing").count() == 1


@pytest.mark.parametrize("values,message", [({"price": "8.505"}, "INR has 2 decimals"),
                                            ({"price": "0"}, "must be positive"),
                                            ({"currency": "USD"}, "valid choice")])
def test_bad_prices_are_explained(mw, values, message):
    html = client_for(mw, "uma").post("/prices/", form(**values)).content.decode()
    assert message in html and not StateEntry.objects.filter(namespace="pricing").exists()


@pytest.mark.parametrize("persona", ["anonymous", "alice", "bob", "charlie"])
def test_others_read_only(mw, persona):
    client_for(mw, "uma").post("/prices/", form())
    client = client_for(mw, persona)
    html = client.get("/prices/").content.decode()
    assert "8.50" in html and 'name="price"' not in html
    response = client.post("/prices/", form(price="1.00"))
    assert response.status_code == (302 if persona == "anonymous" else 403)
    assert StateEntry.objects.get(namespace="pricing", key="utility/retail/INR").value[0]["price"] == 850
