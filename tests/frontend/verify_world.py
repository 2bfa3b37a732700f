"""A sealed world for the in-browser "Verify" test, and the API payloads it checks.

The transaction document and the proof (with the signed header) come from the app. Until the
checkpoint, orderer and witness endpoints exist (issue 16, built in parallel), this builds their
payloads from the database as the shared spec gives them and serves them through Playwright's
routing."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.crypto import public_bytes
from ledger.merkle import merkle_root
from ledger.models import Block, Transaction
from ledger.sealing import orderer_key
from tests.personas import World, build_world

ORIGIN = "gridcoin.example/ledger"
WITNESS = "bank/witness"
API = "/api/v1/ledger/"
COSIGNED_AT = 1_796_000_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key_id(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public).digest()[:4]


def checkpoint_payload(block: Block, witness: Ed25519PrivateKey) -> dict[str, Any]:
    leaves = [bytes.fromhex(h) for h in Transaction.objects.filter(block__number__lte=block.number)
              .order_by("block__number", "id").values_list("tx_hash", flat=True)]
    root = merkle_root(leaves)
    body = f"{ORIGIN}\n{len(leaves)}\n{_b64(root)}\nblock {block.number} {block.header_hash}\n"
    orderer = orderer_key()
    signed = _key_id(ORIGIN, 0x01, public_bytes(orderer)) + orderer.sign(body.encode())
    orderer_line = f"— {ORIGIN} {_b64(signed)}"
    stamp = struct.pack(">Q", COSIGNED_AT)
    message = f"cosignature/v1\ntime {COSIGNED_AT}\n{body}".encode()
    cosigned = _key_id(WITNESS, 0x04, public_bytes(witness)) + stamp + witness.sign(message)
    witness_line = f"— {WITNESS} {_b64(cosigned)}"
    return {"block": block.number, "header_hash": block.header_hash, "tree_size": len(leaves), "root": root.hex(),
            "origin": ORIGIN, "body": body, "note": f"{body}\n{orderer_line}\n{witness_line}\n",
            "cosignatures": [{"witness": WITNESS, "public_key": public_bytes(witness).hex(),
                              "timestamp": COSIGNED_AT, "line": witness_line}]}


# The payloads each route serves, by name; the URL of each under the API prefix.
ROUTES = {
    "document": lambda tx: f"transactions/{tx}/document/",
    "proof": lambda tx: f"transactions/{tx}/proof/",
    "orderer": lambda tx: "orderer/",
    "witnesses": lambda tx: "witnesses/",
    "checkpoint": lambda tx: "checkpoints/0/",
}
SERVED_BY_THE_APP = ("document", "proof")


@dataclass
class VerifyWorld:
    world: World
    witness: Ed25519PrivateKey

    def __getattr__(self, name):
        return getattr(self.world, name)

    def payloads(self, page, base: str, tx_hash: str) -> dict[str, Any]:
        """What each route answers: the app's own endpoints as the signed-in browser gets them,
        the others built here."""
        served = {}
        for name in SERVED_BY_THE_APP:
            response = page.request.get(f"{base}{API}{ROUTES[name](tx_hash)}")
            assert response.ok, (name, response.status)
            served[name] = response.json()
        tx = Transaction.objects.select_related("block").get(tx_hash=tx_hash)
        return {
            **served,
            "orderer": {"public_key": public_bytes(orderer_key()).hex(), "origin": ORIGIN, "quorum": 1},
            "witnesses": [{"name": WITNESS, "organisation": "bank", "org_type": "bank",
                           "public_key": public_bytes(self.witness).hex()}],
            "checkpoint": checkpoint_payload(tx.block, self.witness),
        }

    def serve(self, page, base: str, overrides: dict[str, Any] | None = None) -> None:
        """Route the API calls of the Verify button to ``payloads``, with ``overrides`` by name."""
        tx_hash = self.world.tx["alice_to_charlie"]
        served = {**self.payloads(page, base, tx_hash), **(overrides or {})}
        for name, path in ROUTES.items():
            if name in SERVED_BY_THE_APP and name not in (overrides or {}):
                continue
            page.route(f"{base}{API}{path(tx_hash)}", _fulfil_with(json.dumps(served[name])))


def _fulfil_with(body: str):
    def handler(route) -> None:
        route.fulfill(status=200, content_type="application/json", body=body)

    return handler


def build_verify_world(settings) -> VerifyWorld:
    world = build_world(settings)
    return VerifyWorld(world=world, witness=Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
