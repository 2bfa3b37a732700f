"""Reconciliation against the ledger: every outcome, missing lines applied exactly once (even
when the webhook comes later), re-running changes nothing, refused statements move nothing."""

from __future__ import annotations

import io

import pytest

from ledger.models import Transaction
from payments.models import Payment, ReconciliationLine, ReconciliationRun
from payments.reconciliation.models import Outcome, RunState
from payments.reconciliation.services import StatementRefused, reconciliation_run_create, reconciliation_run_execute
from payments.reconciliation.testing import Line, camt053, stripe_report
from payments.testing import build_market


@pytest.fixture
def market(db, settings, tmp_path):
    settings.GRIDCOIN_STATEMENTS_DIR = tmp_path / "statements"
    return build_market()


def credit_by_webhook(market, e2e: str, amount: int = 1000) -> str:
    response = market.deliver(market.notification(id=f"evt-{e2e}", end_to_end_id=e2e, amount=amount))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    return response.json()["tx_hash"]


def run_statement(market, data: bytes, *, source: str = "bank", rerun: bool = False) -> ReconciliationRun:
    scope = market.bank.msp_id if source == "bank" else ""
    made = reconciliation_run_create(source=source, scope=scope, stream=io.BytesIO(data), file_name="s", rerun=rerun)
    return reconciliation_run_execute(run_id=made.run.pk)


def outcomes(run: ReconciliationRun) -> dict[str, str]:
    return {line.reference: line.outcome for line in run.lines.exclude(kind="other")}


def world(market) -> tuple:
    return (market.household_balance(), market.utility_stock(), market.credit(), Transaction.objects.count(),
            Payment.objects.count())


def bank_line(market, reference: str, amount: int = 1000, **kw) -> Line:
    return Line(reference, amount, kw.pop("payer", market.household.msp_id), market.utility.msp_id, **kw)


def test_every_outcome_of_a_bank_statement(market):
    matched_tx = credit_by_webhook(market, "E2E-MATCHED")
    credit_by_webhook(market, "E2E-WRONG-AMOUNT")
    unlisted_tx = credit_by_webhook(market, "E2E-UNLISTED")
    market.add_household("hh-other")
    credit_by_webhook(market, "E2E-WRONG-PAYER")
    before = market.household_balance()
    statement = camt053([
        bank_line(market, "E2E-MATCHED"),
        bank_line(market, "E2E-WRONG-AMOUNT", 2000),
        bank_line(market, "E2E-WRONG-PAYER", payer="hh-other"),
        bank_line(market, "E2E-MISSING", 1600),
        bank_line(market, "E2E-NOBODY", payer="hh-nobody"),
        bank_line(market, "E2E-RETURNED", debit=True),
    ])
    run = run_statement(market, statement)

    assert run.state == RunState.DONE and run.statement_id == "STMT-1"
    assert outcomes(run) == {"E2E-MATCHED": "matched", "E2E-WRONG-AMOUNT": "mismatch", "E2E-WRONG-PAYER": "mismatch",
                             "E2E-MISSING": "missing", "E2E-NOBODY": "rejected", "E2E-UNLISTED": "unlisted"}
    assert run.counts == {"matched": 1, "missing": 1, "mismatch": 2, "unlisted": 1, "rejected": 1, "ignored": 1}
    lines = {line.reference: line for line in run.lines.all()}
    assert lines["E2E-MATCHED"].tx_hash == matched_tx and lines["E2E-UNLISTED"].tx_hash == unlisted_tx
    assert "1000 INR on the ledger, 2000 INR on the statement" in lines["E2E-WRONG-AMOUNT"].reason
    assert "payer" in lines["E2E-WRONG-PAYER"].reason and "unknown payer" in lines["E2E-NOBODY"].reason
    assert lines["E2E-RETURNED"].outcome == Outcome.IGNORED and lines["E2E-UNLISTED"].line_no is None

    # The missing payment was credited through the payment's own claim and key, as the webhook would have.
    missing = lines["E2E-MISSING"]
    payment = Payment.objects.get(provider="bank", scope=market.bank.msp_id, payment_id="E2E-MISSING")
    assert payment.state == "credited" and missing.payment_id == payment.pk and missing.tx_hash == payment.credit_tx_hash
    tx = Transaction.objects.get(tx_hash=missing.tx_hash)
    assert tx.idempotency_key == "payment:bank:testbank:E2E-MISSING" and tx.status == "valid"
    assert market.household_balance() == before + 2000  # 16.00 INR at 8.00 INR per kWh
    # Mismatches moved nothing: the ledger still holds what the webhooks said.
    assert Payment.objects.get(payment_id="E2E-WRONG-AMOUNT").amount == 1000


def test_rerunning_a_statement_changes_nothing(market):
    credit_by_webhook(market, "E2E-1")
    statement = camt053([bank_line(market, "E2E-1"), bank_line(market, "E2E-2", 2400), bank_line(market, "E2E-3")])
    first = run_statement(market, statement)
    assert first.counts["missing"] == 2
    after_first = world(market)

    again = reconciliation_run_create(source="bank", scope=market.bank.msp_id, stream=io.BytesIO(statement))
    assert again.created is False and again.run.pk == first.pk  # the same file finds its run
    assert reconciliation_run_execute(run_id=first.pk).counts == first.counts  # a finished run stays finished

    rerun = run_statement(market, statement, rerun=True)
    assert rerun.pk != first.pk and rerun.rerun_of_id == first.pk
    assert rerun.counts["matched"] == 3 and rerun.counts["missing"] == 0
    assert world(market) == after_first


def test_a_missing_line_is_applied_once_even_when_its_webhook_comes_later(market):
    run = run_statement(market, camt053([bank_line(market, "E2E-LATE", 2400)]))
    assert run.counts["missing"] == 1
    after = world(market)

    late = market.deliver(market.notification(id="evt-late", end_to_end_id="E2E-LATE", amount=2400))
    assert late.status_code == 200 and late.json()["status"] == "duplicate", late.content
    assert world(market) == after
    assert Transaction.objects.filter(idempotency_key="payment:bank:testbank:E2E-LATE").count() == 1


def test_a_webhook_between_matching_and_applying_is_not_applied_twice(market, monkeypatch):
    from payments.reconciliation import services

    real = services._apply_missing

    def webhook_first(run, report):
        credit_by_webhook(market, "E2E-RACE", 2400)
        real(run, report)

    monkeypatch.setattr(services, "_apply_missing", webhook_first)
    run = run_statement(market, camt053([bank_line(market, "E2E-RACE", 2400)]))
    assert outcomes(run) == {"E2E-RACE": "matched"}
    assert Transaction.objects.filter(idempotency_key="payment:bank:testbank:E2E-RACE").count() == 1


def test_a_statement_listing_a_payment_twice_flags_the_second(market):
    run = run_statement(market, camt053([bank_line(market, "E2E-D", 800), bank_line(market, "E2E-D", 800)]))
    lines = list(run.lines.order_by("line_no"))
    assert [line.outcome for line in lines] == ["missing", "mismatch"]
    assert "more than once (first on line 1)" in lines[1].reason
    assert Transaction.objects.filter(idempotency_key="payment:bank:testbank:E2E-D").count() == 1


@pytest.mark.parametrize("data", [
    b"<Document",
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><d>&b;</d>',
    camt053([Line("E2E-1", 1000, "hh-alice", "utility")]).replace(b"10.00", b"10.001"),
])
def test_a_refused_statement_fails_the_run_and_moves_nothing(market, data):
    before = world(market)
    run = run_statement(market, data)
    assert run.state == RunState.FAILED and run.error
    assert not run.lines.exists() and run.counts == {}
    assert world(market) == before


def test_a_statement_over_the_size_cap_is_refused_at_upload(market, settings):
    settings.GRIDCOIN_STATEMENT_MAX_BYTES = 100
    with pytest.raises(StatementRefused, match="larger than 100 bytes"):
        reconciliation_run_create(source="bank", scope=market.bank.msp_id, stream=io.BytesIO(b"x" * 1000))
    assert not ReconciliationRun.objects.exists()
    assert [p.name for p in (settings.GRIDCOIN_STATEMENTS_DIR / "uploads").iterdir()] == []


def test_unknown_sources_and_banks_are_refused(market):
    with pytest.raises(StatementRefused, match="unknown source"):
        reconciliation_run_create(source="paypal", stream=io.BytesIO(b""))
    with pytest.raises(StatementRefused, match="bank's organisation id"):
        reconciliation_run_create(source="bank", scope=market.utility.msp_id, stream=io.BytesIO(b""))


def test_a_stripe_report_applies_missing_charges_and_ignores_the_rest(market):
    charge = Line("pi_MISSING", 1600, market.household.msp_id, market.utility.msp_id, booked="2026-03-01T12:00:00Z",
                  chaincode="retail-seller", processor=market.bank.msp_id)
    refund = Line("pi_MISSING", 400, market.household.msp_id, market.utility.msp_id, category="refund",
                  booked="2026-03-01T13:00:00Z")
    before = market.household_balance()
    run = run_statement(market, stripe_report([charge, refund]), source="stripe")
    assert run.counts["missing"] == 1 and run.counts["ignored"] == 1
    payment = Payment.objects.get(provider="stripe", scope="", payment_id="pi_MISSING")
    assert payment.state == "credited" and market.household_balance() == before + 2000
    again = run_statement(market, stripe_report([charge, refund]), source="stripe", rerun=True)
    assert again.counts["matched"] == 1 and market.household_balance() == before + 2000


def test_lines_are_stored_with_their_run(market):
    run = run_statement(market, camt053([bank_line(market, "E2E-S", 1000)]))
    line = ReconciliationLine.objects.get(run=run, reference="E2E-S")
    assert (line.line_no, line.amount, line.currency, line.payer, line.source_ref) == (
        1, 1000, "INR", market.household.msp_id, "REF-1")


def test_a_run_taken_over_while_loading_is_sorted_only_by_the_worker_that_holds_it(market, monkeypatch):
    from payments.reconciliation import services

    credit_by_webhook(market, "E2E-HELD")
    data = camt053([bank_line(market, "E2E-HELD"), bank_line(market, "E2E-GAP", 1500)])
    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id, stream=io.BytesIO(data), file_name="s")
    real = services.lines_stage

    def stage_then_lose_the_claim(lines, **kwargs):
        staged = real(lines, **kwargs)
        ReconciliationRun.objects.filter(pk=made.run.pk).update(task_id="other-worker")  # taken over meanwhile
        return staged

    monkeypatch.setattr(services, "lines_stage", stage_then_lose_the_claim)
    before = world(market)
    lost = reconciliation_run_execute(run_id=made.run.pk, token="first-worker")
    assert lost.state == RunState.LOADING and not lost.lines.exists() and world(market) == before

    monkeypatch.undo()
    run = reconciliation_run_execute(run_id=made.run.pk, token="other-worker")
    assert run.state == RunState.DONE and outcomes(run) == {"E2E-HELD": "matched", "E2E-GAP": "missing"}
    assert run.lines.count() == 2 and Payment.objects.filter(payment_id="E2E-GAP", state="credited").count() == 1


def test_a_run_left_in_matching_by_an_earlier_version_is_read_again(market):
    data = camt053([bank_line(market, "E2E-OLD", 1200)])
    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id, stream=io.BytesIO(data), file_name="s")
    ReconciliationRun.objects.filter(pk=made.run.pk).update(state="matching", task_id="resumed")
    ReconciliationLine.objects.create(run=made.run, line_no=1, kind="payment", reference="E2E-OLD", amount=1200,
                                      currency="INR", outcome=Outcome.PENDING)  # stored, never sorted
    run = reconciliation_run_execute(run_id=made.run.pk, token="resumed")
    assert run.state == RunState.DONE and outcomes(run) == {"E2E-OLD": "missing"} and run.lines.count() == 1
    assert Payment.objects.get(payment_id="E2E-OLD").state == "credited"
