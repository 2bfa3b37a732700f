"""Replays a ledger from genesis, from what an export or the read API serves, and checks every
hash, signature, root, link, balance and policy (docs/ledger-format.md)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .formats import (
    GENESIS_PREVIOUS_HASH,
    SIGNATURE_REJECTION,
    CompactTree,
    FormatError,
    b64decode,
    body_digest,
    canonical,
    check_document_shape,
    checkpoint_body,
    ed25519_verify,
    header_bytes,
    merkle_root,
    parse,
    sha256_hex,
    signature_lines,
    unhex,
    verify_batch,
    verify_cosignature,
    verify_orderer_note,
)

CONFIG = "config"
BATCH = 1024
# Below this many signatures, starting worker processes costs more than it saves.
PARALLEL_FROM = 4096


@dataclass
class Problem:
    message: str
    block: int | None = None
    tx_hash: str | None = None
    order: int = 0

    def __str__(self) -> str:
        where = []
        if self.block is not None:
            where.append(f"block {self.block}")
        if self.tx_hash:
            where.append(f"transaction {self.tx_hash}")
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass
class Report:
    blocks: int = 0
    transactions: int = 0
    pending: int = 0
    accounts: int = 0
    signatures: int = 0
    cosignatures: int = 0
    checkpoint: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        rate = self.transactions / self.seconds if self.seconds else 0.0
        text = (f"{self.blocks} blocks, {self.transactions} transactions ({self.pending} not yet sealed), "
                f"{self.signatures} signatures, {self.accounts} accounts in {self.seconds:.2f}s ({rate:,.0f} tx/s)")
        if self.checkpoint is not None:
            text += f"; checkpoint at block {self.checkpoint} with {self.cosignatures} witness cosignatures"
        return text + "".join(f"; {note}" for note in self.notes)


class Stop(Exception):
    pass


class Membership:
    """Organisation types, identity keys and account owners in force: the ``config`` world state
    replayed so far, falling back on the export's snapshot for what predates config transactions."""

    def __init__(self, snapshot: dict | None):
        # Without a snapshot of organisations (the API serves none), a member that predates config
        # transactions has no known type, and its policies go unchecked.
        self.knows_every_org = bool(snapshot and "organisations" in snapshot)
        snapshot = snapshot or {}
        self.snapshot_orgs = {o["msp_id"]: o for o in snapshot.get("organisations", [])}
        self.snapshot_identities = {i["identity"]: i for i in snapshot.get("identities", [])}
        self.snapshot_accounts = {(a["asset"], a["key"]): a for a in snapshot.get("accounts", [])}
        self.config: dict[str, Any] = {}

    def apply(self, key: str, value: Any, is_delete: bool) -> None:
        if is_delete:
            self.config.pop(key, None)
        else:
            self.config[key] = value

    def org_type(self, msp_id: str) -> str | None:
        org = self.config.get(f"org/{msp_id}")
        if isinstance(org, dict):
            return org.get("org_type")
        org = self.snapshot_orgs.get(msp_id)
        return org.get("org_type") if org else None

    def identity(self, name: str) -> dict | None:
        """The identity's config entry (None: it predates config transactions)."""
        entry = self.config.get(f"identity/{name}")
        return entry if isinstance(entry, dict) else None

    def account_kind(self, key: str, asset: str) -> str | None:
        entry = self.config.get(f"account/{asset}/{key}")
        if isinstance(entry, dict):
            return entry.get("kind")
        account = self.snapshot_accounts.get((asset, key))
        return account.get("kind") if account else None


class Checker:
    def __init__(self, *, orderer_keys: Iterable[str], policies: dict | None, membership: dict | None = None,
                 first_only: bool = True, workers: int | None = None, origin: str = ""):
        self.report = Report()
        self.origin = origin
        self.orderer_keys = set(orderer_keys)
        self.policies = policies
        self.membership = Membership(membership)
        self.first_only = first_only
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.started = time.perf_counter()
        self.order = 0
        self.expected_number = 0
        self.previous_hash = GENESIS_PREVIOUS_HASH
        self.balances: dict[tuple[str, str], int] = {}
        self.state: dict[tuple[str, str], tuple[bytes | None, bool, int]] = {}
        self.tree = CompactTree()
        self.block_trees: dict[int, tuple[int, bytes, str]] = {}  # block -> (tree size, root, header hash)
        self.want_tree_at: int | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._batch: list[tuple] = []
        self._pending: list[tuple[list[tuple], Future]] = []
        self._seen_signatures = 0

    # --- problems ----------------------------------------------------------------------------
    def fail(self, message: str, *, block: int | None = None, tx_hash: str | None = None,
             order: int | None = None) -> None:
        self.report.problems.append(Problem(message, block, tx_hash, self.order if order is None else order))
        if self.first_only:
            self._drain(stop=False)  # an earlier transaction's signature may still be in flight
            raise Stop

    # --- blocks --------------------------------------------------------------------------------
    def block(self, record: dict) -> None:
        self.order += 1
        header = record.get("header")
        number = header.get("number") if isinstance(header, dict) else None
        where = number if isinstance(number, int) else self.expected_number
        try:
            signed = header_bytes(header)
        except FormatError as exc:
            self.fail(f"header: {exc}", block=where)
            return
        if number != self.expected_number:
            self.fail(f"expected block number {self.expected_number}, found {number}", block=where)
        if header["previous_hash"] != self.previous_hash:
            self.fail(f"previous hash {header['previous_hash']} does not link to {self.previous_hash}", block=where)
        header_hash = sha256_hex(signed)
        if header_hash != record.get("header_hash"):
            self.fail("header hash does not match the header", block=where)
        signer = record.get("signer_public_key")
        if signer not in self.orderer_keys:
            self.fail(f"signed by untrusted orderer key {signer}", block=where)
        else:
            try:
                valid = ed25519_verify(unhex(signer, 32), unhex(record.get("signature"), 64), signed)
            except FormatError:
                valid = False
            if not valid:
                self.fail("orderer signature does not verify", block=where)
        transactions = record.get("transactions") or []
        hashes = [self.transaction(tx, block=where) for tx in transactions]
        if len(hashes) != header["tx_count"]:
            self.fail(f"header counts {header['tx_count']} transactions, block holds {len(hashes)}", block=where)
        if merkle_root(hashes).hex() != header["merkle_root"]:
            self.fail("Merkle root does not match the block's transactions", block=where)
        for leaf in hashes:
            self.tree.append(leaf)
        if "checkpoint" in record:
            self._block_checkpoint(record["checkpoint"], where, record.get("header_hash"))
        if self.want_tree_at is None or self.want_tree_at == where:
            self.block_trees[where] = (self.tree.size, self.tree.root(), record.get("header_hash"))
        self.report.blocks += 1
        self.expected_number = where + 1
        self.previous_hash = record.get("header_hash")

    def _block_checkpoint(self, checkpoint: dict | None, number: int, header_hash: str) -> None:
        """The block's checkpoint in the global log (an export carries one per block): the tree
        over every transaction so far, its body, the orderer's note signature and each stored
        witness cosignature."""
        if checkpoint is None:
            self.fail("block has no checkpoint in the global log", block=number)
            return
        root = self.tree.root()
        if (checkpoint.get("block"), checkpoint.get("header_hash")) != (number, header_hash):
            self.fail(f"checkpoint names block {checkpoint.get('block')} {checkpoint.get('header_hash')}, "
                      "not this block", block=number)
        if checkpoint.get("tree_size") != self.tree.size:
            self.fail(f"checkpoint tree size {checkpoint.get('tree_size')}, the chain has {self.tree.size} "
                      "transactions so far", block=number)
        if checkpoint.get("root") != root.hex():
            self.fail(f"checkpoint root {checkpoint.get('root')} differs from the root {root.hex()} of every "
                      "transaction so far", block=number)
        body = checkpoint_body(self.origin, self.tree.size, root, number, header_hash)
        if checkpoint.get("body") != body:
            self.fail("checkpoint body differs from the body recomputed from the chain", block=number)
            return
        if not self._orderer_note(body, [checkpoint.get("signature_line") or ""]):
            self.fail("checkpoint is not signed by a trusted orderer key", block=number)
        for cosignature in checkpoint.get("cosignatures") or []:
            witness = cosignature.get("witness", "")
            try:
                (name, blob), = signature_lines(body + "\n" + cosignature.get("line", "") + "\n")
                valid = (name == witness and witness.endswith("/witness") and verify_cosignature(
                    name, unhex(cosignature.get("public_key"), 32), body, blob) == cosignature.get("timestamp"))
            except (FormatError, ValueError):
                valid = False
            if not valid:
                self.fail(f"cosignature by {witness} does not verify", block=number)

    def _orderer_note(self, body: str, lines: list[str]) -> bool:
        try:
            parsed = signature_lines(body + "\n" + "\n".join(lines) + "\n")
        except FormatError:
            return False
        return any(name == self.origin and verify_orderer_note(self.origin, unhex(key, 32), body, blob)
                   for name, blob in parsed for key in self.orderer_keys if _is_key(key))

    def pending(self, record: dict) -> None:
        """A transaction not sealed into any block yet."""
        self.order += 1
        tx_hash = self.transaction(record, block=None).hex()
        if record.get("claims_block"):
            self.fail("the database says it is sealed into a block the chain does not have", tx_hash=tx_hash)
        elif record.get("queued") is False:
            self.fail("not sealed and not queued for sealing either", tx_hash=tx_hash)
        self.report.pending += 1

    # --- transactions ------------------------------------------------------------------------
    def transaction(self, record: dict, *, block: int | None) -> bytes:
        self.order += 1
        stated = record.get("tx_hash")
        try:
            raw = b64decode(record.get("bytes") or "")
        except FormatError as exc:
            self.fail(f"transaction bytes: {exc}", block=block, tx_hash=stated)
            return b"\x00" * 32
        computed = sha256_hex(raw)
        tx_hash = stated or computed
        if stated is not None and stated != computed:
            self.fail(f"hash mismatch: stated {stated}, recomputed {computed}", block=block, tx_hash=tx_hash)
        try:
            document = parse(raw)
            check_document_shape(document)
            if canonical(document) != raw:
                raise FormatError("the bytes are not the canonical JSON of the document")
            proposal = document["proposal"]
            signed = canonical(proposal)
            digest = body_digest(proposal) if "body_digest" in record else None
        except FormatError as exc:
            self.fail(f"transaction document: {exc}", block=block, tx_hash=tx_hash)
            return bytes.fromhex(computed)
        if digest is not None and digest != record["body_digest"]:
            self.fail("body digest does not match chaincode, function and args", block=block, tx_hash=tx_hash)
        effects = document["effects"]
        status, reason = effects["status"], effects["reason"]
        invoker = proposal["invoker"]
        self._signature(record, invoker, document["signature"], signed, block, tx_hash,
                        forged=status == "rejected" and reason == SIGNATURE_REJECTION, valid=status == "valid")
        if status not in ("valid", "rejected"):
            self.fail(f"unknown status {status!r}", block=block, tx_hash=tx_hash)
        if status == "rejected" and (effects["postings"] or effects["state_writes"]):
            self.fail("a rejected transaction has effects", block=block, tx_hash=tx_hash)
        if status == "valid":
            self._policy(proposal, block, tx_hash)
        sums: dict[str, int] = {}
        for key, asset, amount in effects["postings"]:
            if amount == 0:
                self.fail(f"a posting of 0 {asset} to {key!r}", block=block, tx_hash=tx_hash)
            sums[asset] = sums.get(asset, 0) + amount
            balance = self.balances.get((key, asset), 0) + amount
            self.balances[(key, asset)] = balance
            if balance < 0 and self.membership.account_kind(key, asset) != "issuance":
                self.fail(f"{asset} account {key!r} goes negative ({balance})", block=block, tx_hash=tx_hash)
        for asset, total in sums.items():
            if total:
                self.fail(f"{asset} postings sum to {total}, not zero", block=block, tx_hash=tx_hash)
        for ns, key, value, is_delete, version in effects["state_writes"]:
            previous = self.state.get((ns, key))
            expected = (previous[2] if previous else 0) + 1
            if version != expected:
                self.fail(f"state {ns}/{key} version {version}, expected {expected}", block=block, tx_hash=tx_hash)
            self.state[(ns, key)] = (_digest(value), is_delete, version)
            if ns == CONFIG:
                self.membership.apply(key, value, is_delete)
        self.report.transactions += 1
        return bytes.fromhex(computed)

    def _signature(self, record: dict, invoker: str, signature: str, signed: bytes, block: int | None,
                   tx_hash: str, *, forged: bool, valid: bool) -> None:
        stated = record.get("invoker_public_key")
        in_force = self.membership.identity(invoker)
        key_hex = stated
        if in_force is not None:
            key_hex = in_force.get("public_key")
            if stated is not None and stated != key_hex:
                self.fail(f"invoker key {stated} is not the key in force on chain ({key_hex})", block=block,
                          tx_hash=tx_hash)
            if in_force.get("revoked") and valid:
                self.fail(f"invoker {invoker} was revoked", block=block, tx_hash=tx_hash)
        try:
            public_key = unhex(key_hex, 32)
            raw = b64decode(signature)
        except FormatError:
            public_key, raw = b"", b""
        self.report.signatures += 1
        item = (self.order, block, tx_hash, not forged, (public_key, raw, signed))
        self._seen_signatures += 1
        if self._pool is None and self.workers > 1 and self._seen_signatures > PARALLEL_FROM:
            self._pool = ProcessPoolExecutor(self.workers)
        if self._pool is None:
            self._result(item, ed25519_verify(public_key, raw, signed))
            return
        self._batch.append(item)
        if len(self._batch) >= BATCH:
            self._flush()

    def _policy(self, proposal: dict, block: int | None, tx_hash: str) -> None:
        if self.policies is None:
            return
        name = f"{proposal['chaincode']}.{proposal['function']}"
        if name not in self.policies:
            self.fail(f"{name} is not in the published policies", block=block, tx_hash=tx_hash)
            return
        allowed = self.policies[name]
        if allowed is None:
            return
        msp_id = proposal["invoker"].split("/", 1)[0]
        org_type = self.membership.org_type(msp_id)
        if org_type is None:
            if self.membership.knows_every_org:
                self.fail(f"organisation {msp_id} is not a member", block=block, tx_hash=tx_hash)
        elif org_type not in allowed:
            self.fail(f"endorsement policy: {name} may be invoked by {', '.join(allowed)}, not {org_type} "
                      f"({msp_id})", block=block, tx_hash=tx_hash)

    # --- signatures in worker processes ---------------------------------------------------------
    def _result(self, item: tuple, valid: bool, stop: bool = True) -> None:
        order, block, tx_hash, expected, _ = item
        if valid == expected:
            return
        message = ("a transaction rejected as forged carries a valid signature" if valid
                   else "invoker signature does not verify")
        if stop:
            self.fail(message, block=block, tx_hash=tx_hash, order=order)
        else:
            self.report.problems.append(Problem(message, block, tx_hash, order))

    def _flush(self) -> None:
        assert self._pool is not None
        if self._batch:
            self._pending.append((self._batch, self._pool.submit(verify_batch, [i[4] for i in self._batch])))
            self._batch = []
        while self._pending and (len(self._pending) > 4 * self.workers or self._pending[0][1].done()):
            self._settle(self._pending.pop(0), stop=True)

    def _settle(self, pending: tuple[list[tuple], Future], stop: bool) -> None:
        items, future = pending
        for item, valid in zip(items, future.result(), strict=True):
            self._result(item, valid, stop=stop)

    def _drain(self, stop: bool = True) -> None:
        if self._pool is None:
            return
        if self._batch:
            self._pending.append((self._batch, self._pool.submit(verify_batch, [i[4] for i in self._batch])))
            self._batch = []
        while self._pending:
            self._settle(self._pending.pop(0), stop=stop)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # --- the final state ---------------------------------------------------------------------------
    def balances_against(self, accounts: list[dict]) -> None:
        """Final balances as published against those replayed from postings."""
        seen = set()
        for account in accounts:
            self.report.accounts += 1
            key, asset = account["key"], account["asset"]
            seen.add((key, asset))
            replayed = self.balances.get((key, asset), 0)
            if replayed != account["balance"]:
                self.fail(f"{asset} account {key!r} stores balance {account['balance']}, postings sum to {replayed}")
        for key, asset in sorted(set(self.balances) - seen):
            self.fail(f"postings move {asset} account {key!r}, which the published accounts lack")

    def state_against(self, entries: Iterable[dict]) -> None:
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            ns, key = entry["namespace"], entry["key"]
            replayed = self.state.get((ns, key))
            stored = (_digest(entry["value"]), bool(entry["is_deleted"]), entry["version"])
            if replayed != stored:
                self.fail(f"world state {ns}/{key} is {(entry['value'], entry['is_deleted'], entry['version'])}, "
                          f"history says {_described(replayed)}")
            seen.add((ns, key))
        for ns, key in sorted(set(self.state) - seen):
            self.fail(f"world state {ns}/{key} is None, history says {_described(self.state[(ns, key)])}")

    def membership_against_snapshot(self) -> None:
        """The operator's tables against the membership replayed from config transactions: an
        organisation's type, an identity's key, kind or revocation, an account's owner or kind
        changed in the database shows here."""
        m = self.membership
        for key, value in sorted(m.config.items()):
            if not isinstance(value, dict):
                continue
            kind, _, rest = key.partition("/")
            if kind == "org":
                org = m.snapshot_orgs.get(rest)
                for f in ("org_type", "name"):
                    if org is None or (f in value and org.get(f) != value[f]):
                        self.fail(f"organisation {rest}: {f} is {org and org.get(f)!r} in the membership, "
                                  f"{value.get(f)!r} on chain")
            elif kind == "identity":
                identity = m.snapshot_identities.get(rest)
                for f in ("public_key", "kind", "revoked"):
                    if identity is None or (f in value and identity.get(f) != value[f]):
                        self.fail(f"identity {rest}: {f} is {identity and identity.get(f)!r} in the membership, "
                                  f"{value.get(f)!r} on chain")
            elif kind == "account":
                asset, _, account_key = rest.partition("/")
                account = m.snapshot_accounts.get((asset, account_key))
                for f in ("organisation", "kind"):
                    if account is None or (f in value and account.get(f) != value[f]):
                        self.fail(f"account {account_key} [{asset}]: {f} is {account and account.get(f)!r} in the "
                                  f"membership, {value.get(f)!r} on chain")

    def checkpoint(self, checkpoint: dict, *, origin: str, witnesses: list[dict], quorum: int) -> None:
        """The checkpoint's tree over every sealed transaction hash, its body, the orderer's note
        signature and at least ``quorum`` valid witness cosignatures."""
        number = checkpoint.get("block")
        self.report.checkpoint = number
        where = number if isinstance(number, int) else None
        if number not in self.block_trees:
            self.fail(f"checkpoint names block {number}, which the chain does not have", block=where)
            return
        size, root, header_hash = self.block_trees[number]
        if checkpoint.get("tree_size") != size:
            self.fail(f"checkpoint tree size {checkpoint.get('tree_size')}, the chain has {size} transactions "
                      f"up to block {number}", block=where)
        if checkpoint.get("root") != root.hex():
            self.fail("checkpoint root is not the Merkle root of every transaction hash so far", block=where)
        if checkpoint.get("header_hash") != header_hash:
            self.fail("checkpoint header hash is not the block's", block=where)
        body = checkpoint_body(origin, size, root, number, header_hash)
        note = checkpoint.get("note") or ""
        if checkpoint.get("body") != body or not note.startswith(body + "\n"):
            self.fail("checkpoint body is not the note of this tree", block=where)
            return
        try:
            lines = signature_lines(note)
        except FormatError as exc:
            self.fail(f"checkpoint note: {exc}", block=where)
            return
        if not any(name == origin and any(verify_orderer_note(origin, unhex(k, 32), body, blob)
                                          for k in self.orderer_keys if _is_key(k))
                   for name, blob in lines):
            self.fail("checkpoint note carries no valid orderer signature", block=where)
        keys = {w["name"]: unhex(w["public_key"], 32) for w in witnesses}
        cosigned = {name for name, blob in lines
                    if name in keys and verify_cosignature(name, keys[name], body, blob) is not None}
        self.report.cosignatures = len(cosigned)
        if len(cosigned) < quorum:
            self.fail(f"checkpoint has {len(cosigned)} valid witness cosignatures, {quorum} required", block=where)

    def finish(self) -> Report:
        try:
            self._drain()
        except Stop:
            pass
        self.close()
        self.report.problems.sort(key=lambda p: p.order)
        self.report.seconds = time.perf_counter() - self.started
        return self.report


def _digest(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return hashlib.sha256(canonical(value)).digest()
    except FormatError:
        return b"not ledger JSON: " + repr(value).encode()


def _described(replayed: tuple[bytes | None, bool, int] | None) -> str:
    if replayed is None:
        return "None"
    digest, is_delete, version = replayed
    return f"version {version}{', deleted' if is_delete else ''}{'' if digest is None else ', a value'}"


def _is_key(text: str) -> bool:
    try:
        unhex(text, 32)
    except FormatError:
        return False
    return True
