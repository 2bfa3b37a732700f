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
from .canonical import json_text
from .contracts import ISSUANCE, AccountInfo, ContractError, Effects, registry
from .crypto import b64
from .db import bound_cursor, copy_rows, keyed_lookups
from .documents import body_digest
from .execution import (
    Applied,
    Call,
    Execution,
    InvokeResult,
    LedgerError,
    check_effects,
    execute,
    idempotency_conflict,
    lock_state_keys,
    prepare,
    project,
    select_accounts,
    state_rows,
    touched_accounts,
    update_balances,
    write_state_after_history,
)
from .models import Identity

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


Outcome = InvokeResult | LedgerError


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
    except LedgerError as exc:
        return exc


@dataclass
class _Pending:
    """An execution waiting for the batch's writes."""

    index: int
    execution: Execution
    tx_hash: str = ""

    @property
    def applied(self) -> Applied:
        return self.execution.applied or Applied()


@dataclass(frozen=True)
class _SameKey:
    """A request whose idempotency key an earlier request of the batch already uses."""

    first: int
    first_digest: str


@dataclass(frozen=True)
class _SameForgery:
    """A forgery identical to an earlier one in the batch (it hashes the same)."""

    first: int


class _Snapshot:
    """The ledger as the batch sees it: rows locked up front (or on first read), plus the
    effects of the batch's earlier invocations. Serves contracts as their LedgerReader."""

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], AccountInfo] = {}
        self.issuance_start: dict[tuple[str, str], int] = {}  # unlocked: written as a net change
        self.state: dict[tuple[str, str], tuple[Any, int, bool] | None] = {}

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
            found = select_accounts(issuance, lock=False)
            self.accounts.update(found)
            self.issuance_start.update({k: info.balance for k, info in found.items()})
        others = [k for k in missing if k[0] != ISSUANCE]
        if others:
            self.accounts.update(select_accounts(others, lock=True))

    def lock_state(self, namespace: str, keys: list[str], *, span: bool = False) -> None:
        missing = sorted({k for k in keys if (namespace, k) not in self.state})
        if not missing:
            return
        # The keys' advisory locks serialise every writer of them (each takes them before it
        # reads), so a plain read after them sees the last committed value; a row lock on top
        # would cost a WAL record per key.
        lock_state_keys(namespace, missing)
        found = state_rows(namespace, missing, span=span)
        for key in missing:
            self.state[(namespace, key)] = found.get(key)

    # LedgerReader, for contracts: every read is locked, so ``lock`` changes nothing.
    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        if (key, asset) not in self.accounts:
            self.lock_accounts([(key, asset)])
        return self.accounts.get((key, asset))

    def accounts_of(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], AccountInfo]:
        self.lock_accounts(keys)
        return {k: self.accounts[k] for k in keys if k in self.accounts}

    def state_of(self, namespace: str, key: str, *, lock: bool = True) -> tuple[Any, int, bool] | None:
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

    def states(self, namespace: str, keys: list[str], *, lock: bool, span: bool = False,
               fields: tuple[str, ...] | None = None, shared: bool = False) -> dict[str, tuple[Any, int, bool]]:
        # ``shared`` changes nothing: the snapshot holds every key it read for writing.
        self.snapshot.lock_state(namespace, keys, span=span)
        rows = {k: self.snapshot.state[(namespace, k)] for k in keys}
        if fields is not None:
            return {k: (project(row[0], fields), row[1], row[2]) for k, row in rows.items() if row is not None}
        return {k: row for k, row in rows.items() if row is not None}


class _Batch:
    def __init__(self, requests: list[Request]):
        self.requests = requests
        self.outcomes: list[Outcome | _SameKey | _SameForgery | None] = [None] * len(requests)
        self.snapshot = _Snapshot()
        self.reader = _Reader(self.snapshot)
        self.pending: list[_Pending] = []

    def run(self) -> list[Outcome]:
        calls = self._prepare()
        self._lock_up_front(calls)
        for index, call in calls:
            self.pending.append(_Pending(index, execute(call, self.reader, self._apply)))
        self._write()
        return self._answers()

    # --- proposals, signatures, idempotency ---------------------------------------------------
    def _prepare(self) -> list[tuple[int, Call]]:
        calls: list[tuple[int, Call]] = []
        for index, r in enumerate(self.requests):
            try:
                calls.append((index, prepare(chaincode=r.chaincode, function=r.function, args=r.args,
                                             invoker=r.invoker, idempotency_key=r.idempotency_key, signer=r.signer,
                                             signature=r.signature, proposed_at=r.proposed_at)))
            except LedgerError as exc:
                self.outcomes[index] = exc
        keyed = [c for _, c in calls if c.signature_ok and c.idempotency_key is not None]
        existing = _existing({(c.identity.pk, c.idempotency_key) for c in keyed})  # type: ignore[misc]
        fresh: list[tuple[int, Call]] = []
        first_in_batch: dict[tuple[int, str], _SameKey] = {}
        for index, call in calls:
            if call.signature_ok and call.idempotency_key is not None:
                key = (call.identity.pk, call.idempotency_key)
                if key in existing:
                    self.outcomes[index] = existing[key].answer(call.digest)
                    continue
                if key in first_in_batch:  # the same key twice in one batch: the second replays the first
                    self.outcomes[index] = first_in_batch[key]
                    continue
                first_in_batch[key] = _SameKey(index, call.digest)
            fresh.append((index, call))
        return fresh

    # --- locks ------------------------------------------------------------------------------
    def _lock_up_front(self, calls: list[tuple[int, Call]]) -> None:
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
                announced, touched_state = fn.touches(call.proposal["args"], call.who)
            except (KeyError, TypeError, ValueError):
                continue
            accounts += announced
            state.setdefault(fn.namespace, []).extend(touched_state)
        for namespace in sorted(state):
            self.snapshot.lock_state(namespace, state[namespace])
        self.snapshot.lock_accounts(accounts)

    # --- effects, in memory -----------------------------------------------------------------
    def _apply(self, effects: Effects) -> Applied:
        """The database applier's checks against the snapshot, updating the snapshot only."""
        snapshot = self.snapshot
        _, wanted = touched_accounts(effects)
        snapshot.lock_accounts(wanted)
        accounts = {k: snapshot.accounts[k] for k in wanted if k in snapshot.accounts}
        deltas = check_effects(effects, accounts)
        for namespace in {w[0] for w in effects.state_writes}:
            snapshot.lock_state(namespace, [w[1] for w in effects.state_writes if w[0] == namespace])
        postings = [(accounts[k], d) for k, d in deltas.items()]
        for account, delta in deltas.items():
            info = accounts[account]
            snapshot.accounts[account] = AccountInfo(info.id, info.key, info.asset, info.kind, info.organisation_id,
                                                 info.balance + delta)
        writes: list[list] = []
        for namespace, key, value, is_delete in effects.state_writes:
            previous = snapshot.state[(namespace, key)]
            version = (previous[1] if previous else 0) + 1
            snapshot.state[(namespace, key)] = (value, version, is_delete)
            writes.append([namespace, key, value, is_delete, version])
        return Applied(postings, writes, effects.state_texts)

    # --- writes ---------------------------------------------------------------------------
    def _write(self) -> None:
        for p in self.pending:
            p.tx_hash = p.execution.tx_hash()
        self._replay_forgeries()
        if not self.pending:
            return
        # Server-side binding: the arrays go over as binary instead of being quoted into the
        # SQL text.
        with bound_cursor() as cur:
            final, issued = self._balance_changes()
            update_balances(cur, final, relative=False)
            ids = self._write_transactions(cur)
            self._write_postings(cur, ids)
            self._write_state(cur, ids)
            copy_rows(cur, "ledger_unsealedtransaction", "transaction_id", [(tx_id,) for tx_id in ids.values()])
            # Last: the shared issuance row stays locked only from here to the commit.
            update_balances(cur, issued, relative=True)
        for p in self.pending:
            e = p.execution
            self.outcomes[p.index] = InvokeResult(tx_id=ids[p.tx_hash], tx_hash=p.tx_hash, status=e.status,
                                                  reason=e.reason, result=e.result)

    def _answers(self) -> list[Outcome]:
        answers: list[Outcome] = []
        for index, outcome in enumerate(self.outcomes):
            if isinstance(outcome, _SameKey):
                answers.append(self._replay_in_batch(outcome, self.requests[index]))
            elif isinstance(outcome, _SameForgery):
                first = self.outcomes[outcome.first]
                assert isinstance(first, InvokeResult)
                answers.append(first.replay())
            else:
                assert outcome is not None, f"request {index} got no outcome"
                answers.append(outcome)
        return answers

    def _replay_forgeries(self) -> None:
        """A forgery claims no idempotency key; sent again it hashes the same, so it is answered
        with the transaction already recorded (in the ledger or earlier in this batch). Forgeries
        have no effects, so dropping them leaves the snapshot right."""
        forged = [p for p in self.pending if p.execution.proposal["idempotency_key"] is None]
        if not forged:
            return
        with bound_cursor() as cur:
            cur.execute("SELECT tx_hash, id, status, reason FROM ledger_transaction WHERE tx_hash = ANY(%b)",
                        [[p.tx_hash for p in forged]])
            recorded = {row[0]: row for row in cur.fetchall()}
        seen: dict[str, _Pending] = {}
        keep = []
        for p in self.pending:
            if p.execution.proposal["idempotency_key"] is None and (p.tx_hash in recorded or p.tx_hash in seen):
                if p.tx_hash in recorded:
                    _, tx_id, status, reason = recorded[p.tx_hash]
                    self.outcomes[p.index] = InvokeResult(tx_id=tx_id, tx_hash=p.tx_hash, status=status,
                                                          reason=reason, result=None, replayed=True)
                else:
                    self.outcomes[p.index] = _SameForgery(seen[p.tx_hash].index)
                continue
            seen.setdefault(p.tx_hash, p)
            keep.append(p)
        self.pending = keep

    def _replay_in_batch(self, same: _SameKey, r: Request) -> Outcome:
        if body_digest(r.chaincode, r.function, r.args) != same.first_digest:
            return idempotency_conflict(r.idempotency_key)
        first = self._answers_of(same.first)
        return first.replay() if isinstance(first, InvokeResult) else first

    def _answers_of(self, index: int) -> Outcome:
        outcome = self.outcomes[index]
        assert isinstance(outcome, (InvokeResult, LedgerError)), f"request {index} got no outcome"
        return outcome

    def _balance_changes(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(account id, final balance) of the locked accounts the batch changed, and (account
        id, net change) of the issuance accounts (not locked, shared by concurrent batches)."""
        final, issued = [], []
        for i in {i.id: i for p in self.pending for i, _ in p.applied.postings}.values():
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
            e = p.execution
            c, proposal = e.call, e.proposal
            rows.append((tx_id, proposal["chaincode"], proposal["function"], dumps(proposal["args"]), c.identity.pk,
                         proposal["idempotency_key"], c.digest, c.proposed_at, b64(c.signature), e.status, e.reason,
                         None if e.result is None else dumps(e.result), dumps(e.effects.events), p.tx_hash))
        copy_rows(cur, "ledger_transaction", "id, chaincode, function, args, invoker_id, idempotency_key, body_digest, "
                  "proposed_at, signature, status, reason, result, events, tx_hash", rows)
        return ids

    def _write_postings(self, cur, ids: dict[str, int]) -> None:
        copy_rows(cur, "ledger_posting", "transaction_id, account_id, asset_id, amount",
                  [(ids[p.tx_hash], info.id, info.asset, amount) for p in self.pending
                   for info, amount in p.applied.postings])

    def _write_state(self, cur, ids: dict[str, int]) -> None:
        rows = [(ids[p.tx_hash], ns, key, text, is_delete, version) for p in self.pending
                for (ns, key, _, is_delete, version), text in zip(p.applied.state_writes, p.applied.value_texts,
                                                                  strict=True)]
        if not rows:
            return
        copy_rows(cur, "ledger_statewrite", "transaction_id, namespace, key, value, is_delete, version", rows)
        write_state_after_history(cur, list(ids.values()), [row[1:] for row in rows])


@dataclass(frozen=True)
class _Recorded:
    """A transaction already in the ledger under a request's idempotency key."""

    key: str
    tx_id: int
    tx_hash: str
    status: str
    reason: str
    result: Any
    digest: str

    def answer(self, digest: str) -> Outcome:
        if digest != self.digest:
            return idempotency_conflict(self.key)
        return InvokeResult(tx_id=self.tx_id, tx_hash=self.tx_hash, status=self.status, reason=self.reason,
                            result=self.result, replayed=True)


def _existing(keys: set[tuple[int, str]]) -> dict[tuple[int, str], _Recorded]:
    if not keys:
        return {}
    ids, names = zip(*keys, strict=True)
    with bound_cursor() as cur:
        cur.execute(
            "SELECT t.invoker_id, t.idempotency_key, t.id, t.tx_hash, t.status, t.reason, t.result, t.body_digest "
            "FROM ledger_transaction t JOIN unnest(%b::bigint[], %b::text[]) AS k(invoker_id, key) "
            "ON t.invoker_id = k.invoker_id AND t.idempotency_key = k.key", [list(ids), list(names)])
        rows = cur.fetchall()
    return {(row[0], row[1]): _Recorded(row[1], row[2], row[3], row[4], row[5],
                                        json.loads(row[6]) if isinstance(row[6], (str, bytes)) else row[6], row[7])
            for row in rows}
