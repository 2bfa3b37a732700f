"""Personas for API tests (house style #7): Alice owns, Bob is a member, Charlie is a stranger,
Uma works for the utility (an overseer that sees everything).

``build_world`` makes the network through the real services, seeds a few transactions with the
personas' custodial keys and seals them into one block; one more transaction stays unsealed.
Test modules wrap it in their own ``world`` fixture (a fixture imported from here would be
shadowed by the test arguments and confuse the linter).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import household_account_key, invoke_as, membership_create, membership_for, user_signup
from ledger import services as ledger
from ledger.canonical import sha256_hex
from ledger.crypto import verify_signature
from ledger.documents import block_header_bytes
from ledger.models import Account, Block, Identity, Organisation, OrgType, Transaction
from ledger.sealing import lease_acquire, lease_release, orderer_public_hex, seal_next_block
from ledger.selectors import as_utc

LEDGER_API = "/api/v1/ledger/"
WRITE_METHODS = ["post", "put", "patch", "delete"]

_keys = itertools.count(1)


@dataclass
class Persona:
    user: Any
    organisation: Organisation
    identity: Identity

    def invoke(self, chaincode: str, function: str, args: dict[str, Any], *,
               idempotency_key: str | None = None) -> ledger.InvokeResult:
        return invoke_as(identity=self.identity, chaincode=chaincode, function=function, args=args,
                         idempotency_key=idempotency_key or f"persona-{next(_keys)}")

    def client(self) -> APIClient:
        client = APIClient()
        client.force_login(self.user)
        return client


@dataclass
class World:
    alice: Persona
    bob: Persona
    charlie: Persona
    uma: Persona
    alice_account: Account
    charlie_account: Account
    issuance: Account
    block: Block
    # tx hashes by name: mint_alice (Alice only), mint_charlie (Charlie only),
    # alice_to_charlie (both), unsealed (Alice only, not in any block)
    tx: dict[str, str] = field(default_factory=dict)

    def persona(self, name: str) -> Persona:
        return getattr(self, name)

    def client(self, name: str) -> APIClient:
        return APIClient() if name == "anonymous" else self.persona(name).client()


def _persona(user) -> Persona:
    membership = membership_for(user)
    return Persona(user=user, organisation=membership.organisation, identity=membership.identity)


def seal_all(holder: str = "t") -> list[Block]:
    """Seal everything waiting into one block, as the test holder of the lease."""
    assert lease_acquire(holder=holder)
    sealed = seal_next_block(holder=holder, force=True)
    lease_release(holder=holder)
    assert sealed is not None, "nothing to seal"
    return list(Block.objects.filter(number=sealed.number))


def build_world(settings) -> World:
    users = get_user_model().objects

    utility = ledger.organisation_create(msp_id="utility", name="Utility", org_type=OrgType.UTILITY)
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    uma_user = users.create_user(username="uma", password="uma-password-1")
    membership_create(user=uma_user, organisation=utility, role=Role.OWNER)

    alice = _persona(user_signup(username="alice", password="alice-password-1"))
    bob_user = users.create_user(username="bob", password="bob-password-1")
    membership_create(user=bob_user, organisation=alice.organisation, role=Role.MEMBER)
    bob = Persona(user=bob_user, organisation=alice.organisation,
                  identity=membership_for(bob_user, alice.organisation).identity)
    charlie = _persona(user_signup(username="charlie", password="charlie-password-1"))
    uma = _persona(uma_user)

    alice_key = household_account_key(alice.organisation)
    charlie_key = household_account_key(charlie.organisation)
    tx: dict[str, str] = {}
    for name, who, fn, args in [
        ("mint_alice", uma, "mint", {"to": alice_key, "asset": "k", "amount": 5000}),
        ("mint_charlie", uma, "mint", {"to": charlie_key, "asset": "k", "amount": 700}),
        ("alice_to_charlie", alice, "transfer", {"from": alice_key, "to": charlie_key, "asset": "k", "amount": 1200}),
    ]:
        result = who.invoke("token", fn, args)
        assert result.ok, result.reason
        tx[name] = result.tx_hash
    (block,) = seal_all()
    unsealed = bob.invoke("token", "transfer", {"from": alice_key, "to": charlie_key, "asset": "k", "amount": 1})
    assert unsealed.ok, unsealed.reason
    tx["unsealed"] = unsealed.tx_hash

    return World(
        alice=alice, bob=bob, charlie=charlie, uma=uma,
        alice_account=Account.objects.get(key=alice_key, asset_id="k"),
        charlie_account=Account.objects.get(key=charlie_key, asset_id="k"),
        issuance=Account.objects.get(key="issuance", asset_id="k"),
        block=block, tx=tx,
    )


def transaction_row(tx_hash: str) -> Transaction:
    return Transaction.objects.get(tx_hash=tx_hash)


def header_bytes_of(block: dict) -> bytes:
    """Rebuild the signed header from an API response (the timestamp is parsed, not trusted as text)."""
    return block_header_bytes(number=block["number"], previous_hash=block["previous_hash"],
                              merkle_root=block["merkle_root"], timestamp=as_utc(block["timestamp"]),
                              tx_count=block["tx_count"])


def assert_block_header_verifies(block: dict) -> None:
    header = header_bytes_of(block)
    assert block["signer_public_key"] == orderer_public_hex()
    assert verify_signature(bytes.fromhex(block["signer_public_key"]), bytes.fromhex(block["signature"]), header)
    assert sha256_hex(header) == block["header_hash"]
