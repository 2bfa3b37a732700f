"""Replay the ledger from genesis and check everything that can be checked.

Every block's number, link, header hash and orderer signature; every transaction's hash,
body digest and invoker signature; every Merkle root and count; per-transaction zero sums;
running balances; and the final balances and world state against the stored ones. Membership
is replayed from the configuration transactions (``membership_replay.py``): each signature is
checked with the key in force then, each valid transaction against the endorsement policy and
object rights in force then, and the membership tables against the replayed membership.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from .canonical import CanonicalError, canonical_json, loads_ledger_json, sha256_hex
from .contracts import ISSUANCE
from .crypto import unb64, verify_signature
from .documents import (
    GENESIS_PREVIOUS_HASH,
    SIGNATURE_REJECTION,
    block_header_bytes,
    body_digest,
    proposal_bytes,
    transaction_hash,
)
from .membership_replay import MembershipReplay
from .merkle import merkle_root
from .selectors import as_utc

CHUNK = 2000
# Below this many transactions, worker processes cost more to start than they save.
PARALLEL_SIGNATURES_FROM = 5000


@dataclass
class Problem:
    message: str
    block: int | None = None
    tx_hash: str | None = None
    tx_id: int | None = None
    order: int = 0  # position in replay order, so the first problem is reported first

    def __str__(self) -> str:
        where = []
        if self.block is not None:
            where.append(f"block {self.block}")
        if self.tx_id is not None:
            where.append(f"transaction {self.tx_hash or ''} (id {self.tx_id})")
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass
class Report:
    blocks: int = 0
    transactions: int = 0
    unsealed: int = 0
    accounts: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Stop(Exception):
    pass


def trusted_orderer_keys() -> set[str]:
    from .sealing import orderer_public_hex

    extra = getattr(settings, "GRIDCOIN_TRUSTED_ORDERER_KEYS", "") or ""
    return {orderer_public_hex(), *[k.strip() for k in extra.split(",") if k.strip()]}


def verify_chain(*, check_signatures: bool = True, first_only: bool = True,
                 progress: Callable[[Report], None] | None = None, workers: int | None = None) -> Report:
    """``workers``: processes for signature checks (default: one per CPU on large ledgers)."""
    report = Report()
    started = time.perf_counter()
    pool = None
    if check_signatures and workers != 0:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM ledger_transaction")
            total = cur.fetchone()[0]
        if workers or total >= PARALLEL_SIGNATURES_FROM:
            from .sigcheck import SignaturePool

            pool = SignaturePool(workers)
    v = _Verifier(report, check_signatures=check_signatures, first_only=first_only, pool=pool)
    try:
        v.run(progress)
        v.drain_signatures()
        _check_log(v)
    except _Stop:
        pass
    finally:
        if pool is not None:
            pool.close()
    report.problems.sort(key=lambda p: p.order)
    report.seconds = time.perf_counter() - started
    return report


class _Verifier:
    def __init__(self, report: Report, *, check_signatures: bool, first_only: bool, pool=None):
        self.report = report
        self.pool = pool
        # (order, tx, expected_valid, future-or-None, index) awaiting a signature result
        self.pending: list[tuple] = []
        self.batch: list[tuple] = []
        self.order = 0
        self.check_signatures = check_signatures
        self.first_only = first_only
        self.trusted = trusted_orderer_keys()
        self.balances: dict[int, int] = {}
        self.issuance: set[int] = set()
        # (namespace, key) -> (digest of the value, is_delete, version): digests, not values, so
        # replaying millions of state writes (a day of bills) holds megabytes, not gigabytes.
        self.state: dict[tuple[str, str], tuple[bytes | None, bool, int]] = {}
        self.current_block: int | None = None
        self.membership = MembershipReplay()

    def fail(self, message: str, *, block: int | None = None, tx: tuple | None = None,
             order: int | None = None, tx_ref: tuple[int, str] | None = None) -> None:
        if block is None and tx is not None:
            block = self.current_block
        if tx is not None:
            tx_ref = (tx[0], tx[12])
        self.report.problems.append(
            Problem(message, block=block, tx_hash=tx_ref[1] if tx_ref else None, tx_id=tx_ref[0] if tx_ref else None,
                    order=self.order if order is None else order)
        )
        if self.first_only:
            # A signature still being checked elsewhere may belong to an earlier transaction;
            # settle those first so the report names the first bad one.
            self.drain_signatures(stop=False)
            raise _Stop

    def check_signature(self, tx: tuple, public_key: bytes, signature: str, message: bytes,
                        expected_valid: bool) -> None:
        try:
            raw = unb64(signature)
        except ValueError:
            raw = b""
        if self.pool is None:
            self._signature_result(verify_signature(public_key, raw, message), expected_valid, tx,
                                   self.order, self.current_block)
            return
        self.batch.append((self.order, tx, self.current_block, expected_valid, (public_key, raw, message)))
        if len(self.batch) >= 256:
            self.flush_signatures()

    def flush_signatures(self) -> None:
        if self.batch:
            self.pending.append((self.batch, self.pool.submit([item[4] for item in self.batch])))
            self.batch = []
        # Keep a few batches in flight (workers stay busy) but memory flat on big ledgers;
        # settle only those already done unless too many are waiting.
        while self.pending and (len(self.pending) > 8 or all(f.done() for f in self.pending[0][1])):
            self._settle(self.pending.pop(0), stop=True)

    def drain_signatures(self, stop: bool = True) -> None:
        if self.pool is None:
            return
        if self.batch:
            self.pending.append((self.batch, self.pool.submit([item[4] for item in self.batch])))
            self.batch = []
        while self.pending:
            self._settle(self.pending.pop(0), stop=stop)

    def _settle(self, pending: tuple, *, stop: bool) -> None:
        items, futures = pending
        results = [ok for future in futures for ok in future.result()]
        for (order, tx, block, expected_valid, _), valid in zip(items, results, strict=True):
            if stop:
                self._signature_result(valid, expected_valid, tx, order, block)
            elif valid != expected_valid:
                self.report.problems.append(Problem(_signature_message(valid), block=block, tx_hash=tx[12],
                                                    tx_id=tx[0], order=order))

    def _signature_result(self, valid: bool, expected_valid: bool, tx: tuple, order: int, block: int | None) -> None:
        if valid != expected_valid:
            self.fail(_signature_message(valid), tx=tx, block=block, order=order)

    def run(self, progress: Callable[[Report], None] | None) -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT id FROM ledger_account WHERE kind = %s", [ISSUANCE])
            self.issuance = {r[0] for r in cur.fetchall()}
            cur.execute(
                "SELECT id, number, previous_hash, merkle_root, timestamp, tx_count, header_hash, "
                "signer_public_key, signature, first_tx_id, last_tx_id FROM ledger_block ORDER BY number"
            )
            blocks = cur.fetchall()
        # Transactions claiming a block whose id range does not cover them (one scan).
        strays: dict[int, list[tuple[int, str]]] = {}
        with connection.cursor() as cur:
            cur.execute("SELECT t.block_id, t.id, t.tx_hash FROM ledger_transaction t JOIN ledger_block b "
                        "ON b.id = t.block_id WHERE t.id NOT BETWEEN b.first_tx_id AND b.last_tx_id "
                        "OR b.first_tx_id IS NULL ORDER BY t.id")
            for block_id, tx_id, tx_hash in cur.fetchall():
                strays.setdefault(block_id, []).append((tx_id, tx_hash))
        previous_hash, expected_number = GENESIS_PREVIOUS_HASH, 0
        for block in blocks:
            number, header_hash = block[1], block[6]
            self._check_header(block, previous_hash, expected_number)
            for ref in strays.get(block[0], []):
                self.fail("claims this block but lies outside the block's transaction id range", block=number,
                          tx_ref=ref)
            hashes = []
            # Members by id range (transactions carry no block index); anything claiming this
            # block outside the range is caught below.
            for tx, postings, writes in self._transactions("t.id BETWEEN %s AND %s AND t.block_id = %s",
                                                           [block[9] or 0, block[10] or 0, block[0]]):
                hashes.append(self._check_transaction(tx, postings, writes, block=number))
            if len(hashes) != block[5]:
                self.fail(f"header counts {block[5]} transactions, block holds {len(hashes)}", block=number)
            if merkle_root(hashes).hex() != block[3]:
                self.fail("Merkle root does not match the block's transactions", block=number)
            self.report.blocks += 1
            if progress:
                progress(self.report)
            previous_hash, expected_number = header_hash, number + 1
        last = 0
        while True:
            batch = list(self._transactions("t.block_id IS NULL AND t.id > %s", [last], limit=CHUNK))
            if not batch:
                break
            queued = self._queued([tx[0] for tx, _, _ in batch])
            for tx, postings, writes in batch:
                self._check_transaction(tx, postings, writes, block=None)
                self.report.unsealed += 1
                if tx[0] not in queued:
                    self.fail("not sealed and not queued for sealing either", tx=tx)
            last = batch[-1][0][0]
        # Transactions that claim a block that does not exist, or that does not cover them,
        # would otherwise escape the replay.
        for tx, postings, writes in self._transactions(
            "t.block_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_block b WHERE b.id = t.block_id "
            "AND t.id BETWEEN b.first_tx_id AND b.last_tx_id)", []
        ):
            self.current_block = None
            self.fail(f"sealed into block id {tx[13]}, which is not in the chain or does not cover it", tx=tx)
            self._check_transaction(tx, postings, writes, block=None)
        self._check_balances()
        self._check_state()
        self._check_membership_tables()

    def _queued(self, ids: list[int]) -> set[int]:
        marks = ",".join(["%s"] * len(ids))
        with connection.cursor() as cur:
            cur.execute(f"SELECT transaction_id FROM ledger_unsealedtransaction WHERE transaction_id IN ({marks})", ids)
            return {r[0] for r in cur.fetchall()}

    def _check_header(self, block: tuple, previous_hash: str, expected_number: int) -> None:
        self.order += 1
        self.current_block = block[1]
        _, number, prev, root, ts, count, header_hash, signer, signature = block[:9]
        if number != expected_number:
            self.fail(f"expected block number {expected_number}, found {number}", block=number)
        if prev != previous_hash:
            self.fail(f"previous hash {prev} does not link to {previous_hash}", block=number)
        header_bytes = block_header_bytes(number=number, previous_hash=prev, merkle_root=root,
                                          timestamp=as_utc(ts), tx_count=count)
        if sha256_hex(header_bytes) != header_hash:
            self.fail("header hash does not match the header", block=number)
        if signer not in self.trusted:
            self.fail(f"signed by untrusted orderer key {signer}", block=number)
        elif not _verify_hex(signer, signature, header_bytes):
            self.fail("orderer signature does not verify", block=number)

    # --- transactions ------------------------------------------------------------------------
    def _transactions(self, where: str, params: list, limit: int | None = None) -> Iterator[tuple[tuple, list, list]]:
        sql = (
            "SELECT t.id, t.chaincode, t.function, t.args, t.idempotency_key, t.body_digest, "
            "t.proposed_at, t.signature, t.status, t.reason, t.result, t.events, t.tx_hash, t.block_id, "
            "o.msp_id, i.name, i.public_key FROM ledger_transaction t "
            "JOIN ledger_identity i ON i.id = t.invoker_id "
            f"JOIN ledger_organisation o ON o.id = i.organisation_id WHERE {where} ORDER BY t.id"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        with connection.cursor() as cur:
            cur.execute(sql, params)
            txs = cur.fetchall()
            if not txs:
                return
            ids = [t[0] for t in txs]
            lo, hi = ids[0], ids[-1]
            cur.execute(
                "SELECT p.transaction_id, a.key, p.asset_id, p.amount, p.account_id, a.asset_id "
                "FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id "
                "WHERE p.transaction_id BETWEEN %s AND %s ORDER BY p.id",
                [lo, hi],
            )
            postings: dict[int, list] = {}
            for row in cur.fetchall():
                postings.setdefault(row[0], []).append(row)
            cur.execute(
                "SELECT transaction_id, namespace, key, value, is_delete, version FROM ledger_statewrite "
                "WHERE transaction_id BETWEEN %s AND %s ORDER BY id",
                [lo, hi],
            )
            writes: dict[int, list] = {}
            for row in cur.fetchall():
                writes.setdefault(row[0], []).append(row)
        # Rows of other transactions whose ids fall in [lo, hi] are ignored here and checked
        # with their own transaction.
        for tx in txs:
            yield tx, postings.get(tx[0], []), writes.get(tx[0], [])

    def _check_transaction(self, tx: tuple, postings: list, writes: list, block: int | None) -> bytes:
        (tx_id, chaincode, function, args_json, idem, digest, proposed_at, signature, status, reason,
         result_json, events_json, stored_hash, block_id, msp_id, name, public_key) = tx
        self.current_block = block
        self.order += 1
        try:
            (args, args_ok), (result, result_ok), (events, events_ok) = (
                loads_ledger_json(args_json), loads_ledger_json(result_json), loads_ledger_json(events_json))
        except (ValueError, CanonicalError) as exc:
            self.fail(f"stored JSON is not ledger JSON: {exc}", tx=tx)
            return b"\x00" * 32
        writes_parsed = []
        writes_ok = True
        for w in writes:
            value, ok = loads_ledger_json(w[3])
            writes_ok = writes_ok and ok
            writes_parsed.append((w, value))
        # Stored text that cannot leave the fast path needs no second walk before hashing
        # (only object keys and numbers can leave it, and they all come from these texts).
        checked = args_ok and result_ok and events_ok and writes_ok
        proposal_fields = dict(chaincode=chaincode, function=function, args=args, invoker=f"{msp_id}/{name}",
                               idempotency_key=idem, proposed_at=as_utc(proposed_at))
        posting_rows = [[p[1], p[2], p[3]] for p in postings]
        write_rows = [[w[1], w[2], value, bool(w[4]), w[5]] for w, value in writes_parsed]
        try:
            signed = proposal_bytes(checked=checked, **proposal_fields)
            computed = transaction_hash(
                proposal=signed, signature=signature, status=status, reason=reason,
                result=result, events=events, postings=posting_rows, state_writes=write_rows,
                checked=checked,
            )
        except Exception as exc:  # malformed stored JSON is itself tampering
            signed = b""
            self.fail(f"transaction cannot be hashed: {exc}", tx=tx)
            computed = "00" * 32
        if computed != stored_hash:
            self.fail(f"hash mismatch: stored {stored_hash}, recomputed {computed}", tx=tx)
        if body_digest(chaincode, function, args, checked=checked) != digest:
            self.fail("body digest does not match chaincode, function and args", tx=tx)
        if self.check_signatures:
            forged = reason == SIGNATURE_REJECTION and status == "rejected"
            self.check_signature(tx, self._key_in_force(tx, args, bytes(public_key)), signature, signed,
                                 expected_valid=not forged)
        else:
            self._key_in_force(tx, args, bytes(public_key))
        if status not in ("valid", "rejected"):
            self.fail(f"unknown status {status!r}", tx=tx)
        if status == "rejected" and (postings or writes):
            self.fail("a rejected transaction has effects", tx=tx)
        sums: dict[str, int] = {}
        for _, key, asset, amount, account_id, account_asset in postings:
            if asset != account_asset:
                self.fail(f"posting asset {asset} differs from account {key!r}'s asset {account_asset}", tx=tx)
            sums[asset] = sums.get(asset, 0) + amount
            balance = self.balances.get(account_id, 0) + amount
            self.balances[account_id] = balance
            if balance < 0 and account_id not in self.issuance:
                self.fail(f"{asset} account {key!r} goes negative ({balance})", tx=tx)
        for asset, total in sums.items():
            if total:
                self.fail(f"{asset} postings sum to {total}, not zero", tx=tx)
        for ns, key, value, is_delete, version in write_rows:
            prev = self.state.get((ns, key))
            expected_version = (prev[2] if prev else 0) + 1
            if version != expected_version:
                self.fail(f"state {ns}/{key} version {version}, expected {expected_version}", tx=tx)
            self.state[(ns, key)] = (_state_digest(value), is_delete, version)
        for message in self.membership.majority_problems(chaincode=chaincode, function=function, status=status,
                                                         args=args, invoker=f"{msp_id}/{name}", writes=write_rows):
            self.fail(message, tx=tx)
        self.membership.apply(write_rows)
        self.report.transactions += 1
        return bytes.fromhex(computed)

    # --- membership on chain (membership_replay.py) -------------------------------------------
    def _key_in_force(self, tx: tuple, args: Any, table_key: bytes) -> bytes:
        """The invoker's key in force at ``tx``, after checking its membership and policies."""
        problems: list[str] = []
        key = self.membership.key_in_force(invoker=f"{tx[14]}/{tx[15]}", table_key=table_key, chaincode=tx[1],
                                           function=tx[2], args=args, status=tx[8], tx_id=tx[0],
                                           identity_name=tx[15], problems=problems)
        for message in problems:
            self.fail(message, tx=tx)
        return key

    def _check_membership_tables(self) -> None:
        for message in self.membership.compare_tables():
            self.fail(message)

    # --- final state ---------------------------------------------------------------------------
    def _check_balances(self) -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT id, key, asset_id, balance FROM ledger_account ORDER BY id")
            for account_id, key, asset, balance in cur.fetchall():
                self.report.accounts += 1
                replayed = self.balances.get(account_id, 0)
                if replayed != balance:
                    self.fail(f"{asset} account {key!r} stores balance {balance}, postings sum to {replayed}")

    def _check_state(self) -> None:
        """Every stored entry against the replayed history, a chunk of entries at a time in key
        order, then the entries history has and the table lacks."""
        seen: set[tuple[str, str]] = set()
        last = ("", "")
        with connection.cursor() as cur:
            while True:
                cur.execute('SELECT namespace, key, value, is_deleted, version FROM ledger_stateentry '
                            'WHERE (namespace, key) > (%s, %s) ORDER BY namespace, key '
                            'LIMIT %s', [*last, CHUNK * 10])
                rows = cur.fetchall()
                if not rows:
                    break
                for ns, key, raw, is_deleted, version in rows:
                    value = _json(raw)
                    replayed = self.state.get((ns, key))
                    if replayed != (_state_digest(value), bool(is_deleted), version):
                        self.fail(f"world state {ns}/{key} is {(value, bool(is_deleted), version)}, "
                                  f"history says {_described(replayed)}")
                    seen.add((ns, key))
                last = (rows[-1][0], rows[-1][1])
        for ns, key in sorted(set(self.state) - seen):
            self.fail(f"world state {ns}/{key} is None, history says {_described(self.state[(ns, key)])}")


def _signature_message(valid: bool) -> str:
    return ("a transaction rejected as forged carries a valid signature" if valid
            else "invoker signature does not verify")


def _state_digest(value: Any) -> bytes | None:
    """SHA-256 of a state value's canonical JSON; a value that is not ledger JSON (no history
    writes one) gets a digest no ledger value has."""
    if value is None:
        return None
    try:
        return hashlib.sha256(canonical_json(value)).digest()
    except CanonicalError:
        return b"not ledger JSON: " + repr(value).encode()


def _described(replayed: tuple[bytes | None, bool, int] | None) -> str:
    if replayed is None:
        return "None"
    digest, is_delete, version = replayed
    return f"version {version}{', deleted' if is_delete else ''}{'' if digest is None else ', a value'}"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _verify_hex(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        return verify_signature(bytes.fromhex(public_hex), bytes.fromhex(signature_hex), message)
    except ValueError:
        return False


# --- the global log: checkpoints, stored subtrees and cosignatures (docs/witnesses.md) ---------

def _check_log(v: _Verifier) -> None:
    """Every block's checkpoint: its size and root recomputed over the stored transaction hashes
    in sealing order (the replay above checked those hashes), its link to its block, its body,
    the orderer's note signature and every stored cosignature; and every stored subtree hash
    the log serves proofs from."""
    from . import log, notes
    from .merkle import frontier_append, frontier_root, leaf_hash

    origin = log.origin()
    trusted = [bytes.fromhex(k) for k in v.trusted]
    with connection.cursor() as cur:
        cur.execute("SELECT b.id, b.number, b.header_hash, b.first_tx_id, b.last_tx_id, c.id, c.number, "
                    "c.header_hash, c.tree_size, c.root, c.body, c.signature_line, c.frontier FROM ledger_block b "
                    "LEFT JOIN ledger_checkpoint c ON c.block_id = b.id ORDER BY b.number")
        blocks = cur.fetchall()
        cur.execute("SELECT c.number FROM ledger_checkpoint c LEFT JOIN ledger_block b ON b.id = c.block_id "
                    "WHERE b.id IS NULL ORDER BY c.number")
        orphans = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT s.checkpoint_id, s.line, s.timestamp, o.msp_id, i.name, i.public_key "
                    "FROM ledger_cosignature s JOIN ledger_identity i ON i.id = s.witness_id "
                    "JOIN ledger_organisation o ON o.id = i.organisation_id ORDER BY s.id")
        cosignatures: dict[int, list[tuple]] = {}
        for row in cur.fetchall():
            cosignatures.setdefault(row[0], []).append(row[1:])
    v.order += 1
    for number in orphans:
        v.fail(f"checkpoint {number} belongs to no block of the chain", block=number)
    frontier: list = []
    size = nodes = 0
    for block_id, number, header_hash, first_id, last_id, cp_id, cp_number, cp_header, cp_size, cp_root, body, \
            line, cp_frontier in blocks:
        with connection.cursor() as cur:
            cur.execute("SELECT tx_hash FROM ledger_transaction WHERE id BETWEEN %s AND %s AND block_id = %s "
                        "ORDER BY id", [first_id or 0, last_id or 0, block_id])
            hashes = [leaf_hash(bytes.fromhex(r[0])) for r in cur.fetchall()]
        frontier, created = frontier_append(frontier, size, hashes)
        size += len(hashes)
        nodes += len(created)
        stored = log.stored_nodes([k for k, _ in created])
        for key, h in created:
            if stored.get(key) != h:
                v.fail(f"the log's stored subtree at level {key[0]} index {key[1]} is missing or wrong",
                       block=number)
        if cp_id is None:
            v.fail("block has no checkpoint in the global log", block=number)
            continue
        root = frontier_root(frontier)
        expected = notes.checkpoint_body(origin, size, root, number, header_hash)
        if (cp_number, cp_header) != (number, header_hash):
            v.fail(f"checkpoint names block {cp_number} {cp_header}, not this block", block=number)
        if cp_size != size:
            v.fail(f"checkpoint tree size {cp_size}, the log holds {size}", block=number)
        if bytes(cp_frontier or b"") != b"".join(h for _, h in frontier):
            v.fail("checkpoint's stored frontier differs from the log's", block=number)
        if cp_root != root.hex():
            v.fail(f"checkpoint root {cp_root} differs from the log's root {root.hex()}", block=number)
        if body != expected:
            v.fail("checkpoint body differs from the body recomputed from the chain", block=number)
        if not any(notes.verify_note_line(body, line, origin, key) for key in trusted):
            v.fail("checkpoint is not signed by a trusted orderer key", block=number)
        for cosig_line, timestamp, msp_id, name, public_key in cosignatures.get(cp_id, []):
            witness = f"{msp_id}/{name}"
            if name != log.WITNESS_IDENTITY:
                v.fail(f"cosignature by {witness}, which is not a witness", block=number)
            elif notes.verify_cosignature_line(body, cosig_line, witness, bytes(public_key)) != timestamp:
                v.fail(f"cosignature by {witness} does not verify", block=number)
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(sum(length(hashes)), 0) FROM ledger_logchunk")
        stored_bytes = cur.fetchone()[0]
    if stored_bytes != nodes * log.HASH:
        v.fail(f"the log stores {stored_bytes / log.HASH:g} subtree hashes, the chain makes {nodes}")
