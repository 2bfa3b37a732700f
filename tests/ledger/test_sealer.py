"""The ordering service: blocks cut by size or timeout, linked, Merkle-rooted and signed, by the
one sealer that holds the lease (claimed by compare-and-swap, taken over after expiry)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from ledger import sealing
from ledger import services as ledger
from ledger.canonical import sha256_hex
from ledger.crypto import verify_signature
from ledger.documents import GENESIS_PREVIOUS_HASH, block_header_bytes
from ledger.merkle import merkle_root
from ledger.models import Block, SealerLease, Transaction
from ledger.sealing import LEASE_SECONDS, SealerLoop, lease_acquire, lease_release, orderer_public_hex, seal_next_block
from ledger.verify import verify_chain
from tests.ledger_helpers import seal_setup

ALICE = "household:hh-alice"
HOUR = 3600.0


def make_transactions(network, count: int) -> list[str]:
    """Committed, unsealed transactions: mints (the hot path) and notes (world-state writes)."""
    hashes = []
    for i in range(count):
        if i % 3 == 2:
            result = network.alice.invoke("token", "note", {"key": f"n{len(hashes)}-{time.monotonic_ns()}",
                                                            "text": "hello"})
        else:
            result = network.utility.invoke("token", "mint", {"to": ALICE, "asset": "k", "amount": 10 + i})
        assert result.ok, result.reason
        hashes.append(result.tx_hash)
    return hashes


def unsealed() -> int:
    return Transaction.objects.filter(block__isnull=True).count()


def assert_chain_is_sound() -> list[Block]:
    """Numbers from 0 without gaps, each header links to the previous one, Merkle roots over the
    transaction hashes in id order, header hashes and orderer signatures check; then the
    full verifier agrees."""
    blocks = list(Block.objects.order_by("number"))
    assert [b.number for b in blocks] == list(range(len(blocks)))
    previous = GENESIS_PREVIOUS_HASH
    for block in blocks:
        assert block.previous_hash == previous, f"block {block.number} does not link"
        hashes = list(Transaction.objects.filter(block=block).order_by("id").values_list("tx_hash", flat=True))
        assert block.tx_count == len(hashes) > 0
        assert block.merkle_root == merkle_root([bytes.fromhex(h) for h in hashes]).hex()
        header = block_header_bytes(number=block.number, previous_hash=block.previous_hash,
                                    merkle_root=block.merkle_root, timestamp=block.timestamp,
                                    tx_count=block.tx_count)
        assert sha256_hex(header) == block.header_hash
        assert block.signer_public_key == orderer_public_hex()
        assert verify_signature(bytes.fromhex(block.signer_public_key), bytes.fromhex(block.signature), header)
        previous = block.header_hash
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
    return blocks


@pytest.fixture
def network(network):
    """The network, its configuration transactions sealed as block 0."""
    seal_setup()
    return network


# --- one step ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_blocks_are_cut_by_size_and_the_rest_waits_for_the_timeout(network):
    hashes = make_transactions(network, 7)
    assert lease_acquire(holder="t")
    first = seal_next_block(holder="t", max_tx=3, timeout=HOUR)
    second = seal_next_block(holder="t", max_tx=3, timeout=HOUR)
    assert (first.number, first.tx_count) == (1, 3)
    assert (second.number, second.tx_count) == (2, 3)
    # one left: not a full block and not old enough
    assert seal_next_block(holder="t", max_tx=3, timeout=HOUR) is None
    assert unsealed() == 1
    last = seal_next_block(holder="t", max_tx=3, timeout=0)
    assert (last.number, last.tx_count) == (3, 1)
    assert seal_next_block(holder="t", max_tx=3, timeout=0, force=True) is None  # nothing left
    blocks = assert_chain_is_sound()
    sealed = [list(b.transactions.order_by("id").values_list("tx_hash", flat=True)) for b in blocks[1:]]
    assert sealed == [hashes[0:3], hashes[3:6], hashes[6:7]]


@pytest.mark.django_db
def test_force_seals_a_partial_block(network):
    make_transactions(network, 7)
    assert lease_acquire(holder="t")
    counts = [seal_next_block(holder="t", max_tx=3, timeout=HOUR, force=True).tx_count for _ in range(3)]
    assert counts == [3, 3, 1]
    assert unsealed() == 0
    assert_chain_is_sound()


@pytest.mark.django_db
def test_timeout_seals_a_partial_batch_once_the_oldest_has_waited(network):
    # proposed 30 s ago, so the age is known whatever the machine's load
    for amount in (1, 2):
        result = ledger.invoke(chaincode="token", function="mint", args={"to": ALICE, "asset": "k", "amount": amount},
                               invoker=network.utility.identity, idempotency_key=f"old-{amount}",
                               signer=network.utility.key, proposed_at=timezone.now() - timedelta(seconds=30))
        assert result.ok, result.reason
    assert lease_acquire(holder="t")
    assert seal_next_block(holder="t", max_tx=10, timeout=HOUR) is None
    assert seal_next_block(holder="t", max_tx=10, timeout=120) is None
    block = seal_next_block(holder="t", max_tx=10, timeout=20)
    assert block is not None and block.tx_count == 2
    assert_chain_is_sound()


@pytest.mark.django_db
def test_settings_give_the_default_size_and_timeout(network, settings):
    settings.GRIDCOIN_BLOCK_MAX_TX = 2
    settings.GRIDCOIN_BLOCK_TIMEOUT = HOUR
    make_transactions(network, 3)
    assert lease_acquire(holder="t")
    assert seal_next_block(holder="t").tx_count == 2
    assert seal_next_block(holder="t") is None
    settings.GRIDCOIN_BLOCK_TIMEOUT = 0.0
    assert seal_next_block(holder="t").tx_count == 1


@pytest.mark.django_db
def test_nothing_to_seal_is_not_a_block(network):
    assert lease_acquire(holder="t")
    assert seal_next_block(holder="t", force=True) is None
    assert Block.objects.count() == 1  # the network's setup


@pytest.mark.django_db
def test_blocks_link_across_many_seals(network):
    assert lease_acquire(holder="t")
    for size in (1, 4, 2, 5):
        make_transactions(network, size)
        assert seal_next_block(holder="t", force=True).tx_count == size
    blocks = assert_chain_is_sound()
    assert [b.tx_count for b in blocks[1:]] == [1, 4, 2, 5]


# --- the lease --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_sealer_without_the_lease_seals_nothing(network):
    make_transactions(network, 3)
    assert seal_next_block(holder="nobody", force=True) is None  # no lease row yet
    assert lease_acquire(holder="a")
    assert seal_next_block(holder="b", force=True) is None
    assert unsealed() == 3 and Block.objects.count() == 1
    assert seal_next_block(holder="a", force=True).tx_count == 3


def _let_the_lease_expire() -> None:
    """Move the lease's expiry into the past: what waiting would do, without the flakiness."""
    SealerLease.objects.filter(name=sealing.LEASE_NAME).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_an_expired_holder_seals_nothing(network):
    make_transactions(network, 1)
    assert lease_acquire(holder="a", seconds=60)
    _let_the_lease_expire()
    assert seal_next_block(holder="a", force=True) is None
    assert unsealed() == 1


@pytest.mark.django_db
def test_lease_is_exclusive_until_it_expires_then_taken_over():
    assert lease_acquire(holder="a", seconds=60)
    assert not lease_acquire(holder="b")
    assert lease_acquire(holder="a", seconds=60)  # the holder renews
    assert not lease_acquire(holder="b")
    _let_the_lease_expire()
    assert lease_acquire(holder="b", seconds=60)
    assert not lease_acquire(holder="a")
    assert SealerLease.objects.get(name=sealing.LEASE_NAME).holder == "b"


@pytest.mark.django_db
def test_released_lease_is_free_and_only_the_holder_releases():
    assert lease_acquire(holder="a")
    lease_release(holder="b")  # not the holder: no effect
    assert not lease_acquire(holder="b")
    lease_release(holder="a")
    assert lease_acquire(holder="b")


# --- the loop ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_sealer_loop_step(network, settings):
    settings.GRIDCOIN_BLOCK_TIMEOUT = 0.0
    one, two = SealerLoop(holder="one"), SealerLoop(holder="two")
    assert one.step() is False  # takes the lease; nothing to seal
    make_transactions(network, 2)
    assert two.step() is False  # lease held by "one"
    assert one.step() is True
    assert one.step() is False
    assert Block.objects.get(number=1).tx_count == 2
    assert SealerLease.objects.get().holder == "one"


@pytest.mark.django_db
def test_sealer_loop_hands_over_after_expiry(network, settings):
    settings.GRIDCOIN_BLOCK_TIMEOUT = 0.0
    one = SealerLoop(holder="one", lease_seconds=60)
    two = SealerLoop(holder="two", lease_seconds=60)
    make_transactions(network, 1)
    assert one.step() is True
    _let_the_lease_expire()  # "one" stalls past its lease
    make_transactions(network, 1)
    assert two.step() is True
    make_transactions(network, 1)
    # "one" still believes its lease runs for a minute and does not renew it: the database
    # fences it out, because the lease is checked in the sealing transaction itself.
    assert one.step() is False
    assert unsealed() == 1
    assert two.step() is True
    assert_chain_is_sound()


# --- two sealers at once ----------------------------------------------------------------------
# The only tests that run the loop itself, in threads and in processes: they wait for its work
# by polling against a deadline, never for a fixed time.

def _wait_for(predicate, timeout: float, what: str) -> None:
    """Poll until ``predicate()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)



@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sealer_threads_never_fork_the_chain(network, settings, monkeypatch):
    settings.GRIDCOIN_BLOCK_MAX_TX = 4
    settings.GRIDCOIN_BLOCK_TIMEOUT = 0.05
    sealed_by: list[tuple[str, int]] = []
    real_seal = sealing.seal_next_block

    def recording_seal(*, holder, **kwargs):
        block = real_seal(holder=holder, **kwargs)
        if block is not None:
            sealed_by.append((holder, block.number))
        return block

    monkeypatch.setattr(sealing, "seal_next_block", recording_seal)
    loops = [SealerLoop(holder="thread-a", poll=0.01), SealerLoop(holder="thread-b", poll=0.01)]
    threads = [threading.Thread(target=loop.run, name=loop.holder) for loop in loops]
    for t in threads:
        t.start()
    try:
        hashes = []
        for _ in range(6):
            hashes += make_transactions(network, 5)
        _wait_for(lambda: unsealed() == 0, 20, "the sealer threads to seal everything")
    finally:
        for loop in loops:
            loop.stop()
        for t in threads:
            t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert unsealed() == 0
    # every transaction in exactly one block (block_id is a single column, so "at most one"
    # holds by construction; the counts show none was lost or double-counted)
    assert Transaction.objects.filter(tx_hash__in=hashes, block__isnull=False).count() == len(hashes)
    blocks = assert_chain_is_sound()
    assert sum(b.tx_count for b in blocks) == Transaction.objects.count()
    assert len(blocks) - 1 == len(sealed_by) >= 2  # block 0: the network's setup
    assert sorted(n for _, n in sealed_by) == list(range(1, len(blocks)))
    assert len({holder for holder, _ in sealed_by}) == 1, sealed_by
    assert SealerLease.objects.get().holder == ""  # released on stop


def _test_database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_run_sealer_processes_one_seals_the_other_takes_over(network, tmp_path):
    """Two real ``run_sealer`` processes on the test database. Kill the holder with SIGKILL (no
    release): the other takes over once the lease expires (LEASE_SECONDS, 10 s) and seals."""
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "GRIDCOIN_DATA_DIR": str(settings.DATA_DIR),
        "GRIDCOIN_ORDERER_KEY": settings.GRIDCOIN_ORDERER_KEY,
        "GRIDCOIN_KEK": settings.GRIDCOIN_KEK,
        "GRIDCOIN_BLOCK_TIMEOUT": "0.2",
        "GRIDCOIN_BACKGROUND_SEALER": "0",
        "LOG_LEVEL": "INFO",
    }
    manage = Path(settings.BASE_DIR) / "manage.py"
    procs: dict[str, subprocess.Popen] = {}
    logs = {}
    try:
        for name in ("proc-a", "proc-b"):
            logs[name] = (tmp_path / f"{name}.log").open("w")
            procs[name] = subprocess.Popen(
                [sys.executable, str(manage), "run_sealer", "--holder", name, "--poll", "0.05"],
                cwd=settings.BASE_DIR, env=env, stdout=logs[name], stderr=subprocess.STDOUT,
            )
        _wait_for(lambda: SealerLease.objects.filter(holder__in=procs).exists(), 30, "a sealer to take the lease")
        holder = SealerLease.objects.get().holder
        first = make_transactions(network, 12)
        _wait_for(lambda: unsealed() == 0, 20, "the first transactions to be sealed")
        assert Transaction.objects.filter(tx_hash__in=first, block__isnull=False).count() == 12
        blocks_before = len(assert_chain_is_sound())
        assert all(p.poll() is None for p in procs.values()), "a sealer exited"

        procs[holder].send_signal(signal.SIGKILL)
        procs[holder].wait(timeout=10)
        survivor = next(name for name in procs if name != holder)
        second = make_transactions(network, 5)
        _wait_for(lambda: unsealed() == 0, LEASE_SECONDS + 15, "the survivor to take over and seal")
        assert SealerLease.objects.get().holder == survivor
        assert Transaction.objects.filter(tx_hash__in=second, block__isnull=False).count() == 5
        blocks = assert_chain_is_sound()
        assert len(blocks) > blocks_before
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for log in logs.values():
            log.close()
    # the survivor stopped cleanly on SIGTERM and released the lease
    assert procs[survivor].returncode == 0, (tmp_path / f"{survivor}.log").read_text()
    assert SealerLease.objects.get().holder == ""
