"""Reconciliation pages (persona tests): utility and bank staff 200, a household 403, anonymous
to the login page; upload, the run's report (totals, flagged lines linked to the ledger, a
progress bar polled by htmx while in flight) and the CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Role
from accounts.services import membership_create
from ledger import services as ledger
from ledger.models import OrgType
from payments.models import Payment, ReconciliationRun
from payments.reconciliation.services import reconciliation_run_create
from payments.reconciliation.testing import Line, camt053
from payments.testing import build_market

URL = "/payments/reconciliation/"


@pytest.fixture
def market(db, settings, tmp_path):
    settings.GRIDCOIN_STATEMENTS_DIR = tmp_path / "statements"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded default: the task runs in-process
    settings.GRIDCOIN_BACKGROUND_SCHEDULER = False
    return build_market()


def staff(org, username: str) -> Client:
    user = get_user_model().objects.create_user(username=username, password=f"{username}-password-1")
    membership_create(user=user, organisation=org, role=Role.MEMBER)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clients(market):
    other_bank = ledger.organisation_create(msp_id="otherbank", name="Other Bank", org_type=OrgType.BANK)
    household = Client()
    household.force_login(market.resident)
    return {"utility": staff(market.utility, "uma"), "bank": staff(market.bank, "bea"),
            "other_bank": staff(other_bank, "olga"), "household": household, "anonymous": Client()}


def statement(market, *lines: Line) -> bytes:
    return camt053(lines or [Line("E2E-P1", 1000, market.household.msp_id, market.utility.msp_id)])


def bank_run(market, data: bytes | None = None) -> ReconciliationRun:
    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id,
                                     stream=io.BytesIO(data or statement(market)))
    from payments.reconciliation.services import reconciliation_run_execute

    return reconciliation_run_execute(run_id=made.run.pk)


@pytest.mark.parametrize(("persona", "status"), [("utility", 200), ("bank", 200), ("household", 403)])
def test_who_may_open_the_reconciliation_page(clients, persona, status):
    assert clients[persona].get(URL).status_code == status


def test_anonymous_is_sent_to_log_in(clients, market):
    run = bank_run(market)
    for url in (URL, f"{URL}{run.pk}/", f"{URL}{run.pk}/lines.csv"):
        response = clients["anonymous"].get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("persona", "status"), [("utility", 200), ("bank", 200), ("other_bank", 404),
                                                 ("household", 403)])
def test_who_may_see_a_bank_run_and_its_export(clients, market, persona, status):
    run = bank_run(market)
    assert clients[persona].get(f"{URL}{run.pk}/").status_code == status
    assert clients[persona].get(f"{URL}{run.pk}/lines.csv").status_code == status


def test_upload_reconciles_in_process_and_shows_the_report(clients, market, django_capture_on_commit_callbacks):
    credit = market.deliver(market.notification(id="evt-w", end_to_end_id="E2E-WRONG", amount=1000)).json()
    data = statement(market, Line("E2E-NEW", 1600, market.household.msp_id, market.utility.msp_id),
                     Line("E2E-WRONG", 2000, market.household.msp_id, market.utility.msp_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = clients["bank"].post(URL, {"source": f"bank:{market.bank.msp_id}",
                                              "statement": SimpleUploadedFile("stmt.xml", data)})
    run = ReconciliationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{URL}{run.pk}/"
    assert run.state == "done" and Payment.objects.get(payment_id="E2E-NEW").state == "credited"
    page = clients["bank"].get(response["Location"]).content.decode()
    assert "Totals" in page and "<progress" not in page
    assert "1000 INR on the ledger, 2000 INR on the statement" in page
    assert f'href="/explorer/tx/{credit["tx_hash"]}/"' in page  # the flagged line links to its ledger transaction
    # The same file again finds its run and moves nothing.
    again = clients["bank"].post(URL, {"source": f"bank:{market.bank.msp_id}",
                                       "statement": SimpleUploadedFile("stmt.xml", data)})
    assert again["Location"] == f"{URL}{run.pk}/" and ReconciliationRun.objects.count() == 1


def test_a_bank_cannot_upload_for_another_bank_or_for_stripe(clients, market):
    for source in ("bank:otherbank", "stripe:"):
        response = clients["bank"].post(URL, {"source": source,
                                              "statement": SimpleUploadedFile("s.xml", statement(market))})
        assert response.status_code == 400
    assert not ReconciliationRun.objects.exists()


def test_a_hostile_upload_fails_with_a_clear_error_and_moves_nothing(clients, market,
                                                                    django_capture_on_commit_callbacks):
    bomb = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><d>&b;</d>'
    with django_capture_on_commit_callbacks(execute=True):
        response = clients["utility"].post(URL, {"source": f"bank:{market.bank.msp_id}",
                                                 "statement": SimpleUploadedFile("bomb.xml", bomb)})
    response = clients["utility"].get(response["Location"])
    page = response.content.decode()
    assert response.status_code == 200 and "nothing moved" in page and "DTD" in page
    assert not Payment.objects.exists()


def test_a_run_in_flight_shows_a_progress_bar_polled_by_htmx(clients, market):
    made = reconciliation_run_create(source="bank", scope=market.bank.msp_id, stream=io.BytesIO(statement(market)))
    ReconciliationRun.objects.filter(pk=made.run.pk).update(state="loading", progress_current=400,
                                                            progress_total=1000, progress_label="reading")
    page = clients["utility"].get(f"{URL}{made.run.pk}/").content.decode()
    assert '<progress id="run-progress" max="100" value="40"' in page and 'hx-trigger="every 1s"' in page
    assert '<label for="run-progress">' in page
    fragment = clients["utility"].get(f"{URL}{made.run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="run-status"') and "<html" not in fragment


def test_csv_export_lists_every_line(clients, market):
    run = bank_run(market, statement(market, Line("E2E-A", 1000, market.household.msp_id, market.utility.msp_id),
                                     Line("E2E-B", 2000, market.household.msp_id, market.utility.msp_id, debit=True)))
    response = clients["utility"].get(f"{URL}{run.pk}/lines.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="reconciliation-{run.pk}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["line_no"], r["outcome"], r["reference"], r["amount"]) for r in rows] == [
        ("1", "missing", "E2E-A", "1000"), ("2", "ignored", "E2E-B", "2000")]
    assert rows[0]["tx_hash"] == Payment.objects.get(payment_id="E2E-A").credit_tx_hash


def test_the_home_page_links_staff_who_may_reconcile_and_nobody_else(clients):
    link = f'href="{URL}"'
    assert link in clients["utility"].get("/").content.decode()
    assert link in clients["bank"].get("/").content.decode()
    assert link not in clients["household"].get("/").content.decode()
    assert link not in clients["anonymous"].get("/").content.decode()
