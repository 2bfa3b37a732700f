"""The verifier's fast path for a transaction (compare the bytes with the canonical texts of the
document's members, derive the signed proposal and the body from them) reaches the verdict and
the facts of its general path (parse, re-canonicalise the whole document with the RFC 8785
fallback, encode the proposal and the body again) on canonical documents and on every kind of
non-canonical or out-of-domain bytes. No database: documents are built and signed here."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY = Ed25519PrivateKey.generate()
PUBLIC_HEX = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _canonical(value) -> bytes:
    return rfc8785.dumps(value)


def _document(*, args=None, idempotency_key="k-1", invoker="hh-alice/alice", writes=None) -> dict:
    proposal = {"chaincode": "token", "function": "transfer", "invoker": invoker, "idempotency_key": idempotency_key,
                "args": args if args is not None else {"from": "a", "to": "b", "asset": "k", "amount": 5},
                "proposed_at": "2026-12-07T01:02:03.000004+00:00"}
    effects = {"events": [], "postings": [["a", "k", -5], ["b", "k", 5]], "reason": "", "result": None,
               "state_writes": writes or [], "status": "valid"}
    signature = base64.b64encode(KEY.sign(_canonical(proposal))).decode()
    return {"effects": effects, "proposal": proposal, "signature": signature}


def _record(raw: bytes, document: dict | None = None) -> dict:
    document = document if document is not None else json.loads(raw)
    proposal = document["proposal"]
    body = _canonical({"args": proposal["args"], "chaincode": proposal["chaincode"],
                       "function": proposal["function"]})
    return {"tx_hash": hashlib.sha256(raw).hexdigest(), "bytes": base64.b64encode(raw).decode(),
            "body_digest": hashlib.sha256(body).hexdigest(), "invoker_public_key": PUBLIC_HEX}


def _both(record: dict, monkeypatch) -> tuple[dict, dict]:
    from verifier import checker

    fast = checker.analyse_transaction(record)
    with monkeypatch.context() as patch:
        patch.setattr(checker, "_canonical_parts", lambda raw: None)
        general = checker.analyse_transaction(record)
    return fast, general


# (document, whether the fast path takes it): text that is not ASCII, or holds a run of 16
# digits, goes the general way.
CANONICAL = [
    (_document(), True),
    (_document(idempotency_key=None), True),
    (_document(idempotency_key=42), True),
    # The tail of the proposal after the body is found by length, not by searching for it.
    (_document(idempotency_key={"chaincode": "token", "function": "transfer", "idempotency_key": "x"}), True),
    (_document(args={"note": ',"chaincode":"token","function":"transfer","idempotency_key":null', "n": 1}), True),
    (_document(args={"text": "quote \" backslash \\ tab \t nul \u0000 slash /"}), True),
    (_document(args={"text": "line separator \u2028"}), False),
    (_document(args={"n": 10**15 - 1, "m": -(10**15 - 1)}), True),
    (_document(args={"n": 2**53 - 1, "m": -(2**53 - 1)}), False),
    (_document(args={"caf\u00e9": "h\u00e9", "z": "\U0001f600"}), False),
    (_document(writes=[["config", "identity/hh-alice/alice", {"public_key": PUBLIC_HEX, "revoked": None}, False, 1],
                       ["token", "x", None, True, 2]]), True),
]


@pytest.mark.parametrize("document,fast_path", CANONICAL, ids=range(len(CANONICAL)))
def test_canonical_documents(document, fast_path, monkeypatch):
    from verifier import checker

    raw = _canonical(document)
    assert (checker.in_fast_domain(raw) and checker._canonical_parts(raw) is not None) == fast_path
    fast, general = _both(_record(raw), monkeypatch)
    assert fast == general
    assert fast["error"] is None and fast["digest_ok"] is True and fast["sig_valid"] is True, fast


def _variants() -> list[tuple[str, bytes]]:
    good = _canonical(_document()).decode()
    swapped = good.replace('{"effects":', '{"signature":"x","effects":', 1)
    return [
        ("whitespace", good.replace('"proposal":', '"proposal": ', 1)),
        ("newline at the end", good + "\n"),
        ("members out of order", json.dumps(_document(), separators=(",", ":"))),
        ("escaped letter", good.replace('"transfer"', '"tr\\u0061nsfer"', 1)),
        ("escaped slash", good.replace('"hh-alice/alice"', '"hh-alice\\/alice"', 1)),
        ("uppercase escape", _canonical(_document(args={"c": "\u0001"})).decode().replace("\\u0001", "\\u0001".upper())),
        ("duplicate member", swapped),
        ("minus zero", good.replace('"amount":5', '"amount":-0', 1)),
        ("exponent", good.replace('"amount":5', '"amount":5e0', 1)),
        ("fraction", good.replace('"amount":5', '"amount":5.0', 1)),
        ("outside the safe range", good.replace('"amount":5', f'"amount":{2**53}', 1)),
        ("lone surrogate", good.replace('"transfer"', '"\\ud800"', 1)),
        ("not JSON", good[:-1]),
        ("a member missing", good.replace(',"reason":""', "", 1)),
        ("signature not a string", good.replace('"signature":"', '"signature":["', 1).replace('"}', '"]}')),
        ("extra member", good[:-1] + ',"x":1}'),
    ]


@pytest.mark.parametrize("label,text", _variants(), ids=[label for label, _ in _variants()])
def test_non_canonical_bytes(label, text, monkeypatch):
    raw = text.encode("utf-8", "surrogatepass")
    record = _record(_canonical(_document()))
    record.update(tx_hash=hashlib.sha256(raw).hexdigest(), bytes=base64.b64encode(raw).decode())
    fast, general = _both(record, monkeypatch)
    assert fast == general
    assert fast["error"], f"{label}: accepted"


def test_signature_and_body_digest_are_checked_on_the_fast_path(monkeypatch):
    document = _document()
    raw = _canonical(document)
    record = _record(raw)
    forged = {**document, "signature": base64.b64encode(bytes(64)).decode()}
    forged_raw = _canonical(forged)
    forged_record = {**_record(forged_raw), "body_digest": record["body_digest"]}
    fast, general = _both(forged_record, monkeypatch)
    assert fast == general and fast["sig_valid"] is False and fast["digest_ok"] is True
    fast, general = _both({**record, "body_digest": "00" * 32}, monkeypatch)
    assert fast == general and fast["digest_ok"] is False and fast["sig_valid"] is True
    fast, general = _both({**record, "invoker_public_key": "AB" * 32}, monkeypatch)  # not lowercase hex
    assert fast == general and fast["sig_valid"] is False


def test_bytes_that_are_not_strict_base64():
    from verifier import checker

    raw = _canonical(_document())
    record = _record(raw)
    encoded = record["bytes"]
    for bad in ("=" + encoded, encoded + "A", encoded[:8] + "*" + encoded[9:], " " + encoded, encoded + "\n",
                encoded + "=" + encoded, "\u00e9" + encoded, 7):
        facts = checker.analyse_transaction({**record, "bytes": bad})
        assert facts["error"].startswith("transaction bytes: not standard base64"), bad
