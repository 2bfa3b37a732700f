"""Many invocations in one database transaction with a handful of statements.

``invoke_batch`` gives every request exactly the outcome ``invoke`` would give it run alone, one
after the other in the order given (same checks, same rejections, same transaction hashes,
idempotent replays), but it locks everything the batch reads up front (accounts in id order,
world-state keys in key order), runs the contracts against that snapshot in memory, and writes
balances, transactions, postings, state and the sealing queue with one statement each. It is how
a gateway applies thousands of meter readings a second. PostgreSQL only; elsewhere, or if a
concurrent writer gets in the way, it falls back to ``invoke`` per request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import DatabaseError, connection

from . import services
from .canonical import canonical_json, json_text
from .contracts import (
    ISSUANCE,
    AccountInfo,
    Context,
    ContractError,
    Effects,
    check_balances,
    check_policy,
    net_postings,
    registry,
)
from .crypto import b64
from .db import bound_cursor, keyed_lookups
from .documents import SIGNATURE_REJECTION, body_digest, transaction_hash
from .models import Identity, TxStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    chaincode: str
    function: str
    args: dict[str, Any]
    invoker: Identity
    idempotency_key: str | None
    signature: bytes | None = None
    signer: Ed25519PrivateKey | None = None
    proposed_at: datetime | None = None


Outcome = services.InvokeResult | services.LedgerError


def invoke_batch(requests: list[Request]) -> list[Outcome]:
    """One outcome per request, in order: an InvokeResult, or the LedgerError (malformed
    request, idempotency conflict) that ``invoke`` would have raised."""
    if not requests:
        return []
    # Keyless requests are recognised on resubmission only by their hash; leave them to invoke.
    if connection.vendor == "postgresql" and all(r.idempotency_key is not None for r in requests):
        try:
            with keyed_lookups():
                return _Batch(requests).run()
        except DatabaseError:  # a concurrent writer (key race, deadlock): the careful way instead
            logger.info("batch of %d fell back to one invocation at a time", len(requests), exc_info=True)
    return [_one(r) for r in requests]


def _one(r: Request) -> Outcome:
    try:
        return services.invoke(chaincode=r.chaincode, function=r.function, args=r.args, invoker=r.invoker,
                               idempotency_key=r.idempotency_key, signature=r.signature, signer=r.signer,
                               proposed_at=r.proposed_at)
    except services.LedgerError as exc:
        return exc


@dataclass
class _Pending:
    """A recorded invocation waiting for the batch's writes."""

    index: int
    call: services._Call
    proposal: dict[str, Any]
    status: str
    reason: str
    result: Any
    effects: Effects
    postings: list[tuple[AccountInfo, int]]
    state_writes: list[list]
    tx_hash: str = ""


class _Snapshot:
    """The ledger as the batch sees it: rows locked up front (or on first read), plus the
    effects of the batch's earlier invocations."""

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], AccountInfo] = {}
        self.issuance_start: dict[tuple[str, str], int] = {}  # unlocked: written as a net change
        self.state: dict[tuple[str, str], tuple[Any, int, bool] | None] = {}
        self.namespace = ""

    def lock_accounts(self, keys: list[tuple[str, str]]) -> None:
        accounts = self.accounts
        missing = [k for k in dict.fromkeys(keys) if k not in accounts]
        if not missing:
            return
        # Issuance accounts have no floor and no contract reads their balance, so they are not
        # locked: the batch adds its net change at write time. Every meter's report mints or
        # burns, so locking them here would serialise concurrent gateway workers on one row.
        issuance = [k for k in missing if k[0] == ISSUANCE]
        if issuance:
            found = services._select_accounts(issuance, lock=False)
            self.accounts.update(found)
            self.issuance_start.update({k: info.balance for k, info in found.items()})
        others = [k for k in missing if k[0] != ISSUANCE]
        if others:
            self.accounts.update(services._select_accounts(others, lock=True))

    def lock_state(self, namespace: str, keys: list[str]) -> None:
        state = self.state
        missing = sorted({k for k in keys if (namespace, k) not in state})
        if not missing:
            return
        # The keys' advisory locks serialise every writer of them (each takes them before it
        # reads: see services._lock_state_keys), so a plain read after them sees the last
        # committed value; a row lock on top cost a WAL record per key.
        services._lock_state_keys(namespace, missing)
        with bound_cursor() as cur:
            cur.execute("SELECT key, value, version, is_deleted FROM ledger_stateentry "
                        "WHERE namespace = %s AND key = ANY(%b)", [namespace, missing])
            found = {row[0]: row[1:] for row in cur.fetchall()}
        for key in missing:
            row = found.get(key)
            self.state[(namespace, key)] = None if row is None else (
                json.loads(row[0]) if isinstance(row[0], (str, bytes)) else row[0], row[1], bool(row[2]))

    # LedgerReader, for contracts
    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        found = self.accounts.get((key, asset))
        if found is None:
            self.lock_accounts([(key, asset)])
            found = self.accounts.get((key, asset))
        return found

    def accounts_of(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], AccountInfo]:
        self.lock_accounts(keys)
        return {k: self.accounts[k] for k in keys if k in self.accounts}

    def state_of(self, namespace: str, key: str) -> tuple[Any, int, bool] | None:
        if (namespace, key) not in self.state:
            self.lock_state(namespace, [key])
        return self.state[(namespace, key)]


class _Reader:
    """The LedgerReader protocol over a snapshot."""

    def __init__(self, snapshot: _Snapshot):
        self.snapshot = snapshot

    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        return self.snapshot.account(key, asset, lock=lock)

    def accounts(self, keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
        return self.snapshot.accounts_of(keys)

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None:
        return self.snapshot.state_of(namespace, key)


class _Batch:
    def __init__(self, requests: list[Request]):
        self.requests = requests
        self.outcomes: list[Outcome | None] = [None] * len(requests)
        self.snapshot = _Snapshot()
        self.pending: list[_Pending] = []

    def run(self) -> list[Outcome]:
        calls = self._prepare()
        self._lock_up_front(calls)
        for index, call in calls:
            self._execute(index, call)
        self._write()
        return self.outcomes  # type: ignore[return-value]

    # --- proposals, signatures, idempotency ---------------------------------------------------
    def _prepare(self) -> list[tuple[int, services._Call]]:
        calls: list[tuple[int, services._Call]] = []
        for index, r in enumerate(self.requests):
            try:
                calls.append((index, self._call(r)))
            except services.LedgerError as exc:
                self.outcomes[index] = exc
        keyed = [(i, c) for i, c in calls if c.signature_ok and c.proposal["idempotency_key"] is not None]
        existing = self._existing({(c.identity.pk, c.proposal["idempotency_key"]) for _, c in keyed})
        fresh: list[tuple[int, services._Call]] = []
        first_in_batch: dict[tuple[int, str], tuple[int, str]] = {}
        for index, call in calls:
            key = (call.identity.pk, call.proposal["idempotency_key"])
            if call.signature_ok and key[1] is not None:
                if key in existing:
                    self.outcomes[index] = _replay_row(existing[key], call.digest)
                    continue
                if key in first_in_batch:  # the same key twice in one batch: the second replays the first
                    self.outcomes[index] = ("again", first_in_batch[key])  # type: ignore[assignment]
                    continue
                first_in_batch[key] = (index, call.digest)
            fresh.append((index, call))
        return fresh

    def _call(self, r: Request) -> services._Call:
        return services.call_prepare(chaincode=r.chaincode, function=r.function, args=r.args, invoker=r.invoker,
                                     idempotency_key=r.idempotency_key, signer=r.signer, signature=r.signature,
                                     proposed_at=r.proposed_at)

    def _existing(self, keys: set[tuple[int, str]]) -> dict[tuple[int, str], tuple]:
        if not keys:
            return {}
        ids, names = zip(*keys, strict=True)
        with bound_cursor() as cur:
            cur.execute(
                "SELECT t.invoker_id, t.idempotency_key, t.id, t.tx_hash, t.status, t.reason, t.result, t.body_digest "
                "FROM ledger_transaction t JOIN unnest(%b::bigint[], %b::text[]) AS k(invoker_id, key) "
                "ON t.invoker_id = k.invoker_id AND t.idempotency_key = k.key", [list(ids), list(names)])
            return {(row[0], row[1]): row for row in cur.fetchall()}

    # --- locks ------------------------------------------------------------------------------
    def _lock_up_front(self, calls: list[tuple[int, services._Call]]) -> None:
        accounts: list[tuple[str, str]] = []
        state: dict[str, list[str]] = {}
        for _, call in calls:
            try:
                fn = registry.resolve(call.proposal["chaincode"], call.proposal["function"])
            except ContractError:
                continue
            if fn.touches is None:
                continue
            try:
                touched_accounts, touched_state = fn.touches(call.proposal["args"], call.who)
            except (KeyError, TypeError, ValueError):
                continue
            accounts += touched_accounts
            state.setdefault(fn.namespace, []).extend(touched_state)
        for namespace in sorted(state):
            self.snapshot.lock_state(namespace, state[namespace])
        self.snapshot.lock_accounts(accounts)

    # --- contracts, in memory ---------------------------------------------------------------
    def _execute(self, index: int, call: services._Call) -> None:
        proposal, status, reason, result, effects = call.proposal, TxStatus.VALID.value, "", None, Effects()
        postings: list[tuple[AccountInfo, int]] = []
        writes: list[list] = []
        if not call.signature_ok:
            status, reason = TxStatus.REJECTED.value, SIGNATURE_REJECTION
            proposal = {**proposal, "idempotency_key": None}
        elif call.identity.revoked_at is not None:
            status, reason = TxStatus.REJECTED.value, f"identity {call.who.name} is revoked"
        else:
            try:
                fn = registry.resolve(proposal["chaincode"], proposal["function"])
                check_policy(fn, call.who, proposal["chaincode"], proposal["function"])
                ctx = Context(chaincode=proposal["chaincode"], function=proposal["function"], args=proposal["args"],
                              invoker=call.who, now=call.proposed_at, reader=_Reader(self.snapshot),
                              namespace=fn.namespace)
                result = fn.fn(ctx)
                effects = ctx.effects
                postings, writes = self._apply(effects)
            except ContractError as exc:
                status, reason, result, effects, postings, writes = (
                    TxStatus.REJECTED.value, exc.reason, None, Effects(), [], [])
        self.pending.append(_Pending(index, call, proposal, status, reason, result, effects, postings, writes))

    def _apply(self, effects: Effects) -> tuple[list[tuple[AccountInfo, int]], list[list]]:
        """``services._apply`` against the snapshot: check, then update the snapshot only."""
        deltas = net_postings(effects.postings)
        wanted = list(dict.fromkeys([*deltas, *((k, a) for k, a, _ in effects.owner_checks)]))
        self.snapshot.lock_accounts(wanted)
        accounts = {k: self.snapshot.accounts[k] for k in wanted if k in self.snapshot.accounts}
        services._check_accounts(wanted, accounts, effects.owner_checks)
        check_balances(deltas, accounts)
        for namespace in {w[0] for w in effects.state_writes}:
            self.snapshot.lock_state(namespace, [w[1] for w in effects.state_writes if w[0] == namespace])
        postings = [(accounts[k], d) for k, d in deltas.items()]
        for key, delta in deltas.items():
            info = accounts[key]
            self.snapshot.accounts[key] = AccountInfo(info.id, info.key, info.asset, info.kind, info.organisation_id,
                                                      info.balance + delta)
        writes: list[list] = []
        for namespace, key, value, is_delete in effects.state_writes:
            previous = self.snapshot.state[(namespace, key)]
            version = (previous[1] if previous else 0) + 1
            self.snapshot.state[(namespace, key)] = (value, version, is_delete)
            writes.append([namespace, key, value, is_delete, version])
        return postings, writes

    # --- writes ---------------------------------------------------------------------------
    def _write(self) -> None:
        if self.pending:
            for p in self.pending:
                p.tx_hash = transaction_hash(
                    proposal=p.call.payload if p.proposal is p.call.proposal else canonical_json(p.proposal),
                    signature=b64(p.call.signature), status=p.status, reason=p.reason, result=p.result,
                    events=p.effects.events, postings=[[i.key, i.asset, a] for i, a in p.postings],
                    state_writes=p.state_writes,
                )
            self._replay_forgeries()
        if self.pending:
            # Server-side binding: the arrays go over as binary instead of being quoted into
            # the SQL text (which cost more CPU than the inserts).
            with bound_cursor() as cur:
                final, issued = self._balance_changes()
                _update_balances(cur, final, relative=False)
                ids = self._write_transactions(cur)
                self._write_postings(cur, ids)
                self._write_state(cur, ids)
                _copy(cur, "ledger_unsealedtransaction", "transaction_id", [(tx_id,) for tx_id in ids.values()])
                # Last: the shared issuance row stays locked only from here to the commit.
                _update_balances(cur, issued, relative=True)
            for p in self.pending:
                self.outcomes[p.index] = services.InvokeResult(tx_id=ids[p.tx_hash], tx_hash=p.tx_hash, status=p.status,
                                                               reason=p.reason, result=p.result)
        for index, outcome in enumerate(self.outcomes):
            if isinstance(outcome, tuple) and outcome and outcome[0] == "again":
                first, digest = outcome[1]
                self.outcomes[index] = self._replay_in_batch(self.outcomes[first], digest, self.requests[index])
            elif isinstance(outcome, tuple) and outcome and outcome[0] == "same":
                first = self.outcomes[outcome[1]]
                self.outcomes[index] = services.InvokeResult(tx_id=first.tx_id, tx_hash=first.tx_hash,
                                                             status=first.status, reason=first.reason,
                                                             result=first.result, replayed=True)

    def _replay_forgeries(self) -> None:
        """A forgery claims no idempotency key; sent again it hashes the same, so it is answered
        with the transaction already recorded (in the ledger or earlier in this batch). Forgeries
        have no effects, so dropping them leaves the snapshot right."""
        forged = [p for p in self.pending if p.proposal["idempotency_key"] is None]
        if not forged:
            return
        with connection.cursor() as cur:
            cur.execute("SELECT tx_hash, id, status, reason FROM ledger_transaction WHERE tx_hash = ANY(%s)",
                        [[p.tx_hash for p in forged]])
            recorded = {row[0]: row for row in cur.fetchall()}
        seen: dict[str, _Pending] = {}
        keep = []
        for p in self.pending:
            if p.proposal["idempotency_key"] is None and (p.tx_hash in recorded or p.tx_hash in seen):
                if p.tx_hash in recorded:
                    _, tx_id, status, reason = recorded[p.tx_hash]
                    self.outcomes[p.index] = services.InvokeResult(tx_id=tx_id, tx_hash=p.tx_hash, status=status,
                                                                   reason=reason, result=None, replayed=True)
                else:
                    self.outcomes[p.index] = ("same", seen[p.tx_hash].index)  # type: ignore[assignment]
                continue
            seen.setdefault(p.tx_hash, p)
            keep.append(p)
        self.pending = keep

    def _replay_in_batch(self, first: Outcome, first_digest: str, r: Request) -> Outcome:
        if body_digest(r.chaincode, r.function, r.args) != first_digest:
            return services.IdempotencyConflict(
                f"idempotency key {r.idempotency_key!r} was already used with a different body")
        if isinstance(first, services.InvokeResult):
            return services.InvokeResult(tx_id=first.tx_id, tx_hash=first.tx_hash, status=first.status,
                                         reason=first.reason, result=first.result, replayed=True)
        return first

    def _balance_changes(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(account id, final balance) of the locked accounts the batch changed, and (account
        id, net change) of the issuance accounts (not locked, shared by concurrent batches)."""
        final, issued = [], []
        for i in {i.id: i for p in self.pending for i, _ in p.postings}.values():
            key = (i.key, i.asset)
            info = self.snapshot.accounts[key]
            if key in self.snapshot.issuance_start:
                issued.append((info.id, info.balance - self.snapshot.issuance_start[key]))
            else:
                final.append((info.id, info.balance))
        return final, issued

    def _write_transactions(self, cur) -> dict[str, int]:
        """Every transaction in one COPY: ids are drawn first, in batch order (after every
        lock), so no RETURNING is needed; COPY rows are formatted in C, arrays are not."""
        cur.execute("SELECT nextval(pg_get_serial_sequence('ledger_transaction', 'id')) "
                    "FROM generate_series(1, %b)", [len(self.pending)])
        drawn = sorted(row[0] for row in cur.fetchall())
        ids = {p.tx_hash: tx_id for p, tx_id in zip(self.pending, drawn, strict=True)}
        dumps = json_text
        rows = []
        for p, tx_id in zip(self.pending, drawn, strict=True):
            c, proposal = p.call, p.proposal
            rows.append((tx_id, proposal["chaincode"], proposal["function"], dumps(proposal["args"]), c.identity.pk,
                         proposal["idempotency_key"], c.digest, c.proposed_at, b64(c.signature), p.status, p.reason,
                         None if p.result is None else dumps(p.result), dumps(p.effects.events), p.tx_hash))
        _copy(cur, "ledger_transaction", "id, chaincode, function, args, invoker_id, idempotency_key, body_digest, "
              "proposed_at, signature, status, reason, result, events, tx_hash", rows)
        return ids

    def _write_postings(self, cur, ids: dict[str, int]) -> None:
        _copy(cur, "ledger_posting", "transaction_id, account_id, asset_id, amount",
              [(ids[p.tx_hash], info.id, info.asset, amount) for p in self.pending for info, amount in p.postings])

    def _write_state(self, cur, ids: dict[str, int]) -> None:
        rows = [(ids[p.tx_hash], ns, key, None if value is None else json_text(value), is_delete, version)
                for p in self.pending for ns, key, value, is_delete, version in p.state_writes]
        if not rows:
            return
        _copy(cur, "ledger_statewrite", "transaction_id, namespace, key, value, is_delete, version", rows)
        latest: dict[tuple[str, str], tuple] = {}
        for _, ns, key, value, is_delete, version in rows:
            latest[(ns, key)] = (ns, key, value, is_delete, version)
        columns = [list(col) for col in zip(*latest.values(), strict=True)]
        cur.execute("INSERT INTO ledger_stateentry (namespace, key, value, is_deleted, version) "
                    "SELECT n, k, v::jsonb, d, ver FROM unnest(%b::text[], %b::text[], %b::text[], %b::boolean[], "
                    "%b::bigint[]) AS x(n, k, v, d, ver) ON CONFLICT (namespace, key) DO UPDATE SET "
                    "value = EXCLUDED.value, is_deleted = EXCLUDED.is_deleted, version = EXCLUDED.version", columns)


def _update_balances(cur, rows: list[tuple[int, int]], *, relative: bool) -> None:
    """Set (or, ``relative``, add to) account balances, in id order."""
    if not rows:
        return
    ids, values = (list(col) for col in zip(*sorted(rows), strict=True))
    new_balance = "a.balance + v.value" if relative else "v.value"
    cur.execute(f"UPDATE ledger_account AS a SET balance = {new_balance} "
                "FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, value) WHERE a.id = v.id", [ids, values])


def _copy(cur, table: str, columns: str, rows: list[tuple]) -> None:
    """``COPY table (columns) FROM STDIN``: one round trip, rows formatted by psycopg's C code.
    Constraint and trigger checks are those of INSERT (statement triggers see the COPY)."""
    if not rows:
        return
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _replay_row(row: tuple, digest: str) -> Outcome:
    _, key, tx_id, tx_hash, status, reason, result, stored_digest = row
    if stored_digest != digest:
        return services.IdempotencyConflict(f"idempotency key {key!r} was already used with a different body")
    value = json.loads(result) if isinstance(result, (str, bytes)) else result
    return services.InvokeResult(tx_id=tx_id, tx_hash=tx_hash, status=status, reason=reason, result=value,
                                 replayed=True)
