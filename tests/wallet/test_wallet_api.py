"""Persona tests for GET /api/v1/wallet/ and /api/v1/wallet/history/."""

from __future__ import annotations

import pytest

from meters import services
from tests.meters_world import MeterWorld, build_meter_world
from tests.personas import WRITE_METHODS

pytestmark = pytest.mark.django_db
WALLET, HISTORY = "/api/v1/wallet/", "/api/v1/wallet/history/"


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


@pytest.mark.parametrize("url", [WALLET, HISTORY])
def test_anonymous_is_refused(mw, url):
    assert mw.client("anonymous").get(url).status_code == 403


@pytest.mark.parametrize("persona,msp,balance", [("alice", "hh-alice", 3799), ("bob", "hh-alice", 3799),
                                                 ("charlie", "hh-charlie", 1901)])
def test_wallet_balances_by_persona(mw, persona, msp, balance):
    body = mw.client(persona).get(WALLET).json()
    (org,) = body["organisations"]
    assert org["msp_id"] == msp and org["org_type"] == "household"
    assert org["energy"] == [{"key": f"household:{msp}", "asset": "k", "balance": balance,
                              "display": f"{balance // 1000}.{balance % 1000:03d}", "unit": "kWh"}]
    assert org["credit"] == []
    assert [d["key"] for d in org["devices"]] == (["device:HM-ALICE"] if msp == "hh-alice" else [])


def test_utility_wallet_lists_its_accounts_only(mw):
    (org,) = mw.client("uma").get(WALLET).json()["organisations"]
    assert org["msp_id"] == "utility"
    assert org["energy"] == []
    assert {b["key"] for b in org["devices"]} == {"device:SL-0001", "device:SL-0099"}


def test_history_is_paginated_newest_first_with_ledger_links(mw):
    funded = services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=250, idempotency_key="x")
    body = mw.client("bob").get(HISTORY, {"limit": 2}).json()
    assert body["count"] == 4 and body["next"] and len(body["results"]) == 2
    first = body["results"][0]
    assert first["tx_hash"] == funded.tx_hash and first["chaincode"] == "resident" and first["function"] == "fund"
    assert first["energy_wh"] == -250 and first["counterparties"] == ["device:SL-0001"]
    assert first["status"] == "valid" and first["block"] is None
    assert first["transaction"] == f"/api/v1/ledger/transactions/{funded.tx_hash}/"
    assert first["proof"] == f"/api/v1/ledger/transactions/{funded.tx_hash}/proof/"
    assert mw.client("bob").get(first["transaction"]).status_code == 200
    rest = mw.client("bob").get(body["next"]).json()["results"]
    assert [r["tx_hash"] for r in rest] == [mw.tx["alice_to_charlie"], mw.tx["mint_alice"]]


def test_history_of_a_stranger_excludes_others(mw):
    funded = services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=250, idempotency_key="x")
    hashes = {r["tx_hash"] for r in mw.client("charlie").get(HISTORY).json()["results"]}
    assert funded.tx_hash not in hashes and mw.tx["mint_charlie"] in hashes and mw.tx["mint_alice"] not in hashes


@pytest.mark.parametrize("url", [WALLET, HISTORY])
@pytest.mark.parametrize("method", WRITE_METHODS)
def test_writes_are_not_allowed(mw, url, method):
    assert getattr(mw.client("alice"), method)(url).status_code == 405
