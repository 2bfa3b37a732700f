"""Generate the worked example of docs/ledger-format.md from a real, tiny ledger.

Builds a throwaway SQLite ledger with fixed keys (a utility mints 5 kWh to Alice's household,
Alice sends 1.2 kWh to Bob's, one block, a bank's witness co-signs its checkpoint), exports it
with ``ledger_export`` and prints the Markdown of the example section, every artifact under an
``<!-- example:NAME -->`` marker that tests/verifier/test_ledger_format_doc.py parses and checks.

    .venv/bin/python tools/ledger_format_example.py > /tmp/example.md
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seed(label: str) -> bytes:
    return hashlib.sha256(f"gridcoin ledger-format example: {label}".encode()).digest()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gridcoin-format-example-"))
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{tmp / 'example.sqlite3'}",
        "GRIDCOIN_DATA_DIR": str(tmp),
        "GRIDCOIN_ORDERER_KEY": base64.b64encode(seed("orderer")).decode(),
        "GRIDCOIN_BACKGROUND_SEALER": "0",
        "DJANGO_SETTINGS_MODULE": "gridcoin.settings",
        "LOG_LEVEL": "WARNING",
    })
    for var in ("REDIS_URL", "MQTT_URL", "GRIDCOIN_TRUSTED_ORDERER_KEYS"):
        os.environ.pop(var, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from ledger import log, notes
    from ledger import services as ledger
    from ledger.crypto import private_key_from_seed, public_bytes
    from ledger.export import export_ledger
    from ledger.keys import household_account
    from ledger.models import Checkpoint
    from ledger.sealing import lease_acquire, seal_next_block

    def member(msp_id: str, org_type: str, name: str, kind: str = "user"):
        org = ledger.organisation_create(msp_id=msp_id, name=msp_id.title(), org_type=org_type)
        key = private_key_from_seed(seed(f"{msp_id}/{name}"))
        identity = ledger.identity_register(organisation=org, name=name, public_key=public_bytes(key), kind=kind)
        return org, identity, key

    utility, operator, operator_key = member("utility", "utility", "operator")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    alice_org, alice, alice_key = member("hh-alice", "household", "alice")
    bob_org, _, _ = member("hh-bob", "household", "bob")
    member("bank-w", "bank", "witness", kind="service")
    witness_key = private_key_from_seed(seed("bank-w/witness"))
    for org in (alice_org, bob_org):
        ledger.account_open(key=household_account(org.msp_id), asset="k", organisation=org)
    mint = ledger.invoke(chaincode="token", function="mint", invoker=operator, signer=operator_key,
                         args={"to": household_account("hh-alice"), "asset": "k", "amount": 5000}, idempotency_key="example-1")
    transfer = ledger.invoke(chaincode="token", function="transfer", invoker=alice, signer=alice_key,
                             args={"from": household_account("hh-alice"), "to": household_account("hh-bob"), "asset": "k",
                                   "amount": 1200}, idempotency_key="example-2")
    assert mint.ok and transfer.ok, (mint.reason, transfer.reason)
    assert lease_acquire(holder="example")
    seal_next_block(holder="example", force=True)
    checkpoint = Checkpoint.objects.get(number=0)
    log.cosignature_add(checkpoint, notes.cosign(checkpoint.body, "bank-w/witness", witness_key, 1796605323))

    out = tmp / "export"
    export_ledger(out)
    manifest = json.loads((out / "manifest.json").read_text())
    block_line = (out / manifest["files"][0]["name"]).read_text().splitlines()[0]
    block = json.loads(block_line)
    documents = [base64.b64decode(t["bytes"]) for t in block["transactions"]]
    parsed = [json.loads(d) for d in documents]
    proposals = [json.dumps(p["proposal"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                 for p in parsed]
    header = json.dumps(block["header"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    leaves = [bytes.fromhex(t["tx_hash"]) for t in block["transactions"]]
    leaf_hashes = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    note = manifest["checkpoint"]["note"]

    def section(name: str, text: str, lang: str = "text") -> str:
        return f"<!-- example:{name} -->\n```{lang}\n{text}\n```\n"

    parts = [
        "Keys (Ed25519 public keys, hex):\n",
        section("orderer-public-key", manifest["orderer_public_keys"][0]),
        section("utility-operator-public-key", public_bytes(operator_key).hex()),
        section("alice-public-key", public_bytes(alice_key).hex()),
        section("witness-public-key", public_bytes(witness_key).hex()),
        "The proposal Alice signed (canonical bytes, UTF-8; no newline at the end):\n",
        section("transfer-proposal", proposals[1]),
        "Her signature over those bytes (Ed25519, base64):\n",
        section("transfer-signature", parsed[1]["signature"]),
        "The transaction document (canonical bytes):\n",
        section("transfer-document", documents[1].decode()),
        "Its SHA-256, the transaction hash:\n",
        section("transfer-hash", block["transactions"][1]["tx_hash"]),
        "The mint before it in the same block has the hash:\n",
        section("mint-hash", block["transactions"][0]["tx_hash"]),
        "Leaf hashes SHA-256(0x00 || tx hash bytes), then the root SHA-256(0x01 || leaf0 || leaf1):\n",
        section("leaf-hashes", "\n".join(h.hex() for h in leaf_hashes)),
        "The block header the orderer signed (canonical bytes):\n",
        section("header", header),
        "Header hash (SHA-256 of those bytes) and orderer signature (Ed25519, hex):\n",
        section("header-hash", block["header_hash"]),
        section("header-signature", block["signature"]),
        "The inclusion proof of the transfer (leaf index 1 of 2) is the one-element audit path\n"
        "`[leaf hash of the mint]`.\n\n"
        "The checkpoint note after block 0: body, blank line, the orderer's signature line, the\n"
        "witness's cosignature line:\n",
        section("checkpoint-note", note.rstrip("\n")),
        "The block as one line of the export's `blocks-00000000-00000000.jsonl`:\n",
        section("export-block", block_line, "json"),
    ]
    print("\n".join(parts))


if __name__ == "__main__":
    main()
