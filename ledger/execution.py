"""The one way a contract runs: a request becomes a signed proposal (``prepare``), the contract
runs against a reader and its effects are checked and applied (``execute``), and the outcome
hashes to the transaction that will be recorded (``Execution.tx_hash``).

``invoke`` (services.py) and ``invoke_batch`` (batch.py) differ only in what they read from and
how they write: the database row by row, or a locked snapshot written with one statement per
table. Every check and every refusal message is here, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.utils import timezone

from .canonical import CanonicalError, canonical_json, json_text
from .contracts import (
    AccountInfo,
    Context,
    ContractError,
    Effects,
    Invoker,
    LedgerReader,
    check_balances,
    check_policy,
    net_postings,
    registry,
)
from .crypto import b64, public_bytes, verify_signature
from .db import bound_cursor, copy_rows, sql_in
from .documents import SIGNATURE_REJECTION, body_digest, proposal_document, transaction_hash
from .models import Identity, TxStatus


class LedgerError(Exception):
    """The invocation could not even be recorded (malformed request)."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used with a different body."""


def idempotency_conflict(key: str | None) -> IdempotencyConflict:
    return IdempotencyConflict(f"idempotency key {key!r} was already used with a different body")


@dataclass(frozen=True)
class InvokeResult:
    tx_id: int
    tx_hash: str
    status: str
    reason: str
    result: Any
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == TxStatus.VALID

    def replay(self) -> InvokeResult:
        """The same outcome, answered again to a resubmission."""
        return InvokeResult(self.tx_id, self.tx_hash, self.status, self.reason, self.result, replayed=True)


def invoker_of(identity: Identity) -> Invoker:
    org = identity.organisation
    return Invoker(identity_id=identity.pk, name=f"{org.msp_id}/{identity.name}", msp_id=org.msp_id,
                   org_id=org.pk, org_type=org.org_type, kind=identity.kind, identity_name=identity.name)


# --- proposals --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """A request that can be recorded: its canonical proposal, the signature over it, and
    whether that signature is the invoker's."""

    identity: Identity
    who: Invoker
    proposal: dict[str, Any]
    payload: bytes  # the canonical proposal the signature covers
    signature: bytes
    signature_ok: bool
    digest: str  # of chaincode, function and args: what an idempotency key promises
    proposed_at: datetime

    @property
    def idempotency_key(self) -> str | None:
        return self.proposal["idempotency_key"]


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


def prepare(*, chaincode: str, function: str, args: dict[str, Any], invoker: Identity,
            idempotency_key: str | None, signer: Ed25519PrivateKey | None = None,
            signature: bytes | None = None, proposed_at: datetime | None = None) -> Call:
    """Validate a request and build its signed canonical proposal; raises LedgerError for a
    request that cannot even be recorded."""
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
    # construction: checking the key pair is as strong as verifying, and much cheaper.
    if signature is None:
        if signer is None:
            raise LedgerError("invoke needs the invoker's signature or signer")
        signature = signer.sign(payload)
        signature_ok = _public_of(signer) == bytes(invoker.public_key)
    else:
        signature_ok = verify_signature(bytes(invoker.public_key), signature, payload)
    digest = body_digest(chaincode, function, args, checked=True)  # args passed the proposal's check
    return Call(invoker, who, proposal, payload, signature, signature_ok, digest, proposed_at)


# --- running a contract -----------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    """Effects checked against the ledger: net postings with the accounts they touch, and the
    state writes with their new versions (namespace, key, value, is_delete, version)."""

    postings: list[tuple[AccountInfo, int]] = field(default_factory=list)
    state_writes: list[list] = field(default_factory=list)
    # the canonical JSON of each write's value (``Effects.state_texts``), in step with state_writes
    state_texts: list[bytes | None] = field(default_factory=list)

    @cached_property
    def value_texts(self) -> list[str | None]:
        """Each state write's value as JSON text for a ``jsonb`` column (None for a delete)."""
        if len(self.state_texts) == len(self.state_writes):
            return [None if text is None else text.decode() for text in self.state_texts]
        return [None if w[2] is None else json_text(w[2]) for w in self.state_writes]


# Checks effects against the ledger and applies them (to the database or a snapshot); raises
# ContractError before changing anything when they cannot be applied.
Applier = Callable[[Effects], Applied]


@dataclass(frozen=True)
class Execution:
    """What one proposal did: the transaction to record, before it has an id."""

    call: Call
    proposal: dict[str, Any]  # as recorded: a forgery's carries no idempotency key
    status: str
    reason: str
    result: Any
    effects: Effects
    applied: Applied | None = None  # None until the effects were checked and applied

    @property
    def ok(self) -> bool:
        return self.status == TxStatus.VALID.value

    @property
    def moves_value_only(self) -> bool:
        """Valid, with postings and no state writes: what one SQL statement can commit."""
        return self.ok and bool(self.effects.postings) and not self.effects.state_writes

    def refused(self, reason: str) -> Execution:
        return Execution(self.call, self.proposal, TxStatus.REJECTED.value, reason, None, Effects(), Applied())

    def apply(self, applier: Applier) -> Execution:
        """Check and apply the effects; a refusal here rejects the whole invocation."""
        if self.applied is not None:
            return self
        if not self.ok:
            return Execution(self.call, self.proposal, self.status, self.reason, self.result, self.effects, Applied())
        try:
            applied = applier(self.effects)
        except ContractError as exc:
            return self.refused(exc.reason)
        return Execution(self.call, self.proposal, self.status, self.reason, self.result, self.effects, applied)

    def tx_hash(self) -> str:
        applied = self.applied or Applied()
        proposal = self.call.payload if self.proposal is self.call.proposal else canonical_json(self.proposal)
        return transaction_hash(
            proposal=proposal, signature=b64(self.call.signature), status=self.status, reason=self.reason,
            result=self.result, events=self.effects.events,
            postings=[[info.key, info.asset, amount] for info, amount in applied.postings],
            state_writes=applied.state_writes, state_texts=applied.state_texts,
        )


def execute(call: Call, reader: LedgerReader, applier: Applier | None = None) -> Execution:
    """Run the call's contract against ``reader``: signature, revocation, endorsement policy,
    the contract itself, then (with ``applier``) its effects. Every refusal becomes a rejected
    execution with its reason; a reader may raise to say it cannot serve a read."""
    proposal = call.proposal
    if not call.signature_ok:
        forged = {**proposal, "idempotency_key": None}  # a forgery must not claim the real key
        return Execution(call, forged, TxStatus.REJECTED.value, SIGNATURE_REJECTION, None, Effects(), Applied())
    started = Execution(call, proposal, TxStatus.VALID.value, "", None, Effects())
    if call.identity.revoked_at is not None:
        return started.refused(f"identity {call.who.name} is revoked")
    chaincode, function = proposal["chaincode"], proposal["function"]
    try:
        fn = registry.resolve(chaincode, function)
        check_policy(fn, call.who, chaincode, function)
        ctx = Context(chaincode=chaincode, function=function, args=proposal["args"], invoker=call.who,
                      now=call.proposed_at, reader=reader, namespace=fn.namespace)
        result = fn.fn(ctx)
    except ContractError as exc:
        return started.refused(exc.reason)
    execution = Execution(call, proposal, TxStatus.VALID.value, "", result, ctx.effects)
    return execution.apply(applier) if applier is not None else execution


def touched_accounts(effects: Effects) -> tuple[dict[tuple[str, str], int], list[tuple[str, str]]]:
    """The net change per account, and every account the effects need (changed or owner-checked)."""
    deltas = net_postings(effects.postings)
    return deltas, list(dict.fromkeys([*deltas, *((k, a) for k, a, _ in effects.owner_checks)]))


def check_accounts(wanted: list[tuple[str, str]], accounts: dict[tuple[str, str], AccountInfo],
                   owner_checks: list[tuple[str, str, int]]) -> None:
    for key, asset in wanted:
        if (key, asset) not in accounts:
            raise ContractError(f"no {asset} account {key!r}")
    for key, asset, org_id in owner_checks:
        if accounts[(key, asset)].organisation_id != org_id:
            raise ContractError(f"{asset} account {key!r} does not belong to the invoker's organisation")


def check_effects(effects: Effects, accounts: dict[tuple[str, str], AccountInfo]) -> dict[tuple[str, str], int]:
    """Refuse effects on missing accounts, on accounts of another organisation where the
    contract required ownership, and overdrafts; the net change per account otherwise."""
    deltas, wanted = touched_accounts(effects)
    check_accounts(wanted, accounts, effects.owner_checks)
    check_balances(deltas, accounts)
    return deltas


# --- reads ------------------------------------------------------------------------------------

def select_accounts(keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
    """Accounts by (key, asset), in id order; ``lock`` takes their rows for update."""
    if not keys:
        return {}
    if connection.vendor == "postgresql" and len(keys) > 8:
        # Many keys (a batch): two arrays joined on the unique index, where a long row-value IN
        # list is planned and quoted pair by pair.
        sql = ("SELECT a.id, a.key, a.asset_id, a.kind, a.organisation_id, a.balance FROM ledger_account a "
               "JOIN unnest(%b::text[], %b::text[]) AS k(key, asset) ON a.key = k.key AND a.asset_id = k.asset "
               "ORDER BY a.id")
        params: list[Any] = [[k for k, _ in keys], [a for _, a in keys]]
        if lock:
            sql += " FOR UPDATE OF a"
    else:
        placeholders = ",".join(["(%s,%s)"] * len(keys))
        sql = ("SELECT id, key, asset_id, kind, organisation_id, balance FROM ledger_account "
               f"WHERE (key, asset_id) IN ({placeholders}) ORDER BY id")
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        params = [p for pair in keys for p in pair]
    with bound_cursor() as cur:
        cur.execute(sql, params)
        return {(r[1], r[2]): AccountInfo(*r) for r in cur.fetchall()}


# World-state writers lock hierarchically, so that no invocation needs a lock per key for
# thousands of keys (a station's slot names two keys per household, and PostgreSQL's shared lock
# table, about 6,400 locks for the whole server by default, ran out under one invocation of a few
# thousand households). Per directory (the key up to its last "/") a writer takes either
# - a shared lock on the directory and an exclusive lock on each of its keys, or,
# - when it writes more than STATE_LOCK_KEYS keys of that directory, one exclusive lock on the
#   directory.
# Two writers of one key always conflict (on the key, or on its directory), while bulk writers of
# different directories (two stations' slots) do not wait for each other, and the gateway's
# batches (a few hundred meters' registers) still lock only their own keys.
STATE_LOCK_KEYS = 512
# A contract may also lock keys it only reads ("shared"): a shared lock on each key (and on its
# directory, or an exclusive one on a directory of more than STATE_LOCK_KEYS of them, since a
# shared directory lock would not keep out a writer of one of its keys). Writers of those keys
# wait for the reader as for another writer; other readers do not (every station's slot reads
# the billing configuration, the tariffs and the slot's frequency: under exclusive locks no two
# of them, whatever their stations, could be billed at once).
#
# One statement (one round trip on the path of every sale): directories first, then keys, each in
# sorted order (an Append runs its branches in order), so writers never deadlock on them.
_LOCK_SQL = ("SELECT CASE WHEN x THEN pg_advisory_xact_lock(hashtext(%s), hashtext(d))::text "
             "ELSE pg_advisory_xact_lock_shared(hashtext(%s), hashtext(d))::text END FROM "
             "(SELECT d, x FROM unnest(%b::text[], %b::boolean[]) AS u(d, x) ORDER BY d) AS s "
             "UNION ALL SELECT {key_lock}(hashtextextended(k, 0))::text FROM "
             "(SELECT k FROM unnest(%b::text[]) AS k ORDER BY k) AS t")
_LOCK_SQL_FOR = {False: _LOCK_SQL.format(key_lock="pg_advisory_xact_lock"),
                 True: _LOCK_SQL.format(key_lock="pg_advisory_xact_lock_shared")}


def state_directory(key: str) -> str:
    """The part of a world-state key before its last "/" ("" for a key without one)."""
    return key.rpartition("/")[0]


def lock_state_keys(namespace: str, keys: list[str], *, shared: bool = False) -> None:
    """Serialise writers of the same world-state keys, including keys that do not exist yet
    (a row lock cannot cover a missing row): transaction-scoped advisory locks, hierarchical
    (see ``STATE_LOCK_KEYS``). ``shared``: for keys the transaction only reads, which writers
    wait for and other readers do not; writing one later takes its exclusive lock then. SQLite
    has a single writer and needs none."""
    if connection.vendor != "postgresql" or not keys:
        return
    by_directory: dict[str, list[str]] = {}
    for key in set(keys):
        by_directory.setdefault(key.rpartition("/")[0], []).append(key)  # state_directory, inline: hot
    directories = list(by_directory)
    whole = [len(by_directory[d]) > STATE_LOCK_KEYS for d in directories]
    singly = [f"{namespace}\x1f{key}" for d, bulk in zip(directories, whole, strict=True) if not bulk
              for key in by_directory[d]]
    with bound_cursor() as cur:
        cur.execute(_LOCK_SQL_FOR[shared], [namespace, namespace, directories, whole, singly])


def _planned_each_time() -> dict[str, Any]:
    """Keyword arguments for a world-state lookup that must never run a prepared plan: plans are
    generic (``plan_cache_mode``), and one made while the table was small scans it sequentially
    for the rest of the connection's life, so a long-lived worker that started on a young ledger
    would read all of world state for every invocation once it has grown. Planning each time
    costs well under a millisecond."""
    return {"prepare": False} if connection.vendor == "postgresql" else {}


def state_rows(namespace: str, keys: list[str], *, span: bool = False,
               fields: tuple[str, ...] | None = None) -> dict[str, tuple[Any, int, bool]]:
    """World-state entries (value, version, is_deleted) by key; missing keys are absent.

    ``span``: the keys of each directory are (nearly) all the entries between the directory's
    smallest and largest of them (a station's slot: keys that differ only in the household), so
    each directory is read as one range of the unique index, where a list of a thousand keys is
    a thousand index descents; entries in the ranges that were not asked for are dropped.
    ``fields``: each value (an object) only with these of its members, extracted by PostgreSQL,
    which then neither writes out nor sends the rest (``project`` elsewhere)."""
    if not keys:
        return {}
    columns = "key, version, is_deleted, value"
    column_params: list[Any] = []
    if fields is not None:
        if connection.vendor == "postgresql":
            columns = "key, version, is_deleted, " + ", ".join(["value -> %s::text"] * len(fields))
            column_params = list(fields)
        else:
            return {key: (project(value, fields), version, deleted)
                    for key, (value, version, deleted) in state_rows(namespace, keys, span=span).items()}
    params: list[Any]
    if span and len(keys) > 1 and keys_sort_bytewise():
        ranges: dict[str, list[str]] = {}
        for key in keys:
            directory = key.rpartition("/")[0]  # state_directory, inline: a thousand keys a call
            bounds = ranges.get(directory)
            if bounds is None:
                ranges[directory] = [key, key]
            elif key < bounds[0]:
                bounds[0] = key
            elif key > bounds[1]:
                bounds[1] = key
        sql = " UNION ALL ".join([f"SELECT {columns} FROM ledger_stateentry "
                                  "WHERE namespace = %s AND key >= %s AND key <= %s"] * len(ranges))
        params = [p for low, high in ranges.values() for p in (*column_params, namespace, low, high)]
        wanted: set[str] | None = set(keys)
    else:
        if connection.vendor == "postgresql":
            condition, params = "key = ANY(%b)", [list(keys)]
        else:
            condition, params = f"key IN ({','.join(['%s'] * len(keys))})", list(keys)
        sql = f"SELECT {columns} FROM ledger_stateentry WHERE namespace = %s AND {condition}"
        params = [*column_params, namespace, *params]
        wanted = None
    with bound_cursor() as cur:
        cur.execute(sql, params, **_planned_each_time())
        rows = cur.fetchall()
    # orjson: a station's slot reads thousands of entries, where the standard library's decoder
    # was a large share of the invocation. The text is jsonb's, so both parse it the same.
    loads = orjson.loads
    if fields is not None:
        return {row[0]: ({f: loads(v) if isinstance(v, (str, bytes)) else v
                          for f, v in zip(fields, row[3:], strict=True) if v is not None}, row[1], bool(row[2]))
                for row in rows if wanted is None or row[0] in wanted}
    return {row[0]: (loads(row[3]) if isinstance(row[3], (str, bytes)) else row[3], row[1], bool(row[2]))
            for row in rows if wanted is None or row[0] in wanted}


def project(value: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The members ``fields`` of an object value that it has ({} for anything but an object)."""
    if not isinstance(value, dict):
        return {}
    return {f: value[f] for f in fields if f in value}


_BYTEWISE_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8"}
_bytewise: dict[str, bool] = {}


def keys_sort_bytewise() -> bool:
    """Whether PostgreSQL orders world-state keys as Python orders strings (by code point): then
    a key range [low, high] holds every key between them as Python sees it. Other collations
    (a linguistic one ignores punctuation such as "/") are read key by key. Asked once per
    database per process, in a query that cannot fail on any version."""
    if connection.vendor != "postgresql":
        return False
    name = str(connection.settings_dict.get("NAME"))
    if name not in _bytewise:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT coalesce(to_jsonb(d) ->> 'datlocprovider', 'c'), d.datcollate, "
                "(SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
                " WHERE a.attrelid = 'ledger_stateentry'::regclass AND a.attname = 'key') "
                "FROM pg_database d WHERE d.datname = current_database()")
            provider, collate, column = cur.fetchone()
        if column == "default":
            _bytewise[name] = provider == "c" and collate in _BYTEWISE_COLLATIONS
        else:
            _bytewise[name] = column in _BYTEWISE_COLLATIONS
    return _bytewise[name]


def state_versions(namespace: str, keys: list[str]) -> dict[str, int]:
    """The versions of world-state entries by key (missing keys are absent); for writers that
    hold the keys' advisory locks."""
    if not keys:
        return {}
    with bound_cursor() as cur:
        condition, params = sql_in("key", keys)
        cur.execute(f"SELECT key, version FROM ledger_stateentry WHERE namespace = %s AND {condition}",
                    [namespace, *params], **_planned_each_time())
        return dict(cur.fetchall())


# --- set-based writes (PostgreSQL, on a ``bound_cursor``) -------------------------------------

def update_balances(cur, rows: list[tuple[int, int]], *, relative: bool) -> None:
    """Set (or, ``relative``, add to) account balances, in id order: one statement however
    many accounts."""
    if not rows:
        return
    ids, values = (list(col) for col in zip(*sorted(rows), strict=True))
    new_balance = "a.balance + v.value" if relative else "v.value"
    cur.execute(f"UPDATE ledger_account AS a SET balance = {new_balance} "
                "FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, value) WHERE a.id = v.id", [ids, values])


def upsert_state(cur, rows: list[tuple[str, str, str | None, bool, int]]) -> None:
    """Write world-state entries (namespace, key, value as JSON text, is_deleted, version);
    when a key comes more than once, its last row counts. One statement."""
    latest: dict[tuple[str, str], tuple] = {}
    for row in rows:
        latest[(row[0], row[1])] = row
    if not latest:
        return
    columns = [list(col) for col in zip(*latest.values(), strict=True)]
    cur.execute("INSERT INTO ledger_stateentry (namespace, key, value, is_deleted, version) "
                "SELECT n, k, v::jsonb, d, ver FROM unnest(%b::text[], %b::text[], %b::text[], %b::boolean[], "
                "%b::bigint[]) AS x(n, k, v, d, ver) ON CONFLICT (namespace, key) DO UPDATE SET "
                "value = EXCLUDED.value, is_deleted = EXCLUDED.is_deleted, version = EXCLUDED.version", columns)


def write_state(cur, rows: list[tuple[str, str, str | None, bool, int]]) -> None:
    """``upsert_state`` for writers holding the keys' advisory locks, whose versions were read
    under them: a key whose first row here is version 1 had no entry (a deleted entry keeps its
    row and version), and no other writer can add one before this transaction ends, so those
    entries are appended by COPY, several times cheaper per row than an upsert; the others are
    upserted. One or two statements."""
    latest: dict[tuple[str, str], tuple] = {}
    first: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row[0], row[1])
        latest[key] = row
        first.setdefault(key, row[4])
    new = [row for key, row in latest.items() if first[key] == 1]
    if new:
        copy_rows(cur, "ledger_stateentry", "namespace, key, value, is_deleted, version", new)
    if len(new) < len(latest):
        upsert_state(cur, [row for key, row in latest.items() if first[key] != 1])


def write_state_after_history(cur, transaction_ids: list[int], rows: list[tuple[str, str, str | None, bool, int]]) -> None:
    """``write_state`` of writes whose history rows (``ledger_statewrite`` of ``transaction_ids``)
    this database transaction has just inserted. When every key comes once and had no entry (its
    version is 1), the entries are those rows, which the server copies: each value is then
    parsed from JSON once, for the history, instead of once more for the entry (parsing was a
    third of the server's work per bill). Otherwise as ``write_state``."""
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if row[4] != 1 or (row[0], row[1]) in seen:
            write_state(cur, rows)
            return
        seen.add((row[0], row[1]))
    if not rows:
        return
    cur.execute("INSERT INTO ledger_stateentry (namespace, key, value, is_deleted, version) "
                "SELECT namespace, key, value, is_delete, version FROM ledger_statewrite "
                "WHERE transaction_id = ANY(%b)", [sorted(set(transaction_ids))])
    if cur.rowcount != len(rows):  # the history of these transactions is these writes, or it is wrong
        raise LedgerError(f"{cur.rowcount} history rows for {len(rows)} state writes")


class NeedsTransaction(Exception):
    """The contract wants to read the ledger: it cannot run as one autocommitted statement."""


class NoReads:
    """A reader for a contract run outside any transaction: every read refuses."""

    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        raise NeedsTransaction

    def accounts(self, keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
        raise NeedsTransaction

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None:
        raise NeedsTransaction

    def states(self, namespace: str, keys: list[str], *, lock: bool, span: bool = False,
               fields: tuple[str, ...] | None = None, shared: bool = False) -> dict[str, tuple[Any, int, bool]]:
        raise NeedsTransaction


class DatabaseReader:
    """Reads for a contract running in a database transaction; locked reads take the rows
    (and, for world state, the key's advisory lock) until the transaction ends."""

    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        return select_accounts([(key, asset)], lock=lock).get((key, asset))

    def accounts(self, keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
        return select_accounts(keys, lock=lock)

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None:
        # Raw SQL: this read is on the path of every sale (prices), where the ORM's query
        # building cost more than the query.
        if lock:
            lock_state_keys(namespace, [key])
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

    def states(self, namespace: str, keys: list[str], *, lock: bool, span: bool = False,
               fields: tuple[str, ...] | None = None, shared: bool = False) -> dict[str, tuple[Any, int, bool]]:
        # The keys' advisory locks serialise every writer of them (each takes them before it
        # reads or writes), so a plain read after them sees the last committed values; row locks
        # on top would cost a WAL record per key.
        if lock:
            lock_state_keys(namespace, keys, shared=shared)
        return state_rows(namespace, keys, span=span, fields=fields)
