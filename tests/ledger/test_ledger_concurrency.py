"""Races on PostgreSQL: many threads, each with its own connection, released together by a
barrier. Money must neither appear nor vanish, no holder may dip below zero, idempotency keys
must hold under contention, lock ordering must not surface deadlocks, and the chain sealed
meanwhile must verify.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from ledger import services as ledger
from ledger.models import Account, Posting, StateEntry, StateWrite, Transaction
from ledger.sealing import lease_acquire, lease_release, seal_next_block
from ledger.verify import verify_chain
from tests.ledger_helpers import Network, make_member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32
ALICE, BOB, CAROL = "household:hh-alice", "household:hh-bob", "household:hh-carol"


# Set when a racer fails or time is up, so the others stop after their current attempt and a
# broken ledger fails the test in seconds rather than grinding through deadlock timeouts.
aborted = threading.Event()
DEADLINE = 20.0  # seconds; a healthy ledger finishes these races in about one


def race(work: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Run ``work(i)`` in ``threads`` threads that start together; re-raise the first error."""
    aborted.clear()
    timer = threading.Timer(DEADLINE, aborted.set)
    timer.daemon = True
    timer.start()
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            connection.ensure_connection()  # connect before the start line, so the race is on the ledger
            barrier.wait(timeout=60)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)
            aborted.set()
            barrier.abort()
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(i,), name=f"racer-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    timer.cancel()
    assert not any(thread.is_alive() for thread in pool), "a racer hung"
    if errors:
        raise errors[0]
    assert not aborted.is_set(), f"the racers were still at it after {DEADLINE:.0f} s"
    return results


class Sealer:
    """Seals small blocks in the background while the racers run, as the real sealer would."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.blocks = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sealer")

    def _run(self) -> None:
        try:
            assert lease_acquire(holder="race-sealer", seconds=120)
            while not self.stop.is_set():
                if seal_next_block(holder="race-sealer", max_tx=7, force=True):
                    self.blocks += 1
                else:
                    self.stop.wait(0.005)
            lease_release(holder="race-sealer")
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
        finally:
            connection.close()

    def __enter__(self) -> Sealer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert self.error is None, self.error


def seal_all_and_verify() -> None:
    assert lease_acquire(holder="final")
    while seal_next_block(holder="final", max_tx=50, force=True):
        pass
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
    assert report.transactions == Transaction.objects.count()
    assert report.unsealed == 0


def assert_books_balance() -> None:
    for account in Account.objects.all():
        posted = Posting.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
        assert account.balance == posted, account
        assert account.balance >= 0 or account.kind == "issuance", account
    for asset, total in Account.objects.values_list("asset_id").annotate(s=Sum("balance")):
        assert total == 0, asset
    per_tx = Posting.objects.values("transaction_id", "asset_id").annotate(s=Sum("amount")).exclude(s=0)
    assert not per_tx.exists(), list(per_tx)


def balance(key: str, asset: str = "k") -> int:
    return Account.objects.get(key=key, asset_id=asset).balance


def transfer(member, source: str, dest: str, amount: int, key: str | None = None) -> ledger.InvokeResult:
    return member.invoke(
        "token", "transfer", {"from": source, "to": dest, "asset": "k", "amount": amount}, idempotency_key=key
    )


# --- racing to spend one balance --------------------------------------------------------------


def test_racing_spenders_cannot_overdraw_an_account():
    net = Network.create()
    net.mint(ALICE, 20 * 100)
    attempts = 3

    def spend(i: int) -> list[ledger.InvokeResult]:
        return [
            transfer(net.alice, ALICE, BOB, 100, key=f"spend-{i}-{n}") for n in range(attempts) if not aborted.is_set()
        ]

    with Sealer():
        outcomes = [r for results in race(spend) for r in results]
    assert len(outcomes) == THREADS * attempts
    accepted = [r for r in outcomes if r.ok]
    assert len(accepted) == 20
    for refused in (r for r in outcomes if not r.ok):
        assert "insufficient funds" in refused.reason and ALICE in refused.reason, refused.reason
    assert len({r.tx_hash for r in outcomes}) == len(outcomes)
    assert (balance(ALICE), balance(BOB)) == (0, 2000)
    assert Transaction.objects.filter(function="transfer", status="valid").count() == 20
    assert Transaction.objects.filter(function="transfer", status="rejected").count() == THREADS * attempts - 20
    assert_books_balance()
    seal_all_and_verify()


# --- racing with one idempotency key ----------------------------------------------------------

BODIES = {
    # moves value: the racers serialise on the account rows
    "transfer": ("alice", "transfer", {"from": ALICE, "to": BOB, "asset": "k", "amount": 100}),
    # refused by the CHECK on the hot path, then recorded as rejected by the careful path
    "overdraft": ("alice", "transfer", {"from": ALICE, "to": BOB, "asset": "k", "amount": 10**9}),
    # refused before touching any account: the racers meet only at the unique index
    "policy": ("alice", "mint", {"to": ALICE, "asset": "k", "amount": 100}),
    # writes world state
    "note": ("alice", "note", {"key": "same", "text": "once"}),
}


@pytest.mark.parametrize("body", list(BODIES))
def test_racing_retries_of_one_idempotency_key_commit_once(body):
    net = Network.create()
    net.mint(ALICE, 1000)
    who, function, args = BODIES[body]
    member = getattr(net, who)

    def retry(i: int) -> ledger.InvokeResult:
        return member.invoke("token", function, args, idempotency_key="one-key")

    results = race(retry)
    assert Transaction.objects.filter(invoker=member.identity, idempotency_key="one-key").count() == 1
    tx = Transaction.objects.get(invoker=member.identity, idempotency_key="one-key")
    assert {r.tx_hash for r in results} == {tx.tx_hash}
    assert {r.tx_id for r in results} == {tx.pk}
    assert {(r.status, r.reason) for r in results} == {(tx.status, tx.reason)}
    assert Counter(r.replayed for r in results) == Counter({True: THREADS - 1, False: 1})
    moved = 100 if body == "transfer" else 0
    assert (balance(ALICE), balance(BOB)) == (1000 - moved, moved)
    assert StateWrite.objects.exclude(namespace="config").count() == (1 if body == "note" else 0)
    assert_books_balance()
    seal_all_and_verify()


# --- crossing transfers -----------------------------------------------------------------------


def test_crossing_transfers_neither_deadlock_nor_leak():
    net = Network.create()
    carol = make_member("hh-carol", "household", "carol")
    ledger.account_open(key=CAROL, asset="k", organisation=carol.organisation)
    members = {ALICE: net.alice, BOB: net.bob, CAROL: carol}
    for key in members:
        net.mint(key, 1000)
    ring = [ALICE, BOB, CAROL]
    attempts = 6

    def shuffle(i: int) -> list[ledger.InvokeResult]:
        rng = random.Random(i)
        out = []
        for n in range(attempts):
            if aborted.is_set():
                break
            # half the threads go round the ring one way, half the other way
            source = ring[(i + n) % 3]
            dest = ring[(i + n + (1 if i % 2 else 2)) % 3]
            out.append(transfer(members[source], source, dest, rng.randint(1, 400), key=f"x-{i}-{n}"))
        return out

    with Sealer():
        outcomes = [r for results in race(shuffle) for r in results]
    assert len(outcomes) == THREADS * attempts
    for r in outcomes:
        assert r.ok or "insufficient funds" in r.reason, r.reason
    assert sum(r.ok for r in outcomes) > THREADS  # the race really moved money
    assert sum(balance(key) for key in ring) == 3000
    assert_books_balance()
    seal_all_and_verify()


# --- racing writers of one world-state key ----------------------------------------------------


@pytest.mark.parametrize("existing", [True, False], ids=["existing-key", "new-key"])
def test_racing_writers_of_one_state_key_get_consecutive_versions(existing):
    """Every write of a key gets the next version, also when the key does not exist yet
    (no row to lock: two writers must not both see version 0)."""
    net = Network.create()
    writers = [net.alice, net.bob, net.utility]
    if existing:
        assert net.alice.invoke("token", "note", {"key": "hot", "text": "seed"}).ok

    def write(i: int) -> ledger.InvokeResult:
        return writers[i % 3].invoke("token", "note", {"key": "hot", "text": f"writer {i}"})

    results = race(write)
    assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
    start = 2 if existing else 1
    versions = sorted(StateWrite.objects.filter(namespace="token", key="hot").values_list("version", flat=True))
    assert versions == list(range(1 if existing else start, start + THREADS)), versions
    entry = StateEntry.objects.get(namespace="token", key="hot")
    assert entry.version == start + THREADS - 1
    # each writer saw the note its predecessor left (none for the very first)
    previous = Counter(repr(r.result["previous"]) for r in results)
    assert max(previous.values()) == 1, previous
    seal_all_and_verify()
