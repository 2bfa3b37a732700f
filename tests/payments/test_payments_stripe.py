"""POST /webhooks/stripe/: Stripe's signature scheme, verified by the stripe library; the two
payment events sell coins, other events are acknowledged and ignored; event ids dedupe."""

from __future__ import annotations

import json
import time

import pytest

from ledger.chaincodes.energy_math import fiat_to_wh
from ledger.models import Transaction
from payments.models import Payment, WebhookEvent
from payments.testing import RETAIL_PRICE, build_market

from .stripe_kit import SECRETS, fixture, post, stripe_header


@pytest.fixture
def market(db, settings):
    settings.STRIPE_WEBHOOK_SECRETS = SECRETS
    return build_market(bank_msp="stripebank")


@pytest.mark.parametrize("event_type, amount", [("checkout.session.completed", 2000),
                                                ("payment_intent.succeeded", 1001)])
def test_payment_events_apply_a_retail_sale(client, market, event_type, amount):
    event = fixture(event_type)
    response = post(client, event)
    assert response.status_code == 200, response.content
    body = response.json()
    wh = fiat_to_wh(amount=amount, credit=0, price_per_kwh=RETAIL_PRICE).wh
    assert body["status"] == "applied" and body["wh"] == wh
    assert market.household_balance() == wh
    tx = Transaction.objects.get(tx_hash=body["tx_hash"])
    paid = event["data"]["object"]
    assert tx.idempotency_key == f"payment:stripe::{paid.get('payment_intent') or paid['id']}"
    assert tx.invoker.qualified_name == "stripebank/webhooks"
    assert tx.args["currency"] == "INR" and tx.args["paid_at"] == "2026-01-01T00:00:00+00:00"
    audit = WebhookEvent.objects.get()
    assert (audit.provider, audit.event_type, audit.status, audit.organisation) == (
        "stripe", event_type, "applied", market.bank)


def test_redelivery_is_deduplicated(client, market):
    event = fixture("payment_intent.succeeded")
    first = post(client, event).json()
    again = post(client, event)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate" and again.json()["tx_hash"] == first["tx_hash"]
    assert market.household_balance() == first["wh"]
    assert Transaction.objects.filter(idempotency_key__startswith="payment:stripe:").count() == 1
    assert WebhookEvent.objects.count() == 2


def test_either_endpoint_secret_passes(client, market):
    event = fixture("payment_intent.succeeded")
    assert post(client, event, secret=SECRETS[1]).status_code == 200
    other = fixture("checkout.session.completed")
    assert post(client, other, secret=SECRETS[0]).status_code == 200


def test_other_event_types_are_ignored_but_audited(client, market):
    response = post(client, fixture("customer.created"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "event_id": "evt_1QfixtureCustomer01", "type": "customer.created"}
    assert Transaction.objects.filter(chaincode="retail-seller").count() == 0
    assert WebhookEvent.objects.get().status == "ignored"


def test_unpaid_checkout_session_waits(client, market):
    event = fixture("checkout.session.completed")
    event["data"]["object"]["payment_status"] = "unpaid"
    response = post(client, event)
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert market.household_balance() == 0
    assert Payment.objects.get().state == "pending"


@pytest.mark.parametrize("case", ["wrong-secret", "altered", "stale", "missing", "garbled"])
def test_bad_signatures_are_refused(client, market, case):
    event = fixture("checkout.session.completed")
    payload = json.dumps(event).encode()
    header = stripe_header(payload, SECRETS[0])
    if case == "wrong-secret":
        header = stripe_header(payload, "whsec_guess")
    elif case == "altered":
        payload = payload.replace(b"2000", b"9000")
    elif case == "stale":
        header = stripe_header(payload, SECRETS[0], t=int(time.time()) - 301)
    elif case == "missing":
        header = ""
    elif case == "garbled":
        header = "v1=abc"
    response = post(client, payload, header=header)
    assert response.status_code == 401, response.content
    assert response.json()["status"] == "rejected"
    assert market.household_balance() == 0
    audit = WebhookEvent.objects.get()
    assert (audit.status, audit.http_status, audit.organisation) == ("rejected", 401, None)


@pytest.mark.parametrize("mutate, fragment", [
    (lambda o: o["metadata"].pop("payer"), "metadata lacks payer"),
    (lambda o: o["metadata"].update(bank="nobank"), "unknown bank 'nobank'"),
    (lambda o: o["metadata"].update(payer="utility"), "needs a household as payer"),
    (lambda o: o.update(amount_received=10.5), "'amount' must be an integer"),
    (lambda o: o.update(currency="xx"), "three-letter"),
])
def test_bad_payments_are_refused_with_a_message(client, market, mutate, fragment):
    event = fixture("payment_intent.succeeded")
    mutate(event["data"]["object"])
    response = post(client, event)
    assert response.status_code == 400, response.content
    assert fragment in response.json()["error"]
    assert market.household_balance() == 0
    assert WebhookEvent.objects.get().http_status == 400


def test_authentic_but_malformed_json_is_400(client, market):
    response = post(client, b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_no_endpoint_secret_configured_is_503(client, market, settings):
    settings.STRIPE_WEBHOOK_SECRETS = []
    response = post(client, fixture("payment_intent.succeeded"))
    assert response.status_code == 503
    assert WebhookEvent.objects.get().http_status == 503
