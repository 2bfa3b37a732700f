"""Persona tests for /api/v1/ledger/blocks/ (list, detail, the block's transactions)."""

from __future__ import annotations

import pytest

from ledger.crypto import verify_signature
from ledger.documents import GENESIS_PREVIOUS_HASH
from ledger.models import Transaction
from tests.personas import (
    LEDGER_API,
    WRITE_METHODS,
    World,
    assert_block_header_verifies,
    build_world,
    header_bytes_of,
    seal_all,
)

pytestmark = pytest.mark.django_db


def config_hashes() -> list[str]:
    return list(Transaction.objects.filter(chaincode="config").order_by("id").values_list("tx_hash", flat=True))


def config_count() -> int:
    return len(config_hashes())

PERSONAS = ["alice", "bob", "charlie", "uma"]


@pytest.fixture
def world(settings) -> World:
    return build_world(settings)


def _urls(number: int) -> list[str]:
    return [f"{LEDGER_API}blocks/", f"{LEDGER_API}blocks/{number}/", f"{LEDGER_API}blocks/{number}/transactions/"]


def test_anonymous_is_refused_on_every_block_endpoint(world):
    client = world.client("anonymous")
    statuses = {url: client.get(url).status_code for url in _urls(world.block.number)}
    assert set(statuses.values()) == {403}, statuses


@pytest.mark.parametrize("persona", PERSONAS)
def test_any_signed_in_member_reads_block_list_and_detail(world, persona):
    client = world.client(persona)
    listing = client.get(f"{LEDGER_API}blocks/")
    assert listing.status_code == 200
    assert [b["number"] for b in listing.json()["results"]] == [0]
    detail = client.get(f"{LEDGER_API}blocks/0/")
    assert detail.status_code == 200
    body = detail.json()
    assert body == listing.json()["results"][0]
    assert body["previous_hash"] == GENESIS_PREVIOUS_HASH
    assert body["tx_count"] == 3 + config_count()  # with the membership's configuration transactions
    assert body["header_hash"] == world.block.header_hash
    assert_block_header_verifies(body)


def test_block_headers_link_and_verify_through_the_api(world):
    seal_all()  # the world's unsealed transaction becomes block 1
    blocks = world.client("charlie").get(f"{LEDGER_API}blocks/").json()["results"]
    assert [b["number"] for b in blocks] == [0, 1]
    assert blocks[1]["previous_hash"] == blocks[0]["header_hash"]
    for block in blocks:
        assert_block_header_verifies(block)


def test_tampered_header_fails_verification(world):
    block = world.client("alice").get(f"{LEDGER_API}blocks/0/").json()
    forged = {**block, "tx_count": block["tx_count"] + 1}
    assert not verify_signature(bytes.fromhex(block["signer_public_key"]), bytes.fromhex(block["signature"]),
                                header_bytes_of(forged))


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("alice", {"mint_alice", "alice_to_charlie"}),
        ("bob", {"mint_alice", "alice_to_charlie"}),
        ("charlie", {"mint_charlie", "alice_to_charlie"}),
        ("uma", {"mint_alice", "mint_charlie", "alice_to_charlie"}),
    ],
)
def test_block_transactions_show_only_what_the_caller_may_see(world, persona, visible):
    response = world.client(persona).get(f"{LEDGER_API}blocks/0/transactions/")
    assert response.status_code == 200
    # The utility sees everything, the configuration transactions of the world's setup too.
    setup = config_hashes() if persona == "uma" else []
    rows = response.json()["results"]
    assert {r["tx_hash"] for r in rows} == {world.tx[name] for name in visible} | set(setup)
    assert all(r["block"] == 0 for r in rows)
    # listed in id order, the Merkle leaf order
    order = setup + [world.tx[n] for n in ("mint_alice", "mint_charlie", "alice_to_charlie") if n in visible]
    assert [r["tx_hash"] for r in rows] == order


@pytest.mark.parametrize("url", ["blocks/1/", "blocks/1/transactions/", "blocks/99999/", "blocks/99999/transactions/"])
@pytest.mark.parametrize("persona", ["alice", "uma"])
def test_unknown_block_is_404(world, persona, url):
    response = world.client(persona).get(LEDGER_API + url)
    assert response.status_code == 404, response.content


@pytest.mark.parametrize("method", WRITE_METHODS)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_writes_are_not_allowed(world, method, which):
    url = _urls(world.block.number)[which]
    response = getattr(world.client("uma"), method)(url, {}, format="json")
    assert response.status_code == 405, response.content
