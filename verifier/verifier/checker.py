"""Replays a ledger from genesis, from what an export or the read API serves, and checks every
hash, signature, root, link, balance and policy (docs/ledger-format.md).

Two phases per block: ``analyse_block`` does everything that needs no history (hashes, canonical
form, signatures, the block's root) and runs in worker processes on large inputs; ``Checker``
then applies the facts in chain order (links, keys and policies in force, balances, versions,
the global log), which is cheap."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
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
    canonical_text,
    check_document_shape,
    checkpoint_body,
    choose_ed25519,
    ed25519_backend,
    ed25519_description,
    ed25519_verify,
    ed25519_verify_hex,
    encode_string,
    header_bytes,
    in_fast_domain,
    merkle_root,
    parse,
    parse_text,
    sha256_hex,
    signature_lines,
    unhex,
    verify_cosignature,
    verify_orderer_note,
)
from .policy import Membership, needs_args

CONFIG = "config"
# Work sent to a worker process at a time (bytes of export lines, about 3,000 transactions).
CHUNK_BYTES = 4 << 20


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


# --- phase 1: what needs no history (worker processes) ----------------------------------------------


def analyse_transaction(record: dict) -> dict:
    """Hash, document, canonical form, body digest and the signature under the stated key."""
    stated = record.get("tx_hash")
    facts: dict[str, Any] = {"stated": stated, "stated_key": record.get("invoker_public_key"), "error": None}
    try:
        raw = b64decode(record.get("bytes") or "")
    except FormatError as exc:
        facts.update(computed="00" * 32, error=f"transaction bytes: {exc}")
        return facts
    facts["computed"] = sha256_hex(raw)
    parts = _canonical_parts(raw) if in_fast_domain(raw) else None
    if parts is None:
        try:
            document, signed, digest = _document_parts(raw)
        except FormatError as exc:
            facts["error"] = f"transaction document: {exc}"
            return facts
        value_digest = _digest
    else:
        document, signed, digest = parts
        value_digest = _fast_digest
    proposal, effects = document["proposal"], document["effects"]
    if "body_digest" in record:
        facts["digest_ok"] = digest == record["body_digest"]
    facts.update(status=effects["status"], reason=effects["reason"], invoker=proposal["invoker"],
                 name=f"{proposal['chaincode']}.{proposal['function']}", postings=effects["postings"],
                 writes=[(ns, key, value_digest(value), is_delete, version, value if ns == CONFIG else None)
                         for ns, key, value, is_delete, version in effects["state_writes"]])
    if needs_args(facts["name"]):
        facts["args"] = proposal["args"]
    try:
        signature = b64decode(document["signature"])
    except FormatError:
        signature = b""
    if facts["stated_key"] is not None:
        facts["sig_valid"] = ed25519_verify_hex(facts["stated_key"], signature, signed)
    else:  # checked in chain order, under the key in force
        facts["signature"] = signature
        facts["signed"] = signed
    return facts


def _canonical_parts(raw: bytes) -> tuple[dict, bytes, str] | None:
    """(document, proposal bytes, body digest) of canonical document bytes in the fast domain;
    None when anything is amiss (``_document_parts`` then says what).

    The canonical text of a document is ``{"effects":E,"proposal":P,"signature":S}`` with E, P
    and S the canonical texts of its members, so the bytes are compared with that and P is the
    signed proposal, encoded once. P is in turn ``{"args":A,"chaincode":C,"function":F`` followed
    by the tail ``,"idempotency_key":I,"invoker":V,"proposed_at":T}``; the body whose digest is
    checked, ``{"args":A,"chaincode":C,"function":F}``, is P without that tail, plus ``}``."""
    text = raw.decode("ascii")
    try:
        document = parse_text(text)
        check_document_shape(document)
    except FormatError:
        return None
    proposal = document["proposal"]
    signed = canonical_text(proposal)
    if text != "".join(('{"effects":', canonical_text(document["effects"]), ',"proposal":', signed,
                         ',"signature":', encode_string(document["signature"]), "}")):
        return None
    idempotency_key = proposal["idempotency_key"]
    tail = "".join((',"idempotency_key":', encode_string(idempotency_key) if type(idempotency_key) is str
                    else canonical_text(idempotency_key), ',"invoker":', encode_string(proposal["invoker"]),
                    ',"proposed_at":', encode_string(proposal["proposed_at"]), "}"))
    body = signed[:len(signed) - len(tail)] + "}"
    return document, signed.encode("ascii"), sha256_hex(body.encode("ascii"))


def _document_parts(raw: bytes) -> tuple[dict, bytes, str]:
    """What ``_canonical_parts`` gives, for any bytes: the general path, and the one that names
    the problem."""
    document = parse(raw)
    check_document_shape(document)
    if canonical(document) != raw:
        raise FormatError("the bytes are not the canonical JSON of the document")
    proposal = document["proposal"]
    return document, canonical(proposal), body_digest(proposal)


def analyse_block(record: dict, orderer_keys: frozenset[str], origin: str = "") -> dict:
    header = record.get("header")
    facts: dict[str, Any] = {"record": {k: v for k, v in record.items() if k != "transactions"}, "header_error": None}
    try:
        signed = header_bytes(header)
        facts["header_hash"] = sha256_hex(signed)
        signer = record.get("signer_public_key")
        if signer in orderer_keys:
            try:
                facts["orderer_ok"] = ed25519_verify(unhex(signer, 32), unhex(record.get("signature"), 64), signed)
            except FormatError:
                facts["orderer_ok"] = False
    except FormatError as exc:
        facts["header_error"] = f"header: {exc}"
    checkpoint = record.get("checkpoint")
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("body"), str):
        # Over the body as stated: chain order later holds it to the body recomputed from the
        # chain, and looks at these verdicts only when the two are the same.
        try:
            facts["checkpoint_signatures"] = checkpoint_signatures(checkpoint, checkpoint["body"], orderer_keys, origin)
        except Exception:  # noqa: BLE001 (a malformed checkpoint: chain order says what is wrong)
            pass
    txs = [analyse_transaction(tx) for tx in record.get("transactions") or []]
    facts["txs"] = txs
    facts["root"] = merkle_root([bytes.fromhex(t["computed"]) for t in txs]).hex()
    return facts


def analyse_lines(lines: list[bytes], orderer_keys: frozenset[str], origin: str = "") -> list[dict]:
    return [analyse_block(json.loads(line), orderer_keys, origin) for line in lines]


def checkpoint_signatures(checkpoint: dict, body: str, orderer_keys: frozenset[str],
                          origin: str) -> tuple[bool, list[bool]]:
    """Whether the checkpoint's orderer line, and each of its witness cosignatures, verifies
    over ``body``."""
    note_ok = orderer_note_ok(body, [checkpoint.get("signature_line") or ""], orderer_keys, origin)
    cosignatures = []
    for cosignature in checkpoint.get("cosignatures") or []:
        witness = cosignature.get("witness", "")
        try:
            (name, blob), = signature_lines(body + "\n" + cosignature.get("line", "") + "\n")
            valid = (name == witness and witness.endswith("/witness") and verify_cosignature(
                name, unhex(cosignature.get("public_key"), 32), body, blob) == cosignature.get("timestamp"))
        except (FormatError, ValueError):
            valid = False
        cosignatures.append(valid)
    return note_ok, cosignatures


def orderer_note_ok(body: str, lines: list[str], orderer_keys: frozenset[str], origin: str) -> bool:
    try:
        parsed = signature_lines(body + "\n" + "\n".join(lines) + "\n")
    except FormatError:
        return False
    return any(name == origin and verify_orderer_note(origin, unhex(key, 32), body, blob)
               for name, blob in parsed for key in orderer_keys if _is_key(key))


# --- phase 2: in chain order ----------------------------------------------------------------------------


class Checker:
    def __init__(self, *, orderer_keys: Iterable[str], policies: dict | None, membership: dict | None = None,
                 first_only: bool = True, workers: int | None = None, origin: str = ""):
        self.report = Report()
        self.origin = origin
        self.orderer_keys = frozenset(orderer_keys)
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

    # --- problems ----------------------------------------------------------------------------
    def fail(self, message: str, *, block: int | None = None, tx_hash: str | None = None) -> None:
        self.report.problems.append(Problem(message, block, tx_hash, self.order))
        if self.first_only:
            raise Stop

    # --- blocks --------------------------------------------------------------------------------
    def block(self, record: dict) -> None:
        self.apply_block(analyse_block(record, self.orderer_keys, self.origin))

    def block_lines(self, lines: Iterable[bytes], *, parallel: bool = True) -> None:
        """Blocks as export lines, analysed in worker processes when ``parallel`` and more than
        one worker is allowed; applied in order either way."""
        if not parallel or self.workers <= 1:
            for line in lines:
                self.apply_block(analyse_block(json.loads(line), self.orderer_keys, self.origin))
            return
        pool = self.worker_pool()
        inflight: deque = deque()
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            chunk.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                inflight.append(pool.submit(analyse_lines, chunk, self.orderer_keys, self.origin))
                chunk, size = [], 0
                while len(inflight) > 2 * self.workers:
                    for facts in inflight.popleft().result():
                        self.apply_block(facts)
        if chunk:
            inflight.append(pool.submit(analyse_lines, chunk, self.orderer_keys, self.origin))
        while inflight:
            for facts in inflight.popleft().result():
                self.apply_block(facts)

    def worker_pool(self) -> ProcessPoolExecutor:
        """The worker processes, started on first use; they check signatures with the Ed25519
        implementation chosen in this process."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, initializer=choose_ed25519, initargs=(ed25519_backend(),))
        return self._pool

    def apply_block(self, facts: dict) -> None:
        self.order += 1
        record = facts["record"]
        header = record.get("header")
        number = header.get("number") if isinstance(header, dict) else None
        where = number if isinstance(number, int) else self.expected_number
        if facts["header_error"]:
            self.fail(facts["header_error"], block=where)
            return
        if number != self.expected_number:
            self.fail(f"expected block number {self.expected_number}, found {number}", block=where)
        if header["previous_hash"] != self.previous_hash:
            self.fail(f"previous hash {header['previous_hash']} does not link to {self.previous_hash}", block=where)
        if facts["header_hash"] != record.get("header_hash"):
            self.fail("header hash does not match the header", block=where)
        if "orderer_ok" not in facts:
            self.fail(f"signed by untrusted orderer key {record.get('signer_public_key')}", block=where)
        elif not facts["orderer_ok"]:
            self.fail("orderer signature does not verify", block=where)
        hashes = [self.apply_transaction(tx, block=where) for tx in facts["txs"]]
        if len(hashes) != header["tx_count"]:
            self.fail(f"header counts {header['tx_count']} transactions, block holds {len(hashes)}", block=where)
        if facts["root"] != header["merkle_root"]:
            self.fail("Merkle root does not match the block's transactions", block=where)
        for leaf in hashes:
            self.tree.append(leaf)
        if "checkpoint" in record:
            self._block_checkpoint(record["checkpoint"], where, record.get("header_hash"),
                                   facts.get("checkpoint_signatures"))
        if self.want_tree_at is None or self.want_tree_at == where:
            self.block_trees[where] = (self.tree.size, self.tree.root(), record.get("header_hash"))
        self.report.blocks += 1
        self.expected_number = where + 1
        self.previous_hash = record.get("header_hash")

    def _block_checkpoint(self, checkpoint: dict | None, number: int, header_hash: str,
                          signatures: tuple[bool, list[bool]] | None) -> None:
        """The block's checkpoint in the global log (an export carries one per block): the tree
        over every transaction so far, its body, the orderer's note signature and each stored
        witness cosignature. ``signatures``: those verdicts over the checkpoint's stated body,
        if the block's analysis has them."""
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
        note_ok, cosignatures = signatures or checkpoint_signatures(checkpoint, body, self.orderer_keys, self.origin)
        if not note_ok:
            self.fail("checkpoint is not signed by a trusted orderer key", block=number)
        for cosignature, valid in zip(checkpoint.get("cosignatures") or [], cosignatures, strict=True):
            if not valid:
                self.fail(f"cosignature by {cosignature.get('witness', '')} does not verify", block=number)

    def pending(self, record: dict) -> None:
        """A transaction not sealed into any block yet."""
        self.order += 1
        tx_hash = self.apply_transaction(analyse_transaction(record), block=None).hex()
        if record.get("claims_block"):
            self.fail("the database says it is sealed into a block the chain does not have", tx_hash=tx_hash)
        elif record.get("queued") is False:
            self.fail("not sealed and not queued for sealing either", tx_hash=tx_hash)
        self.report.pending += 1

    # --- transactions ------------------------------------------------------------------------
    def apply_transaction(self, facts: dict, *, block: int | None) -> bytes:
        self.order += 1
        computed, stated = facts["computed"], facts["stated"]
        tx_hash = stated or computed
        if stated is not None and stated != computed:
            self.fail(f"hash mismatch: stated {stated}, recomputed {computed}", block=block, tx_hash=tx_hash)
        if facts["error"]:
            self.fail(facts["error"], block=block, tx_hash=tx_hash)
            return bytes.fromhex(computed)
        if facts.get("digest_ok") is False:
            self.fail("body digest does not match chaincode, function and args", block=block, tx_hash=tx_hash)
        status, invoker = facts["status"], facts["invoker"]
        forged = status == "rejected" and facts["reason"] == SIGNATURE_REJECTION
        self._signature(facts, invoker, block, tx_hash, forged=forged, valid=status == "valid")
        if status not in ("valid", "rejected"):
            self.fail(f"unknown status {status!r}", block=block, tx_hash=tx_hash)
        if status == "rejected" and (facts["postings"] or facts["writes"]):
            self.fail("a rejected transaction has effects", block=block, tx_hash=tx_hash)
        if status == "valid":
            self._policy(facts["name"], invoker, block, tx_hash)
        for message in [*self.membership.rights(facts["name"], invoker, facts.get("args"), status, facts["stated_key"]),
                        *self.membership.majority_problems(facts["name"], status, facts.get("args"), invoker,
                                                           facts["writes"])]:
            self.fail(message, block=block, tx_hash=tx_hash)
        sums: dict[str, int] = {}
        for key, asset, amount in facts["postings"]:
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
        for ns, key, digest, is_delete, version, _ in facts["writes"]:
            previous = self.state.get((ns, key))
            expected = (previous[2] if previous else 0) + 1
            if version != expected:
                self.fail(f"state {ns}/{key} version {version}, expected {expected}", block=block, tx_hash=tx_hash)
            self.state[(ns, key)] = (digest, is_delete, version)
        for message in self.membership.apply_writes(facts["name"], status, facts["writes"]):
            self.fail(message, block=block, tx_hash=tx_hash)
        self.report.transactions += 1
        return bytes.fromhex(computed)

    def _signature(self, facts: dict, invoker: str, block: int | None, tx_hash: str, *, forged: bool,
                   valid: bool) -> None:
        """Under the key in force (§7 of docs/ledger-format.md), which must be the stated one."""
        stated = facts["stated_key"]
        in_force = self.membership.identity(invoker)
        if in_force is not None:
            if stated is not None and stated != in_force.get("public_key"):
                self.fail(f"invoker key {stated} is not the key in force on chain ({in_force.get('public_key')})",
                          block=block, tx_hash=tx_hash)
            if in_force.get("revoked") and valid and self.membership.started:
                self.fail(f"invoker {invoker} was revoked", block=block, tx_hash=tx_hash)
        if "sig_valid" in facts:
            verified = facts["sig_valid"]
        else:  # no stated key: check under the key in force here
            try:
                key = unhex((in_force or {}).get("public_key"), 32)
                verified = ed25519_verify(key, facts["signature"], facts["signed"])
            except FormatError:
                verified = False
        self.report.signatures += 1
        if verified == forged:
            self.fail("a transaction rejected as forged carries a valid signature" if verified
                      else "invoker signature does not verify", block=block, tx_hash=tx_hash)

    def _policy(self, name: str, invoker: str, block: int | None, tx_hash: str) -> None:
        if self.policies is None:
            return
        if name not in self.policies:
            self.fail(f"{name} is not in the published policies", block=block, tx_hash=tx_hash)
            return
        allowed = self.policies[name]
        if allowed is None:
            return
        msp_id = invoker.split("/", 1)[0]
        org_type = self.membership.org_type(msp_id)
        if org_type is None:
            if self.membership.knows_every_org or self.membership.started:
                self.fail(f"organisation {msp_id} is not a member", block=block, tx_hash=tx_hash)
        elif org_type not in allowed:
            self.fail(f"endorsement policy: {name} may be invoked by {', '.join(allowed)}, not {org_type} "
                      f"({msp_id})", block=block, tx_hash=tx_hash)

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
        if m.unconfirmed_genesis():
            self.fail(m.unconfirmed_genesis())
        if any(key.startswith("org/") for key in m.config):
            # Membership lives on chain: a row of the tables that no configuration transaction
            # made is forged.
            for what, prefix, names in (("organisation", "org/", m.snapshot_orgs),
                                        ("identity", "identity/", m.snapshot_identities),
                                        ("account", "account/", {f"{a}/{k}": None for a, k in m.snapshot_accounts})):
                for name in sorted(names):
                    if f"{prefix}{name}" not in m.config:
                        self.fail(f"{what} {name} is in the membership but not on chain (a forged row)")
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
                    # ``revoked`` is null or the time of revocation: whether it is set is what counts
                    differs = (bool(identity.get(f)) != bool(value[f]) if f == "revoked"
                               else identity.get(f) != value[f]) if identity is not None and f in value else False
                    if identity is None or differs:
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
        self.close()
        self.report.notes.append(ed25519_description())
        self.report.problems.sort(key=lambda p: p.order)
        self.report.seconds = time.perf_counter() - self.started
        return self.report


def _fast_digest(value: Any) -> bytes | None:
    """``_digest`` of a value parsed from text ``in_fast_domain`` accepted."""
    return None if value is None else hashlib.sha256(canonical_text(value).encode("ascii")).digest()


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
