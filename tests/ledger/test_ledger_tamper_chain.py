"""Tampering with blocks, current balances and world state, by an attacker who recomputes every
hash they can, and what ``manage.py ledger_verify`` reports: ``verify_chain`` must notice and
name the first bad block, transaction, account or key (``tests/ledger/tampering.py``)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction

from ledger.canonical import sha256_hex
from ledger.crypto import generate_private_key, public_bytes
from ledger.documents import block_header_bytes
from ledger.merkle import merkle_root
from ledger.models import Account, Block, Posting, StateEntry, Transaction
from ledger.verify import Report, verify_chain
from tests.ledger.tampering import (
    Sealed,
    assert_detected,
    json_variants,
    sealed_ledger,
    superuser,
    text_variants,
    update,
    update_delete,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(db) -> Sealed:
    return sealed_ledger()


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
    # The membership's entries (namespace config) are checked the same way; their own tests are
    # in test_membership_on_chain.py.
    entries = list(StateEntry.objects.exclude(namespace="config").order_by("id"))
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
    config = Transaction.objects.filter(chaincode="config").count()
    assert f"5 blocks, {15 + config} transactions (2 not yet sealed)" in out.getvalue()
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
