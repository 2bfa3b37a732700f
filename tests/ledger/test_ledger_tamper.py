"""Tampering: change any column of any ledger row and ``verify_chain`` must notice and say where.

The ledger is sealed into several blocks holding valid and rejected transactions, postings,
state writes and deletes, plus a couple of transactions not sealed yet. Each case edits the
database directly inside a savepoint (as an attacker with superuser rights would: on
PostgreSQL the immutability triggers are switched off with ``session_replication_role``),
runs the verifier, and rolls the edit back.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from ledger import services as ledger
from ledger.canonical import sha256_hex
from ledger.crypto import generate_private_key, public_bytes
from ledger.documents import block_header_bytes
from ledger.merkle import merkle_root
from ledger.models import Account, Block, Identity, Posting, StateEntry, StateWrite, Transaction
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import Report, verify_chain
from tests.ledger_helpers import Network

pytestmark = pytest.mark.django_db

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
    assert lease_acquire(holder="tamper")
    sizes = [seal_next_block(holder="tamper", max_tx=4, force=True).tx_count for _ in range(4)]
    assert sizes == [4, 4, 4, 1]
    # not sealed yet: a transfer and a note
    assert transfer(bob, hh_bob, hh_alice, 10).ok
    assert utility.invoke("token", "note", {"key": "n3", "text": "utility"}).ok

    txs = list(Transaction.objects.order_by("id"))
    block_of = {tx.pk: (tx.block.number if tx.block_id else None) for tx in txs}
    return Sealed(net, txs, block_of)


@pytest.fixture
def sealed(db) -> Sealed:
    built = _build()
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
    assert (report.blocks, report.transactions, report.unsealed) == (4, 15, 2)
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


# --- transactions -----------------------------------------------------------------------------


def _transaction_variants(tx: Transaction, column: str) -> list[Any]:
    value = getattr(tx, column)
    if column in ("chaincode", "function", "body_digest", "signature", "tx_hash"):
        return text_variants(value)
    if column in ("args", "result", "events"):
        return json_variants(value)
    if column == "idempotency_key":
        taken = set(Transaction.objects.filter(invoker_id=tx.invoker_id).values_list("idempotency_key", flat=True))
        return [v for v in text_variants(value) if v not in taken] + [None] if value else ["x"]
    if column == "reason":
        return [*text_variants(value), ""] if value else ["x"]
    if column == "status":
        return ["rejected" if value == "valid" else "valid"]
    if column == "proposed_at":
        return [value + timedelta(microseconds=1), value - timedelta(seconds=1)]
    if column == "invoker_id":
        return list(Identity.objects.exclude(pk=value).values_list("pk", flat=True))
    raise AssertionError(column)


TX_COLUMNS = [
    "chaincode",
    "function",
    "args",
    "invoker_id",
    "idempotency_key",
    "body_digest",
    "proposed_at",
    "signature",
    "status",
    "reason",
    "result",
    "events",
    "tx_hash",
]


@pytest.mark.parametrize("column", TX_COLUMNS)
def test_any_transaction_column_is_caught_naming_the_transaction(sealed, column):
    for tx in sealed.txs:
        for value in _transaction_variants(tx, column):
            assert_detected(
                update(Transaction, tx.pk, **{column: value}),
                block=sealed.tx_block(tx.pk),
                tx_id=tx.pk,
                label=f"tx {tx.pk} {column}={value!r}",
            )


def test_moving_a_transaction_between_blocks_is_caught_naming_the_block(sealed):
    sealed_txs = [tx for tx in sealed.txs if tx.block_id]
    blocks = {b.number: b.pk for b in Block.objects.all()}
    for tx in sealed.txs:
        here = sealed.tx_block(tx.pk)
        targets: list[int | None] = [n for n in blocks if n != here]
        if here is not None:
            targets.append(None)
        for target in targets:
            expected = min(n for n in (here, target) if n is not None)
            assert_detected(
                update(Transaction, tx.pk, block_id=blocks[target] if target is not None else None),
                block=expected,
                label=f"tx {tx.pk} from block {here} to {target}",
            )
    # Swapping two transactions of different blocks keeps every count right; each now claims a
    # block whose id range does not cover it, which is caught at the earlier block.
    a, b = sealed_txs[1], sealed_txs[-1]

    def swap() -> None:
        update(Transaction, a.pk, block_id=b.block_id)()
        update(Transaction, b.pk, block_id=a.block_id)()

    assert_detected(swap, block=sealed.tx_block(a.pk), words=("outside the block's transaction id range",),
                    label="swap")


def test_a_transaction_sealed_into_a_missing_block_is_caught(sealed):
    """Deleting a block row must not make its transactions disappear from the replay."""
    last = Block.objects.order_by("-number").first()
    (orphan,) = Transaction.objects.filter(block=last)
    assert orphan.status == "rejected"  # it has no effects that balances or state could betray

    def delete_block() -> None:
        with connection.cursor() as cur:  # raw SQL: the ORM would refuse (PROTECT)
            cur.execute("DELETE FROM ledger_block WHERE id = %s", [last.pk])

    assert_detected(delete_block, tx_id=orphan.pk, label="orphaned transaction of a deleted block")


def test_deleting_a_sealed_transaction_is_caught_naming_its_block(sealed):
    for tx in sealed.txs:
        here = sealed.tx_block(tx.pk)
        if here is None:
            continue  # not sealed yet: nothing vouches for it

        def delete(tx=tx) -> None:
            Posting.objects.filter(transaction_id=tx.pk).delete()
            StateWrite.objects.filter(transaction_id=tx.pk).delete()
            Transaction.objects.filter(pk=tx.pk).delete()

        assert_detected(delete, block=here, label=f"delete tx {tx.pk}")


# --- postings and state writes ----------------------------------------------------------------


def _neighbour(sealed: Sealed, tx_id: int) -> int:
    ids = [tx.pk for tx in sealed.txs]
    i = ids.index(tx_id)
    return ids[i + 1] if i + 1 < len(ids) else ids[i - 1]


@pytest.mark.parametrize("column", ["transaction_id", "account_id", "asset_id", "amount"])
def test_any_posting_column_is_caught_naming_the_transaction(sealed, column):
    postings = list(Posting.objects.order_by("id"))
    assert len(postings) >= 12
    accounts = list(Account.objects.values_list("pk", flat=True))
    for posting in postings:
        tx_id = posting.transaction_id
        if column == "transaction_id":
            other = _neighbour(sealed, tx_id)
            variants, culprit = [other], sealed.first(tx_id, other)
        else:
            culprit = tx_id
            if column == "account_id":
                variants = [a for a in accounts if a != posting.account_id]
            elif column == "asset_id":
                variants = ["INR" if posting.asset_id == "k" else "k"]
            else:
                variants = [a for a in (posting.amount + 1, -posting.amount, posting.amount * 2) if a]
        for value in variants:
            assert_detected(
                update(Posting, posting.pk, **{column: value}),
                block=sealed.tx_block(culprit),
                tx_id=culprit,
                label=f"posting {posting.pk} {column}={value!r}",
            )


def test_adding_or_removing_postings_is_caught_naming_the_transaction(sealed):
    for posting in Posting.objects.order_by("id"):
        tx_id = posting.transaction_id
        assert_detected(
            update_delete(Posting, posting.pk),
            block=sealed.tx_block(tx_id),
            tx_id=tx_id,
            label=f"delete posting {posting.pk}",
        )
    alice = Account.objects.get(key="household:hh-alice", asset="k")
    bob = Account.objects.get(key="household:hh-bob", asset="k")
    for tx in sealed.txs:

        def add_balanced_pair(tx=tx) -> None:
            Posting.objects.bulk_create(
                [
                    Posting(transaction=tx, account=alice, asset_id="k", amount=-1),
                    Posting(transaction=tx, account=bob, asset_id="k", amount=1),
                ]
            )

        assert_detected(add_balanced_pair, block=sealed.tx_block(tx.pk), tx_id=tx.pk, label=f"add to tx {tx.pk}")


def update_delete(model, pk: int) -> Callable[[], None]:
    def apply() -> None:
        assert model.objects.filter(pk=pk).delete()[0] == 1

    return apply


@pytest.mark.parametrize("column", ["transaction_id", "namespace", "key", "value", "is_delete", "version"])
def test_any_state_write_column_is_caught_naming_the_transaction(sealed, column):
    writes = list(StateWrite.objects.order_by("id"))
    assert len(writes) == 5 and any(w.is_delete for w in writes)
    for write in writes:
        tx_id, culprit = write.transaction_id, write.transaction_id
        value = getattr(write, column)
        if column == "transaction_id":
            variants = [_neighbour(sealed, tx_id)]
            culprit = sealed.first(tx_id, variants[0])
        elif column in ("namespace", "key"):
            variants = text_variants(value)
        elif column == "value":
            variants = json_variants(value)
        elif column == "is_delete":
            variants = [not value]
        else:
            variants = [value + 1, value - 1]
        for new in variants:
            assert_detected(
                update(StateWrite, write.pk, **{column: new}),
                block=sealed.tx_block(culprit),
                tx_id=culprit,
                label=f"state write {write.pk} {column}={new!r}",
            )


def test_removing_a_state_write_is_caught_naming_the_transaction(sealed):
    for write in StateWrite.objects.order_by("id"):
        assert_detected(
            update_delete(StateWrite, write.pk),
            block=sealed.tx_block(write.transaction_id),
            tx_id=write.transaction_id,
            label=f"delete state write {write.pk}",
        )


# --- blocks -----------------------------------------------------------------------------------

BLOCK_COLUMNS = [
    "number",
    "previous_hash",
    "merkle_root",
    "timestamp",
    "tx_count",
    "header_hash",
    "signer_public_key",
    "signature",
]


@pytest.mark.parametrize("column", BLOCK_COLUMNS)
def test_any_block_column_is_caught_naming_the_block(sealed, column):
    stranger = public_bytes(generate_private_key()).hex()
    for block in Block.objects.order_by("number"):
        value = getattr(block, column)
        words: tuple[str, ...] = ()
        expected: int | None | str = block.number
        if column == "number":
            variants = [value + 100]
            # the chain now has a gap at this number: the verifier says which number it expected
            words, expected = (f"expected block number {block.number}",), "any"
        elif column == "timestamp":
            variants = [value + timedelta(microseconds=1), value - timedelta(seconds=1)]
        elif column == "tx_count":
            variants = [value + 1, value - 1]
        elif column == "signer_public_key":
            variants = [*text_variants(value), stranger]
        else:
            variants = text_variants(value)
        for new in variants:
            assert_detected(
                update(Block, block.pk, **{column: new}),
                block=expected,
                words=words,
                label=f"block {block.number} {column}={new!r}",
            )


# --- current balances and world state ---------------------------------------------------------


def test_any_account_balance_is_caught_naming_the_account(sealed):
    for account in Account.objects.order_by("id"):
        deltas = [1, -1] if account.kind == "issuance" or account.balance > 0 else [1]
        for delta in deltas:
            assert_detected(
                update(Account, account.pk, balance=account.balance + delta),
                block=None,
                tx_id=None,
                words=("stores balance", repr(account.key)),
                label=f"account {account.key}/{account.asset_id} {delta:+}",
            )


@pytest.mark.parametrize("column", ["value", "version", "is_deleted", "row"])
def test_any_world_state_entry_is_caught_naming_the_key(sealed, column):
    entries = list(StateEntry.objects.order_by("id"))
    assert {(e.key, e.is_deleted) for e in entries} == {("n1", True), ("n2", False), ("n3", False)}
    for entry in entries:
        label = f"state {entry.namespace}/{entry.key}"
        if column == "row":
            mutations = [update_delete(StateEntry, entry.pk)]
        elif column == "value":
            mutations = [update(StateEntry, entry.pk, value=v) for v in json_variants(entry.value)]
        elif column == "version":
            mutations = [update(StateEntry, entry.pk, version=entry.version + d) for d in (1, -1)]
        else:
            mutations = [update(StateEntry, entry.pk, is_deleted=not entry.is_deleted)]
        for mutate in mutations:
            assert_detected(mutate, block=None, tx_id=None, words=(label,), label=f"{label} {column}")

    def add_entry() -> None:
        StateEntry.objects.create(namespace="token", key="ghost", value={"text": "boo"}, version=1)

    assert_detected(add_entry, words=("token/ghost",), label="extra state entry")


# --- a careful attacker who recomputes what they can --------------------------------------------


def _recomputed_hash(report: Report) -> str:
    match = re.search(r"recomputed ([0-9a-f]{64})", report.problems[0].message)
    assert match, report.problems[0]
    return match.group(1)


def test_recomputing_hashes_does_not_help_without_the_orderer_key(sealed):
    """Skim one Wh from a sealed transfer and fix up everything that is not signed by someone
    else; each layer of the chain still names the block, until only the orderer key is missing."""
    tx = next(t for t in sealed.txs if t.function == "transfer" and t.status == "valid" and t.block_id)
    block = tx.block
    number = block.number

    with transaction.atomic():
        with superuser():
            for posting in Posting.objects.filter(transaction=tx):
                step = 1 if posting.amount > 0 else -1
                update(Posting, posting.pk, amount=posting.amount + step)()
                Account.objects.filter(pk=posting.account_id).update(balance=posting.account.balance + step)
        report = verify_chain()
        assert (report.problems[0].tx_id, report.problems[0].block) == (tx.pk, number)
        assert "hash mismatch" in report.problems[0].message

        with superuser():
            update(Transaction, tx.pk, tx_hash=_recomputed_hash(report))()
        report = verify_chain()
        assert (report.problems[0].block, report.problems[0].tx_id) == (number, None), report.problems[0]
        assert "Merkle root" in report.problems[0].message

        leaves = [
            bytes.fromhex(h)
            for h in Transaction.objects.filter(block=block).order_by("id").values_list("tx_hash", flat=True)
        ]
        root = merkle_root(leaves).hex()
        with superuser():
            update(Block, block.pk, merkle_root=root)()
        report = verify_chain()
        assert report.problems[0].block == number and "header hash" in report.problems[0].message

        header = block_header_bytes(
            number=number,
            previous_hash=block.previous_hash,
            merkle_root=root,
            timestamp=block.timestamp,
            tx_count=block.tx_count,
        )
        with superuser():
            update(Block, block.pk, header_hash=sha256_hex(header))()
        report = verify_chain()
        assert report.problems[0].block == number, report.problems[0]
        # the next block still links to the old header, but this block's signature fails first
        assert "orderer signature does not verify" in report.problems[0].message

        attacker = generate_private_key()
        with superuser():
            update(
                Block, block.pk, signer_public_key=public_bytes(attacker).hex(), signature=attacker.sign(header).hex()
            )()
        report = verify_chain()
        assert report.problems[0].block == number and "untrusted orderer key" in report.problems[0].message
        transaction.set_rollback(True)
    assert verify_chain().ok


def test_recomputing_the_hash_of_edited_arguments_is_caught_by_the_invoker_signature(sealed):
    tx = next(t for t in sealed.txs if t.function == "transfer" and t.status == "valid" and t.block_id)
    args = {**tx.args, "amount": tx.args["amount"] + 1}
    with transaction.atomic():
        with superuser():
            update(Transaction, tx.pk, args=args)()
        first = verify_chain().problems[0]
        assert first.tx_id == tx.pk and "hash mismatch" in first.message
        with superuser():
            update(Transaction, tx.pk, tx_hash=_recomputed_hash(verify_chain()))()
        first = verify_chain().problems[0]
        assert first.tx_id == tx.pk and "body digest" in first.message
        from ledger.documents import body_digest

        with superuser():
            update(Transaction, tx.pk, body_digest=body_digest(tx.chaincode, tx.function, args))()
        first = verify_chain().problems[0]
        assert (first.block, first.tx_id) == (sealed.tx_block(tx.pk), tx.pk)
        assert "signature" in first.message
        transaction.set_rollback(True)


# --- the management command -------------------------------------------------------------------


def test_ledger_verify_command_says_ok_on_a_clean_ledger(sealed):
    out, err = io.StringIO(), io.StringIO()
    call_command("ledger_verify", stdout=out, stderr=err, no_color=True)
    assert "ledger OK" in out.getvalue()
    assert "4 blocks, 15 transactions (2 not yet sealed)" in out.getvalue()
    assert "INVALID" not in err.getvalue()


def test_ledger_verify_command_exits_1_naming_the_first_bad_block_and_transaction(sealed):
    tx = next(t for t in sealed.txs if t.function == "transfer" and t.status == "valid" and t.block_id)
    later = next(t for t in sealed.txs if t.block_id and t.block.number > tx.block.number)
    posting = Posting.objects.filter(transaction=tx).first()
    out, err = io.StringIO(), io.StringIO()
    with transaction.atomic():
        with superuser():
            update(Posting, posting.pk, amount=posting.amount * 2)()
            update(Transaction, later.pk, reason="tampered")()
        with pytest.raises(SystemExit) as exit_info:
            call_command("ledger_verify", stdout=out, stderr=err, no_color=True)
        transaction.set_rollback(True)
    assert exit_info.value.code == 1
    assert f"LEDGER INVALID: block {tx.block.number}, transaction {tx.tx_hash} (id {tx.pk})" in err.getvalue()
    assert "ledger OK" not in out.getvalue()
    # --all lists the later problem too
    err = io.StringIO()
    with transaction.atomic():
        with superuser():
            update(Posting, posting.pk, amount=posting.amount * 2)()
            update(Transaction, later.pk, reason="tampered")()
        with pytest.raises(SystemExit):
            call_command("ledger_verify", "--all", stdout=io.StringIO(), stderr=err, no_color=True)
        transaction.set_rollback(True)
    lines = [line for line in err.getvalue().splitlines() if line.startswith("LEDGER INVALID")]
    assert lines[0].startswith(f"LEDGER INVALID: block {tx.block.number}, transaction {tx.tx_hash}")
    assert any(f"(id {later.pk})" in line for line in lines)
    assert verify_chain().ok
