"""Reads of the ledger: what a caller may see, and inclusion proofs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

from django.db import connection, models
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from .db import bound_cursor, sql_in
from .merkle import inclusion_proof
from .models import Account, Block, Identity, Organisation, OrgType, Transaction, TransactionQuerySet

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


# --- membership lookups (identities and organisations by id or MSP id), for apps
# One statement each through the bound cursor (prepared once used a few times): apps call them
# on every webhook delivery, where the ORM's query building and instances cost more than the
# query. Instances built here are as if the ORM had loaded them (no query for what is given).

_ORGANISATION_COLUMNS = "o.id, o.msp_id, o.name, o.org_type, o.created_at"
_IDENTITY_COLUMNS = "i.id, i.kind, i.public_key, i.created_at, i.revoked_at"
_Model = TypeVar("_Model", bound=models.Model)


class OrganisationRow(NamedTuple):
    """An organisation as a hot path reads it, without a model instance. ``created_at`` is
    text: it only tells a recreated row (a test database flushed) from the one it replaced."""

    pk: int
    msp_id: str
    name: str
    org_type: str
    created_at: str

    def organisation(self) -> Organisation:
        return _loaded(Organisation, id=self.pk, msp_id=self.msp_id, name=self.name, org_type=self.org_type)


class IdentityKey(NamedTuple):
    """An identity's key and revocation time as the database holds them now: what tells a
    caller whether its copy of the identity is stale."""

    pk: int
    public_key: bytes
    revoked_at: datetime | None


def _loaded(model: type[_Model], **values) -> _Model:
    instance = model(**values)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def _rows(sql: str, params: list) -> list[tuple]:
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _aware(moment: datetime | None) -> datetime | None:
    """A timestamp as the ORM would load it: SQLite's raw rows carry naive UTC times."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _organisation(row: tuple) -> Organisation:
    pk, msp_id, name, org_type, created_at = row
    return _loaded(Organisation, id=pk, msp_id=msp_id, name=name, org_type=org_type, created_at=_aware(created_at))


def _identity(organisation: Organisation, name: str, row: tuple) -> Identity:
    pk, kind, public_key, created_at, revoked_at = row
    return _loaded(Identity, id=pk, organisation=organisation, name=name, kind=kind, public_key=bytes(public_key),
                   created_at=_aware(created_at), revoked_at=_aware(revoked_at))


def organisation_with_msp_id(msp_id: str) -> Organisation | None:
    rows = _rows(f"SELECT {_ORGANISATION_COLUMNS} FROM ledger_organisation o WHERE o.msp_id = %s", [msp_id])
    return _organisation(rows[0]) if rows else None


def identity_named(organisation: Organisation, name: str) -> Identity | None:
    """``organisation``'s identity called ``name`` (its ``organisation`` is the one given)."""
    rows = _rows(f"SELECT {_IDENTITY_COLUMNS} FROM ledger_identity i WHERE i.organisation_id = %s AND i.name = %s",
                 [organisation.pk, name])
    return _identity(organisation, name, rows[0]) if rows else None


def organisations_with_identity(organisation_ids: list[int], identity_name: str,
                                ) -> dict[int, tuple[Organisation, Identity | None]]:
    """The organisations with these ids, each with its identity called ``identity_name`` (None
    if it has none)."""
    if not organisation_ids:
        return {}
    where, params = sql_in("o.id", sorted(set(organisation_ids)))
    rows = _rows(f"SELECT {_ORGANISATION_COLUMNS}, {_IDENTITY_COLUMNS} FROM ledger_organisation o "
                 f"LEFT JOIN ledger_identity i ON i.organisation_id = o.id AND i.name = %s WHERE {where}",
                 [identity_name, *params])
    found: dict[int, tuple[Organisation, Identity | None]] = {}
    for row in rows:
        organisation = _organisation(row[:5])
        identity = None if row[5] is None else _identity(organisation, identity_name, row[5:])
        found[organisation.pk] = (organisation, identity)
    return found


def identity_key_and_organisations(identity_id: int | None, msp_ids: list[str],
                                   ) -> tuple[IdentityKey | None, dict[str, OrganisationRow]]:
    """The current key and revocation time of identity ``identity_id`` (None: no such row, or
    no id given) and the organisations with these MSP ids (unknown ones are absent)."""
    where, params = sql_in("o.msp_id", list(msp_ids))
    rows = _rows("SELECT i.id, i.public_key, i.revoked_at, o.id, o.msp_id, o.name, o.org_type, "
                 "CAST(o.created_at AS text) FROM (SELECT 1) AS one LEFT JOIN ledger_identity i ON i.id = %s "
                 f"LEFT JOIN ledger_organisation o ON {where}", [identity_id, *params])
    first = rows[0]
    key = None if first[0] is None else IdentityKey(first[0], bytes(first[1]), _aware(first[2]))
    return key, {row[4]: OrganisationRow(*row[3:]) for row in rows if row[3] is not None}


def existing_accounts(keys: list[str]) -> set[tuple[str, str]]:
    """(key, asset) of every account with one of these keys, whatever its asset; build the keys
    with the chaincode's helpers (``ledger.chaincodes.energy.household_account`` and friends)."""
    if not keys:
        return set()
    where, params = sql_in("a.key", sorted(set(keys)))
    return {(key, asset) for key, asset in _rows(f"SELECT a.key, a.asset_id FROM ledger_account a WHERE {where}",
                                                 params)}


def transaction_with_hash(tx_hash: str) -> Transaction | None:
    """The transaction with this hash, with its invoker and the invoker's organisation."""
    return Transaction.objects.select_related("invoker__organisation").filter(tx_hash=tx_hash).first()


def account_balances(keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Balances of these (key, asset) accounts; accounts that do not exist are absent."""
    return {(key, asset): balance for key, asset, balance in Account.objects.filter(
        key__in={k for k, _ in keys}, asset_id__in={a for _, a in keys}).values_list("key", "asset_id", "balance")
        if (key, asset) in set(keys)}
