"""The read API serves what a stranger needs to check every hash and signature: from the API
responses alone (no ORM, no project code: hashlib, base64, json, cryptography and the standalone
verifier's formats) the test recomputes each transaction's hash from its bytes, the invoker's
signature over the proposal, each block's header hash and orderer signature, and the inclusion
proof up to the block's root."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.contracts import Context, Contract, registry
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Transaction
from ledger.selectors import policies, transaction_document
from tests.personas import LEDGER_API, World, build_world, seal_all

pytestmark = pytest.mark.django_db

VISIBLE = {
    "alice": {"mint_alice", "alice_to_charlie", "unsealed"},
    "charlie": {"mint_charlie", "alice_to_charlie", "unsealed"},
    "uma": {"mint_alice", "mint_charlie", "alice_to_charlie", "unsealed"},
}


@pytest.fixture
def world(settings) -> World:
    return build_world(settings)


def _verifies(public_hex: str, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(signature, message)
    except Exception:
        return False
    return True


def _canonical(value) -> bytes:
    import rfc8785

    return rfc8785.dumps(value)


def check_document(document: dict) -> dict:
    """Everything a stranger can check of one transaction from its document alone."""
    raw = base64.b64decode(document["bytes"], validate=True)
    assert hashlib.sha256(raw).hexdigest() == document["tx_hash"]
    parsed = json.loads(raw)
    assert _canonical(parsed) == raw, "the bytes are canonical JSON"
    proposal = base64.b64decode(document["proposal_bytes"], validate=True)
    assert _canonical(parsed["proposal"]) == proposal, "the proposal inside the document is the one signed"
    assert parsed["signature"] == document["signature"]
    assert parsed["proposal"]["invoker"] == document["invoker"]
    assert _verifies(document["invoker_public_key"], base64.b64decode(document["signature"]), proposal)
    return parsed


def check_block(block: dict) -> None:
    header = block["header"]
    assert set(header) == {"number", "previous_hash", "merkle_root", "timestamp", "tx_count"}
    for field in header:
        assert block[field] == header[field], f"{field} is served as signed"
    signed = _canonical(header)
    assert hashlib.sha256(signed).hexdigest() == block["header_hash"]
    assert _verifies(block["signer_public_key"], bytes.fromhex(block["signature"]), signed)


def test_every_visible_document_checks_from_the_api_alone(world):
    client = world.client("uma")
    blocks = client.get(f"{LEDGER_API}blocks/").json()["results"]
    for block in blocks:
        check_block(block)
    assert blocks[0]["timestamp"].endswith("+00:00")
    for name, tx_hash in world.tx.items():
        response = client.get(f"{LEDGER_API}transactions/{tx_hash}/document/")
        assert response.status_code == 200, response.content
        document = response.json()
        parsed = check_document(document)
        assert parsed["effects"]["status"] == "valid"
        if name == "unsealed":
            assert document["block"] is None and document["leaf_index"] is None
            continue
        proof = client.get(f"{LEDGER_API}transactions/{tx_hash}/proof/").json()
        assert (document["block"], document["leaf_index"]) == (proof["block"]["number"], proof["leaf_index"])
        check_block(proof["block"])
        from verifier.formats import verify_inclusion

        assert verify_inclusion(bytes.fromhex(tx_hash), proof["leaf_index"], proof["tree_size"],
                                [bytes.fromhex(h) for h in proof["audit_path"]],
                                bytes.fromhex(proof["block"]["merkle_root"]))


def test_documents_show_postings_and_a_tampered_byte_fails(world):
    document = world.client("alice").get(f"{LEDGER_API}transactions/{world.tx['alice_to_charlie']}/document/").json()
    parsed = check_document(document)
    assert parsed["effects"]["postings"] == [["household:" + world.alice.organisation.msp_id, "k", -1200],
                                             ["household:" + world.charlie.organisation.msp_id, "k", 1200]]
    raw = bytearray(base64.b64decode(document["bytes"]))
    raw[raw.index(b"1200")] = ord("2")
    assert hashlib.sha256(bytes(raw)).hexdigest() != document["tx_hash"]
    forged = json.loads(bytes(raw))
    assert not _verifies(document["invoker_public_key"], base64.b64decode(document["signature"]),
                         _canonical({**forged["proposal"], "args": {**forged["proposal"]["args"], "amount": 2200}}))


@pytest.mark.parametrize("persona", list(VISIBLE))
def test_documents_follow_the_transaction_visibility_rules(world, persona):
    client = world.client(persona)
    for name, tx_hash in world.tx.items():
        status = client.get(f"{LEDGER_API}transactions/{tx_hash}/document/").status_code
        assert status == (200 if name in VISIBLE[persona] else 404), (persona, name)
    assert world.client("anonymous").get(f"{LEDGER_API}transactions/{world.tx['mint_alice']}/document/"
                                         ).status_code == 403
    assert world.client("anonymous").get(f"{LEDGER_API}policies/").status_code == 403


def test_policies_are_the_contract_registry(world):
    served = world.client("charlie").get(f"{LEDGER_API}policies/").json()
    assert served == policies()
    assert served["token.mint"] == ["utility"] and served["token.transfer"] is None


def test_the_key_in_force_follows_config_writes_of_the_identity(world):
    """Key rotation is a ``config`` state write ``identity/<msp>/<name>``: transactions before it
    keep the registered key, later ones show the rotated key."""
    contract = Contract(f"test-config-{uuid.uuid4().hex[:8]}", namespace="config")

    @contract.function()
    def rotate(ctx: Context) -> None:
        ctx.put_state(f"identity/{ctx.arg_str('identity')}", {"kind": "user", "public_key": ctx.arg_str("key"),
                                                              "revoked": False})

    registry.register(contract)
    try:
        new_key = public_bytes(generate_private_key()).hex()
        name = world.alice.identity.qualified_name
        result = world.uma.invoke(contract.name, "rotate", {"identity": name, "key": new_key})
        assert result.ok, result.reason
        later = world.alice.invoke("token", "note", {"key": "after", "text": "rotated"})
    finally:
        registry._contracts.pop(contract.name, None)
    before = Transaction.objects.get(tx_hash=world.tx["alice_to_charlie"])
    assert transaction_document(before)["invoker_public_key"] == bytes(world.alice.identity.public_key).hex()
    assert transaction_document(Transaction.objects.get(tx_hash=later.tx_hash))["invoker_public_key"] == new_key
    served = world.client("alice").get(f"{LEDGER_API}transactions/{later.tx_hash}/document/").json()
    assert served["invoker_public_key"] == new_key


def test_the_standalone_verifier_checks_the_live_api(world, monkeypatch):
    """``python -m verifier --api``, its HTTP calls answered by the test client as an overseer."""
    import verifier
    from verifier import sources

    seal_all()
    client = world.client("uma")

    def get(self, path: str, *, missing_ok: bool = False):
        url = path if path.startswith("http") else LEDGER_API + path
        response = client.get(url.replace("http://testserver", ""))
        if missing_ok and response.status_code == 404:
            return None
        assert response.status_code == 200, (url, response.content)
        return response.json()

    monkeypatch.setattr(sources.Api, "get", get)
    from ledger.verify import trusted_orderer_keys

    report = verifier.verify_api("http://testserver" + LEDGER_API, orderer_keys=sorted(trusted_orderer_keys()))
    assert report.ok, [str(p) for p in report.problems]
    assert not any("genesis" in note for note in report.notes), report.notes
    sealed = Transaction.objects.filter(block__isnull=False).count()
    assert (report.blocks, report.transactions) == (2, sealed) and sealed >= 4
    stranger = public_bytes(generate_private_key()).hex()
    refused = verifier.verify_api("http://testserver" + LEDGER_API, orderer_keys=[stranger])
    assert "untrusted orderer key" in str(refused.problems[0])


def test_the_genesis_membership_is_served_to_overseers_only(world):
    from ledger.export import genesis_membership

    seal_all()
    bootstrap = Transaction.objects.get(chaincode="config", function="bootstrap")
    served = world.client("uma").get(f"{LEDGER_API}membership/genesis/")
    assert served.status_code == 200, served.content
    assert served.json() == genesis_membership() and served.json()["tx_hash"] == bootstrap.tx_hash
    refused = world.client("alice").get(f"{LEDGER_API}membership/genesis/")
    assert refused.status_code == 403 and "utility and auditors" in refused.json()["detail"]


@pytest.mark.parametrize("persona", ["uma", "alice"])
def test_a_block_s_documents_come_in_one_request_as_each_transaction_s(world, persona):
    """``blocks/<n>/documents/``: the caller's visible transactions of the block, in block order,
    each exactly as its own ``transactions/<hash>/document/`` serves it."""
    seal_all()
    client = world.client(persona)
    for block in client.get(f"{LEDGER_API}blocks/").json()["results"]:
        number = block["number"]
        served = client.get(f"{LEDGER_API}blocks/{number}/documents/", {"limit": 500}).json()
        listed = client.get(f"{LEDGER_API}blocks/{number}/transactions/", {"limit": 500}).json()
        assert [d["tx_hash"] for d in served["results"]] == [t["tx_hash"] for t in listed["results"]]
        for document in served["results"]:
            assert document == client.get(f"{LEDGER_API}transactions/{document['tx_hash']}/document/").json()
            check_document(document)
    visible = {d["tx_hash"] for b in client.get(f"{LEDGER_API}blocks/").json()["results"]
               for d in client.get(f"{LEDGER_API}blocks/{b['number']}/documents/", {"limit": 500}).json()["results"]}
    assert {world.tx[name] for name in VISIBLE[persona]} <= visible
    hidden = {tx for name, tx in world.tx.items() if name not in VISIBLE[persona]}
    assert not hidden & visible
    assert client.get(f"{LEDGER_API}blocks/999/documents/").status_code == 404
