"""Reads of the ledger: what a caller may see, and inclusion proofs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, NamedTuple, TypeVar

from django.db import connection, models
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.fields.json import KT, KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, TruncDate, TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .db import bound_cursor, sql_in
from .keys import (
    DEVICES_NAMESPACE,
    ENERGY,
    PRICING_NAMESPACE,
    PRODUCER_KINDS,
    device_account,
    device_of_registers_key,
    device_of_windows_key,
    producer_account,
    registers_key,
    registers_namespace,
    windows_key,
)
from .merkle import inclusion_proof
from .models import (
    Account,
    AccountKind,
    Block,
    Identity,
    Organisation,
    OrgType,
    Posting,
    StateEntry,
    Transaction,
    TransactionQuerySet,
    TxStatus,
)
from .readings import chaincode_for

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


def genesis_membership_visible_to(user) -> dict | None:
    """The membership the configuration bootstrap adopted (what the transactions before it are
    checked against), for overseers: it names every member, key and account. None when the
    ledger has no bootstrap yet; PermissionError for anyone else."""
    if not _is_overseer(organisations_of(user)):
        raise PermissionError("the genesis membership is served to the utility and auditors")
    from .export import genesis_membership

    return genesis_membership()


def ledger_snapshot_visible_to(user) -> dict:
    """The membership with every balance and the unsealed transactions as of the newest block,
    for overseers (it names every member, account and balance); PermissionError for anyone else."""
    if not _is_overseer(organisations_of(user)):
        raise PermissionError("the ledger snapshot is served to the utility and auditors")
    from .export import ledger_snapshot

    return ledger_snapshot()


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
    with ``ledger.keys`` (``household_account`` and friends)."""
    if not keys:
        return set()
    where, params = sql_in("a.key", sorted(set(keys)))
    return {(key, asset) for key, asset in _rows(f"SELECT a.key, a.asset_id FROM ledger_account a WHERE {where}",
                                                 params)}


# --- the energy chaincodes' accounts and world state, for apps
# Keys are built with ``ledger.keys``; apps read them here rather than from the tables.

def balances(keys: list[str], asset: str = ENERGY) -> dict[str, int]:
    """The balance in ``asset`` of each account with one of these keys (no account: absent)."""
    if not keys:
        return {}
    return dict(Account.objects.filter(key__in=set(keys), asset_id=asset).values_list("key", "balance"))


def world_state(namespace: str, keys: list[str] | None = None, *, prefix: str = "") -> dict[str, Any]:
    """The current value of each of these keys in ``namespace`` (None: of every key, or every
    key starting with ``prefix``), in key order; deleted or never written keys are absent."""
    entries = StateEntry.objects.filter(namespace=namespace, is_deleted=False)
    if keys is not None:
        if not keys:
            return {}
        entries = entries.filter(key__in=set(keys))
    if prefix:
        entries = entries.filter(key__startswith=prefix)
    return dict(entries.order_by("key").values_list("key", "value"))


def meter_registers(meters: list[tuple[str, str]]) -> dict[str, dict]:
    """The last reading the ledger accepted from each meter, given as (public id, device kind):
    ``{"counter", "import_wh", "export_wh", "timestamp"}`` by public id; meters that never
    reported are absent."""
    by_namespace: dict[str, list[str]] = {}
    for public_id, kind in meters:
        by_namespace.setdefault(registers_namespace(kind), []).append(registers_key(public_id))
    found: dict[str, dict] = {}
    for namespace, keys in by_namespace.items():
        for key, value in world_state(namespace, keys).items():
            meter = device_of_registers_key(key)
            if meter is not None and value:
                found[meter] = value
    return found


def device_windows(public_ids: list[str] | None = None) -> dict[str, list[dict]]:
    """The funded windows of these devices (None: of every device that has any) by public id;
    a device without windows is absent."""
    keys = None if public_ids is None else [windows_key(p) for p in public_ids]
    found: dict[str, list[dict]] = {}
    for key, value in world_state(DEVICES_NAMESPACE, keys, prefix=windows_key("") if keys is None else "").items():
        public_id = device_of_windows_key(key)
        if public_id is not None and value:
            found[public_id] = value
    return found


def price_schedule_entries(keys: list[str] | None = None) -> dict[str, list[dict]]:
    """The utilities' price schedules (``ledger.keys.price_key``) as the ``pricing`` chaincode
    keeps them, by key (None: all)."""
    return {key: value or [] for key, value in world_state(PRICING_NAMESPACE, keys).items()}


# Apps that keep devices in their own tables read a batch of them with the ledger's data in
# one statement: the app gives its query over its own table (``devices_sql``, raw SQL for
# ``bound_cursor``), the ledger wraps it with the ledger's tables. PostgreSQL flattens the
# subquery, so the plan is the one a hand-written join would get.

class IdentityColumns(NamedTuple):
    """A device identity and its organisation as stored: hashable, so a hot path may keep what
    it built from it until any column changes (a revocation, a new key)."""

    pk: int
    name: str
    kind: str
    public_key: bytes
    revoked_at: datetime | None
    organisation_pk: int
    msp_id: str
    organisation_name: str
    org_type: str

    def identity(self) -> Identity:
        organisation = _loaded(Organisation, id=self.organisation_pk, msp_id=self.msp_id,
                               name=self.organisation_name, org_type=self.org_type)
        return _loaded(Identity, id=self.pk, organisation=organisation, name=self.name, kind=self.kind,
                       public_key=self.public_key, revoked_at=_aware(self.revoked_at))


IDENTITY_WIDTH = len(IdentityColumns._fields)


def devices_with_identities(devices_sql: str, params: list) -> list[tuple]:
    """Each row of ``devices_sql`` (which must have an ``identity_id`` column) followed by the
    columns of that identity and its organisation (``IdentityColumns(*row[-IDENTITY_WIDTH:])``);
    rows whose identity is missing are left out. Rows are flat tuples as fetched: a hot path
    keys what it builds from them by the whole row without rebuilding one per device."""
    with bound_cursor() as cur:
        cur.execute("SELECT s.*, i.id, i.name, i.kind, i.public_key, i.revoked_at, o.id, o.msp_id, o.name, "
                    f"o.org_type FROM ({devices_sql}) s JOIN ledger_identity i ON i.id = s.identity_id "
                    "JOIN ledger_organisation o ON o.id = i.organisation_id", params)
        rows = cur.fetchall()
    if connection.vendor == "postgresql":  # bytea arrives as bytes; elsewhere as a memoryview
        return rows
    key = -IDENTITY_WIDTH + IdentityColumns._fields.index("public_key")
    return [(*row[:key], bytes(row[key]), *row[key + 1:]) for row in rows]


def devices_balance_and_windows(devices_sql: str, params: list) -> list[tuple[str, int, list[dict]]]:
    """(public id, balance, funded windows) of each device of ``devices_sql`` (columns
    ``public_id``, ``kind``, ``organisation_id``): the balance of the account its readings move
    (``ledger.keys.meter_account``), 0 if it has none."""
    producers = ", ".join(["%s"] * len(PRODUCER_KINDS))
    with bound_cursor() as cur:
        # One index lookup per device for its account and its windows (correlated subqueries):
        # joined instead, on keys built from the device's columns, PostgreSQL hashed both whole
        # tables for every batch.
        cur.execute(
            "SELECT s.public_id, "
            "(SELECT a.balance FROM ledger_account a WHERE a.asset_id = %s AND a.key = "
            f"CASE WHEN s.kind IN ({producers}) THEN %s || o.msp_id ELSE %s || s.public_id END), "
            "(SELECT e.value FROM ledger_stateentry e WHERE e.namespace = %s AND e.key = %s || s.public_id "
            f"AND NOT e.is_deleted) FROM ({devices_sql}) s JOIN ledger_organisation o ON o.id = s.organisation_id",
            [ENERGY, *sorted(PRODUCER_KINDS), producer_account(""), device_account(""), DEVICES_NAMESPACE,
             windows_key(""), *params])
        rows = cur.fetchall()
    return [(public_id, balance or 0, (json.loads(windows) if isinstance(windows, (str, bytes)) else windows) or [])
            for public_id, balance, windows in rows]

def transaction_with_hash(tx_hash: str) -> Transaction | None:
    """The transaction with this hash, with its invoker and the invoker's organisation."""
    return Transaction.objects.select_related("invoker__organisation").filter(tx_hash=tx_hash).first()


def account_balances(keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Balances of these (key, asset) accounts; accounts that do not exist are absent."""
    return {(key, asset): balance for key, asset, balance in Account.objects.filter(
        key__in={k for k, _ in keys}, asset_id__in={a for _, a in keys}).values_list("key", "asset_id", "balance")
        if (key, asset) in set(keys)}


# --- sums per hour or per day, for charts
# Buckets are hours or days of the current time zone (``django.utils.timezone``), computed by
# the database (TruncHour / TruncDate with that zone work the same on SQLite and PostgreSQL):
# a month of a meter's readings is summed there, not loaded. Keys are what the truncation
# gives: an aware datetime (the hour's start) or a date.

Bucket = Literal["hour", "day"]
BucketKey = datetime | date


def _truncated(field: str, bucket: Bucket) -> TruncHour | TruncDate:
    zone = timezone.get_current_timezone()
    if bucket == "hour":
        return TruncHour(field, tzinfo=zone)
    if bucket == "day":
        return TruncDate(field, tzinfo=zone)
    raise ValueError(f"bucket must be 'hour' or 'day', not {bucket!r}")


def meter_energy_by_period(*, identity_id: int, device_kind: str, since: datetime, until: datetime,
                           bucket: Bucket) -> dict[BucketKey, int]:
    """Wh a meter reported per hour or day, from its accepted readings (the ``consumer.burn`` or
    ``generator.mint`` transactions it signed, at the time the meter stamped them) in
    ``[since, until)``: what a consumer drew (burned or not: a shortfall was still consumed), or
    what a producer produced. A reading delivered twice is one transaction; refused ones count
    nothing. Periods without a reading are absent."""
    chaincode, function = chaincode_for(device_kind)
    reported = "wh" if device_kind in PRODUCER_KINDS else "requested"
    rows = (Transaction.objects
            .filter(invoker_id=identity_id, chaincode=chaincode, function=function, status=TxStatus.VALID,
                    proposed_at__gte=since, proposed_at__lt=until)
            .annotate(period=_truncated("proposed_at", bucket)).values("period")
            .annotate(total=Sum(Cast(KT(f"result__{reported}"), models.BigIntegerField())))
            .order_by("period"))
    return {row["period"]: int(row["total"] or 0) for row in rows}


def campaign_burned_by_period(campaign: str, *, since: datetime, until: datetime,
                               bucket: Bucket) -> dict[BucketKey, int]:
    """Wh the beneficiaries' meters burned from a charity campaign's funded windows, per hour or
    day in ``[since, until)`` (by the time the meters stamped their readings): the
    ``campaigns`` of the accepted ``consumer.burn`` results. Periods without any are absent."""
    burned = KeyTextTransform(campaign, KeyTransform("campaigns", "result"))
    rows = (Transaction.objects
            .filter(chaincode="consumer", function="burn", result__has_key="campaigns", status=TxStatus.VALID,
                    proposed_at__gte=since, proposed_at__lt=until)
            .annotate(wh=Cast(burned, models.BigIntegerField())).filter(wh__isnull=False)
            .annotate(period=_truncated("proposed_at", bucket)).values("period")
            .annotate(total=Sum("wh")).order_by("period"))
    return {row["period"]: int(row["total"]) for row in rows}


def energy_issuance_by_period(*, since: datetime, until: datetime, bucket: Bucket,
                              asset: str = ENERGY) -> dict[BucketKey, tuple[int, int]]:
    """(minted, burned) per hour or day in ``[since, until)``: what left and what returned to the
    asset's issuance account, by the time each transaction was proposed. Periods with neither
    are absent."""
    rows = (Posting.objects
            .filter(account__kind=AccountKind.ISSUANCE, asset_id=asset, transaction__proposed_at__gte=since,
                    transaction__proposed_at__lt=until)
            .annotate(period=_truncated("transaction__proposed_at", bucket)).values("period")
            .annotate(minted=Sum(-F("amount"), filter=Q(amount__lt=0)), burned=Sum("amount", filter=Q(amount__gt=0)))
            .order_by("period"))
    return {row["period"]: (int(row["minted"] or 0), int(row["burned"] or 0)) for row in rows}


def balance_by_day(account_ids: list[int], *, first_day: date, last_day: date) -> list[tuple[date, int]]:
    """The summed balance of these accounts at the end of each day from ``first_day`` to
    ``last_day`` (days of the current time zone), from their postings: the balance before the
    first day, then each day's net change. Postings proposed after ``last_day`` count on it, so
    the last figure is the accounts' balance now."""
    if first_day > last_day:
        return []
    if not account_ids:
        return [(first_day + timedelta(days=n), 0) for n in range((last_day - first_day).days + 1)]
    zone = timezone.get_current_timezone()
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    postings = Posting.objects.filter(account_id__in=set(account_ids))
    opening = postings.filter(transaction__proposed_at__lt=start).aggregate(total=Sum("amount"))["total"] or 0
    changes: dict[date, int] = {}
    for row in (postings.filter(transaction__proposed_at__gte=start)
                .annotate(day=_truncated("transaction__proposed_at", "day")).values("day")
                .annotate(total=Sum("amount")).order_by("day")):
        day = min(row["day"], last_day)
        changes[day] = changes.get(day, 0) + int(row["total"] or 0)
    series, running = [], int(opening)
    for n in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=n)
        running += changes.get(day, 0)
        series.append((day, running))
    return series


# --- documents a stranger can check (issue 16): the exact bytes behind every hash and signature

CONFIG_NAMESPACE = "config"


def identity_config_key(qualified_name: str) -> str:
    """World-state key (namespace ``config``) of an identity named ``<msp>/<name>``."""
    return f"identity/{qualified_name}"


def transaction_document(tx: Transaction) -> dict[str, Any]:
    """The canonical proposal the invoker signed and the canonical transaction document whose
    SHA-256 is ``tx.tx_hash``, rebuilt from the stored rows, with where the transaction sits and
    the invoker's key in force then (docs/ledger-format.md)."""
    return transaction_documents([tx], tx.block if tx.block_id is not None else None)[0]


def transaction_documents(txs: list[Transaction], block: Block | None) -> list[dict[str, Any]]:
    """``transaction_document`` of each of ``txs`` (all in ``block``, or all unsealed), in id
    order, rebuilt together: a few queries for the lot rather than several per transaction."""
    from .export import InvokerKeys, rebuilt_transactions

    if not txs:
        return []
    ids = [tx.pk for tx in txs]
    positions: dict[int, int] = {}
    if block is not None:
        positions = {tx_id: i for i, tx_id in enumerate(Transaction.objects.in_block(block).order_by("id")
                                                        .values_list("id", flat=True))}
    keys = InvokerKeys(sorted({tx.invoker.qualified_name for tx in txs}))
    rebuilt = rebuilt_transactions("t.id IN (" + ",".join(["%s"] * len(ids)) + ")", ids, keys)
    return [{"tx_hash": tx.tx_hash, "bytes": tx.document, "proposal_bytes": tx.proposal, "signature": tx.signature,
             "invoker": tx.invoker, "invoker_public_key": tx.invoker_public_key,
             "block": block.number if block is not None else None, "leaf_index": positions.get(tx.tx_id)}
            for tx in rebuilt]


def signed_block_header(block: Block) -> dict[str, Any]:
    """The exact header the orderer signed (``documents.block_header``)."""
    from .documents import block_header

    return block_header(number=block.number, previous_hash=block.previous_hash, merkle_root=block.merkle_root,
                        timestamp=as_utc(block.timestamp), tx_count=block.tx_count)


def policies() -> dict[str, list[str] | None]:
    """Endorsement policy of every registered function: ``{"<chaincode>.<function>": [org
    types] or None (any)}``."""
    from .contracts import registry

    return {f"{contract.name}.{name}": (sorted(fn.orgs) if fn.orgs is not None else None)
            for contract in sorted(registry.contracts(), key=lambda c: c.name)
            for name, fn in sorted(contract.functions.items())}
