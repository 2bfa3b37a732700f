"""The audit row of a delivery: exactly one per delivery, complete on every path, and written by
payments itself in the database transaction of the ledger effect, so that the sale and its row
commit or roll back together."""

from __future__ import annotations

import json

import pytest

from ledger.models import Transaction
from payments import deliveries, services
from payments.models import Payment, ProcessedEvent, WebhookEvent
from payments.testing import build_market, post_bank_webhook


@pytest.fixture
def market(db, settings):
    return build_market()


def test_the_applied_audit_row_is_complete(market):
    raw, header = market.signed(market.notification(id="audited", amount=1001))
    response = post_bank_webhook(raw, header)
    assert response.status_code == 200, response.content
    tx = Transaction.objects.get(tx_hash=response.json()["tx_hash"])
    event = WebhookEvent.objects.get()
    assert (event.provider, event.organisation, event.event_id, event.event_type) == (
        "bank", market.bank, "audited", "retail-seller")
    assert (event.payer, event.payee, event.amount, event.currency) == ("hh-alice", "utility", 1001, "INR")
    assert (event.status, event.reason, event.http_status, event.tx_hash) == ("applied", "", 200, tx.tx_hash)
    assert event.body == raw.decode() and event.signature_header == header
    assert event.result == tx.result and event.result["wh"] == response.json()["wh"]
    assert event.received_at is not None


def test_the_outcome_describes_the_row_written(market):
    raw, header = market.signed(market.notification(id="outcome"))
    outcome = services.bank_webhook_receive(raw_body=raw, signature_header=header)
    row = WebhookEvent.objects.get()
    assert outcome.event.pk == row.pk and outcome.applied
    assert (outcome.event.status, outcome.event.tx_hash, outcome.event.result) == (row.status, row.tx_hash, row.result)


def test_every_delivery_leaves_exactly_one_audit_row(market):
    deliveries_sent = [
        (market.deliver(market.notification(id="once")), "applied", 200),
        (market.deliver(market.notification(id="once")), "duplicate", 200),
        (market.deliver(market.notification(id="too-early", created="2025-06-01T00:00:00+00:00")), "rejected", 422),
        (market.deliver(market.notification(id="too-early", created="2025-06-01T00:00:00+00:00")), "duplicate", 422),
        (market.deliver(b'{"id": '), "rejected", 400),
        (market.deliver(market.notification(id="nobody", payer="hh-nobody")), "rejected", 400),
    ]
    for response, _, http_status in deliveries_sent:
        assert response.status_code == http_status, response.content
    assert list(WebhookEvent.objects.order_by("id").values_list("status", "http_status")) == [
        (status, http_status) for _, status, http_status in deliveries_sent]
    # One ledger transaction per claimed event: the applied sale and the recorded refusal.
    assert Transaction.objects.filter(idempotency_key__startswith="payment:bank:testbank:").count() == 2
    assert ProcessedEvent.objects.count() == 2


@pytest.mark.parametrize("outcome", ["applied", "rejected"])
def test_a_failure_after_the_ledger_effect_leaves_neither_effect_nor_row(market, monkeypatch, outcome):
    """The audit row is written after ``ledger.invoke`` returns, in the same transaction: if
    writing it fails, the sale (or the ledger's recorded refusal) and the claim roll back with
    it, and the delivery is audited once, as the internal error it was; redelivered, it applies."""
    notice = market.notification(id="fragile") if outcome == "applied" else market.notification(
        id="fragile", created="2025-06-01T00:00:00+00:00")
    raw, header = market.signed(notice)
    before = (market.household_balance(), market.utility_stock())
    original = deliveries._audit_insert

    def failing(values, result, settlement=None):
        if values["tx_hash"] is not None:  # the row of the ledger's outcome, not the 500 one
            raise RuntimeError("the audit row could not be written")
        return original(values, result, settlement)

    monkeypatch.setattr(deliveries, "_audit_insert", failing)
    with pytest.raises(RuntimeError):
        services.bank_webhook_receive(raw_body=raw, signature_header=header)
    assert (market.household_balance(), market.utility_stock()) == before
    assert not Transaction.objects.filter(idempotency_key="payment:bank:testbank:fragile").exists()
    assert not ProcessedEvent.objects.exists() and not Payment.objects.exists()
    assert list(WebhookEvent.objects.values_list("event_id", "status", "http_status", "payment")) == [
        ("fragile", "rejected", 500, None)]

    monkeypatch.setattr(deliveries, "_audit_insert", original)
    again = services.bank_webhook_receive(raw_body=raw, signature_header=header)
    assert again.audit["status"] == outcome and again.http_status == (200 if outcome == "applied" else 422)
    tx = Transaction.objects.get(idempotency_key="payment:bank:testbank:fragile")
    assert WebhookEvent.objects.get(tx_hash__isnull=False).tx_hash == tx.tx_hash
    assert ProcessedEvent.objects.count() == 1
    assert (market.household_balance() > before[0]) is (outcome == "applied")


def test_a_sale_that_takes_the_careful_path_is_audited_once(market, monkeypatch):
    """Whatever path the ledger takes to commit the sale, exactly one audit row."""
    from ledger import services as ledger

    monkeypatch.setattr(ledger, "_commit_transfer", lambda execution: None)  # forces the step-by-step path
    response = market.deliver(market.notification(id="careful"))
    assert response.status_code == 200 and response.json()["status"] == "applied"
    event = WebhookEvent.objects.get()
    assert (event.status, event.tx_hash) == ("applied", response.json()["tx_hash"])
    assert json.loads(json.dumps(event.result))["wh"] == response.json()["wh"]
