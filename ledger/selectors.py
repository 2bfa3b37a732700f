"""Reads of the ledger: what a caller may see, and inclusion proofs."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from .merkle import inclusion_proof
from .models import Account, Block, Organisation, OrgType, Transaction, TransactionQuerySet

# Organisation types that see every account and transaction (they run or audit the network).
OVERSEERS = {OrgType.UTILITY, OrgType.AUDITOR}


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


def transactions_visible_to(user) -> TransactionQuerySet:
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
    assert block is not None
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
