"""``invoke`` inside the caller's transaction: its effects commit or roll back with the caller's
own writes, and nothing ``invoke`` expects (a replay, an overdraft, a refusal) aborts the
caller's transaction. A pure value movement takes no savepoint for it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from ledger import services as ledger
from ledger.models import Account, Organisation, Transaction, TxStatus

ALICE = "household:hh-alice"
BOB = "household:hh-bob"


def balance(key: str) -> int:
    return Account.objects.get(key=key, asset_id="k").balance


def pay(member, amount: int, *, key: str, to: str = BOB) -> ledger.InvokeResult:
    return ledger.invoke(chaincode="token", function="transfer", invoker=member.identity, signer=member.key,
                         args={"from": ALICE, "to": to, "asset": "k", "amount": amount}, idempotency_key=key)


def note(member, text: str, *, key: str) -> ledger.InvokeResult:
    return ledger.invoke(chaincode="token", function="note", invoker=member.identity, signer=member.key,
                         args={"key": "n", "text": text}, idempotency_key=key)


def app_row(msp_id: str) -> None:
    """A write of the caller's own, in the same transaction as the invocation."""
    ledger.organisation_create(msp_id=msp_id, name=msp_id, org_type="household")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_value_movement_in_the_callers_transaction_takes_no_savepoint(network):
    network.mint(ALICE, 5000)
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            result = pay(network.alice, 1200, key="p-1")
        app_row("audit-1")
    assert result.ok and not result.replayed
    assert not [q["sql"] for q in queries if "SAVEPOINT" in q["sql"].upper()]
    assert (balance(ALICE), balance(BOB)) == (3800, 1200)
    assert Organisation.objects.filter(msp_id="audit-1").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("invoke_twice", [pay, note], ids=["value movement", "state write"])
def test_a_replay_and_a_key_conflict_leave_the_callers_transaction_usable(network, invoke_twice):
    network.mint(ALICE, 5000)
    args = (network.alice, 700) if invoke_twice is pay else (network.alice, "hello")
    first = invoke_twice(*args, key="k-1")
    with transaction.atomic():
        again = invoke_twice(*args, key="k-1")
        with pytest.raises(ledger.IdempotencyConflict):
            invoke_twice(network.alice, 701, key="k-1") if invoke_twice is pay else invoke_twice(
                network.alice, "other", key="k-1")
        app_row("after-replay")  # the transaction is still usable
    assert again.replayed and (again.tx_id, again.tx_hash) == (first.tx_id, first.tx_hash)
    assert Transaction.objects.filter(idempotency_key="k-1").count() == 1
    assert Organisation.objects.filter(msp_id="after-replay").exists()
    if invoke_twice is pay:
        assert (balance(ALICE), balance(BOB)) == (4300, 700)


@pytest.mark.django_db(transaction=True)
def test_an_overdraft_in_the_callers_transaction_is_recorded_and_the_caller_goes_on(network):
    network.mint(ALICE, 500)
    with transaction.atomic():
        refused = pay(network.alice, 501, key="too-much")
        app_row("after-refusal")
    assert refused.status == TxStatus.REJECTED and ALICE in refused.reason
    assert Transaction.objects.get(pk=refused.tx_id).status == TxStatus.REJECTED
    assert Organisation.objects.filter(msp_id="after-refusal").exists()
    assert (balance(ALICE), balance(BOB)) == (500, 0)


@pytest.mark.django_db(transaction=True)
def test_the_callers_rollback_takes_the_invocation_with_it(network):
    network.mint(ALICE, 5000)
    before = Transaction.objects.count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        assert pay(network.alice, 900, key="rolled-back").ok
        assert note(network.alice, "gone", key="note-rolled-back").ok
        app_row("rolled-back")
        raise Abort
    assert Transaction.objects.count() == before
    assert not Organisation.objects.filter(msp_id="rolled-back").exists()
    assert (balance(ALICE), balance(BOB)) == (5000, 0)
    # The key was never used: the same invocation now commits.
    assert not pay(network.alice, 900, key="rolled-back").replayed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_callers_racing_one_key_in_their_own_transactions_commit_it_once(network):
    """Each worker invokes inside its own transaction and writes its own row after: one commits
    the transfer, the others wait for it and replay it, and every worker's own row commits."""
    network.mint(ALICE, 5000)
    workers = 6
    barrier = threading.Barrier(workers)
    results: list = []
    errors: list = []

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                results.append(pay(network.alice, 800, key="race-in-tx"))
                app_row(f"worker-{n}")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert sum(not r.replayed for r in results) == 1 and len({r.tx_hash for r in results}) == 1
    assert Transaction.objects.filter(idempotency_key="race-in-tx").count() == 1
    assert Organisation.objects.filter(msp_id__startswith="worker-").count() == workers
    assert (balance(ALICE), balance(BOB)) == (4200, 800)
