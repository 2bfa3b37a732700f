"""The database itself refuses what the ledger must never do, whoever sends the SQL.

Raw SQL on ``connection.cursor()``, bypassing ``ledger.services``. The balance CHECK holds on
every database; the rest are PostgreSQL triggers (migration 0002). Both raise SQLSTATE class 23
(``check_violation`` 23514, ``restrict_violation`` 23001), which Django maps to IntegrityError.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from ledger.models import Account, Block, Posting, StateWrite, Transaction
from ledger.sealing import lease_acquire, seal_next_block
from tests.ledger_helpers import Network

pytestmark = pytest.mark.django_db

ALICE, BOB = "household:hh-alice", "household:hh-bob"


@pytest.fixture
def books(network: Network):
    """Two sealed blocks with transfers and notes, then one transaction not sealed yet."""
    network.mint(ALICE, 5000)
    assert network.alice.invoke("token", "note", {"key": "n", "text": "one"}).ok
    assert lease_acquire(holder="guards")
    seal_next_block(holder="guards", force=True)
    assert network.alice.invoke("token", "transfer", {"from": ALICE, "to": BOB, "asset": "k", "amount": 700}).ok
    assert network.alice.invoke("token", "note", {"key": "n", "text": "two"}).ok
    seal_next_block(holder="guards", force=True)
    assert network.bob.invoke("token", "transfer", {"from": BOB, "to": ALICE, "asset": "k", "amount": 5}).ok
    return network


def refused(sql: str, params: list | None = None, *, sqlstate: str | None = None, words: str = "") -> None:
    """The statement fails with an IntegrityError; the surrounding transaction stays usable."""
    with pytest.raises(IntegrityError) as info, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params or [])
    if sqlstate is not None:
        cause = info.value.__cause__
        assert getattr(cause, "sqlstate", None) == sqlstate, (sql, cause)
    assert words in str(info.value), (sql, str(info.value))


def accepted(sql: str, params: list | None = None) -> int:
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params or [])
        return cur.rowcount


def account_id(key: str, asset: str = "k") -> int:
    return Account.objects.get(key=key, asset_id=asset).pk


# --- (a) balances: every database ---------------------------------------------------------------


def test_a_holder_balance_cannot_go_negative(books):
    alice = account_id(ALICE)
    refused("UPDATE ledger_account SET balance = -1 WHERE id = %s", [alice], words="account_balance_not_negative")
    refused("UPDATE ledger_account SET balance = balance - 100000 WHERE id = %s", [alice])
    assert Account.objects.get(pk=alice).balance == 4305
    # issuance accounts are the one exception
    issuance = account_id("issuance")
    assert accepted("UPDATE ledger_account SET balance = balance - 1 WHERE id = %s", [issuance]) == 1


def test_a_posting_cannot_be_zero(books):
    tx = Transaction.objects.filter(function="transfer").first()
    refused(
        "INSERT INTO ledger_posting (transaction_id, account_id, asset_id, amount) VALUES (%s, %s, 'k', 0)",
        [tx.pk, account_id(ALICE)],
    )


# --- (b) postings balance per transaction and asset ----------------------------------------------

INSERT_POSTINGS = "INSERT INTO ledger_posting (transaction_id, account_id, asset_id, amount) VALUES "


def _fresh_transaction(network: Network, key: str) -> int:
    """A recorded transaction with no postings (a note), to attach raw postings to."""
    result = network.bob.invoke("token", "note", {"key": key, "text": "x"})
    assert result.ok
    return result.tx_id


def test_postings_and_state_writes_must_refer_to_an_existing_transaction(books):
    """Checked once per statement (migration 0010) on every database: the statement fails at
    once, not at commit."""
    missing = Transaction.objects.order_by("-pk").first().pk + 1_000
    alice, bob = account_id(ALICE), account_id(BOB)
    pair = "(%s, %s, 'k', -5), (%s, %s, 'k', 5)"
    refused(INSERT_POSTINGS + pair, [missing, alice, missing, bob], words="ledger_posting rows")
    refused("INSERT INTO ledger_statewrite (transaction_id, namespace, key, value, is_delete, version) "
            "VALUES (%s, 'token', 'x', NULL, TRUE, 1)", [missing], words="ledger_statewrite rows")
    tx = _fresh_transaction(books, "ref-1")
    # one missing transaction among existing ones refuses the whole statement
    refused(INSERT_POSTINGS + pair + ", " + pair, [tx, alice, tx, bob, missing, alice, missing, bob],
            words="ledger_posting rows")
    assert not Posting.objects.filter(transaction_id=tx).exists()
    # control: the same rows for transactions that exist are accepted
    assert accepted(INSERT_POSTINGS + pair, [tx, alice, tx, bob]) == 2
    assert accepted("INSERT INTO ledger_statewrite (transaction_id, namespace, key, value, is_delete, version) "
                    "VALUES (%s, 'token', 'x', NULL, TRUE, 1)", [tx]) == 1


@pytest.mark.postgres
def test_postings_that_do_not_sum_to_zero_are_refused(books):
    tx = _fresh_transaction(books, "raw-1")
    alice, bob = account_id(ALICE), account_id(BOB)
    Account.objects.create(key=ALICE, asset_id="INR", organisation=books.alice.organisation)
    alice_inr = account_id(ALICE, "INR")
    words = f"postings of transaction {tx} do not sum to zero"
    # one-sided
    refused(INSERT_POSTINGS + "(%s, %s, 'k', 100)", [tx, alice], sqlstate="23514", words=words)
    # two-sided but unequal
    refused(INSERT_POSTINGS + "(%s, %s, 'k', -100), (%s, %s, 'k', 99)", [tx, alice, tx, bob], words=words)
    # zero in total, but not per asset
    refused(INSERT_POSTINGS + "(%s, %s, 'k', -100), (%s, %s, 'INR', 100)", [tx, alice, tx, alice_inr], words=words)
    # half of a balanced pair: each statement must leave every transaction balanced
    refused(INSERT_POSTINGS + "(%s, %s, 'k', -100)", [tx, alice], words=words)
    # two transactions that cancel each other out are still each unbalanced
    other = _fresh_transaction(books, "raw-2")
    refused(INSERT_POSTINGS + "(%s, %s, 'k', -100), (%s, %s, 'k', 100)", [tx, alice, other, bob])
    assert not Posting.objects.filter(transaction_id__in=[tx, other]).exists()
    # control: a balanced insert in one statement is accepted
    assert accepted(INSERT_POSTINGS + "(%s, %s, 'k', -100), (%s, %s, 'k', 100)", [tx, alice, tx, bob]) == 2
    # and a later one-sided posting for the same transaction is refused again
    refused(INSERT_POSTINGS + "(%s, %s, 'k', 1)", [tx, bob], words=words)


# --- (c) history rows are immutable ---------------------------------------------------------------

HISTORY = {
    "ledger_posting": ["amount = amount * 2", "account_id = account_id", "asset_id = 'INR'"],
    "ledger_statewrite": [
        'value = \'{"text": "forged"}\'::jsonb',
        "version = version + 1",
        "is_delete = NOT is_delete",
        "key = key",
    ],
    "ledger_block": [
        "merkle_root = repeat('0', 64)",
        "number = number + 100",
        "timestamp = timestamp",
        "signature = signature",
    ],
}


@pytest.mark.postgres
@pytest.mark.parametrize("table", list(HISTORY))
def test_history_rows_cannot_be_updated_or_deleted(books, table):
    ids = {"ledger_posting": Posting, "ledger_statewrite": StateWrite, "ledger_block": Block}[table].objects
    row = ids.order_by("id").first()
    # even a no-op assignment is refused: history is not edited, whatever the edit
    for assignment in HISTORY[table]:
        refused(
            f"UPDATE {table} SET {assignment} WHERE id = %s",
            [row.pk],
            sqlstate="23001",
            words=f"{table} rows are immutable (UPDATE)",
        )
    refused(
        f"DELETE FROM {table} WHERE id = %s", [row.pk], sqlstate="23001", words=f"{table} rows are immutable (DELETE)"
    )
    refused(f"UPDATE {table} SET id = id")  # every row at once
    refused(f"DELETE FROM {table}")
    assert ids.filter(pk=row.pk).exists()


# --- (d) a transaction changes once: from unsealed to sealed -------------------------------------

TX_EDITS = {
    "id": "id = id + 100000",
    "chaincode": "chaincode = chaincode || 'x'",
    "function": "function = function || 'x'",
    "args": "args = args || '{\"tampered\": 1}'::jsonb",
    "invoker_id": "invoker_id = (SELECT min(i.id) FROM ledger_identity i WHERE i.id <> invoker_id)",
    "idempotency_key": "idempotency_key = COALESCE(idempotency_key, '') || 'x'",
    "body_digest": "body_digest = repeat('0', 64)",
    "proposed_at": "proposed_at = proposed_at + interval '1 microsecond'",
    "signature": "signature = 'x' || signature",
    "status": "status = CASE status WHEN 'valid' THEN 'rejected' ELSE 'valid' END",
    "reason": "reason = reason || 'x'",
    "result": "result = '{\"tampered\": 1}'::jsonb",
    "events": "events = '[]'::jsonb",
    "tx_hash": "tx_hash = repeat('0', 64)",
}


@pytest.mark.postgres
@pytest.mark.parametrize("column", list(TX_EDITS))
def test_no_column_of_a_transaction_changes(books, column):
    sealed = Transaction.objects.filter(block__isnull=False).order_by("id")
    unsealed = Transaction.objects.get(block__isnull=True)
    block = Block.objects.order_by("number").last()
    for tx in [*sealed, unsealed]:
        refused(
            f"UPDATE ledger_transaction SET {TX_EDITS[column]} WHERE id = %s",
            [tx.pk],
            sqlstate="23001",
            words="ledger_transaction rows are immutable (UPDATE)",
        )
    # nor while being sealed
    refused(
        f"UPDATE ledger_transaction SET block_id = %s, {TX_EDITS[column]} WHERE id = %s",
        [block.pk, unsealed.pk],
        sqlstate="23001",
    )
    assert Transaction.objects.get(pk=unsealed.pk).block_id is None


@pytest.mark.postgres
def test_a_transaction_is_sealed_once_and_never_unsealed_or_moved(books):
    first, last = Block.objects.order_by("number")
    sealed_tx = Transaction.objects.filter(block=first).first()
    unsealed = Transaction.objects.get(block__isnull=True)
    # a sealed transaction cannot move to another block, be unsealed, or be "re-sealed" in place
    refused("UPDATE ledger_transaction SET block_id = %s WHERE id = %s", [last.pk, sealed_tx.pk], sqlstate="23001")
    refused("UPDATE ledger_transaction SET block_id = NULL WHERE id = %s", [sealed_tx.pk], sqlstate="23001")
    refused("UPDATE ledger_transaction SET block_id = block_id WHERE id = %s", [sealed_tx.pk], sqlstate="23001")
    # an unsealed transaction cannot be "sealed" into no block
    refused("UPDATE ledger_transaction SET block_id = NULL WHERE id = %s", [unsealed.pk], sqlstate="23001")
    # sealing from NULL to a block is the one allowed change, and only once
    assert accepted("UPDATE ledger_transaction SET block_id = %s WHERE id = %s", [last.pk, unsealed.pk]) == 1
    refused("UPDATE ledger_transaction SET block_id = %s WHERE id = %s", [first.pk, unsealed.pk], sqlstate="23001")
    refused("UPDATE ledger_transaction SET block_id = NULL WHERE id = %s", [unsealed.pk], sqlstate="23001")
    assert Transaction.objects.get(pk=unsealed.pk).block_id == last.pk


@pytest.mark.postgres
def test_transactions_cannot_be_deleted(books):
    for tx in Transaction.objects.all():
        refused(
            "DELETE FROM ledger_transaction WHERE id = %s",
            [tx.pk],
            sqlstate="23001",
            words="ledger_transaction rows are immutable (DELETE)",
        )
    refused("DELETE FROM ledger_transaction")
    assert Transaction.objects.exclude(chaincode="config").count() == 5
