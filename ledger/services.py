"""The ledger's write path: membership, accounts and ``invoke``. Nothing else writes balances."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from . import chaincodes  # noqa: F401  (registers the built-in contracts)
from .canonical import CanonicalError, canonical_json, json_text
from .contracts import (
    ISSUANCE,
    AccountInfo,
    Context,
    ContractError,
    Effects,
    Invoker,
    check_balances,
    check_policy,
    net_postings,
    registry,
)
from .crypto import b64, public_bytes, verify_signature
from .db import bound_cursor
from .documents import SIGNATURE_REJECTION, body_digest, proposal_document, transaction_hash
from .models import (
    Account,
    AccountKind,
    Asset,
    Identity,
    IdentityKind,
    Organisation,
    Posting,
    StateEntry,
    StateWrite,
    Transaction,
    TxStatus,
    UnsealedTransaction,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


class LedgerError(Exception):
    """The invocation could not even be recorded (malformed request)."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used with a different body."""


@dataclass(frozen=True)
class InvokeResult:
    tx_id: int
    tx_hash: str
    status: str
    reason: str
    result: Any
    replayed: bool = False
    companion_id: int | None = None  # the id of the Companion row, when it was written with the transaction

    @property
    def ok(self) -> bool:
        return self.status == TxStatus.VALID


@dataclass(frozen=True)
class Companion:
    """A row the caller wants inserted by the same statement that commits a valid value
    movement (PostgreSQL fast path): ``row(tx_hash, result)`` gives its ``columns`` as a
    JSON-ready dict (passed as one jsonb parameter, so the statement keeps few parameters and
    psycopg keeps its parsed form cached). The row is written only if the transaction is; if
    the invocation takes another path (a refusal, state writes, SQLite) nothing is written and
    ``InvokeResult.companion_id`` is None, so the caller writes it itself. Saves a webhook's
    audit row a round trip."""

    table: str
    columns: tuple[str, ...]
    row: Callable[[str, Any], dict[str, Any]]


# --- membership and accounts ------------------------------------------------------------------

@transaction.atomic
def organisation_create(*, msp_id: str, name: str, org_type: str) -> Organisation:
    return Organisation.objects.create(msp_id=msp_id, name=name, org_type=org_type)


@transaction.atomic
def identity_register(*, organisation: Organisation, name: str, public_key: bytes,
                      kind: str = IdentityKind.USER) -> Identity:
    if len(public_key) != 32:
        raise LedgerError("an Ed25519 public key is 32 bytes")
    return Identity.objects.create(organisation=organisation, name=name, public_key=public_key, kind=kind)


@transaction.atomic
def asset_create(*, code: str, name: str, scale: int, display_unit: str, issuer: Organisation) -> Asset:
    asset = Asset.objects.create(code=code, name=name, scale=scale, display_unit=display_unit)
    Account.objects.create(key=ISSUANCE, asset=asset, kind=AccountKind.ISSUANCE, organisation=issuer)
    return asset


@transaction.atomic
def account_open(*, key: str, asset: Asset | str, organisation: Organisation,
                 kind: str = AccountKind.HOLDER) -> Account:
    """Open (or return the existing) zero-balance account; moves no value."""
    if kind == AccountKind.ISSUANCE or key == ISSUANCE:
        raise LedgerError("issuance accounts are opened with their asset")
    asset_code = asset.code if isinstance(asset, Asset) else asset
    account, created = Account.objects.get_or_create(
        key=key, asset_id=asset_code, defaults={"organisation": organisation, "kind": kind}
    )
    if not created and account.organisation_id != organisation.pk:
        raise LedgerError(f"{asset_code} account {key!r} belongs to another organisation")
    return account


# --- invoke -----------------------------------------------------------------------------------

def invoker_of(identity: Identity) -> Invoker:
    org = identity.organisation
    return Invoker(identity_id=identity.pk, name=f"{org.msp_id}/{identity.name}", msp_id=org.msp_id,
                   org_id=org.pk, org_type=org.org_type, kind=identity.kind, identity_name=identity.name)


def invoke(*, chaincode: str, function: str, args: dict[str, Any], invoker: Identity,
           idempotency_key: str | None, signer: Ed25519PrivateKey | None = None,
           signature: bytes | None = None, proposed_at: datetime | None = None,
           savepoint: bool = True, companion: Companion | None = None) -> InvokeResult:
    """Run ``chaincode.function(args)`` as ``invoker`` and commit its effects atomically.

    The invoker's signature covers the canonical proposal; pass ``signature`` (device keys) or
    ``signer`` (custodial keys) to produce it. Rejections are recorded and move nothing.

    ``savepoint=False`` is for callers that already hold a transaction and have serialised the
    invocation themselves (a webhook that claimed its event id): it saves the savepoint's two
    round trips, and in exchange any database error (e.g. a reused idempotency key) aborts the
    caller's whole transaction instead of being handled here.
    """
    call = call_prepare(chaincode=chaincode, function=function, args=args, invoker=invoker,
                        idempotency_key=idempotency_key, signer=signer, signature=signature, proposed_at=proposed_at)

    # Three ways to commit, fastest first (PostgreSQL): a value movement whose contract reads
    # nothing is one autocommitted statement; otherwise a transaction whose value movement is
    # one statement; otherwise (SQLite, state writes, refusals to name) step by step.
    postgres = connection.vendor == "postgresql"
    if idempotency_key is None or not call.signature_ok:
        # Keyless or forged: nothing but the identical transaction hash recognises a resubmission,
        # and only the careful path looks for it before inserting.
        postgres = False
    if not savepoint:
        if not connection.in_atomic_block:
            raise LedgerError("savepoint=False runs only inside the caller's transaction")
        # No savepoint, no retries: any database error aborts the caller's transaction.
        with transaction.atomic(savepoint=False):
            return _invoke_once(call, fast=postgres, strict=True, companion=companion)
    mode = ("single" if not connection.in_atomic_block else "fast") if postgres else "careful"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            if mode == "single":
                outcome = _invoke_single_statement(call, companion)
                if outcome is not None:
                    return outcome
                mode = "fast"
            with transaction.atomic():
                return _invoke_once(call, fast=mode != "careful", companion=companion)
        except _StaleDirectory:
            _directory.clear()
            continue
        except IntegrityError as exc:
            if _constraint(exc) == "account_balance_not_negative" and mode != "careful":
                mode = "careful"  # the careful path names the account that cannot pay
                continue
            existing = _idempotent_match(invoker.pk, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, call.digest)
        except OperationalError as exc:
            if _sqlstate(exc) in RETRYABLE_SQLSTATES and attempt < MAX_ATTEMPTS:
                logger.info("invoke %s.%s retried after %s", chaincode, function, _sqlstate(exc))
                time.sleep(random.uniform(0, 0.002 * attempt))  # let the other party finish
                continue
            raise
    raise LedgerError(f"{chaincode}.{function} could not be committed after {MAX_ATTEMPTS} attempts")


_signer_publics: dict[int, tuple[Ed25519PrivateKey, bytes]] = {}


def _public_of(signer: Ed25519PrivateKey) -> bytes:
    """The signer's public key, remembered per key object (kept alive by the cache, so its id
    cannot be reused while cached)."""
    entry = _signer_publics.get(id(signer))
    if entry is None or entry[0] is not signer:
        if len(_signer_publics) > 64:  # long-lived signers only; a few keys in memory at most
            _signer_publics.clear()
        entry = _signer_publics[id(signer)] = (signer, public_bytes(signer))
    return entry[1]


def _constraint(exc: BaseException) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def _idempotent_match(invoker_id: int, key: str | None) -> Transaction | None:
    if key is None:
        return None
    return Transaction.objects.filter(invoker_id=invoker_id, idempotency_key=key).first()


def _replay(existing: Transaction, digest: str) -> InvokeResult:
    if existing.body_digest != digest:
        raise IdempotencyConflict(
            f"idempotency key {existing.idempotency_key!r} was already used with a different body"
        )
    return InvokeResult(tx_id=existing.pk, tx_hash=existing.tx_hash, status=existing.status,
                        reason=existing.reason, result=existing.result, replayed=True)


@dataclass(frozen=True)
class _Call:
    identity: Identity
    who: Invoker
    proposal: dict[str, Any]
    payload: bytes  # the canonical proposal the signature covers
    signature: bytes
    signature_ok: bool
    digest: str
    proposed_at: datetime


class _NeedsTransaction(Exception):
    """The contract wants to read the ledger: it cannot run as a single statement."""


class _NoReads:
    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        raise _NeedsTransaction

    def accounts(self, keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
        raise _NeedsTransaction

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None:
        raise _NeedsTransaction


def call_prepare(*, chaincode: str, function: str, args: dict[str, Any], invoker: Identity,
                 idempotency_key: str | None, signer: Ed25519PrivateKey | None,
                 signature: bytes | None, proposed_at: datetime | None) -> _Call:
    """Validate a request and build its signed canonical proposal (shared with the batch path);
    raises LedgerError for a request that cannot even be recorded."""
    if not isinstance(args, dict):
        raise LedgerError("args must be a JSON object")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise LedgerError("idempotency keys are 1 to 255 characters")
    who = invoker_of(invoker)
    proposed_at = proposed_at or timezone.now()
    proposal = proposal_document(chaincode=chaincode, function=function, args=args, invoker=who.name,
                                 idempotency_key=idempotency_key, proposed_at=proposed_at)
    try:
        payload = canonical_json(proposal)
    except CanonicalError as exc:
        raise LedgerError(f"args are not ledger JSON: {exc}") from exc
    if b"\\u0000" in payload:
        raise LedgerError("args must not contain NUL characters")
    # A signature made here by the key whose public half is registered is valid by
    # construction; checking the key pair is as strong as verifying and 100x cheaper.
    if signature is None:
        if signer is None:
            raise LedgerError("invoke needs the invoker's signature or signer")
        signature = signer.sign(payload)
        signature_ok = _public_of(signer) == bytes(invoker.public_key)
    else:
        signature_ok = verify_signature(bytes(invoker.public_key), signature, payload)
    digest = body_digest(chaincode, function, args, checked=True)  # args passed the proposal's check
    return _Call(invoker, who, proposal, payload, signature, signature_ok, digest, proposed_at)


def _invoke_single_statement(call: _Call, companion: Companion | None = None) -> InvokeResult | None:
    """A pure value movement (the contract read nothing, wrote no state) committed as one
    autocommitted statement: one round trip, no BEGIN/COMMIT. Anything else returns None
    and runs in a transaction instead, which also records refusals."""
    if not call.signature_ok or call.identity.revoked_at is not None:
        return None
    chaincode, function = call.proposal["chaincode"], call.proposal["function"]
    try:
        fn = registry.resolve(chaincode, function)
        check_policy(fn, call.who, chaincode, function)
        ctx = Context(chaincode=chaincode, function=function, args=call.proposal["args"], invoker=call.who,
                      now=call.proposed_at, reader=_NoReads(), namespace=fn.namespace)
        result = fn.fn(ctx)
        if not ctx.effects.postings or ctx.effects.state_writes:
            return None
        return _commit_transfer(call.identity, call.proposal, call.payload, call.signature, call.digest,
                                call.proposed_at, result, ctx.effects, companion)
    except (ContractError, _NeedsTransaction):
        return None


def _covered(ctx: Context) -> bool:
    """Every account this invocation debits was read under lock by the contract, so an
    overdraft is refused here (recorded) rather than by the database CHECK (an error). Needed
    when there is no savepoint to roll back to."""
    deltas = net_postings(ctx.effects.postings)
    locked = ctx.locked_accounts()
    if any(delta < 0 and key not in locked for key, delta in deltas.items()):
        return False
    check_balances({k: d for k, d in deltas.items() if d < 0}, locked)
    return True


def _invoke_once(call: _Call, *, fast: bool, strict: bool = False, companion: Companion | None = None) -> InvokeResult:
    identity, who, proposal, payload = call.identity, call.who, call.proposal, call.payload
    signature, digest, proposed_at = call.signature, call.digest, call.proposed_at
    reader = _DatabaseReader()
    effects = Effects()
    result: Any = None
    status, reason = TxStatus.VALID.value, ""
    applied: tuple[list[tuple[AccountInfo, int]], list[list]] = ([], [])
    proposal_key = proposal["idempotency_key"]
    if not call.signature_ok:
        status, reason = TxStatus.REJECTED.value, SIGNATURE_REJECTION
        proposal = {**proposal, "idempotency_key": None}  # a forgery must not claim the real key
    elif identity.revoked_at is not None:
        status, reason = TxStatus.REJECTED.value, f"identity {who.name} is revoked"
    else:
        try:
            fn = registry.resolve(proposal["chaincode"], proposal["function"])
            check_policy(fn, who, proposal["chaincode"], proposal["function"])
            ctx = Context(chaincode=proposal["chaincode"], function=proposal["function"], args=proposal["args"],
                          invoker=who, now=proposed_at, reader=reader, namespace=fn.namespace)
            result = fn.fn(ctx)
            effects = ctx.effects
            if fast and effects.postings and not effects.state_writes and (not strict or _covered(ctx)):
                return _commit_transfer(identity, proposal, payload, signature, digest, proposed_at, result,
                                        effects, companion)
            applied = _apply(effects, reader)
        except ContractError as exc:
            status, reason, result, effects = TxStatus.REJECTED.value, exc.reason, None, Effects()
            applied = ([], [])

    postings, state_writes = applied
    sig_text = b64(signature)
    tx_hash = transaction_hash(
        proposal=payload if proposal["idempotency_key"] == proposal_key else canonical_json(proposal),
        signature=sig_text, status=status, reason=reason, result=result,
        events=effects.events,
        postings=[[info.key, info.asset, amount] for info, amount in postings],
        state_writes=state_writes,
    )
    if proposal["idempotency_key"] is None:
        # Deterministic signatures make a resubmitted keyless (or forged) proposal hash the same:
        # answer with the recorded transaction instead of a duplicate.
        same = Transaction.objects.filter(tx_hash=tx_hash).first()
        if same is not None:
            return InvokeResult(tx_id=same.pk, tx_hash=same.tx_hash, status=same.status, reason=same.reason,
                                result=same.result, replayed=True)
    tx = Transaction.objects.create(
        chaincode=proposal["chaincode"], function=proposal["function"], args=proposal["args"],
        invoker_id=identity.pk, idempotency_key=proposal["idempotency_key"], body_digest=digest,
        proposed_at=proposed_at, signature=sig_text, status=status, reason=reason, result=result,
        events=effects.events, tx_hash=tx_hash,
    )
    UnsealedTransaction.objects.create(transaction_id=tx.pk)
    if postings:
        Posting.objects.bulk_create(
            Posting(transaction_id=tx.pk, account_id=info.id, asset_id=info.asset, amount=amount)
            for info, amount in postings
        )
    if state_writes:
        StateWrite.objects.bulk_create(
            StateWrite(transaction_id=tx.pk, namespace=ns, key=key, value=value, is_delete=is_delete, version=version)
            for ns, key, value, is_delete, version in state_writes
        )
    return InvokeResult(tx_id=tx.pk, tx_hash=tx_hash, status=status, reason=reason, result=result)


class _StaleDirectory(Exception):
    """A cached account id no longer names the same account (e.g. a test database was reset)."""


class _AccountDirectory:
    """Process-wide cache of the immutable part of accounts: (key, asset) -> id, kind, owner.
    Balances are never cached; the write statement re-checks id, key and asset."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], AccountInfo] = {}

    def resolve(self, keys: list[tuple[str, str]], *, fresh: bool = False) -> dict[tuple[str, str], AccountInfo]:
        missing = keys if fresh else [k for k in keys if k not in self._entries]
        if missing:
            if len(self._entries) > 200_000:
                self._entries.clear()
            found = _select_accounts(missing, lock=False)
            for key in missing:
                self._entries.pop(key, None)
            self._entries.update(found)
        return {k: self._entries[k] for k in keys if k in self._entries}

    def clear(self) -> None:
        self._entries.clear()


_directory = _AccountDirectory()


def _check_accounts(wanted: list[tuple[str, str]], accounts: dict[tuple[str, str], AccountInfo],
                    owner_checks: list[tuple[str, str, int]]) -> None:
    for key, asset in wanted:
        if (key, asset) not in accounts:
            raise ContractError(f"no {asset} account {key!r}")
    for key, asset, org_id in owner_checks:
        if accounts[(key, asset)].organisation_id != org_id:
            raise ContractError(f"{asset} account {key!r} does not belong to the invoker's organisation")


def _commit_transfer(identity: Identity, proposal: dict[str, Any], payload: bytes, signature: bytes, digest: str,
                     proposed_at: datetime, result: Any, effects: Effects,
                     companion: Companion | None = None) -> InvokeResult:
    """PostgreSQL hot path for value movements without state writes: balances, transaction and
    postings in one statement. The database CHECK refuses overdrafts (the caller then retries on
    the careful path for a named reason); the postings trigger refuses unbalanced sums.
    The transaction id is drawn only after the account rows are locked, so ids order
    transactions that share an account in commit order (the verifier replays in id order)."""
    deltas = net_postings(effects.postings)
    wanted = list(dict.fromkeys([*deltas, *((k, a) for k, a, _ in effects.owner_checks)]))
    accounts = _directory.resolve(wanted)
    try:
        _check_accounts(wanted, accounts, effects.owner_checks)
    except ContractError:
        # The cache may be stale; only a fresh read may refuse the invocation.
        accounts = _directory.resolve(wanted, fresh=True)
        _check_accounts(wanted, accounts, effects.owner_checks)
    sig_text = b64(signature)
    status = TxStatus.VALID.value
    tx_hash = transaction_hash(
        proposal=payload, signature=sig_text, status=status, reason="", result=result, events=effects.events,
        postings=[[key, asset, amount] for (key, asset), amount in deltas.items()], state_writes=[],
    )
    fixed = [
        proposal["chaincode"], proposal["function"], json_text(proposal["args"]), identity.pk,
        proposal["idempotency_key"], digest, proposed_at, sig_text, status, "",
        None if result is None else json_text(result), json_text(effects.events), tx_hash, len(deltas),
    ]
    extra = None if companion is None else (companion, json_text(companion.row(tx_hash, result)))
    for _ in range(2):
        row = _transfer_statement([(accounts[k], d) for k, d in deltas.items()], fixed, extra)
        if row is not None:
            return InvokeResult(tx_id=row[0], tx_hash=tx_hash, status=status, reason="", result=result,
                                companion_id=row[2] if extra else None)
        # A cached id no longer names its account and the statement wrote nothing: read afresh.
        accounts = _directory.resolve(wanted, fresh=True)
        _check_accounts(wanted, accounts, effects.owner_checks)
    raise _StaleDirectory()


def _transfer_statement(postings: list[tuple[AccountInfo, int]], fixed: list[Any],
                        extra: tuple[Companion, str] | None = None) -> tuple | None:
    update_rows = ",".join(["(%s::bigint,%s::text,%s::text,%s::bigint,%s::bigint)"] * len(postings))
    posting_rows = ",".join(["(%s::int,%s::bigint,%s::text,%s::bigint)"] * len(postings))
    account_rows: list[Any] = []
    for info, amount in postings:
        account_rows += [info.id, info.key, info.asset, info.organisation_id, amount]
    params: list[Any] = [*account_rows, *account_rows, len(postings), *fixed]  # lk, upd, the count, tx
    for n, (info, amount) in enumerate(postings):
        params += [n, info.id, info.asset, amount]
    # ``lk`` locks the rows in id order first (an uncorrelated sub-select runs once, before the
    # update locks anything), so transfers crossing the same accounts queue instead of deadlocking.
    # It also checks that every cached id still names the same account: if one does not, the
    # statement writes nothing at all and returns no row.
    sql = (
        "WITH lk AS (SELECT a.id FROM ledger_account AS a "
        f"JOIN (VALUES {update_rows}) AS v(id, key, asset, org, d) "
        "ON a.id = v.id AND a.key = v.key AND a.asset_id = v.asset AND a.organisation_id = v.org "
        "ORDER BY a.id FOR UPDATE OF a), "
        "upd AS (UPDATE ledger_account AS a SET balance = a.balance + v.d "
        f"FROM (VALUES {update_rows}) AS v(id, key, asset, org, d) "
        "WHERE a.id = v.id AND (SELECT count(*) FROM lk) = %s RETURNING a.id), "
        "tx AS (INSERT INTO ledger_transaction (chaincode, function, args, invoker_id, idempotency_key, body_digest, "
        "proposed_at, signature, status, reason, result, events, tx_hash) "
        "SELECT %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s "
        "WHERE (SELECT count(*) FROM upd) = %s RETURNING id), "
        "ins AS (INSERT INTO ledger_posting (transaction_id, account_id, asset_id, amount) "
        f"SELECT tx.id, v.account_id, v.asset, v.amount FROM tx, (VALUES {posting_rows}) AS v(ord, account_id, asset, amount) "
        "ORDER BY v.ord RETURNING 1), "
        "queued AS (INSERT INTO ledger_unsealedtransaction (transaction_id) SELECT id FROM tx) "
    )
    if extra is None:
        sql += "SELECT id, (SELECT count(*) FROM ins) FROM tx"
    else:
        companion, row = extra
        names = ", ".join(companion.columns)
        picked = ", ".join(f"r.{name}" for name in companion.columns)
        sql = (sql[:-1] + f", also AS (INSERT INTO {companion.table} ({names}) SELECT {picked} "
               f"FROM tx, jsonb_populate_record(NULL::{companion.table}, %s::jsonb) AS r RETURNING id) "
               "SELECT id, (SELECT count(*) FROM ins), (SELECT id FROM also) FROM tx")
        params.append(row)
    # Server-side binding: the statement is prepared on its fifth use per connection (the
    # ``prepare_threshold`` in settings), so the hot path skips client-side quoting and
    # PostgreSQL's parsing and planning.
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


class _DatabaseReader:
    """Reads for a running contract; locked reads use SELECT ... FOR UPDATE where supported."""

    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        rows = _select_accounts([(key, asset)], lock=lock)
        return rows.get((key, asset))

    def accounts(self, keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
        return _select_accounts(keys, lock=lock) if keys else {}

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None:
        # Raw SQL: this read is on the path of every sale (prices), where the ORM's query
        # building cost more CPU than the query itself.
        if lock:
            _lock_state_keys(namespace, [key])
        sql = "SELECT value, version, is_deleted FROM ledger_stateentry WHERE namespace = %s AND key = %s"
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        with connection.cursor() as cur:
            cur.execute(sql, [namespace, key])
            row = cur.fetchone()
        if row is None:
            return None
        value = json.loads(row[0]) if isinstance(row[0], (str, bytes)) else row[0]
        return value, row[1], bool(row[2])


def _lock_state_keys(namespace: str, keys: list[str]) -> None:
    """Serialise writers of the same world-state keys, including keys that do not exist yet
    (a row lock cannot cover a missing row). Transaction-scoped advisory locks, taken in
    sorted order; SQLite has a single writer and needs none."""
    if connection.vendor != "postgresql":
        return
    with bound_cursor() as cur:
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM "
            "(SELECT k FROM unnest(%b::text[]) AS k ORDER BY k) AS s",
            [sorted({f"{namespace}\x1f{key}" for key in keys})],
        )


def _select_accounts(keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
    if connection.vendor == "postgresql" and len(keys) > 8:
        # Many keys (a batch): two arrays joined on the unique index. A long row-value IN list
        # is planned and quoted per pair, and cost a 500-reading batch 50 ms.
        sql = ("SELECT a.id, a.key, a.asset_id, a.kind, a.organisation_id, a.balance FROM ledger_account a "
               "JOIN unnest(%b::text[], %b::text[]) AS k(key, asset) ON a.key = k.key AND a.asset_id = k.asset "
               "ORDER BY a.id")
        params: list[Any] = [[k for k, _ in keys], [a for _, a in keys]]
        if lock:
            sql += " FOR UPDATE OF a"
    else:
        placeholders = ",".join(["(%s,%s)"] * len(keys))
        sql = (
            "SELECT id, key, asset_id, kind, organisation_id, balance FROM ledger_account "
            f"WHERE (key, asset_id) IN ({placeholders}) ORDER BY id"
        )
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        params = [p for pair in keys for p in pair]
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return {(r[1], r[2]): AccountInfo(*r) for r in cur.fetchall()}


def _apply(effects: Effects, reader: _DatabaseReader) -> tuple[list[tuple[AccountInfo, int]], list[list]]:
    """Lock the touched accounts in id order, check, then write balances and world state.

    Raises ContractError before writing anything, so a refused invocation leaves no trace.
    """
    deltas = net_postings(effects.postings)
    wanted = list(dict.fromkeys([*deltas, *((k, a) for k, a, _ in effects.owner_checks)]))
    accounts = _select_accounts(wanted, lock=True) if wanted else {}
    _check_accounts(wanted, accounts, effects.owner_checks)
    check_balances(deltas, accounts)

    versions: dict[tuple[str, str], int] = {}
    if effects.state_writes:
        for ns in sorted({w[0] for w in effects.state_writes}):
            keys = [w[1] for w in effects.state_writes if w[0] == ns]
            _lock_state_keys(ns, keys)
            for entry in StateEntry.objects.select_for_update().filter(namespace=ns, key__in=keys):
                versions[(ns, entry.key)] = entry.version

    if deltas:
        ids = [accounts[k].id for k in deltas]
        cases = " ".join(["WHEN %s THEN %s"] * len(deltas))
        params: list[Any] = []
        for k, d in deltas.items():
            params += [accounts[k].id, d]
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE ledger_account SET balance = balance + CASE id {cases} END "
                f"WHERE id IN ({','.join(['%s'] * len(ids))})",
                params + ids,
            )

    state_writes: list[list] = []
    latest: dict[tuple[str, str], list] = {}
    for ns, key, value, is_delete in effects.state_writes:
        version = versions.get((ns, key), 0) + 1
        versions[(ns, key)] = version
        row = [ns, key, value, is_delete, version]
        state_writes.append(row)
        latest[(ns, key)] = row
    if latest:
        StateEntry.objects.bulk_create(
            [StateEntry(namespace=ns, key=key, value=value, is_deleted=is_delete, version=version)
             for ns, key, value, is_delete, version in latest.values()],
            update_conflicts=True, unique_fields=["namespace", "key"],
            update_fields=["value", "is_deleted", "version"],
        )
    return [(accounts[k], d) for k, d in deltas.items()], state_writes
