"""The tampering kit for the ledger's tamper tests: a ledger sealed into several blocks
holding valid and rejected transactions, postings, state writes and deletes, plus a couple of
transactions not sealed yet; and the means to edit any of its rows as an attacker with
superuser rights would (on PostgreSQL the immutability triggers are switched off with
``session_replication_role``), verify, and roll the edit back."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from ledger import services as ledger
from ledger.crypto import generate_private_key
from ledger.models import Transaction
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import Report, verify_chain
from tests.ledger_helpers import Network

HEX = "0123456789abcdef"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# --- the ledger under attack ------------------------------------------------------------------


@dataclass
class Sealed:
    net: Network
    txs: list[Transaction]  # in id order, which is chain order here
    block_of: dict[int, int | None]  # transaction id -> block number (None: not sealed)

    def tx_block(self, tx_id: int) -> int | None:
        return self.block_of[tx_id]

    def first(self, *tx_ids: int) -> int:
        """The transaction the verifier meets first among these (chain order = id order here)."""
        return min(tx_ids)


def _build() -> Sealed:
    net = Network.create()
    alice, bob, utility = net.alice, net.bob, net.utility
    ledger.account_open(key="household:hh-alice", asset="INR", organisation=alice.organisation)
    # The membership's configuration transactions: block 0.
    assert lease_acquire(holder="tamper")
    setup = seal_next_block(holder="tamper", force=True).tx_count
    hh_alice, hh_bob = "household:hh-alice", "household:hh-bob"

    def transfer(member, source, dest, amount, asset="k"):
        return member.invoke("token", "transfer", {"from": source, "to": dest, "asset": asset, "amount": amount})

    steps = [
        # block 0
        lambda: net.mint(hh_alice, 5000),
        lambda: net.mint(hh_bob, 1000),
        lambda: alice.invoke("token", "note", {"key": "n1", "text": "first"}),
        lambda: transfer(alice, hh_alice, hh_bob, 99_999),  # rejected: insufficient funds
        # block 1
        lambda: transfer(alice, hh_alice, hh_bob, 700),
        lambda: alice.invoke("token", "note", {"key": "n1", "text": "second"}),
        lambda: bob.invoke("token", "burn", {"from": hh_bob, "asset": "k", "amount": 100}),
        lambda: alice.invoke("token", "mint", {"to": hh_alice, "asset": "k", "amount": 5}),  # rejected: policy
        # block 2
        lambda: alice.invoke("token", "note", {"key": "n1"}),  # delete
        lambda: bob.invoke("token", "note", {"key": "n2", "text": "bob's"}),
        lambda: net.mint(hh_alice, 300, asset="INR"),
        lambda: ledger.invoke(
            chaincode="token",
            function="transfer",  # rejected: forged signature
            args={"from": hh_bob, "to": hh_alice, "asset": "k", "amount": 1},
            invoker=bob.identity,
            idempotency_key="forged",
            signer=generate_private_key(),
        ),
        # block 3: a block holding only a rejected transaction
        lambda: transfer(bob, hh_bob, hh_alice, 1_000_000),
    ]
    results = [step() for step in steps]
    assert [r.status for r in results].count("rejected") == 4, [r.reason for r in results]
    sizes = [seal_next_block(holder="tamper", max_tx=4, force=True).tx_count for _ in range(4)]
    assert setup == Transaction.objects.filter(chaincode="config").count() and sizes == [4, 4, 4, 1]
    # not sealed yet: a transfer and a note
    assert transfer(bob, hh_bob, hh_alice, 10).ok
    assert utility.invoke("token", "note", {"key": "n3", "text": "utility"}).ok

    txs = list(Transaction.objects.order_by("id"))
    block_of = {tx.pk: (tx.block.number if tx.block_id else None) for tx in txs}
    return Sealed(net, txs, block_of)


def sealed_ledger() -> Sealed:
    """The ledger under attack, checked sound before any test edits it."""
    built = _build()
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
    config = Transaction.objects.filter(chaincode="config").count()
    assert (report.blocks, report.transactions, report.unsealed) == (5, 15 + config, 2)
    return built


# --- tampering machinery ----------------------------------------------------------------------


@contextmanager
def superuser():
    """Lift the PostgreSQL immutability triggers for this connection, as a superuser could."""
    postgres = connection.vendor == "postgresql"
    if postgres:
        with connection.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        if postgres:
            with connection.cursor() as cur:
                cur.execute("SET session_replication_role = DEFAULT")


def verify_after(mutate: Callable[[], Any]) -> Report:
    """Apply ``mutate`` in a savepoint, verify, and roll the change back."""
    with transaction.atomic():
        with superuser():
            mutate()
        report = verify_chain()
        transaction.set_rollback(True)
    return report


def assert_detected(
    mutate: Callable[[], Any],
    *,
    block: int | None | str = "any",
    tx_id: int | None | str = "any",
    words: tuple[str, ...] = (),
    label: str = "",
) -> None:
    report = verify_after(mutate)
    assert not report.ok, f"tampering went unnoticed: {label}"
    first = report.problems[0]
    where = f"{label}: {first}"
    if block != "any":
        assert first.block == block, where
    if tx_id != "any":
        assert first.tx_id == tx_id, where
    for word in words:
        assert word in first.message, where


def flip(text: str, i: int) -> str:
    c = text[i]
    for alphabet in (HEX, ALNUM):
        if c in alphabet:
            return text[:i] + alphabet[(alphabet.index(c) + 1) % len(alphabet)] + text[i + 1 :]
    return text[:i] + ("x" if c != "x" else "y") + text[i + 1 :]


def text_variants(text: str | None) -> list[str | None]:
    if not text:
        return ["x"]
    return list(dict.fromkeys(flip(text, i) for i in (0, len(text) // 2, len(text) - 1)))


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return flip(value, len(value) // 2) if value else "x"
    if isinstance(value, dict):
        return {**value, "tampered": 1}
    if isinstance(value, list):
        return [*value, 1]
    return 0  # None


def json_variants(value: Any) -> list[Any]:
    """Edits at the first and the last place of a JSON value, plus an added member."""
    if isinstance(value, dict) and value:
        keys = list(value)
        out = [{**value, k: changed(value[k])} for k in dict.fromkeys((keys[0], keys[-1]))]
        return [*out, {**value, "tampered": 1}, {k: v for k, v in value.items() if k != keys[-1]}]
    if isinstance(value, list) and value:
        return [[changed(value[0]), *value[1:]], [*value[:-1], changed(value[-1])], value[:-1]]
    if isinstance(value, list):
        return [[{}]]
    return [{"tampered": 1}]


def update(model, pk: int, **values: Any) -> Callable[[], None]:
    def apply() -> None:
        assert model.objects.filter(pk=pk).update(**values) == 1

    return apply


def update_delete(model, pk: int) -> Callable[[], None]:
    def apply() -> None:
        assert model.objects.filter(pk=pk).delete()[0] == 1

    return apply

