"""Persona tests for /api/v1/ledger/transactions/<tx_hash>/ and its inclusion proof."""

from __future__ import annotations

import pytest

from ledger.crypto import verify_signature
from ledger.merkle import verify_inclusion
from ledger.models import Transaction
from tests.personas import LEDGER_API, WRITE_METHODS, World, assert_block_header_verifies, build_world, header_bytes_of

pytestmark = pytest.mark.django_db

SEALED = ["mint_alice", "mint_charlie", "alice_to_charlie"]
# Which seeded transactions each persona may read (invoker's organisation, owners of the
# accounts it touches, or an overseer).
VISIBLE = {
    "alice": {"mint_alice", "alice_to_charlie", "unsealed"},
    "bob": {"mint_alice", "alice_to_charlie", "unsealed"},
    "charlie": {"mint_charlie", "alice_to_charlie", "unsealed"},
    "uma": {"mint_alice", "mint_charlie", "alice_to_charlie", "unsealed"},
}
UNKNOWN_HASH = "ab" * 32


@pytest.fixture
def world(settings) -> World:
    return build_world(settings)


def _detail(tx_hash: str) -> str:
    return f"{LEDGER_API}transactions/{tx_hash}/"


def _proof(tx_hash: str) -> str:
    return f"{LEDGER_API}transactions/{tx_hash}/proof/"


def assert_proof_verifies(proof: dict, tx_hash: str) -> None:
    block = proof["block"]
    assert proof["tx_hash"] == tx_hash
    assert verify_inclusion(bytes.fromhex(tx_hash), proof["leaf_index"], proof["tree_size"],
                            [bytes.fromhex(h) for h in proof["audit_path"]], bytes.fromhex(block["merkle_root"]))
    assert proof["tree_size"] == block["tx_count"]
    assert_block_header_verifies(block)


def test_anonymous_is_refused(world):
    client = world.client("anonymous")
    tx_hash = world.tx["mint_alice"]
    statuses = {url: client.get(url).status_code for url in (_detail(tx_hash), _proof(tx_hash))}
    assert set(statuses.values()) == {403}, statuses


@pytest.mark.parametrize("persona", list(VISIBLE))
@pytest.mark.parametrize("name", [*SEALED, "unsealed"])
def test_transaction_detail_by_persona(world, persona, name):
    response = world.client(persona).get(_detail(world.tx[name]))
    if name in VISIBLE[persona]:
        assert response.status_code == 200, response.content
        assert response.json()["tx_hash"] == world.tx[name]
    else:
        assert response.status_code == 404, response.content


def test_transaction_detail_shows_envelope_and_effects(world):
    body = world.client("bob").get(_detail(world.tx["alice_to_charlie"])).json()
    assert body["chaincode"] == "token" and body["function"] == "transfer"
    assert body["invoker"] == "hh-alice/alice"
    assert body["status"] == "valid" and body["reason"] == ""
    assert body["block"] == 0
    assert body["postings"] == [
        {"account": "household:hh-alice", "asset": "k", "amount": -1200},
        {"account": "household:hh-charlie", "asset": "k", "amount": 1200},
    ]
    assert body["state_writes"] == []
    unsealed = world.client("alice").get(_detail(world.tx["unsealed"])).json()
    assert unsealed["block"] is None and unsealed["invoker"] == "hh-alice/bob"


def test_rejected_attempt_is_visible_to_its_invoker_only(world):
    # Charlie tries to spend from Alice's account: recorded as rejected, moves nothing, and
    # touches no account, so only Charlie's organisation and overseers see it.
    attempt = world.charlie.invoke("token", "transfer", {"from": "household:hh-alice", "to": "household:hh-charlie",
                                                         "asset": "k", "amount": 10})
    assert attempt.status == "rejected" and "does not belong" in attempt.reason
    body = world.client("charlie").get(_detail(attempt.tx_hash)).json()
    assert body["status"] == "rejected" and "does not belong" in body["reason"] and body["postings"] == []
    assert world.client("uma").get(_detail(attempt.tx_hash)).status_code == 200
    assert world.client("alice").get(_detail(attempt.tx_hash)).status_code == 404


@pytest.mark.parametrize("persona", list(VISIBLE))
@pytest.mark.parametrize("name", SEALED)
def test_proof_by_persona(world, persona, name):
    response = world.client(persona).get(_proof(world.tx[name]))
    if name in VISIBLE[persona]:
        assert response.status_code == 200, response.content
        assert_proof_verifies(response.json(), world.tx[name])
    else:
        assert response.status_code == 404, response.content


def test_every_leaf_of_the_block_has_a_verifying_proof(world):
    client = world.client("uma")
    setup = Transaction.objects.filter(chaincode="config").count()  # the membership's, sealed first
    for index, name in enumerate(SEALED, start=setup):
        proof = client.get(_proof(world.tx[name])).json()
        assert proof["leaf_index"] == index and proof["tree_size"] == 3 + setup
        assert_proof_verifies(proof, world.tx[name])
        assert proof["block"]["number"] == 0 and proof["block"]["header_hash"] == world.block.header_hash


def test_proof_does_not_verify_another_transaction(world):
    proof = world.client("uma").get(_proof(world.tx["mint_alice"])).json()
    other = bytes.fromhex(world.tx["mint_charlie"])
    assert not verify_inclusion(other, proof["leaf_index"], proof["tree_size"],
                                [bytes.fromhex(h) for h in proof["audit_path"]],
                                bytes.fromhex(proof["block"]["merkle_root"]))
    forged = {**proof["block"], "merkle_root": "00" * 32}
    assert not verify_signature(bytes.fromhex(forged["signer_public_key"]), bytes.fromhex(forged["signature"]),
                                header_bytes_of(forged))


@pytest.mark.parametrize("persona", ["alice", "bob", "uma"])
def test_proof_of_unsealed_transaction_is_409(world, persona):
    response = world.client(persona).get(_proof(world.tx["unsealed"]))
    assert response.status_code == 409
    assert response.json() == {"detail": "transaction is not sealed into a block yet"}


def test_proof_of_unsealed_transaction_is_404_for_a_stranger_to_it(world):
    # visibility is checked before sealing state: a hidden transaction never says "409"
    private = world.uma.invoke("token", "mint", {"to": "household:hh-alice", "asset": "k", "amount": 3})
    assert Transaction.objects.get(tx_hash=private.tx_hash).block_id is None
    assert world.client("charlie").get(_proof(private.tx_hash)).status_code == 404


@pytest.mark.parametrize("url", [_detail(UNKNOWN_HASH), _proof(UNKNOWN_HASH), _detail("not-a-hash"),
                                 _proof("not-a-hash")])
@pytest.mark.parametrize("persona", ["alice", "uma"])
def test_unknown_transaction_is_404(world, persona, url):
    assert world.client(persona).get(url).status_code == 404


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize("which", ["detail", "proof"])
def test_writes_are_not_allowed(world, method, which):
    tx_hash = world.tx["mint_alice"]
    url = _detail(tx_hash) if which == "detail" else _proof(tx_hash)
    response = getattr(world.client("alice"), method)(url, {}, format="json")
    assert response.status_code == 405, response.content
    assert Transaction.objects.filter(tx_hash=tx_hash).count() == 1
