"""Ended funded windows: the unspent coins go back to the funder; a rerun changes nothing."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.keys import custodial_signer
from ledger import services as ledger
from ledger.models import Account, StateEntry, Transaction
from ledger.verify import verify_chain
from meters import selectors, services
from meters.scheduler import SchedulerLoop
from meters.tasks import settle_due_windows
from tests.meters_world import MeterWorld, build_meter_world
from tests.personas import seal_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def k(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


def fund_past_window(mw, *, amount: int, hours_ago: int = 3, length: int = 2, key: str = "tonight"):
    """Alice funded the light ``hours_ago`` for a window that ended an hour ago (proposed then,
    signed with her custodial key, as the web form would have done at that time)."""
    then = timezone.now() - timedelta(hours=hours_ago)
    result = ledger.invoke(
        chaincode="resident", function="fund", invoker=mw.alice.identity, signer=custodial_signer(mw.alice.identity),
        args={"device": "SL-0001", "amount": amount, "window_start": then.isoformat(),
              "window_end": (then + timedelta(hours=length)).isoformat()},
        idempotency_key=key, proposed_at=then,
    )
    assert result.ok, result.reason
    return then


def test_ended_window_returns_the_remainder_and_a_rerun_is_a_no_op(mw):
    then = fund_past_window(mw, amount=1000)
    # The light burns 300 Wh inside the window, signed by its own (simulated) meter key.
    burned = ledger.invoke(chaincode="consumer", function="burn", args={"amount": 300}, invoker=mw.light.identity,
                           idempotency_key="r1", signer=services.simulated_signer(mw.light),
                           proposed_at=then + timedelta(minutes=30))
    assert burned.ok and burned.result["burned"] == 300, burned
    assert k("household:hh-alice") == 2799 and k("device:SL-0001") == 700
    assert selectors.device_state(mw.light).relay == "off"  # outside its window

    results = services.windows_settle_due()
    assert [r.ok for r in results] == [True]
    assert results[0].result["returned"] == [{"funder": "household:hh-alice", "returned": 700,
                                              "end": (then + timedelta(hours=2)).isoformat()}]
    assert k("household:hh-alice") == 3499 and k("device:SL-0001") == 0
    assert not StateEntry.objects.filter(namespace="devices", key="windows/SL-0001", is_deleted=False).exists()
    tx = Transaction.objects.get(tx_hash=results[0].tx_hash)
    assert tx.invoker.name == "scheduler" and tx.invoker.kind == "service"
    assert tx.invoker.organisation == mw.uma.organisation
    assert tx.idempotency_key == f"settle:SL-0001:{(then + timedelta(hours=2)).isoformat()}"

    count = Transaction.objects.count()
    assert services.windows_settle_due() == []  # nothing due any more
    assert Transaction.objects.count() == count and k("household:hh-alice") == 3499
    seal_all()
    assert verify_chain().ok


def test_a_second_settler_replays_instead_of_settling_twice(mw):
    fund_past_window(mw, amount=400)
    now = timezone.now()
    due = selectors.windows_due(now)
    first = services.windows_settle_due(now)
    # A second worker that scanned before the first committed runs with the same key.
    identity = first[0] and Transaction.objects.get(tx_hash=first[0].tx_hash).invoker
    again = ledger.invoke(chaincode="resident", function="settle", args={"device": "SL-0001"}, invoker=identity,
                          idempotency_key=f"settle:{due[0][0]}:{due[0][1]}", signer=custodial_signer(identity))
    assert again.replayed and again.tx_hash == first[0].tx_hash
    assert k("household:hh-alice") == 3799


def test_open_windows_are_left_alone(mw):
    now = timezone.now()
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=500, idempotency_key="later",
                         window_start=now + timedelta(hours=1), window_end=now + timedelta(hours=2))
    assert services.windows_settle_due() == []
    assert k("device:SL-0001") == 500
    # At the window's end it becomes due.
    assert [d[0] for d in selectors.windows_due(now + timedelta(hours=2))] == ["SL-0001"]


def test_only_ended_windows_of_a_device_are_settled(mw):
    fund_past_window(mw, amount=300)
    now = timezone.now()
    services.device_fund(user=mw.charlie.user, public_id="SL-0001", amount_wh=200, idempotency_key="open",
                         window_start=now, window_end=now + timedelta(hours=2))
    services.windows_settle_due()
    assert k("household:hh-alice") == 3799 and k("device:SL-0001") == 200
    (window,) = selectors.device_state(mw.light).raw_windows
    assert window["funder"] == "household:hh-charlie"


def test_management_command_task_and_scheduler_step(mw):
    fund_past_window(mw, amount=250)
    out = StringIO()
    call_command("settle_windows", stdout=out)
    assert "SL-0001: returned 250 Wh" in out.getvalue()
    out = StringIO()
    call_command("settle_windows", stdout=out)
    assert "No ended windows" in out.getvalue()
    fund_past_window(mw, amount=100, key="second", hours_ago=4)
    assert settle_due_windows.apply().get() == 1
    assert settle_due_windows.apply().get() == 0
    fund_past_window(mw, amount=50, key="third", hours_ago=5)
    assert SchedulerLoop().step() == 1
    assert k("household:hh-alice") == 3799


def test_no_utility_means_nothing_is_settled(db):
    assert services.windows_settle_due() == []


def test_beat_schedules_the_task():
    from gridcoin.celery import app

    entry = app.conf.beat_schedule["settle-due-windows"]
    assert entry["task"] == "meters.tasks.settle_due_windows" and entry["schedule"] == 60.0
    assert settle_due_windows.name == "meters.tasks.settle_due_windows"


def test_only_the_utility_may_settle_windows(mw):
    """Settlement judges "ended" at the signed proposal time: a household dating a proposal
    ahead must not be able to close someone's window early."""
    from django.contrib.auth import get_user_model

    from accounts.services import membership_for

    fund_past_window(mw, amount=400)
    alice = membership_for(get_user_model().objects.get(username="alice")).identity
    result = ledger.invoke(chaincode="resident", function="settle", args={"device": "SL-0001"}, invoker=alice,
                           idempotency_key="early-settle", signer=custodial_signer(alice),
                           proposed_at=timezone.now() + timedelta(days=1))
    assert not result.ok and "endorsement policy" in result.reason
