"""The audit row of an applied delivery: complete on every path, and on PostgreSQL written by
the statement that commits the sale (ledger.services.Companion) instead of one of its own."""

from __future__ import annotations

import json

import pytest

from ledger.models import Transaction
from payments import services
from payments.models import WebhookEvent
from payments.testing import build_market, post_bank_webhook


@pytest.fixture
def market(db, settings):
    return build_market()


@pytest.fixture
def statements(monkeypatch):
    """The SQL the payments service runs itself (not the ledger's)."""
    seen: list[str] = []
    for name in ("_query_one", "_query_all"):
        original = getattr(services, name)

        def spy(sql, params, original=original):
            seen.append(sql)
            return original(sql, params)

        monkeypatch.setattr(services, name, spy)
    return seen


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


@pytest.mark.postgres
def test_on_postgresql_the_sale_writes_its_audit_row(market, statements):
    first = market.deliver(market.notification(id="one-statement"))
    assert first.status_code == 200 and first.json()["status"] == "applied"
    assert not any(sql.startswith("INSERT INTO payments_webhookevent") for sql in statements)
    assert WebhookEvent.objects.get().tx_hash == first.json()["tx_hash"]
    # A redelivery and a refusal write their own rows.
    statements.clear()
    assert market.deliver(market.notification(id="one-statement")).json()["status"] == "duplicate"
    assert market.deliver(market.notification(id="too-early", created="2025-06-01T00:00:00+00:00")).status_code == 422
    assert sum(sql.startswith("INSERT INTO payments_webhookevent") for sql in statements) == 2
    assert list(WebhookEvent.objects.order_by("id").values_list("status", "http_status")) == [
        ("applied", 200), ("duplicate", 200), ("rejected", 422)]


def test_a_sale_that_takes_the_careful_path_is_audited_once(market, monkeypatch):
    """Whatever path the ledger takes, exactly one audit row (the companion is not written
    when the one-statement path is not taken)."""
    from ledger import services as ledger

    monkeypatch.setattr(ledger, "_covered", lambda ctx: False)  # forces the step-by-step path
    response = market.deliver(market.notification(id="careful"))
    assert response.status_code == 200 and response.json()["status"] == "applied"
    event = WebhookEvent.objects.get()
    assert (event.status, event.tx_hash) == ("applied", response.json()["tx_hash"])
    assert json.loads(json.dumps(event.result))["wh"] == response.json()["wh"]
