"""The standalone verifier, on an export of a tampered database, catches every edit that
``ledger_verify`` catches inside it (the cases of tests/ledger/test_ledger_tamper_*.py): each
column of transactions, postings, state writes, blocks, balances and world state, rows added,
moved and deleted, and an attacker who recomputes every hash but lacks the orderer key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from ledger.canonical import sha256_hex
from ledger.crypto import generate_private_key, public_bytes
from ledger.documents import block_header_bytes, body_digest, transaction_hash
from ledger.merkle import merkle_root
from ledger.models import Account, Block, Identity, Organisation, Posting, StateEntry, StateWrite, Transaction
from ledger.verify import trusted_orderer_keys
from tests.ledger.tampering import (
    Sealed,
    json_variants,
    sealed_ledger,
    superuser,
    text_variants,
    update,
    update_delete,
)
from tests.ledger.test_ledger_tamper_records import TX_COLUMNS, _transaction_variants
from tests.verifier.parity import assert_both_catch, both_after

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed(db) -> Sealed:
    return sealed_ledger()


@pytest.fixture
def pinned(sealed) -> list[str]:
    return sorted(trusted_orderer_keys())


def _sample(sealed: Sealed) -> list[Transaction]:
    """A valid transfer, a policy rejection, the forged one, one with a state delete, one not
    sealed: every kind of row the ledger holds."""
    txs = sealed.txs
    picks = [
        next(t for t in txs if t.function == "transfer" and t.status == "valid" and t.block_id),
        next(t for t in txs if t.function == "mint" and t.status == "rejected"),
        next(t for t in txs if t.reason.startswith("invalid signature")),
        next(t for t in txs if t.function == "note" and t.args.get("text") is None),
        next(t for t in txs if not t.block_id),
    ]
    return list({t.pk: t for t in picks}.values())


@pytest.mark.parametrize("column", TX_COLUMNS)
def test_any_transaction_column(sealed, pinned, column):
    for tx in _sample(sealed):
        for value in _transaction_variants(tx, column)[:2]:
            assert_both_catch(update(Transaction, tx.pk, **{column: value}), pinned, f"tx {tx.pk} {column}={value!r}")


def test_moving_deleting_and_orphaning_transactions(sealed, pinned):
    blocks = {b.number: b.pk for b in Block.objects.all()}
    sealed_txs = [t for t in sealed.txs if t.block_id]
    first, last = sealed_txs[1], sealed_txs[-1]
    assert_both_catch(update(Transaction, first.pk, block_id=blocks[2]), pinned, "move to block 2")
    assert_both_catch(update(Transaction, first.pk, block_id=None), pinned, "unseal")

    def swap() -> None:
        update(Transaction, first.pk, block_id=last.block_id)()
        update(Transaction, last.pk, block_id=first.block_id)()

    assert_both_catch(swap, pinned, "swap across blocks")

    def delete(tx=first) -> None:
        Posting.objects.filter(transaction_id=tx.pk).delete()
        StateWrite.objects.filter(transaction_id=tx.pk).delete()
        Transaction.objects.filter(pk=tx.pk).delete()

    assert_both_catch(delete, pinned, "delete a sealed transaction")
    top = Block.objects.order_by("-number").first()

    def delete_block() -> None:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM ledger_block WHERE id = %s", [top.pk])

    assert_both_catch(delete_block, pinned, "delete the last block")
    unsealed = next(t for t in sealed.txs if not t.block_id)
    assert_both_catch(lambda: connection.cursor().execute(
        "DELETE FROM ledger_unsealedtransaction WHERE transaction_id = %s", [unsealed.pk]), pinned, "unqueue")


@pytest.mark.parametrize("column", ["transaction_id", "account_id", "asset_id", "amount"])
def test_any_posting_column(sealed, pinned, column):
    accounts = list(Account.objects.values_list("pk", flat=True))
    ids = [t.pk for t in sealed.txs]
    for posting in Posting.objects.order_by("id")[::3]:
        if column == "transaction_id":
            i = ids.index(posting.transaction_id)
            variants = [ids[i + 1] if i + 1 < len(ids) else ids[i - 1]]
        elif column == "account_id":
            variants = [a for a in accounts if a != posting.account_id][:2]
        elif column == "asset_id":
            variants = ["INR" if posting.asset_id == "k" else "k"]
        else:
            variants = [posting.amount + 1, -posting.amount]
        for value in variants:
            assert_both_catch(update(Posting, posting.pk, **{column: value}), pinned,
                              f"posting {posting.pk} {column}={value!r}")


def test_adding_and_removing_postings(sealed, pinned):
    for posting in Posting.objects.order_by("id")[::4]:
        assert_both_catch(update_delete(Posting, posting.pk), pinned, f"delete posting {posting.pk}")
    alice = Account.objects.get(key="household:hh-alice", asset="k")
    bob = Account.objects.get(key="household:hh-bob", asset="k")
    for tx in _sample(sealed):
        def add_pair(tx=tx) -> None:
            Posting.objects.bulk_create([Posting(transaction=tx, account=alice, asset_id="k", amount=-1),
                                         Posting(transaction=tx, account=bob, asset_id="k", amount=1)])

        assert_both_catch(add_pair, pinned, f"add a balanced pair to tx {tx.pk}")


@pytest.mark.parametrize("column", ["transaction_id", "namespace", "key", "value", "is_delete", "version", "row"])
def test_any_state_write_column(sealed, pinned, column):
    ids = [t.pk for t in sealed.txs]
    for write in StateWrite.objects.order_by("id"):
        value = getattr(write, column, None)
        if column == "row":
            mutations = [update_delete(StateWrite, write.pk)]
        elif column == "transaction_id":
            i = ids.index(write.transaction_id)
            mutations = [update(StateWrite, write.pk, transaction_id=ids[i + 1] if i + 1 < len(ids) else ids[i - 1])]
        elif column in ("namespace", "key"):
            mutations = [update(StateWrite, write.pk, **{column: v}) for v in text_variants(value)[:1]]
        elif column == "value":
            mutations = [update(StateWrite, write.pk, value=v) for v in json_variants(value)[:2]]
        elif column == "is_delete":
            mutations = [update(StateWrite, write.pk, is_delete=not value)]
        else:
            mutations = [update(StateWrite, write.pk, version=value + d) for d in (1, -1)]
        for mutate in mutations:
            assert_both_catch(mutate, pinned, f"state write {write.pk} {column}")


@pytest.mark.parametrize("column", ["number", "previous_hash", "merkle_root", "timestamp", "tx_count", "header_hash",
                                    "signer_public_key", "signature"])
def test_any_block_column(sealed, pinned, column):
    stranger = public_bytes(generate_private_key()).hex()
    for block in Block.objects.order_by("number"):
        value = getattr(block, column)
        if column == "number":
            variants = [value + 100]
        elif column == "timestamp":
            variants = [value + timedelta(microseconds=1)]
        elif column == "tx_count":
            variants = [value + 1]
        elif column == "signer_public_key":
            variants = [stranger]
        else:
            variants = text_variants(value)[:1]
        for new in variants:
            assert_both_catch(update(Block, block.pk, **{column: new}), pinned, f"block {block.number} {column}")


def test_balances_and_world_state(sealed, pinned):
    for account in Account.objects.order_by("id"):
        assert_both_catch(update(Account, account.pk, balance=account.balance + 1), pinned, f"balance {account.key}")
    for entry in StateEntry.objects.order_by("id"):
        for mutate in [update_delete(StateEntry, entry.pk), update(StateEntry, entry.pk, version=entry.version + 1),
                       update(StateEntry, entry.pk, is_deleted=not entry.is_deleted),
                       *[update(StateEntry, entry.pk, value=v) for v in json_variants(entry.value)[:1]]]:
            assert_both_catch(mutate, pinned, f"state entry {entry.key}")
    assert_both_catch(lambda: StateEntry.objects.create(namespace="token", key="ghost", value={"t": 1}, version=1),
                      pinned, "extra state entry")


def test_swapping_an_identity_key_in_the_database(sealed, pinned):
    identity = sealed.net.alice.identity
    assert_both_catch(update(Identity, identity.pk, public_key=public_bytes(generate_private_key())), pinned,
                      "alice's key swapped")


def test_an_attacker_who_recomputes_every_hash_is_stopped_by_the_orderer_key(sealed, pinned):
    """Skim a Wh from a sealed transfer and fix every hash up to the block header, re-signed with
    a key of the attacker's own: the pinned orderer key stops it."""
    tx = _sample(sealed)[0]
    block = tx.block
    attacker = generate_private_key()

    def rewrite() -> None:
        for posting in Posting.objects.filter(transaction=tx):
            step = 1 if posting.amount > 0 else -1
            update(Posting, posting.pk, amount=posting.amount + step)()
            Account.objects.filter(pk=posting.account_id).update(balance=posting.account.balance + step)
        tx.refresh_from_db()
        from ledger.selectors import transaction_document

        document = transaction_document(tx)
        update(Transaction, tx.pk, tx_hash=sha256_hex(document["bytes"]))()
        leaves = [bytes.fromhex(h) for h in Transaction.objects.filter(block=block).order_by("id")
                  .values_list("tx_hash", flat=True)]
        root = merkle_root(leaves).hex()
        header = block_header_bytes(number=block.number, previous_hash=block.previous_hash, merkle_root=root,
                                    timestamp=block.timestamp, tx_count=block.tx_count)
        update(Block, block.pk, merkle_root=root, header_hash=sha256_hex(header),
               signer_public_key=public_bytes(attacker).hex(), signature=attacker.sign(header).hex())()

    inside, outside = both_after(rewrite, pinned)
    assert "untrusted orderer key" in inside.problems[0].message
    assert "untrusted orderer key" in outside.problems[0].message and outside.problems[0].block == block.number


MEMBERSHIP_EDITS = ["a household turned into a bank", "an account given to another organisation",
                    "a user turned into a service", "an identity revoked in the table only",
                    "a forged organisation row"]


@pytest.mark.parametrize("edit", MEMBERSHIP_EDITS)
def test_membership_table_edits_agree(sealed, pinned, edit):
    """An organisation's type, an account's owner, an identity's kind or revocation edited in the
    tables: with membership on chain (configuration transactions) both verifiers name it; a
    ledger whose membership lives only in the tables gives neither anything to compare with.
    Either way they agree."""
    from django.utils import timezone

    bob = Organisation.objects.get(msp_id="hh-bob")
    mutate = {
        MEMBERSHIP_EDITS[0]: update(Organisation, bob.pk, org_type="bank"),
        MEMBERSHIP_EDITS[1]: update(Account, Account.objects.get(key="household:hh-alice", asset="k").pk,
                                    organisation_id=bob.pk),
        MEMBERSHIP_EDITS[2]: update(Identity, sealed.net.alice.identity.pk, kind="service"),
        MEMBERSHIP_EDITS[3]: update(Identity, sealed.net.alice.identity.pk, revoked_at=timezone.now()),
        MEMBERSHIP_EDITS[4]: lambda: Organisation.objects.create(msp_id="forged", name="Forged", org_type="bank"),
    }[edit]
    inside, outside = both_after(mutate, pinned)
    assert inside.ok == outside.ok, (edit, inside.problems[:1], outside.problems[:1])


def test_helpers_agree_with_the_ledger(sealed):
    """The document builder the tests use to forge hashes is the ledger's own."""
    from ledger.selectors import transaction_document

    for tx in sealed.txs:
        document = transaction_document(tx)
        assert sha256_hex(document["bytes"]) == tx.tx_hash
        assert body_digest(tx.chaincode, tx.function, tx.args) == tx.body_digest
    assert transaction_hash  # the hash is the document's SHA-256, as docs/ledger-format.md says


# --- the global log: checkpoints and witness cosignatures ----------------------------------------


@pytest.fixture
def cosigned(sealed):
    """Two witnesses (a bank and an auditor) co-sign every checkpoint."""
    from ledger import log, notes
    from ledger import services as ledger
    from ledger.models import Checkpoint
    from tests.ledger_helpers import Member

    witnesses = []
    for msp_id, org_type in [("bank-w", "bank"), ("audit-w", "auditor")]:
        org = ledger.organisation_create(msp_id=msp_id, name=msp_id, org_type=org_type)
        key = generate_private_key()
        identity = ledger.identity_register(organisation=org, name="witness", public_key=public_bytes(key),
                                            kind="service")
        witnesses.append(Member(org, identity, key))
    for checkpoint in Checkpoint.objects.order_by("number"):
        for n, member in enumerate(witnesses):
            line = notes.cosign(checkpoint.body, f"{member.organisation.msp_id}/witness", member.key, 1_800_000_000 + n)
            log.cosignature_add(checkpoint, line)
    return witnesses


@pytest.mark.parametrize("column", ["tree_size", "root", "body", "signature_line", "header_hash"])
def test_any_checkpoint_column(cosigned, pinned, column):
    from ledger.models import Checkpoint

    for checkpoint in Checkpoint.objects.order_by("number"):
        value = getattr(checkpoint, column)
        new = value + 1 if column == "tree_size" else text_variants(value)[1]
        assert_both_catch(update(Checkpoint, checkpoint.pk, **{column: new}), pinned,
                          f"checkpoint {checkpoint.number} {column}")


def test_cosignatures_and_the_quorum(cosigned, pinned, tmp_path):
    from ledger.models import Checkpoint, Cosignature
    from tests.verifier.parity import export_and_verify

    for cosignature in Cosignature.objects.order_by("id")[::3]:
        assert_both_catch(update(Cosignature, cosignature.pk, line=text_variants(cosignature.line)[2]), pinned,
                          f"cosignature {cosignature.pk} line")
        assert_both_catch(update(Cosignature, cosignature.pk, timestamp=cosignature.timestamp + 1), pinned,
                          f"cosignature {cosignature.pk} time")
    assert_both_catch(update(Identity, cosigned[0].identity.pk, public_key=public_bytes(generate_private_key())),
                      pinned, "a witness key swapped")
    report = export_and_verify(tmp_path / "two", quorum=2)
    assert report.ok and report.cosignatures == 2, [str(p) for p in report.problems]
    latest = Checkpoint.objects.order_by("-number").first()
    with superuser():  # cosignatures are immutable rows
        Cosignature.objects.filter(checkpoint=latest, witness=cosigned[1].identity).delete()
    short = export_and_verify(tmp_path / "one", quorum=2)
    assert "1 valid witness cosignatures, 2 required" in str(short.problems[0])
    assert export_and_verify(tmp_path / "enough", quorum=1).ok
