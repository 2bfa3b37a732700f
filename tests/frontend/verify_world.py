"""A sealed world for the in-browser "Verify" test: the personas' world (their transfer sealed in a
block with others), a bank whose witness has co-signed that block's checkpoint, and a quorum of one.
Every payload the button checks comes from the app's own read API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import log, notes
from ledger import services as ledger
from ledger.models import Checkpoint, IdentityKind, Transaction
from tests.personas import World, build_world

API = "/api/v1/ledger/"
COSIGNED_AT = 1_796_000_000

@dataclass
class VerifyWorld:
    world: World
    witness_name: str
    checkpoint: Checkpoint  # the checkpoint of the block holding tx_hash

    def __getattr__(self, name):
        return getattr(self.world, name)

    @property
    def tx_hash(self) -> str:
        return self.world.tx["alice_to_charlie"]

    def routes(self) -> dict[str, str]:
        """The API calls of the Verify button, by name, under the API prefix."""
        tx, checkpoint = self.tx_hash, self.checkpoint
        return {
            "document": f"transactions/{tx}/document/",
            "proof": f"transactions/{tx}/proof/",
            "orderer": "orderer/",
            "witnesses": "witnesses/",
            "checkpoint": f"checkpoints/{checkpoint.number}/",
            "log_proof": f"proofs/inclusion/?tx={tx}&tree_size={checkpoint.tree_size}",
        }

    def payloads(self, page, base: str) -> dict[str, Any]:
        """What the app answers the signed-in browser, by route name."""
        served = {}
        for name, path in self.routes().items():
            response = page.request.get(f"{base}{API}{path}")
            assert response.ok, (name, response.status)
            served[name] = response.json()
        return served

    def trust(self, page) -> Any:
        """The keys the page pins for the check (its JSON script element)."""
        return page.evaluate("JSON.parse(document.getElementById('verify-trust').textContent)")

    def pin(self, page, trust: Any) -> None:
        """Replace the keys the page pins, as a page served with other keys would carry."""
        page.evaluate("(text) => { document.getElementById('verify-trust').textContent = text; }",
                      json.dumps(trust))

    def tamper(self, page, base: str, name: str, payload: Any, status: int = 200) -> None:
        """Answer the route ``name`` with ``payload`` instead of the app's response."""
        body = json.dumps(payload)

        def handler(route) -> None:
            route.fulfill(status=status, content_type="application/json", body=body)

        url = f"{base}{API}{self.routes()[name]}"
        # A predicate, not a glob: in a glob the query string's "?" would match any one character.
        page.route(lambda requested: requested == url, handler)


def build_verify_world(settings) -> VerifyWorld:
    settings.GRIDCOIN_WITNESS_QUORUM = 1
    world = build_world(settings)
    bank = ledger.organisation_create(msp_id="bank", name="Bank", org_type="bank")
    key = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    ledger.identity_register(organisation=bank, name=log.WITNESS_IDENTITY, public_key=notes.raw_public(key),
                             kind=IdentityKind.SERVICE)
    name = notes.witness_name("bank")
    checkpoint = Checkpoint.objects.get(number=Transaction.objects.get(tx_hash=world.tx["alice_to_charlie"]).block.number)
    log.cosignature_add(checkpoint, notes.cosign(checkpoint.body, name, key, COSIGNED_AT))
    return VerifyWorld(world=world, witness_name=name, checkpoint=checkpoint)
