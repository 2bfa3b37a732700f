"""Tampering with a transaction, a posting or a state write: change any column of any row, move,
add or delete rows, and ``verify_chain`` must notice and name the transaction (and its block).
Each case edits the database in a savepoint, verifies, and rolls the edit back
(``tests/ledger/tampering.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from ledger.models import Account, Block, Identity, Posting, StateWrite, Transaction
from tests.ledger.tampering import (
    Sealed,
    assert_detected,
    json_variants,
    sealed_ledger,
    text_variants,
    update,
    update_delete,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(db) -> Sealed:
    return sealed_ledger()


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


@pytest.mark.parametrize("column", ["transaction_id", "namespace", "key", "value", "is_delete", "version"])
def test_any_state_write_column_is_caught_naming_the_transaction(sealed, column):
    writes = list(StateWrite.objects.exclude(namespace="config").order_by("id"))
    assert len(writes) == 5 and any(w.is_delete for w in writes)
    # and one of the membership's (namespace config): the same hashing covers all of them
    for write in [StateWrite.objects.filter(namespace="config").order_by("id").last(), *writes]:
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
    writes = list(StateWrite.objects.exclude(namespace="config").order_by("id"))
    for write in [StateWrite.objects.filter(namespace="config").order_by("id").last(), *writes]:
        assert_detected(
            update_delete(StateWrite, write.pk),
            block=sealed.tx_block(write.transaction_id),
            tx_id=write.transaction_id,
            label=f"delete state write {write.pk}",
        )
