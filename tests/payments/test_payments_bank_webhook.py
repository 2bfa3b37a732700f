"""POST /webhooks/bank/: signed, idempotent, audited; the ledger does the selling."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ledger import services as ledger
from ledger.chaincodes.energy_math import fiat_to_wh
from ledger.models import Transaction, TxStatus
from payments.models import BankSecret, DeliveryStatus, ProcessedEvent, WebhookEvent
from payments.services import bank_secret_create, bank_secret_deactivate, bank_webhook_receive
from payments.testing import RETAIL_PRICE, WHOLESALE_PRICE, build_market, post_bank_webhook

FIXTURES = Path(__file__).resolve().parents[2] / "payments" / "fixtures"


@pytest.fixture
def market(db, settings):
    return build_market()


def snapshot(market) -> tuple:
    """Everything a refused delivery must leave alone."""
    return (market.household_balance(), market.utility_stock(), market.credit(), Transaction.objects.count(),
            ProcessedEvent.objects.count())


def test_valid_notification_applies_a_retail_sale(market):
    stock = market.utility_stock()
    response = market.deliver(market.notification(id="pay-1", amount=1001))
    assert response.status_code == 200, response.content
    body = response.json()
    sale = fiat_to_wh(amount=1001, credit=0, price_per_kwh=RETAIL_PRICE)
    assert body["status"] == "applied"
    assert body["wh"] == sale.wh == 1251
    assert body["tx_url"] == f"/explorer/tx/{body['tx_hash']}/"
    assert market.household_balance() == sale.wh
    assert market.utility_stock() == stock - sale.wh
    tx = Transaction.objects.get(tx_hash=body["tx_hash"])
    assert (tx.chaincode, tx.status, tx.idempotency_key) == ("retail-seller", TxStatus.VALID, "payment:bank:testbank:pay-1")
    assert tx.invoker.qualified_name == "testbank/webhooks"
    assert tx.args["paid_at"] == "2026-03-01T12:00:00+00:00"
    event = WebhookEvent.objects.get()
    assert (event.status, event.http_status, event.event_id, event.tx_hash) == ("applied", 200, "pay-1", tx.tx_hash)
    assert event.organisation == market.bank and event.amount == 1001 and event.payer == "hh-alice"


def test_fiat_remainder_is_kept_as_credit_and_spent_next_time(market):
    market.set_price("retail", 1500, effective_from="2026-02-01T00:00:00+00:00")
    first = market.deliver(market.notification(amount=1000)).json()
    sale = fiat_to_wh(amount=1000, credit=0, price_per_kwh=1500)
    assert (first["wh"], first["charged"], first["credit"]) == (sale.wh, sale.charged, sale.credit) == (666, 999, 1)
    assert market.credit() == 1
    second = market.deliver(market.notification(amount=1000)).json()
    again = fiat_to_wh(amount=1000, credit=1, price_per_kwh=1500)
    assert (second["wh"], second["credit"]) == (again.wh, again.credit) == (667, 0)
    assert market.credit() == 0
    assert market.household_balance() == 666 + 667
    # A payment made before the new price was in force is sold at the old one.
    early = market.deliver(market.notification(amount=800, created="2026-01-15T00:00:00Z")).json()
    assert early["price"] == RETAIL_PRICE and early["wh"] == 1000


def test_unix_created_time_is_accepted(market):
    response = market.deliver(market.notification(created=1772366400))  # 2026-03-01T12:00:00Z
    assert response.status_code == 200, response.content
    assert Transaction.objects.get(tx_hash=response.json()["tx_hash"]).args["paid_at"] == "2026-03-01T12:00:00+00:00"


def test_wholesale_sale_moves_coins_from_producer_to_utility(market):
    market.operate("token", "mint", {"to": "producer:sunfarm", "asset": "k", "amount": 10_000})
    stock = market.utility_stock()
    response = market.deliver(market.notification(chaincode="wholesale-seller", payer="utility", payee="sunfarm",
                                                  amount=2500))
    assert response.status_code == 200, response.content
    wh = fiat_to_wh(amount=2500, credit=0, price_per_kwh=WHOLESALE_PRICE).wh
    assert response.json()["wh"] == wh == 5000
    assert market.utility_stock() == stock + wh
    from payments.testing import balance
    assert balance("producer:sunfarm") == 10_000 - wh


def test_redelivery_is_a_duplicate_and_changes_nothing(market):
    body = market.notification(id="pay-dup")
    first = market.deliver(body)
    assert first.status_code == 200
    before = snapshot(market)
    for _ in range(3):
        again = market.deliver(body)  # re-signed with a fresh timestamp, as banks retry
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
        assert again.json()["tx_hash"] == first.json()["tx_hash"]
        assert again.json()["wh"] == first.json()["wh"]
    assert snapshot(market) == before
    assert list(WebhookEvent.objects.order_by("id").values_list("status", flat=True)) == [
        "applied", "duplicate", "duplicate", "duplicate"]


def test_same_event_id_with_other_content_is_a_conflict(market):
    assert market.deliver(market.notification(id="pay-x", amount=1000)).status_code == 200
    before = snapshot(market)
    response = market.deliver(market.notification(id="pay-x", amount=9000))
    assert response.status_code == 409
    assert "different payment" in response.json()["error"]
    assert snapshot(market) == before


def test_event_ids_are_per_bank(market):
    other = ledger.organisation_create(msp_id="otherbank", name="Other", org_type="bank")
    bank_secret_create(organisation=other, label="k1", secret="gcwh_other")
    assert market.deliver(market.notification(id="same-id")).status_code == 200
    response = market.deliver(market.notification(id="same-id", bank="otherbank"), secrets=["gcwh_other"])
    assert response.status_code == 200 and response.json()["status"] == "applied"


# --- secrets and rotation -------------------------------------------------------------------

def test_secret_is_sealed_at_rest(market):
    row = BankSecret.objects.get(organisation=market.bank)
    assert market.secret.encode() not in bytes(row.ciphertext)


def test_rotation_either_active_secret_passes_and_a_retired_one_fails(market):
    new, new_plain = bank_secret_create(organisation=market.bank, label="next")
    assert market.deliver(market.notification(), secrets=[market.secret]).status_code == 200
    assert market.deliver(market.notification(), secrets=[new_plain]).status_code == 200
    assert market.deliver(market.notification(), secrets=["gcwh_wrong", new_plain]).status_code == 200
    old = BankSecret.objects.get(organisation=market.bank, label="primary")
    bank_secret_deactivate(secret=old)
    before = snapshot(market)
    response = market.deliver(market.notification(), secrets=[market.secret])
    assert response.status_code == 401
    assert "retired" in response.json()["error"]
    assert snapshot(market) == before
    assert market.deliver(market.notification(), secrets=[market.secret, new_plain]).status_code == 200


# --- refusals: nothing changes but the audit row ---------------------------------------------

def refused(market, response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "rejected"
    assert fragment in body["error"], body["error"]
    event = WebhookEvent.objects.order_by("-id").first()
    assert (event.status, event.http_status) == (DeliveryStatus.REJECTED, status)
    assert fragment in event.reason


@pytest.mark.parametrize("age, fragment", [(301, "old"), (-301, "future"), (3600, "old")])
def test_stale_or_future_timestamps_are_refused(market, age, fragment):
    before = snapshot(market)
    response = market.deliver(market.notification(), t=int(time.time()) - age)
    refused(market, response, 401, fragment)
    assert snapshot(market) == before


def test_timestamp_within_tolerance_passes(market):
    assert market.deliver(market.notification(), t=int(time.time()) - 290).status_code == 200


@pytest.mark.parametrize("case", ["wrong-secret", "bad-hmac", "body-changed", "no-header", "no-v1", "garbled",
                                  "t-changed"])
def test_forgeries_are_refused(market, case):
    before = snapshot(market)
    raw, header = market.signed(market.notification(amount=500))
    if case == "wrong-secret":
        raw, header = market.signed(market.notification(), secrets=["gcwh_guess"])
    elif case == "bad-hmac":
        header = header[:-4] + ("0000" if not header.endswith("0000") else "1111")
    elif case == "body-changed":
        raw = raw.replace(b'"amount": 500', b'"amount": 500000')
    elif case == "no-header":
        header = None
    elif case == "no-v1":
        header = header.split(",")[0]
    elif case == "garbled":
        header = "this is not a signature"
    elif case == "t-changed":
        t, v1 = header.split(",")
        header = f"t={int(t[2:]) - 1},{v1}"
    response = post_bank_webhook(raw, header)
    assert response.status_code == 401, response.content
    assert response.json()["status"] == "rejected"
    assert snapshot(market) == before
    assert WebhookEvent.objects.get().http_status == 401


def test_malformed_json_is_refused_after_the_signature(market):
    before = snapshot(market)
    refused(market, market.deliver(b'{"id": "x", "amount": '), 400, "not valid JSON")
    refused(market, market.deliver(b'["a list"]'), 400, "JSON object")
    refused(market, market.deliver(b"\xff\xfe"), 400, "not valid JSON")
    assert snapshot(market) == before


@pytest.mark.parametrize("field", ["id", "bank", "payer", "payee", "chaincode", "amount", "currency", "created"])
def test_missing_fields_are_refused(market, field):
    body = market.notification()
    del body[field]
    refused(market, market.deliver(body), 400, f"missing field: {field}")


@pytest.mark.parametrize("overrides, fragment", [
    ({"amount": 10.0}, "'amount' must be an integer"),
    ({"amount": 10.5}, "'amount' must be an integer"),
    ({"amount": "1000"}, "'amount' must be an integer"),
    ({"amount": True}, "'amount' must be an integer"),
    ({"amount": -100}, "'amount' must be positive"),
    ({"amount": 0}, "'amount' must be positive"),
    ({"amount": 10**13}, "at most"),
    ({"chaincode": "generator"}, "'chaincode' must be one of"),
    ({"chaincode": "resident"}, "'chaincode' must be one of"),
    ({"currency": "rupees"}, "three-letter"),
    ({"currency": "EUR"}, "unknown currency 'EUR'"),
    ({"created": "2026-03-01T12:00:00"}, "timezone"),
    ({"created": "yesterday"}, "'created'"),
    ({"created": 12.5}, "'created'"),
    ({"id": ""}, "'id' must be"),
    ({"id": "a" * 201}, "'id' must be"),
    ({"id": "x\u0000y"}, "'id' must be"),
    ({"payer": "hh-nobody"}, "unknown payer 'hh-nobody'"),
    ({"payee": "sunfarm"}, "needs a utility as payee; sunfarm is a producer"),
    ({"payer": "utility"}, "needs a household as payer; utility is a utility"),
    ({"chaincode": "wholesale-seller"}, "needs a utility as payer; hh-alice is a household"),
    ({"bank": "nobank"}, "unknown bank 'nobank'"),
])
def test_invalid_notifications_are_refused_with_a_message(market, overrides, fragment):
    before = snapshot(market)
    refused(market, market.deliver(market.notification(**overrides)), 400, fragment)
    assert snapshot(market) == before


def test_a_bank_cannot_speak_for_another_bank(market):
    other = ledger.organisation_create(msp_id="otherbank", name="Other", org_type="bank")
    bank_secret_create(organisation=other, label="k1", secret="gcwh_other")
    before = snapshot(market)
    refused(market, market.deliver(market.notification(bank="testbank"), secrets=["gcwh_other"]), 401,
            "signed with a secret of otherbank")
    assert snapshot(market) == before


def test_oversized_body_is_refused(market):
    body = market.notification(note="x" * 70_000)
    refused(market, market.deliver(body), 413, "larger than")


def test_get_is_not_allowed(client, market):
    assert client.get("/webhooks/bank/").status_code == 405


# --- ledger refusals: recorded, final, nothing moved ------------------------------------------

def test_no_price_in_force_is_a_recorded_rejection(market):
    before_balance, stock = market.household_balance(), market.utility_stock()
    response = market.deliver(market.notification(id="too-early", created="2025-06-01T00:00:00+00:00"))
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["status"] == "rejected" and body["retry"] is False
    assert "no retail price in INR" in body["error"]
    tx = Transaction.objects.get(tx_hash=body["tx_hash"])
    assert tx.status == TxStatus.REJECTED and tx.postings.count() == 0
    assert (market.household_balance(), market.utility_stock()) == (before_balance, stock)
    event = WebhookEvent.objects.get()
    assert (event.status, event.http_status, event.tx_hash) == ("rejected", 422, tx.tx_hash)
    # Final: the redelivery replays the refusal and records nothing new on the ledger.
    again = market.deliver(market.notification(id="too-early", created="2025-06-01T00:00:00+00:00"))
    assert again.status_code == 422
    assert again.json()["status"] == "duplicate" and again.json()["tx_hash"] == tx.tx_hash
    assert Transaction.objects.filter(idempotency_key="payment:bank:testbank:too-early").count() == 1


def test_utility_that_cannot_cover_is_a_recorded_rejection(db, settings):
    market = build_market(stock=10)  # 160 Wh over 16 shards
    response = market.deliver(market.notification(amount=800))  # 1000 Wh
    assert response.status_code == 422
    assert "cannot cover 1000 Wh: it holds 160 Wh" in response.json()["error"]
    assert market.household_balance() == 0 and market.utility_stock() == 160 and market.credit() == 0


def test_sale_spread_over_several_shards_when_one_is_short(db, settings):
    market = build_market(stock=100)
    response = market.deliver(market.notification(amount=800))  # 1000 Wh of 1600
    assert response.status_code == 200, response.content
    assert market.household_balance() == 1000 and market.utility_stock() == 600


# --- the audit ------------------------------------------------------------------------------

def test_every_delivery_leaves_exactly_one_audit_row(market):
    deliveries = [
        market.deliver(market.notification(id="a")),
        market.deliver(market.notification(id="a")),
        market.deliver(market.notification(), secrets=["gcwh_forged"]),
        market.deliver(b"not json"),
        market.deliver(market.notification(amount=1.5)),
        market.deliver(market.notification(created="2020-01-01T00:00:00+00:00")),
        post_bank_webhook(b"{}", None),
    ]
    assert [r.status_code for r in deliveries] == [200, 200, 401, 400, 400, 422, 401]
    assert WebhookEvent.objects.count() == len(deliveries)
    assert list(WebhookEvent.objects.order_by("id").values_list("http_status", flat=True)) == [
        r.status_code for r in deliveries]
    forged = WebhookEvent.objects.filter(http_status=401).first()
    assert forged.organisation is None and forged.body


def test_service_function_is_the_same_path(market):
    raw, header = market.signed(json.loads((FIXTURES / "bank.notification.json").read_text()))
    outcome = bank_webhook_receive(raw_body=raw, signature_header=header)
    assert outcome.http_status == 200 and outcome.applied
    assert outcome.body["wh"] == fiat_to_wh(amount=1001, credit=0, price_per_kwh=RETAIL_PRICE).wh
