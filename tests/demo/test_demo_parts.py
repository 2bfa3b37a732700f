"""Each part of the demo on a network it did not build: it makes only what is missing, reuses
what exists, and makes nothing on a second run."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import membership_create
from demo.devices import devices_seed
from demo.fiat import fiat_seed
from demo.organisations import BANK
from ledger import services as ledger
from ledger.models import Account, OrgType
from meters.models import Device
from payments.testing import build_market
from tests.meters_world import build_meter_world


@pytest.fixture
def mw(db, settings):
    return build_meter_world(settings)


def test_devices_seed_registers_only_the_missing_devices_of_organisations_that_exist(mw):
    created = devices_seed()  # no demo utility or producer yet: only the residents' meters
    assert "device HM-ALICE" not in created  # already registered by the world
    assert not any(c.startswith(("device SL-", "device PM-")) for c in created)
    utility = ledger.organisation_create(msp_id="gridco-utility", name="GridCo", org_type=OrgType.UTILITY)
    ledger.organisation_create(msp_id="sunfarm", name="SunFarm", org_type=OrgType.PRODUCER)
    created = devices_seed()
    assert "device SL-0001" not in created  # already registered by the world
    assert {"device SL-0002", "device ST-0001", "device MS-0001", "device PM-0001"} <= set(created)
    assert Account.objects.filter(key__startswith="utility:gridco-utility:", asset_id="k").count() == 16
    assert Device.objects.get(public_id="SL-0002").organisation == utility
    assert Device.objects.get(public_id="SL-0002").latitude is not None
    assert devices_seed() == []


def test_fiat_seed_is_idempotent_and_the_payment_simulator_works_with_it(db):
    market = build_market(bank_msp="firstbank", prices=False)
    created = fiat_seed()
    assert "organisation demobank" in created and any(c.startswith("price utility retail") for c in created)
    assert fiat_seed() == []
    user = get_user_model().objects.create_user(username="op", password="op-password-1")
    membership_create(user=user, organisation=market.utility)
    client = Client()
    client.force_login(user)
    response = client.post("/payments/simulator/", {
        "payer": "hh-alice", "payee": "utility", "chaincode": "retail-seller", "bank": BANK,
        "amount": "8", "currency": "INR",
    })
    assert "Payment applied" in response.content.decode()
    assert market.household_balance() == 1000  # ₹8.00 at the demo's ₹8.00/kWh
