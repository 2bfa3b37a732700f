"""``payment_credit``: the same claim and ledger key as a webhook, so a payment reported by a
delivery and by a statement line (either first, or both at once) is credited once; another
report with different facts is a conflict and moves nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from ledger.chaincodes.energy_math import fiat_to_wh
from ledger.models import Transaction
from payments.models import Payment, WebhookEvent
from payments.selectors import payments_by_id, payments_credited
from payments.services import payment_credit
from payments.testing import RETAIL_PRICE, build_market

PAID = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def credit(market, payment_id: str = "E2E-1", **overrides):
    args = {"provider": "bank", "scope": market.bank.msp_id, "payment_id": payment_id, "chaincode": "retail-seller",
            "payer": market.household.msp_id, "payee": market.utility.msp_id, "amount": 2000, "currency": "INR",
            "created": PAID, "origin": "statement:test"}
    args.update(overrides)
    return payment_credit(**args)


@pytest.fixture
def market(db):
    return build_market()


def test_a_statement_line_credits_once_and_a_later_notification_is_a_duplicate(market):
    first = credit(market)
    wh = fiat_to_wh(amount=2000, credit=0, price_per_kwh=RETAIL_PRICE).wh
    assert (first.status, first.wh) == ("applied", wh) and market.household_balance() == wh
    assert credit(market).status == "duplicate"
    late = market.deliver(market.notification(id="evt-late", end_to_end_id="E2E-1", amount=2000))
    assert late.json()["status"] == "duplicate" and late.json()["tx_hash"] == first.tx_hash
    assert market.household_balance() == wh
    payment = Payment.objects.get()
    assert payment.credit_tx_hash == first.tx_hash and WebhookEvent.objects.get().payment == payment
    assert list(payments_credited(provider="bank", scope="testbank", since=PAID, until=datetime.now(UTC))) == [payment]
    assert payments_by_id(provider="bank", scope="testbank", payment_ids=["E2E-1", "nope"]) == {"E2E-1": payment}


def test_a_notification_first_then_the_statement_line_is_a_duplicate(market):
    market.deliver(market.notification(id="evt-1", end_to_end_id="E2E-1", amount=2000))
    again = credit(market)
    assert again.status == "duplicate" and again.tx_hash == Payment.objects.get().credit_tx_hash


@pytest.mark.parametrize("field, value", [("amount", 2001), ("payer", "sunfarm"), ("currency", "EUR")])
def test_a_report_with_other_facts_is_a_conflict_and_moves_nothing(market, field, value):
    credit(market)
    before = (market.household_balance(), Transaction.objects.count())
    clash = credit(market, **{field: value})
    assert clash.status == "conflict" and field in clash.reason
    assert (market.household_balance(), Transaction.objects.count()) == before


def test_bad_reports_are_rejected_with_a_reason(market):
    assert credit(market, amount=0).status == "rejected"
    assert "unknown bank" in credit(market, scope="nobank").reason
    assert "needs a household" in credit(market, payer=market.utility.msp_id).reason
    assert not Payment.objects.exists()


def test_a_ledger_refusal_marks_the_payment_failed_and_replays(market):
    refused = credit(market, created=datetime(2025, 1, 1, tzinfo=UTC))  # before any price
    assert refused.status == "rejected" and "no retail price" in refused.reason
    payment = Payment.objects.get()
    assert (payment.state, payment.credit_tx_hash) == ("failed", refused.tx_hash)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_webhook_and_a_statement_racing_credit_once():
    market = build_market()
    barrier = threading.Barrier(6)
    answers: list[str] = []

    def statement() -> None:
        try:
            barrier.wait()
            answers.append(credit(market).status)
        finally:
            connection.close()

    def webhook(n: int) -> None:
        try:
            barrier.wait()
            body = market.notification(id=f"evt-race-{n}", end_to_end_id="E2E-1", amount=2000)
            answers.append(market.deliver(body).json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=statement) for _ in range(3)]
    threads += [threading.Thread(target=webhook, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers).count("applied") == 1 and sorted(answers).count("duplicate") == 5, answers
    assert Transaction.objects.filter(chaincode="retail-seller").count() == 1
    assert market.household_balance() == fiat_to_wh(amount=2000, credit=0, price_per_kwh=RETAIL_PRICE).wh
