"""A witness: cosigns the operator's checkpoints only while the log's history extends what it
signed before. A client of the read API over HTTP; it imports nothing of the project but the
pure ``merkle`` and ``notes`` modules (standard library and ``cryptography`` otherwise), so it
runs on the witnessing organisation's own machine:

    python -m ledger.witness_client --org bank1 --api https://operator/api/v1/ledger/ --token gct_…

For each new checkpoint it checks the orderer's note signature against the key it pinned, that
the checkpoint it signed last is still served unchanged, and an RFC 9162 consistency proof from
that one; then it cosigns (cosignature/v1) and posts the line, and cosigns each block sealed
since its previous round, every one proven a prefix of the latest. Any history that does not extend
what it signed (rewritten, reordered or truncated blocks, even re-signed with the orderer's key)
is refused: the evidence goes to the state directory, a CRITICAL line to the log, and it signs
nothing more until the alarm file is removed by a person.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle, notes

logger = logging.getLogger("gridcoin.witness")

STATE_FILE = "state.json"
ALARM_FILE = "ALARM.json"


class TransportError(Exception):
    """The operator could not be reached or answered oddly: retry later, not an alarm."""


class HttpTransport:
    """GET/POST JSON under the API's ledger prefix with urllib."""

    def __init__(self, api: str, token: str | None = None, timeout: float = 10.0):
        self.api = api.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, params=None, body=None) -> tuple[int, object]:
        url = self.api + path + ("?" + urllib.parse.urlencode(params) if params else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token and method == "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (the operator's URL)
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TransportError(f"{method} {url}: {exc}") from exc

    def get(self, path: str, params=None) -> tuple[int, object]:
        return self._request("GET", path, params=params)

    def post(self, path: str, body) -> tuple[int, object]:
        return self._request("POST", path, body=body)


class Refusal(Exception):
    """The operator showed a history that does not extend what this witness signed."""

    def __init__(self, reason: str, proof=None):
        super().__init__(reason)
        self.reason = reason
        self.proof = proof


@dataclass
class Outcome:
    action: str  # "cosigned", "up-to-date", "waiting", "refused"
    block: int | None = None
    detail: str = ""


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The witness's own Ed25519 key: a hex seed in a file only its owner may read."""
    if path.exists():
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(seed.hex() + "\n")
    return key


class Witness:
    def __init__(self, *, org: str, transport, key: Ed25519PrivateKey, state_dir: Path,
                 orderer_key: str | None = None, origin: str | None = None):
        self.name = notes.witness_name(org)
        self.transport = transport
        self.key = key
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state = self._load()
        # A key given on the command line wins; otherwise the one first seen is pinned.
        if orderer_key:
            self.state["orderer_key"] = orderer_key
        if origin:
            self.state["origin"] = origin

    @property
    def public_key_hex(self) -> str:
        return notes.raw_public(self.key).hex()

    # --- state -------------------------------------------------------------------------------
    def _load(self) -> dict:
        path = self.state_dir / STATE_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def _save(self) -> None:
        path = self.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(tmp, path)

    @property
    def alarmed(self) -> bool:
        return (self.state_dir / ALARM_FILE).exists()

    # --- one round -----------------------------------------------------------------------------
    def _get(self, path: str, params=None, *, missing_is_refusal: str = "") -> dict:
        status, data = self.transport.get(path, params)
        if status in (400, 404) and missing_is_refusal:
            raise Refusal(f"{missing_is_refusal} (GET {path} answered {status}: {data})")
        if status != 200 or not isinstance(data, dict):
            raise TransportError(f"GET {path} answered {status}: {data}")
        return data

    def _pin_orderer(self) -> tuple[bytes, str]:
        if "orderer_key" not in self.state or "origin" not in self.state:
            orderer = self._get("orderer/")
            self.state.setdefault("orderer_key", orderer["public_key"])
            self.state.setdefault("origin", orderer["origin"])
            self._save()
        return bytes.fromhex(self.state["orderer_key"]), self.state["origin"]

    def _checked(self, doc: dict, orderer_key: bytes, origin: str) -> notes.CheckpointBody:
        """The checkpoint's body, if the orderer signed it and the served fields say the same."""
        try:
            body = notes.parse_body(doc["body"])
        except (KeyError, TypeError, notes.NoteError) as exc:
            raise Refusal(f"checkpoint body is malformed: {exc}") from exc
        if body.origin != origin:
            raise Refusal(f"checkpoint is for origin {body.origin!r}, not {origin!r}")
        if (doc.get("tree_size"), doc.get("root"), doc.get("block"), doc.get("header_hash")) != (
                body.tree_size, body.root.hex(), body.block, body.header_hash):
            raise Refusal("checkpoint fields differ from its signed body")
        note = doc.get("note", "")
        if not isinstance(note, str) or not note.startswith(doc["body"] + "\n"):
            raise Refusal("checkpoint note does not start with its body")
        lines = note[len(doc["body"]) + 1:].splitlines()
        if not lines or not notes.verify_note_line(doc["body"], lines[0], origin, orderer_key):
            raise Refusal("the orderer's signature on the checkpoint does not verify under the pinned key")
        return body

    def step(self) -> Outcome:
        if self.alarmed:
            return Outcome("refused", detail=f"alarm raised earlier; see {self.state_dir / ALARM_FILE}")
        orderer_key, origin = self._pin_orderer()
        status, doc = self.transport.get("checkpoints/latest/")
        if status == 404:
            return Outcome("waiting", detail="no checkpoint yet")
        if status != 200 or not isinstance(doc, dict):
            raise TransportError(f"GET checkpoints/latest/ answered {status}")
        proof: list[str] | None = None
        signed = self.state.get("signed")
        try:
            body = self._checked(doc, orderer_key, origin)
            if signed:
                proof = self._check_extends(signed, body, doc, orderer_key, origin)
        except Refusal as refusal:
            self._alarm(refusal.reason, presented=doc, proof=refusal.proof if refusal.proof is not None else proof)
            return Outcome("refused", block=doc.get("block"), detail=refusal.reason)
        if signed and signed["block"] == body.block:
            if not any(c.get("witness") == self.name for c in doc.get("cosignatures", [])):
                self._post(body.block, signed["line"])  # signed before, the post was lost
            return self._backfill() or Outcome("up-to-date", block=body.block)
        line = notes.cosign(doc["body"], self.name, self.key, int(time.time()))
        if signed and body.block > signed["block"] + 1:
            # The blocks sealed between two rounds are cosigned too, after the latest (whose
            # cosignature is what readers wait for): each one once shown to be a prefix of it.
            self.state["backfill"] = {"next": signed["block"] + 1, "before": body.block,
                                      "floor": signed["tree_size"], "tree_size": body.tree_size,
                                      "root": body.root.hex()}
        self.state["signed"] = {"block": body.block, "tree_size": body.tree_size, "root": body.root.hex(),
                                "header_hash": body.header_hash, "body": doc["body"], "line": line,
                                "checkpoint": doc}
        self._save()
        self._post(body.block, line)
        logger.info("%s cosigned block %s (tree size %s)", self.name, body.block, body.tree_size)
        return self._backfill() or Outcome("cosigned", block=body.block)

    def _backfill(self) -> Outcome | None:
        """Cosign the pending blocks between the previous round's checkpoint and this one's: each
        is checked (the orderer's signature, a size between the two, a consistency proof into the
        checkpoint signed last) before it is signed. A refusal here is an alarm like any other."""
        pending = self.state.get("backfill")
        if not pending:
            return None
        orderer_key, origin = self._pin_orderer()
        while pending["next"] < pending["before"]:
            number = pending["next"]
            doc = self._get(f"checkpoints/{number}/",
                            missing_is_refusal=f"block {number}'s checkpoint, before one signed, is gone")
            proof: list[str] | None = None
            try:
                body = self._checked(doc, orderer_key, origin)
                if body.block != number or not pending["floor"] <= body.tree_size <= pending["tree_size"]:
                    raise Refusal(f"block {number}'s checkpoint (block {body.block}, tree size {body.tree_size}) "
                                  f"does not lie between tree sizes {pending['floor']} and {pending['tree_size']}")
                proof = self._proof_into(body.tree_size, body.root, pending["tree_size"],
                                         bytes.fromhex(pending["root"]))
            except Refusal as refusal:
                self._alarm(refusal.reason, presented=doc, proof=refusal.proof if refusal.proof is not None else proof)
                return Outcome("refused", block=number, detail=refusal.reason)
            line = notes.cosign(doc["body"], self.name, self.key, int(time.time()))
            self._post(number, line)
            pending["next"], pending["floor"] = number + 1, body.tree_size
            self._save()
        del self.state["backfill"]
        self._save()
        return None

    def _proof_into(self, size: int, root: bytes, later_size: int, later_root: bytes) -> list[str]:
        """Refuse unless the log of ``size`` with ``root`` is a prefix of the one of ``later_size``."""
        if size == later_size:
            if root != later_root:
                raise Refusal("a different root for the same tree size")
            return []
        data = self._get("proofs/consistency/", {"first": size, "second": later_size},
                         missing_is_refusal=f"the operator has no consistency proof from size {size}")
        proof = data.get("proof")
        if not isinstance(proof, list):
            raise Refusal("the consistency proof is malformed", proof)
        try:
            hashes = [bytes.fromhex(h) for h in proof]
        except (TypeError, ValueError) as exc:
            raise Refusal("the consistency proof is malformed", proof) from exc
        if data.get("first") != size or data.get("second") != later_size or not (
                merkle.verify_consistency(size, later_size, hashes, root, later_root)):
            raise Refusal(f"the log of size {later_size} does not extend the log of size {size} "
                          f"(consistency proof fails)", proof)
        return proof

    def _check_extends(self, signed: dict, body: notes.CheckpointBody, doc: dict, orderer_key: bytes,
                       origin: str) -> list[str] | None:
        """Refuse unless the presented checkpoint extends the one signed last."""
        if body.block < signed["block"]:
            raise Refusal(f"the log went back from block {signed['block']} to block {body.block}")
        if body.tree_size < signed["tree_size"]:
            raise Refusal(f"the log shrank from {signed['tree_size']} to {body.tree_size} transactions")
        if body.block == signed["block"]:
            if doc["body"] != signed["body"]:
                raise Refusal(f"block {body.block}'s checkpoint changed since it was signed")
            return None
        # The checkpoint signed before must still be served unchanged: a rewritten block header
        # shows here even when the transactions (and so the roots) are the same.
        old = self._get(f"checkpoints/{signed['block']}/",
                        missing_is_refusal=f"block {signed['block']}'s checkpoint, signed before, is gone")
        if old.get("body") != signed["body"]:
            raise Refusal(f"block {signed['block']}'s checkpoint is no longer the one signed "
                          f"(served: {old.get('header_hash')}, signed: {signed['header_hash']})")
        self._checked(old, orderer_key, origin)
        return self._proof_into(signed["tree_size"], bytes.fromhex(signed["root"]), body.tree_size, body.root)

    def _post(self, block: int, line: str) -> None:
        status, data = self.transport.post(f"checkpoints/{block}/cosignatures/", {"line": line})
        if status not in (200, 201):
            raise TransportError(f"cosignature of block {block} refused with {status}: {data}")

    def _alarm(self, reason: str, *, presented: dict, proof) -> None:
        evidence = {"reason": reason, "witness": self.name, "at": int(time.time()),
                    "orderer_key": self.state.get("orderer_key"),
                    "signed": (self.state.get("signed") or {}).get("checkpoint"),
                    "presented": presented, "consistency_proof": proof}
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        (self.state_dir / f"evidence-{stamp}-{os.getpid()}.json").write_text(json.dumps(evidence, indent=1))
        (self.state_dir / ALARM_FILE).write_text(json.dumps(evidence, indent=1))
        logger.critical("WITNESS ALARM %s: %s; refusing to cosign, evidence in %s", self.name, reason, self.state_dir)


def run(witness: Witness, *, interval: float = 1.0, once: bool = False, stopped=None) -> int:
    """Rounds until stopped; 0, or 2 once the witness has refused a history."""
    while True:
        try:
            outcome = witness.step()
        except TransportError as exc:
            logger.warning("%s: %s", witness.name, exc)
            outcome = Outcome("waiting", detail=str(exc))
            if once:
                return 1
        if outcome.action == "refused":
            return 2
        if once:
            return 0
        if stopped is not None:
            if stopped.wait(interval):
                return 0
        else:
            time.sleep(interval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Cosign the operator's checkpoints while its history only grows.")
    parser.add_argument("--org", required=True, help="the witnessing organisation's MSP id")
    parser.add_argument("--api", required=True, help="the operator's ledger API, e.g. https://host/api/v1/ledger/")
    parser.add_argument("--token", default=os.environ.get("GRIDCOIN_WITNESS_TOKEN"),
                        help="an API token with the ledger:read scope")
    parser.add_argument("--state-dir", help="where the key, state and evidence live (default ./witness-<org>)")
    parser.add_argument("--key-file", help="the witness's Ed25519 seed, hex (created 0600 on first run)")
    parser.add_argument("--orderer-key", help="the orderer's public key, hex (default: pin the first one seen)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--once", action="store_true", help="one round; exit 2 if the history is refused")
    return parser


def main(argv: list[str] | None = None, stdout=sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    state_dir = Path(args.state_dir or f"witness-{args.org}")
    key = load_or_create_key(Path(args.key_file) if args.key_file else state_dir / "witness.key")
    witness = Witness(org=args.org, transport=HttpTransport(args.api, args.token), key=key,
                      state_dir=state_dir, orderer_key=args.orderer_key)
    print(f"witness {witness.name} public key {witness.public_key_hex}", file=stdout)
    return run(witness, interval=args.interval, once=args.once)


if __name__ == "__main__":
    sys.exit(main())
