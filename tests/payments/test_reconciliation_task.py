"""The ``reconcile_payments`` task (progress on the run and through celery-progress), the inbox
task beat runs, the beat schedule, and the ``reconcile_payments`` command."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from payments.models import Payment, ReconciliationRun
from payments.reconciliation.progress import RunProgressRecorder
from payments.reconciliation.schedule import INBOX_TASK, reconciliation_beat_schedule
from payments.reconciliation.services import reconciliation_run_create
from payments.reconciliation.testing import Line, camt053
from payments.tasks import reconcile_payments, reconcile_statements_inbox
from payments.testing import build_market


@pytest.fixture
def market(db, settings, tmp_path):
    settings.GRIDCOIN_STATEMENTS_DIR = tmp_path / "statements"
    return build_market()


def statement(market, *refs: str) -> bytes:
    return camt053([Line(ref, 1000, market.household.msp_id, market.utility.msp_id) for ref in refs],
                   statement_id="STMT-T")


def test_the_task_reconciles_a_run_and_reports_progress(market):
    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id,
                                     stream=io.BytesIO(statement(market, "E2E-1", "E2E-2")))
    seen: list[tuple[int, int, str]] = []
    from payments.reconciliation import progress as progress_module

    real = progress_module.reconciliation_run_progress

    def record(**kw):
        seen.append((kw["current"], kw["total"], kw["label"]))
        real(**kw)

    with mock.patch.object(progress_module, "reconciliation_run_progress", side_effect=record):
        result = reconcile_payments.apply(args=[made.run.pk]).get()
    assert result["missing"] == 2
    phases = [s[2].split(":")[0] for s in seen]
    assert [p for n, p in enumerate(phases) if n == 0 or phases[n - 1] != p] == [
        "reading the statement", "matching against the ledger", "applying payments missing on the ledger", "done"]
    assert seen[-2][2] == "applying payments missing on the ledger: 2 of 2"
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[-1][:2] == (1000, 1000)
    run = ReconciliationRun.objects.get(pk=made.run.pk)
    assert (run.state, run.progress_current, run.progress_total, run.percent) == ("done", 1000, 1000, 100)
    # Delivered twice (Celery may): nothing more happens.
    assert reconcile_payments.apply(args=[made.run.pk]).get() == result
    assert Payment.objects.filter(state="credited").count() == 2


def test_a_task_for_a_gone_run_logs_and_returns(db):
    assert reconcile_payments.apply(args=[987654]).get() == {}


def test_progress_goes_to_celery_progress_when_a_worker_runs_the_task(db):
    task = mock.Mock()
    task.request.is_eager = False
    recorder = RunProgressRecorder(run_id=0, task=task)
    recorder.set_progress(250, 1000, "reading the statement: 10 lines")
    task.update_state.assert_called_once()
    state = task.update_state.call_args.kwargs
    assert state["state"] == "PROGRESS"
    assert state["meta"]["percent"] == 25.0 and state["meta"]["description"] == "reading the statement: 10 lines"


@pytest.fixture
def eager():
    """Tasks queued with ``delay`` run at once (as in the embedded default), not on a broker."""
    from gridcoin.celery import app

    before = app.conf.task_always_eager
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)  # the app reads Django's CELERY_ settings
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=before)


def test_the_inbox_task_makes_each_statement_a_run_once(market, settings, eager):
    inbox = settings.GRIDCOIN_STATEMENTS_DIR / "bank" / market.bank.msp_id
    inbox.mkdir(parents=True)
    (inbox / "2026-03-01.xml").write_bytes(statement(market, "E2E-9"))
    first = reconcile_statements_inbox.apply(kwargs={"source": "bank", "scope": market.bank.msp_id}).get()
    assert len(first) == 1 and ReconciliationRun.objects.get(pk=first[0]).state == "done"
    assert reconcile_statements_inbox.apply(kwargs={"source": "bank", "scope": market.bank.msp_id}).get() == []
    assert ReconciliationRun.objects.count() == 1


def test_beat_runs_each_inbox_daily(tmp_path):
    (tmp_path / "stripe").mkdir()
    (tmp_path / "bank" / "bank-a").mkdir(parents=True)
    (tmp_path / "bank" / "bank-b").mkdir(parents=True)
    schedule = reconciliation_beat_schedule(tmp_path, "03:30")
    assert sorted(schedule) == ["reconcile-bank-bank-a", "reconcile-bank-bank-b", "reconcile-stripe"]
    entry = schedule["reconcile-bank-bank-a"]
    assert entry["task"] == INBOX_TASK and entry["kwargs"] == {"source": "bank", "scope": "bank-a"}
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {30}
    from gridcoin.celery import app

    assert INBOX_TASK in app.tasks and "payments.tasks.reconcile_payments" in app.tasks


def test_the_command_prints_progress_and_a_summary(market, tmp_path):
    path = tmp_path / "statement.xml"
    path.write_bytes(statement(market, "E2E-C1", "E2E-C2"))
    out = io.StringIO()
    call_command("reconcile_payments", "--source", str(path), "--bank", market.bank.msp_id, stdout=out)
    text = out.getvalue()
    assert "reading the statement" in text and "100%  done" in text
    assert "missing           2" in text and "matched           0" in text
    again = io.StringIO()
    call_command("reconcile_payments", "--source", str(path), "--bank", market.bank.msp_id, stdout=again)
    assert "Already reconciled" in again.getvalue() and Payment.objects.count() == 2
    rerun = io.StringIO()
    call_command("reconcile_payments", "--source", str(path), "--bank", market.bank.msp_id, "--rerun", stdout=rerun)
    assert "matched           2" in rerun.getvalue() and Payment.objects.count() == 2


def test_the_command_refuses_bad_input(market, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("reconcile_payments", "--source", str(tmp_path / "nope.xml"))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<Document")
    with pytest.raises(CommandError, match="refused: the statement is not well-formed XML"):
        call_command("reconcile_payments", "--source", str(bad), "--bank", market.bank.msp_id)
    with pytest.raises(CommandError, match="bank's organisation id"):
        call_command("reconcile_payments", "--source", str(bad))
    odd = tmp_path / "statement.txt"
    odd.write_bytes(b"")
    with pytest.raises(CommandError, match="extension"):
        call_command("reconcile_payments", "--source", str(odd))


@pytest.mark.django_db(transaction=True)
def test_the_embedded_default_runs_the_task_on_a_thread_of_the_web_process(settings, tmp_path):
    """No broker and the background threads on (``make run``): the upload returns at once and
    the run proceeds beside it, so its page can show the progress bar."""
    import threading

    from payments.reconciliation.dispatch import reconciliation_start

    settings.GRIDCOIN_STATEMENTS_DIR = tmp_path / "statements"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.GRIDCOIN_BACKGROUND_SCHEDULER = True
    market = build_market()
    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id,
                                     stream=io.BytesIO(statement(market, "E2E-T1")))
    reconciliation_start(made.run.pk)
    for worker in [t for t in threading.enumerate() if t.name == f"reconcile-{made.run.pk}"]:
        worker.join(timeout=60)  # (none left if it finished already)
    run = ReconciliationRun.objects.get(pk=made.run.pk)
    assert run.state == "done" and run.counts["missing"] == 1
    assert Payment.objects.get(payment_id="E2E-T1").state == "credited"


def test_a_run_whose_task_was_lost_is_taken_over_only_when_stale(market):
    from datetime import timedelta

    from django.utils import timezone

    from payments.reconciliation.services import reconciliation_run_execute

    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id,
                                     stream=io.BytesIO(statement(market, "E2E-L1")))
    ReconciliationRun.objects.filter(pk=made.run.pk).update(state="loading", task_id="lost-task",
                                                            started_at=timezone.now())
    fresh = reconciliation_run_execute(run_id=made.run.pk, take_over_after=timedelta(days=1))
    assert fresh.state == "loading" and not Payment.objects.exists()  # its task may still be running
    ReconciliationRun.objects.filter(pk=made.run.pk).update(started_at=timezone.now() - timedelta(days=2))
    assert reconcile_payments.apply(args=[made.run.pk], kwargs={"take_over": True}).get()["missing"] == 1
    assert ReconciliationRun.objects.get(pk=made.run.pk).state == "done"
    assert Payment.objects.get(payment_id="E2E-L1").state == "credited"
