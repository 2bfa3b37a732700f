"""Reads of the ledger: what a caller may see, and inclusion proofs."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from .merkle import inclusion_proof
from .models import Account, Block, Organisation, OrgType, Transaction

# Organisation types that see every account and transaction (they run or audit the network).
OVERSEERS = {OrgType.UTILITY, OrgType.AUDITOR}


def sql_in(column: str, values: list) -> tuple[str, list]:
    """A raw-SQL condition ``column`` in ``values`` and its parameters, for ``bound_cursor``: one
    binary array parameter on PostgreSQL (the statement text does not grow with the list), a
    placeholder list elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%b)", [list(values)]
    return f"{column} IN ({','.join(['%s'] * len(values))})", list(values)


@contextmanager
def bound_cursor():
    """A cursor for a batch's raw SQL (``%s`` placeholders). On PostgreSQL a psycopg cursor on
    Django's connection with server-side binding: parameters (arrays of a thousand keys) go
    to the server as parameters, where Django's cursor quotes them into the statement text in
    Python, which cost more CPU than the queries; a statement is prepared on its fifth use on
    a connection (``prepare_threshold`` in settings). Elsewhere Django's cursor."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cur:
            yield cur
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        yield cur


_PLAN_SETTINGS = {"enable_hashjoin": "off", "enable_mergejoin": "off", "enable_seqscan": "off"}


@contextmanager
def keyed_lookups():
    """A transaction (or a part of one) in which PostgreSQL joins by nested loops over indexes.

    A batch looks up a few hundred keys (accounts, devices, state entries) in tables of any
    size. PostgreSQL's planner often hashes the whole table instead: right after bulk loads its
    statistics are stale, and a join on an expression (an account key built from a device id)
    has no estimate. Measured on 10,000 accounts: 7 ms per 500 accounts hashed against 1 ms
    looked up, and the hashed plan grows with the table.

    Outside a transaction the block is one (``transaction.atomic``) and the settings end with
    it; inside one they are put back when the block ends (``set_config(..., true)`` lasts at
    most until the transaction ends, and a rollback undoes it). Nested blocks cost nothing."""
    if connection.vendor != "postgresql" or getattr(connection, "_keyed_lookups", False):
        with transaction.atomic():
            yield
        return
    owner = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(f"SELECT {', '.join(f'current_setting({s!r})' for s in _PLAN_SETTINGS)}, "
                        f"{', '.join(f'set_config({s!r}, {v!r}, true)' for s, v in _PLAN_SETTINGS.items())}")
            previous = cur.fetchone()[:len(_PLAN_SETTINGS)]
        connection._keyed_lookups = True
        try:
            yield
        finally:
            connection._keyed_lookups = False
        if not owner:  # the transaction goes on: put the settings back
            with connection.cursor() as cur:
                cur.execute("SELECT " + ", ".join(f"set_config({s!r}, %s, true)" for s in _PLAN_SETTINGS),
                            list(previous))


def as_utc(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        parsed = parse_datetime(moment)
        if parsed is None:
            raise ValueError(f"not a timestamp: {moment!r}")
        moment = parsed
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def organisations_of(user) -> list[Organisation]:
    """The ledger organisations a Django user acts for (through ``accounts`` memberships)."""
    if not user.is_authenticated:
        return []
    return list(Organisation.objects.filter(memberships__user=user).distinct())


def _is_overseer(orgs: list[Organisation]) -> bool:
    return any(o.org_type in OVERSEERS for o in orgs)


def accounts_visible_to(user) -> QuerySet[Account]:
    orgs = organisations_of(user)
    qs = Account.objects.select_related("asset", "organisation").order_by("id")
    if _is_overseer(orgs):
        return qs
    return qs.filter(organisation__in=orgs)


def transactions_visible_to(user) -> QuerySet[Transaction]:
    """A transaction is visible to its invoker's organisation, to the owners of every account
    it touches, and to overseers."""
    orgs = organisations_of(user)
    qs = Transaction.objects.select_related("invoker__organisation", "block").order_by("id")
    if _is_overseer(orgs):
        return qs
    return qs.filter(Q(invoker__organisation__in=orgs) | Q(postings__account__organisation__in=orgs)).distinct()


def blocks_visible_to(user) -> QuerySet[Block]:
    """Block headers carry only hashes; any signed-in member may read and verify them."""
    return Block.objects.order_by("number")


def transaction_proof(tx: Transaction) -> dict | None:
    """Leaf index, audit path and block header proving ``tx`` is in its block."""
    if tx.block_id is None:
        return None
    block = tx.block
    hashes = list(Transaction.objects.in_block(block).order_by("id").values_list("tx_hash", flat=True))
    index = hashes.index(tx.tx_hash)
    path = inclusion_proof([bytes.fromhex(h) for h in hashes], index)
    return {
        "tx_hash": tx.tx_hash,
        "leaf_index": index,
        "tree_size": len(hashes),
        "audit_path": [p.hex() for p in path],
        "block": block,
    }


def block_header_dict(block: Block) -> dict:
    from .documents import timestamp_text

    return {
        "number": block.number,
        "previous_hash": block.previous_hash,
        "merkle_root": block.merkle_root,
        "timestamp": timestamp_text(block.timestamp),
        "tx_count": block.tx_count,
        "header_hash": block.header_hash,
        "signer_public_key": block.signer_public_key,
        "signature": block.signature,
    }
