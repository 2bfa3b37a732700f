"""docs/ledger-format.md's worked example still verifies: every artifact is parsed out of the
document and checked with the standalone verifier's implementation of the format (no project
code), and the example's block goes through the verifier's checker."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger-format.md"


def examples() -> dict[str, str]:
    found = dict(re.findall(r"<!-- example:([a-z0-9-]+) -->\n```[a-z]*\n(.*?)\n```", DOC.read_text(), re.S))
    assert len(found) == 15, sorted(found)
    return found


def test_the_worked_example_verifies_byte_for_byte():
    from verifier.formats import (
        canonical,
        checkpoint_body,
        ed25519_verify,
        leaf_hash,
        merkle_root,
        node_hash,
        parse,
        signature_lines,
        verify_cosignature,
        verify_inclusion,
        verify_orderer_note,
    )

    ex = examples()
    alice = bytes.fromhex(ex["alice-public-key"])
    orderer = bytes.fromhex(ex["orderer-public-key"])
    proposal = ex["transfer-proposal"].encode()
    assert canonical(parse(proposal)) == proposal
    assert ed25519_verify(alice, base64.b64decode(ex["transfer-signature"]), proposal)
    assert not ed25519_verify(alice, base64.b64decode(ex["transfer-signature"]), proposal.replace(b"1200", b"1201"))

    document = ex["transfer-document"].encode()
    parsed = parse(document)
    assert canonical(parsed) == document
    assert hashlib.sha256(document).hexdigest() == ex["transfer-hash"]
    assert canonical(parsed["proposal"]) == proposal and parsed["signature"] == ex["transfer-signature"]
    assert parsed["effects"]["postings"] == [["household:hh-alice", "k", -1200], ["household:hh-bob", "k", 1200]]

    leaves = [bytes.fromhex(ex["mint-hash"]), bytes.fromhex(ex["transfer-hash"])]
    assert ex["leaf-hashes"].split("\n") == [leaf_hash(leaf).hex() for leaf in leaves]
    root = node_hash(leaf_hash(leaves[0]), leaf_hash(leaves[1]))
    assert merkle_root(leaves) == root
    assert verify_inclusion(leaves[1], 1, 2, [leaf_hash(leaves[0])], root)

    header = ex["header"].encode()
    fields = parse(header)
    assert canonical(fields) == header and fields["merkle_root"] == root.hex() and fields["tx_count"] == 2
    assert fields["timestamp"].endswith("+00:00")
    assert hashlib.sha256(header).hexdigest() == ex["header-hash"]
    assert ed25519_verify(orderer, bytes.fromhex(ex["header-signature"]), header)

    note = ex["checkpoint-note"] + "\n"
    origin = note.split("\n", 1)[0]
    body = checkpoint_body(origin, 2, root, 0, ex["header-hash"])
    assert note.startswith(body + "\n")
    (orderer_name, orderer_blob), (witness_name, witness_blob) = signature_lines(note)
    assert orderer_name == origin and verify_orderer_note(origin, orderer, body, orderer_blob)
    assert witness_name == "bank-w/witness"
    assert verify_cosignature(witness_name, bytes.fromhex(ex["witness-public-key"]), body, witness_blob) is not None


def test_the_example_block_passes_the_verifier():
    from verifier.checker import Checker, Membership, Stop

    ex = examples()
    record = json.loads(ex["export-block"])
    origin = ex["checkpoint-note"].split("\n", 1)[0]
    membership = {"organisations": [{"msp_id": "utility", "org_type": "utility"},
                                    {"msp_id": "hh-alice", "org_type": "household"}],
                  "accounts": [{"key": "issuance", "asset": "k", "kind": "issuance"}]}
    checker = Checker(orderer_keys=[ex["orderer-public-key"]], policies={"token.mint": ["utility"],
                                                                         "token.transfer": None},
                      workers=1, origin=origin)
    checker.membership = Membership(membership)
    checker.block(record)
    report = checker.finish()
    assert report.ok and report.transactions == 2, [str(p) for p in report.problems]
    record["transactions"][1]["bytes"] = base64.b64encode(ex["transfer-document"].replace("1200", "1201", 1)
                                                          .encode()).decode()
    checker = Checker(orderer_keys=[ex["orderer-public-key"]], policies=None, workers=1, origin=origin)
    checker.membership = Membership(membership)
    try:
        checker.block(record)
    except Stop:
        pass
    assert "hash mismatch" in str(checker.finish().problems[0])
