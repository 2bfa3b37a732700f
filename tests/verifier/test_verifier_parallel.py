"""Worker processes analyse chunks of blocks (hashes, canonical form, every signature); the main
process applies them in chain order. On an export with a bad transaction signature, a bad
transaction hash, a bad orderer signature or a bad checkpoint signature in a block in the middle
of the chain, the parallel path names the same problems, in the same order, as the single
process. The export is built here (signed with keys made here), so no database is needed."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ORIGIN = "test.example/ledger"
BLOCKS, PER_BLOCK = 7, 6
MIDDLE = 3
ORDERER = Ed25519PrivateKey.generate()
ALICE = Ed25519PrivateKey.generate()
WITNESS = Ed25519PrivateKey.generate()
WITNESS_NAME = "wt-one/witness"


def _hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


Tamper = Callable[[int, int, dict], None]


def build_export(directory: Path, *, tamper_tx: Tamper | None = None,
                 tamper_block: Callable[[int, dict], None] | None = None) -> Path:
    """A chain of ``BLOCKS`` blocks of ``PER_BLOCK`` transfers out of an issuance account, each
    block with its checkpoint, a witness cosignature on each, in files of two blocks."""
    from verifier.formats import CompactTree, canonical, checkpoint_body, merkle_root, note_key_id

    directory.mkdir()
    tree, previous, lines, moved = CompactTree(), "0" * 64, [], 0
    for number in range(BLOCKS):
        transactions = []
        for i in range(PER_BLOCK):
            amount = 1 + number * PER_BLOCK + i
            proposal = {"args": {"amount": amount, "asset": "k", "from": "issuance:k", "to": "alice"},
                        "chaincode": "token", "function": "transfer", "idempotency_key": f"t{number}-{i}",
                        "invoker": "hh-alice/alice", "proposed_at": "2026-12-07T01:02:03.000004+00:00"}
            document = {"effects": {"events": [], "postings": [["issuance:k", "k", -amount], ["alice", "k", amount]],
                                    "reason": "", "result": None, "state_writes": [], "status": "valid"},
                        "proposal": proposal, "signature": _b64(ALICE.sign(canonical(proposal)))}
            body = canonical({k: proposal[k] for k in ("args", "chaincode", "function")})
            tx = {"document": document, "body_digest": hashlib.sha256(body).hexdigest(),
                  "invoker_public_key": _hex(ALICE)}
            if tamper_tx:
                tamper_tx(number, i, tx)
            raw = canonical(tx.pop("document"))
            transactions.append({"tx_hash": tx.pop("tx_hash", hashlib.sha256(raw).hexdigest()), "bytes": _b64(raw),
                                 **tx})
            moved += amount
        leaves = [hashlib.sha256(base64.b64decode(t["bytes"])).digest() for t in transactions]
        header = {"merkle_root": merkle_root(leaves).hex(), "number": number, "previous_hash": previous,
                  "timestamp": "2026-12-07T01:02:04.000000+00:00", "tx_count": len(transactions)}
        header_hash = hashlib.sha256(canonical(header)).hexdigest()
        for leaf in leaves:
            tree.append(leaf)
        note = checkpoint_body(ORIGIN, tree.size, tree.root(), number, header_hash)
        orderer_blob = note_key_id(ORIGIN, 0x01, bytes.fromhex(_hex(ORDERER))) + ORDERER.sign(note.encode())
        when = 1_796_000_000 + number
        witness_blob = (note_key_id(WITNESS_NAME, 0x04, bytes.fromhex(_hex(WITNESS))) + when.to_bytes(8, "big")
                        + WITNESS.sign(f"cosignature/v1\ntime {when}\n".encode() + note.encode()))
        record = {"header": header, "header_hash": header_hash, "signature": ORDERER.sign(canonical(header)).hex(),
                  "signer_public_key": _hex(ORDERER), "transactions": transactions,
                  "checkpoint": {"block": number, "header_hash": header_hash, "tree_size": tree.size,
                                 "root": tree.root().hex(), "body": note,
                                 "signature_line": f"\u2014 {ORIGIN} {_b64(orderer_blob)}",
                                 "cosignatures": [{"witness": WITNESS_NAME, "public_key": _hex(WITNESS),
                                                   "timestamp": when,
                                                   "line": f"\u2014 {WITNESS_NAME} {_b64(witness_blob)}"}]}}
        if tamper_block:
            tamper_block(number, record)
        lines.append(json.dumps(record) + "\n")
        previous = header_hash

    def written(name: str, text: str) -> dict:
        (directory / name).write_text(text)
        return {"name": name, "sha256": hashlib.sha256(text.encode()).hexdigest()}

    files = [{**written(f"blocks-{first:08d}-{min(first + 1, BLOCKS - 1):08d}.jsonl", "".join(lines[first:first + 2])),
              "first_block": first, "last_block": min(first + 1, BLOCKS - 1)} for first in range(0, BLOCKS, 2)]
    membership = {"organisations": [], "identities": [], "accounts": [
        {"key": "issuance:k", "asset": "k", "kind": "issuance", "organisation": "utility", "balance": -moved},
        {"key": "alice", "asset": "k", "kind": "household", "organisation": "hh-alice", "balance": moved}]}
    manifest = {"format": "gridcoin-ledger-export/1", "origin": ORIGIN, "orderer_public_keys": [_hex(ORDERER)],
                "policies": None, "witnesses": [], "quorum": 0, "checkpoint": None, "files": files,
                "pending": written("pending.jsonl", ""), "state": written("state.jsonl", ""),
                "membership": written("membership.json", json.dumps(membership))}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def _verify(directory: Path, *, parallel: bool, first_only: bool = True):
    import verifier

    return verifier.verify_export(directory, orderer_keys=[_hex(ORDERER)], workers=2 if parallel else 1,
                                  parallel=parallel, first_only=first_only)


@pytest.fixture
def small_chunks(monkeypatch):
    """A block or two per chunk, so the middle block is in a chunk of its own worker."""
    from verifier import checker

    monkeypatch.setattr(checker, "CHUNK_BYTES", 3000)


def _tx_hash(directory: Path, number: int, index: int) -> str:
    for path in sorted(directory.glob("blocks-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["header"]["number"] == number:
                return record["transactions"][index]["tx_hash"]
    raise AssertionError(f"no block {number}")


def _bad_signature(number: int, i: int, tx: dict) -> None:
    if (number, i) == (MIDDLE, 2):  # signed by someone else: every hash and root still agrees
        proposal = tx["document"]["proposal"]
        from verifier.formats import canonical

        tx["document"]["signature"] = _b64(WITNESS.sign(canonical(proposal)))


def _bad_hash(number: int, i: int, tx: dict) -> None:
    if (number, i) == (MIDDLE, 4):
        tx["tx_hash"] = "ab" * 32


def _bad_orderer_signature(number: int, record: dict) -> None:
    if number == MIDDLE:
        record["signature"] = ORDERER.sign(b"another header").hex()


def _bad_checkpoint_signatures(number: int, record: dict) -> None:
    if number == MIDDLE:
        checkpoint = record["checkpoint"]
        checkpoint["signature_line"] = checkpoint["signature_line"][:-8] + "AAAAAAA="
        cosignature = checkpoint["cosignatures"][0]
        cosignature["timestamp"] += 1


def test_a_good_chain_verifies_alike(tmp_path, small_chunks):
    directory = build_export(tmp_path / "good")
    alone, together = _verify(directory, parallel=False), _verify(directory, parallel=True)
    assert alone.ok and together.ok, [str(p) for p in alone.problems + together.problems]
    assert (together.blocks, together.transactions, together.signatures) == (BLOCKS, BLOCKS * PER_BLOCK,
                                                                              BLOCKS * PER_BLOCK)
    assert (alone.blocks, alone.transactions, alone.signatures) == (together.blocks, together.transactions,
                                                                    together.signatures)


@pytest.mark.parametrize("tamper,expected", [
    (dict(tamper_tx=_bad_signature), ", transaction {tx}: invoker signature does not verify"),
    (dict(tamper_tx=_bad_hash), ", transaction {tx}: hash mismatch: stated {tx}, recomputed"),
    (dict(tamper_block=_bad_orderer_signature), ": orderer signature does not verify"),
    (dict(tamper_block=_bad_checkpoint_signatures), ": checkpoint is not signed by a trusted orderer key"),
], ids=["transaction signature", "transaction hash", "orderer signature", "checkpoint signatures"])
def test_a_bad_middle_block_is_named_alike(tmp_path, small_chunks, tamper, expected):
    directory = build_export(tmp_path / "bad", **tamper)
    index = 2 if tamper.get("tamper_tx") is _bad_signature else 4
    expected = f"block {MIDDLE}" + expected.format(tx=_tx_hash(directory, MIDDLE, index))
    alone, together = _verify(directory, parallel=False), _verify(directory, parallel=True)
    assert [str(p) for p in together.problems] == [str(p) for p in alone.problems]
    assert len(together.problems) == 1 and str(together.problems[0]).startswith(expected), together.problems
    every_alone = _verify(directory, parallel=False, first_only=False)
    every_together = _verify(directory, parallel=True, first_only=False)
    assert [str(p) for p in every_together.problems] == [str(p) for p in every_alone.problems]
    if tamper.get("tamper_block") is _bad_checkpoint_signatures:
        assert [str(p) for p in every_together.problems] == [
            f"block {MIDDLE}: checkpoint is not signed by a trusted orderer key",
            f"block {MIDDLE}: cosignature by {WITNESS_NAME} does not verify"]
    else:
        assert all(f"block {MIDDLE}" in str(p) for p in every_together.problems), every_together.problems


def test_every_kind_at_once_is_listed_alike(tmp_path, small_chunks):
    def tamper_tx(number: int, i: int, tx: dict) -> None:
        _bad_signature(number, i, tx)
        _bad_hash(number, i, tx)

    def tamper_block(number: int, record: dict) -> None:
        _bad_checkpoint_signatures(number + 2, record)  # block MIDDLE - 2
        _bad_orderer_signature(number - 2, record)  # block MIDDLE + 2

    directory = build_export(tmp_path / "bad", tamper_tx=tamper_tx, tamper_block=tamper_block)
    every_alone = _verify(directory, parallel=False, first_only=False)
    every_together = _verify(directory, parallel=True, first_only=False)
    listed = [str(p) for p in every_together.problems]
    assert listed == [str(p) for p in every_alone.problems]
    signature_tx, hash_tx = _tx_hash(directory, MIDDLE, 2), _tx_hash(directory, MIDDLE, 4)
    assert [problem.split(": ", 1)[0] for problem in listed] == [
        f"block {MIDDLE - 2}", f"block {MIDDLE - 2}", f"block {MIDDLE}, transaction {signature_tx}",
        f"block {MIDDLE}, transaction {hash_tx}", f"block {MIDDLE + 2}"], listed
