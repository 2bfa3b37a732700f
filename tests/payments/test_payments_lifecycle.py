"""A Stripe payment's whole life, with Stripe-shaped, Stripe-signed events: one payment reported
by two event types in either order credits once; delayed payments wait, then credit or fail;
refunds (partial, cumulative, redelivered, out of order) and lost disputes reverse through
retail-seller.reverse; coins stay conserved and the chain verifies after each."""

from __future__ import annotations

import pytest

from accounts.services import invoke_as
from ledger.chaincodes.energy import DEBT, debt_account, household_account
from ledger.chaincodes.energy_math import fiat_to_wh, refunded_wh
from ledger.models import Identity, Transaction
from payments.models import Payment, PaymentReversal, WebhookEvent
from payments.selectors import energy_debt_of
from payments.testing import RETAIL_PRICE, balance, build_market

from .stripe_kit import SECRETS, assert_conserved_and_verified, event_for, post

PI = "pi_3QlifecycleTest01"


@pytest.fixture
def market(db, settings):
    settings.STRIPE_WEBHOOK_SECRETS = SECRETS
    return build_market(bank_msp="stripebank")


def session_completed(n: int = 1, *, amount: int = 2000, **fields) -> dict:
    return event_for("checkout.session.completed", event_id=f"evt_cs_{n}", payment_intent=PI,
                     amount_total=amount, **fields)


def intent_succeeded(n: int = 1, *, amount: int = 2000, **fields) -> dict:
    return event_for("payment_intent.succeeded", event_id=f"evt_pi_{n}", payment_intent=PI,
                     amount=amount, amount_received=amount, **fields)


def refunded(total: int, n: int = 1) -> dict:
    return event_for("charge.refunded", event_id=f"evt_rf_{total}_{n}", payment_intent=PI, amount=2000,
                     amount_refunded=total, refunded=total == 2000)


def dispute(event_type: str, status: str, *, amount: int = 2000) -> dict:
    return event_for(event_type, event_id=f"evt_{event_type}_{status}", payment_intent=PI, status=status,
                     amount=amount)


WH = fiat_to_wh(amount=2000, credit=0, price_per_kwh=RETAIL_PRICE).wh


@pytest.mark.parametrize("order", [("session", "intent"), ("intent", "session")])
def test_one_payment_reported_by_two_event_types_credits_once(client, market, order):
    events = {"session": session_completed(), "intent": intent_succeeded()}
    first, second = (post(client, events[name]) for name in order)
    assert first.status_code == 200 and first.json()["status"] == "applied" and first.json()["wh"] == WH
    assert second.status_code == 200, second.content
    assert second.json()["status"] == "duplicate" and second.json()["tx_hash"] == first.json()["tx_hash"]
    assert market.household_balance() == WH
    payment = Payment.objects.get()
    assert (payment.payment_id, payment.state, payment.credit_tx_hash) == (PI, "credited", first.json()["tx_hash"])
    assert Transaction.objects.filter(chaincode="retail-seller").count() == 1
    # Every delivery's audit row names the payment it matched.
    assert list(WebhookEvent.objects.order_by("id").values_list("status", "payment")) == [
        ("applied", payment.pk), ("duplicate", payment.pk)]
    # Redeliveries of either event change nothing either.
    for name in order:
        assert post(client, events[name]).json()["status"] == "duplicate"
    assert market.household_balance() == WH
    assert_conserved_and_verified()


def test_an_intent_without_metadata_waits_for_its_checkout_session(client, market):
    bare = intent_succeeded(metadata={})
    assert post(client, bare).json()["status"] == "ignored"
    assert post(client, session_completed()).json()["status"] == "applied"
    assert market.household_balance() == WH


def test_a_payment_reported_again_with_another_amount_is_a_conflict(client, market):
    post(client, session_completed())
    response = post(client, intent_succeeded(amount=2500))
    assert response.status_code == 409 and "amount 2000 (now 2500)" in response.json()["error"]
    assert market.household_balance() == WH
    assert WebhookEvent.objects.order_by("-id").first().payment == Payment.objects.get()


@pytest.mark.parametrize("order", ["wait-first", "success-first"])
def test_a_delayed_payment_waits_then_credits(client, market, order):
    unpaid = session_completed(payment_status="unpaid")
    succeeded = event_for("checkout.session.async_payment_succeeded", event_id="evt_async_ok", payment_intent=PI)
    sequence = [unpaid, succeeded] if order == "wait-first" else [succeeded, unpaid]
    answers = [post(client, e).json()["status"] for e in sequence]
    assert answers == (["pending", "applied"] if order == "wait-first" else ["applied", "credited"])
    assert market.household_balance() == WH
    assert Payment.objects.get().state == "credited"
    assert_conserved_and_verified()


def test_a_delayed_payment_that_fails_moves_nothing(client, market):
    assert post(client, session_completed(payment_status="unpaid")).json()["status"] == "pending"
    failed = event_for("checkout.session.async_payment_failed", event_id="evt_async_no", payment_intent=PI)
    assert post(client, failed).json()["status"] == "failed"
    assert market.household_balance() == 0
    assert Payment.objects.get().state == "failed"
    assert not Transaction.objects.filter(chaincode="retail-seller").exists()


def test_a_declined_attempt_then_a_successful_one_credits_once(client, market):
    declined = event_for("payment_intent.payment_failed", event_id="evt_pi_declined", payment_intent=PI, amount=2000)
    assert post(client, declined).json()["status"] == "failed"
    assert Payment.objects.get().reason == "Your card has insufficient funds."
    assert post(client, intent_succeeded()).json()["status"] == "applied"
    # A late copy of the failure leaves the credited payment alone.
    declined["id"] = "evt_pi_declined_late"
    assert post(client, declined).json()["status"] == "credited"
    assert Payment.objects.get().state == "credited" and market.household_balance() == WH


def test_partial_then_full_refunds_take_back_proportionally(client, market):
    post(client, session_completed())
    first = post(client, refunded(500))
    assert first.status_code == 200 and first.json()["status"] == "applied", first.content
    back = refunded_wh(refunded=500, sale_wh=WH, price_per_kwh=RETAIL_PRICE)
    assert first.json()["wh"] == back and market.household_balance() == WH - back
    assert_conserved_and_verified()
    # A redelivery, and an older cumulative step arriving late, change nothing.
    assert post(client, refunded(500)).json()["status"] == "duplicate"
    assert post(client, refunded(300)).json()["status"] == "duplicate"
    full = post(client, refunded(2000))
    assert full.json()["status"] == "applied" and full.json()["wh"] == WH - back
    assert market.household_balance() == 0
    payment = Payment.objects.get()
    assert payment.amount_reversed == 2000
    assert list(payment.reversals.values_list("reversal_id", "amount")) == [
        ("ch_3QfixtureIntent:refunded:500", 500), ("ch_3QfixtureIntent:refunded:2000", 1500)]
    assert list(WebhookEvent.objects.filter(event_type="charge.refunded").values_list("payment", flat=True)) == [
        payment.pk] * 4
    assert_conserved_and_verified()


def test_a_refund_before_the_credit_is_refused_for_retry_then_applies(client, market):
    early = post(client, refunded(2000))
    assert early.status_code == 409 and "not credited yet" in early.json()["error"]
    post(client, intent_succeeded())
    assert post(client, refunded(2000)).json()["status"] == "applied"
    assert market.household_balance() == 0
    assert_conserved_and_verified()


def test_a_won_dispute_moves_nothing(client, market):
    post(client, intent_succeeded())
    assert post(client, dispute("charge.dispute.created", "needs_response")).json()["status"] == "dispute_open"
    assert Payment.objects.get().disputed == "open"
    assert post(client, dispute("charge.dispute.closed", "won")).json()["status"] == "dispute_won"
    assert Payment.objects.get().disputed == "won" and market.household_balance() == WH
    assert not PaymentReversal.objects.exists()
    assert_conserved_and_verified()


def test_a_lost_dispute_reverses_and_what_was_spent_becomes_debt_paid_from_the_next_purchase(client, market):
    post(client, intent_succeeded())
    post(client, dispute("charge.dispute.created", "needs_response"))
    # The household burns 1,000 Wh before the dispute is lost.
    identity = Identity.objects.filter(organisation=market.household).first()
    spent = invoke_as(identity=identity, chaincode="token", function="burn",
                      args={"from": household_account(market.household.msp_id), "asset": "k", "amount": 1000},
                      idempotency_key="spend-1")
    assert spent.ok, spent.reason
    lost = post(client, dispute("charge.dispute.closed", "lost"))
    assert lost.status_code == 200 and lost.json()["status"] == "applied", lost.content
    assert (lost.json()["taken_back"], lost.json()["owed"]) == (WH - 1000, 1000)
    assert market.household_balance() == 0
    assert balance(debt_account(market.household.msp_id, market.utility.msp_id), DEBT) == 1000
    assert energy_debt_of(market.household.msp_id) == 1000
    assert Payment.objects.get().disputed == "lost"
    assert_conserved_and_verified()
    # The wallet shows the debt (and not as a fiat credit).
    client.force_login(market.resident)
    page = client.get("/wallet/").content.decode()
    assert 'owes Utility <span class="debt-kwh">1.000</span> kWh' in page and "What you owe" not in page  # not as money
    receipt = client.get(f"/wallet/receipts/{lost.json()['tx_hash']}/")
    assert receipt.status_code == 200 and '<dd class="debt-kwh">1.000 kWh</dd>' in receipt.content.decode()
    # The next purchase pays the debt first; the rest is delivered.
    second = intent_succeeded(n=2, amount=1200)
    second["data"]["object"]["id"] = "pi_3QlifecycleTest02"
    bought = post(client, second).json()
    assert bought["status"] == "applied"
    wh = fiat_to_wh(amount=1200, credit=0, price_per_kwh=RETAIL_PRICE).wh
    assert market.household_balance() == wh - 1000 and energy_debt_of(market.household.msp_id) == 0
    assert bought["wh"] == wh and "debt-kwh" not in client.get("/wallet/").content.decode()
    assert_conserved_and_verified()


def test_refunds_beyond_the_payment_are_refused_and_move_nothing(client, market):
    post(client, intent_succeeded())
    post(client, refunded(2000))
    lost = post(client, dispute("charge.dispute.closed", "lost", amount=1))
    assert lost.status_code == 422 and "exceed" in lost.json()["error"]
    assert Payment.objects.get().amount_reversed == 2000
    assert_conserved_and_verified()
