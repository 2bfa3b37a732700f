"""Idempotency keys (TigerBeetle semantics): the same key with the same body returns the first
result, whatever it was; with a different body it is an error; keys are per invoker."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from ledger import services as ledger
from ledger.crypto import generate_private_key
from ledger.documents import SIGNATURE_REJECTION
from ledger.models import Account, Posting, Transaction
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain

ALICE = "household:hh-alice"
BOB = "household:hh-bob"


def balance(key: str, asset: str = "k") -> int:
    return Account.objects.get(key=key, asset_id=asset).balance


def transfer_args(amount: int, source: str = ALICE, to: str = BOB) -> dict:
    return {"from": source, "to": to, "asset": "k", "amount": amount}


def _invoke(member, args, *, key, function="transfer", **extra):
    return ledger.invoke(chaincode="token", function=function, args=args, invoker=member.identity,
                         idempotency_key=key, **({"signer": member.key} | extra))


def _seal_and_verify():
    assert lease_acquire(holder="t")
    seal_next_block(holder="t", force=True)
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


@pytest.mark.django_db
def test_same_key_same_body_replays_the_first_result(network):
    network.mint(ALICE, 5000)
    first = _invoke(network.alice, transfer_args(1500), key="pay-1")
    again = _invoke(network.alice, transfer_args(1500), key="pay-1")
    assert first.ok and not first.replayed
    assert again.replayed and again.ok
    assert (again.tx_id, again.tx_hash, again.result) == (first.tx_id, first.tx_hash, first.result)
    assert Transaction.objects.filter(idempotency_key="pay-1").count() == 1
    assert Posting.objects.filter(transaction_id=first.tx_id).count() == 2
    assert (balance(ALICE), balance(BOB)) == (3500, 1500)
    _seal_and_verify()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("transfer", transfer_args(1501)),
        ("transfer", transfer_args(1500, to="household:hh-alice-2")),
        ("burn", {"from": ALICE, "asset": "k", "amount": 1500}),
    ],
    ids=["other-amount", "other-destination", "other-function"],
)
def test_same_key_different_body_is_a_conflict_and_changes_nothing(network, function, args):
    network.mint(ALICE, 5000)
    first = _invoke(network.alice, transfer_args(1500), key="pay-1")
    rows = Transaction.objects.count()
    with pytest.raises(ledger.IdempotencyConflict, match="pay-1"):
        _invoke(network.alice, args, key="pay-1", function=function)
    assert Transaction.objects.count() == rows
    assert (balance(ALICE), balance(BOB)) == (3500, 1500)
    assert Transaction.objects.get(idempotency_key="pay-1").tx_hash == first.tx_hash


@pytest.mark.django_db
def test_idempotency_conflict_is_a_ledger_error():
    assert issubclass(ledger.IdempotencyConflict, ledger.LedgerError)


@pytest.mark.django_db
def test_same_key_from_another_invoker_is_independent(network):
    network.mint(ALICE, 5000)
    network.mint(BOB, 5000)
    from_alice = _invoke(network.alice, transfer_args(100), key="shared-key")
    from_bob = _invoke(network.bob, transfer_args(300, source=BOB, to=ALICE), key="shared-key")
    assert from_alice.ok and from_bob.ok
    assert not from_alice.replayed and not from_bob.replayed
    assert from_alice.tx_hash != from_bob.tx_hash
    assert Transaction.objects.filter(idempotency_key="shared-key").count() == 2
    assert (balance(ALICE), balance(BOB)) == (5200, 4800)


@pytest.mark.django_db
def test_rejected_first_attempt_replays_as_rejected_even_after_funds_arrive(network):
    first = _invoke(network.alice, transfer_args(2000), key="pay-early")
    assert first.status == "rejected" and "insufficient funds" in first.reason
    network.mint(ALICE, 5000)
    again = _invoke(network.alice, transfer_args(2000), key="pay-early")
    assert again.replayed and again.status == "rejected"
    assert (again.tx_hash, again.reason) == (first.tx_hash, first.reason)
    assert (balance(ALICE), balance(BOB)) == (5000, 0)
    assert Transaction.objects.filter(idempotency_key="pay-early").count() == 1
    # a fresh key is a fresh attempt
    fresh = _invoke(network.alice, transfer_args(2000), key="pay-later")
    assert fresh.ok and (balance(ALICE), balance(BOB)) == (3000, 2000)
    _seal_and_verify()


@pytest.mark.django_db
def test_no_key_means_no_deduplication(network):
    network.mint(ALICE, 5000)
    one = _invoke(network.alice, transfer_args(100), key=None)
    two = _invoke(network.alice, transfer_args(100), key=None)
    assert one.ok and two.ok and one.tx_hash != two.tx_hash
    assert balance(BOB) == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forgery",
    [{"signature": b"\x00" * 64}, {"signature": b"garbage"}, {"signer": generate_private_key()}],
    ids=["zero-signature", "garbage-bytes", "wrong-key"],
)
def test_forged_signature_is_recorded_and_does_not_take_the_key(network, forgery):
    network.mint(ALICE, 5000)
    forged = ledger.invoke(chaincode="token", function="transfer", args=transfer_args(1000),
                           invoker=network.alice.identity, idempotency_key="pay-1", **forgery)
    assert forged.status == "rejected" and forged.reason == SIGNATURE_REJECTION and not forged.replayed
    row = Transaction.objects.get(tx_hash=forged.tx_hash)
    assert row.idempotency_key is None and row.status == "rejected" and not row.postings.exists()
    assert (balance(ALICE), balance(BOB)) == (5000, 0)

    genuine = _invoke(network.alice, transfer_args(1000), key="pay-1")
    assert genuine.ok and not genuine.replayed and genuine.tx_hash != forged.tx_hash
    assert (balance(ALICE), balance(BOB)) == (4000, 1000)

    # a forgery after the genuine invocation does not replay (or leak) the genuine result
    late = ledger.invoke(chaincode="token", function="transfer", args=transfer_args(1000),
                         invoker=network.alice.identity, idempotency_key="pay-1", **forgery)
    assert late.status == "rejected" and late.reason == SIGNATURE_REJECTION and not late.replayed
    assert late.result is None and late.tx_hash != genuine.tx_hash
    assert Transaction.objects.filter(idempotency_key="pay-1").count() == 1
    assert (balance(ALICE), balance(BOB)) == (4000, 1000)
    _seal_and_verify()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        (transfer_args(1), "x" * 256, "1 to 255"),
        (transfer_args(1), "", "1 to 255"),
        ([ALICE, BOB, 1], "k-list", "JSON object"),
        ("transfer 1", "k-str", "JSON object"),
        ({**transfer_args(1), "amount": 1.0}, "k-float", "float"),
        ({**transfer_args(1), "memo": {"rate": [0.5]}}, "k-nested-float", "float"),
        ({**transfer_args(1), "amount": 2**60}, "k-huge", "safe range"),
    ],
    ids=["key-too-long", "key-empty", "args-list", "args-str", "float", "nested-float", "unsafe-int"],
)
def test_malformed_invocations_raise_and_record_nothing(network, args, key, message):
    network.mint(ALICE, 5000)
    rows = Transaction.objects.count()
    with pytest.raises(ledger.LedgerError, match=message):
        _invoke(network.alice, args, key=key)
    assert Transaction.objects.count() == rows
    assert (balance(ALICE), balance(BOB)) == (5000, 0)


@pytest.mark.django_db
def test_a_255_character_key_is_accepted(network):
    network.mint(ALICE, 5000)
    key = "k" * 255
    first = _invoke(network.alice, transfer_args(1), key=key)
    assert first.ok and _invoke(network.alice, transfer_args(1), key=key).replayed


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_commit_once(network):
    """Eight workers race the same invocation: one commits, the rest replay it (the unique
    index serialises them, the loser's IntegrityError turns into a replay)."""
    network.mint(ALICE, 5000)
    workers = 8
    barrier = threading.Barrier(workers)
    results: list = []
    errors: list = []

    def work():
        try:
            barrier.wait(timeout=10)
            results.append(_invoke(network.alice, transfer_args(700), key="race-1"))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert len(results) == workers
    assert len({r.tx_hash for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert all(r.ok for r in results)
    assert Transaction.objects.filter(idempotency_key="race-1").count() == 1
    assert (balance(ALICE), balance(BOB)) == (4300, 700)
