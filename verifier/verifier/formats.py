"""The byte formats of docs/ledger-format.md, written from the document alone: canonical JSON,
hashes, Ed25519, RFC 6962 Merkle trees, block headers and checkpoint notes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_SAFE_INTEGER = 2**53 - 1
GENESIS_PREVIOUS_HASH = "0" * 64
SIGNATURE_REJECTION = "invalid signature: the proposal is not signed by the invoker's key"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class FormatError(ValueError):
    pass


# --- canonical JSON (RFC 8785) --------------------------------------------------------------------


def _no_floats(text: str) -> Any:
    raise FormatError(f"a number that is not an integer ({text})")


_DECODER = json.JSONDecoder(parse_float=_no_floats, parse_constant=_no_floats)


def parse(data: bytes) -> Any:
    """Parse ledger JSON: UTF-8, no floats, integers within the safe range."""
    try:
        return parse_text(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"not JSON: {exc}") from exc


def parse_text(text: str) -> Any:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc}") from exc


def _safe(value: Any) -> bool:
    """Integers in the safe range and only BMP keys: then sorted ``json.dumps`` is RFC 8785."""
    kind = type(value)
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise FormatError(f"integer {value} is outside the JSON safe range")
        return True
    if kind is dict:
        ok = True
        for key, sub in value.items():
            if not key.isascii() and any(ord(c) > 0xFFFF for c in key):
                ok = False
            if not _safe(sub):
                ok = False
        return ok
    if kind is list:
        ok = True
        for sub in value:
            if not _safe(sub):
                ok = False
        return ok
    return True


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_SIXTEEN_DIGITS = b"0" * 16


def in_fast_domain(raw: bytes) -> bool:
    """JSON text that is ASCII holds no key outside the BMP, and without a run of 16 digits no
    integer outside the safe range: its parsed value needs no walk before ``canonical``."""
    return raw.isascii() and _SIXTEEN_DIGITS not in raw.translate(_DIGITS_AS_ZERO)


def _no_default(value: Any) -> Any:
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _make_encoder() -> Any:
    """Sorted-key compact ``json.dumps`` without its per-call set-up: the C encoder of the standard
    library when it is there and gives ``json.dumps``'s text, else the public encoder."""
    public = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)
    try:
        make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
        encoder = make(None, _no_default, json.encoder.encode_basestring, None, ":", ",", True, False, True)
        sample = {"b": [1, -2, None, True, False], "a": {"\u00e9\n\"": "x\u0001\u2028"}, "": ""}
        if "".join(encoder(sample, 0)) == public.encode(sample):
            return lambda value: "".join(encoder(value, 0))
    except Exception:  # noqa: BLE001 (any doubt about the private encoder: use the public one)
        pass
    return public.encode


# The canonical JSON text (str) of a value parsed from text that ``in_fast_domain`` accepted.
canonical_text = _make_encoder()
# The canonical JSON text of a string, as the encoder writes strings.
encode_string = json.encoder.encode_basestring


def canonical(value: Any, *, checked: bool = False) -> bytes:
    """RFC 8785 bytes. Sorted-key compact ``json.dumps`` is the same text when every key is in the
    Basic Multilingual Plane (RFC 8785 sorts by UTF-16 code units, Python by code points, and they
    agree there) and there are no floats; otherwise the ``rfc8785`` library decides.
    ``checked``: the value was parsed from text ``in_fast_domain`` accepted."""
    if checked or _safe(value):
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise FormatError(f"text is not valid Unicode: {exc.reason}") from exc
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise FormatError(str(exc)) from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64decode(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise FormatError(f"not standard base64: {str(text)[:40]!r}") from exc


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unhex(text: Any, size: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise FormatError(f"not hex: {text!r}")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise FormatError(f"not hex: {text[:40]!r}") from exc
    if text != raw.hex() or (size is not None and len(raw) != size):
        raise FormatError(f"not {size or ''} bytes of lowercase hex: {text[:40]!r}")
    return raw


# --- Ed25519 ---------------------------------------------------------------------------------------
#
# The rule (docs/ledger-format.md, conventions) is RFC 8032's verification, cofactorless, refusing
# also a public key that is not canonical or of small order and an R of small order: libsodium's
# rule, which the ledger applies to every proposal it is sent. libsodium (PyNaCl, the optional
# ``sodium`` extra: ``pip install gridcoin-verifier[sodium]``) applies it at about twice the speed;
# without it OpenSSL (through ``cryptography``) checks the equation and the checks below refuse
# the points.

try:
    from nacl.bindings import crypto_sign_open as _sodium_open
except ImportError:  # the optional extra is not installed
    _sodium_open = None

FIELD_PRIME = 2**255 - 19
# y of the order-8 points (the other is p - y): y^2 = (-1 + sqrt(1 + d)) / d for the root whose
# square root exists; tests/verifier/test_verifier_ed25519.py derives it from the curve.
ORDER_8_Y = 2707385501144840649318225287225658788936804267575313519463743609750303402022
# The y of every point of small order (orders 1, 2, 4, 8), and p and p + 1, the non-canonical
# encodings of 0 and 1. An encoding names its y in its low 255 bits and the sign of x in the top
# bit; small order does not depend on that sign.
SMALL_ORDER_Y = frozenset({0, 1, FIELD_PRIME - 1, FIELD_PRIME, FIELD_PRIME + 1, ORDER_8_Y, FIELD_PRIME - ORDER_8_Y})
_Y_MASK = (1 << 255) - 1


def _y(encoding: bytes) -> int:
    return int.from_bytes(encoding, "little") & _Y_MASK


def usable_public_key(encoding: bytes) -> bool:
    """32 bytes naming a canonical y (below p) of a point not of small order."""
    if len(encoding) != 32:
        return False
    y = _y(encoding)
    return y < FIELD_PRIME and y not in SMALL_ORDER_Y


BACKENDS = ("auto", "openssl", "libsodium")
_use_sodium = _sodium_open is not None


def choose_ed25519(name: str) -> str:
    """Pick the Ed25519 implementation (``auto``: libsodium when installed) and return the one in
    use; ValueError for ``libsodium`` when PyNaCl is missing."""
    global _use_sodium
    if name not in BACKENDS:
        raise ValueError(f"Ed25519 backend is one of {', '.join(BACKENDS)}, not {name!r}")
    if name == "libsodium" and _sodium_open is None:
        raise ValueError("libsodium was asked for, and PyNaCl is not installed (pip install gridcoin-verifier[sodium])")
    _use_sodium = name != "openssl" and _sodium_open is not None
    return ed25519_backend()


def ed25519_backend() -> str:
    return "libsodium" if _use_sodium else "openssl"


def ed25519_description() -> str:
    return "Ed25519 checked with libsodium" if _use_sodium else "Ed25519 checked with OpenSSL"


# Decoded keys by their raw bytes and by their hex text: (raw bytes, OpenSSL key), or None for
# what is no key at all.
_keys: dict[bytes, tuple[bytes, Ed25519PublicKey] | None] = {}
_keys_by_hex: dict[Any, tuple[bytes, Ed25519PublicKey] | None] = {}


def _decoded(raw: bytes) -> tuple[bytes, Ed25519PublicKey] | None:
    if not usable_public_key(raw):
        return None
    try:
        return raw, Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    key = _keys.get(public_key, False)
    if key is False:
        key = _decoded(public_key)
        if len(_keys) > 100_000:
            _keys.clear()
        _keys[public_key] = key
    return _verify_with(key, signature, message)


def _verify_with(key: tuple[bytes, Ed25519PublicKey] | None, signature: bytes, message: bytes) -> bool:
    if key is None or len(signature) != 64:
        return False
    if _use_sodium:
        try:
            _sodium_open(signature + message, key[0])
        except Exception:  # noqa: BLE001 (BadSignatureError, or a ValueError for what is no key)
            return False
        return True
    if _y(signature[:32]) in SMALL_ORDER_Y:
        return False
    try:
        key[1].verify(signature, message)
    except InvalidSignature:
        return False
    return True


def ed25519_verify_hex(public_key: Any, signature: bytes, message: bytes) -> bool:
    """``ed25519_verify`` under a key given as 64 lowercase hex digits (anything else fails),
    each key decoded once."""
    key = _keys_by_hex.get(public_key, False) if isinstance(public_key, str) else None
    if key is False:
        try:
            key = _decoded(unhex(public_key, 32))
        except FormatError:
            key = None
        if len(_keys_by_hex) > 100_000:
            _keys_by_hex.clear()
        _keys_by_hex[public_key] = key
    return _verify_with(key, signature, message)


def verify_batch(items: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [ed25519_verify(k, s, m) for k, s, m in items]


# --- RFC 6962 Merkle trees ---------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(d) for d in leaves]
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class CompactTree:
    """The root of a growing RFC 6962 tree in O(log n) memory: the perfect subtrees of the leaves
    so far, largest first (a tree's left subtrees are perfect)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def append(self, data: bytes) -> None:
        size, node = 1, leaf_hash(data)
        while self._stack and self._stack[-1][0] == size:
            left = self._stack.pop()[1]
            size, node = size * 2, node_hash(left, node)
        self._stack.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --- documents ---------------------------------------------------------------------------------------

HEADER_FIELDS = ("merkle_root", "number", "previous_hash", "timestamp", "tx_count")
DOCUMENT_FIELDS = ("effects", "proposal", "signature")
PROPOSAL_FIELDS = ("args", "chaincode", "function", "idempotency_key", "invoker", "proposed_at")
EFFECTS_FIELDS = ("events", "postings", "reason", "result", "state_writes", "status")


def header_bytes(header: dict) -> bytes:
    if not isinstance(header, dict) or tuple(sorted(header)) != HEADER_FIELDS:
        raise FormatError(f"a block header has exactly the fields {', '.join(HEADER_FIELDS)}")
    return canonical(header)


def body_digest(proposal: dict, *, checked: bool = False) -> str:
    return sha256_hex(canonical({"chaincode": proposal["chaincode"], "function": proposal["function"],
                                 "args": proposal["args"]}, checked=checked))


_DOCUMENT_KEYS, _PROPOSAL_KEYS, _EFFECTS_KEYS = map(frozenset, (DOCUMENT_FIELDS, PROPOSAL_FIELDS, EFFECTS_FIELDS))


def check_document_shape(document: Any) -> None:
    # ``keys() ==`` a set: a dict's keys are distinct, so this is "exactly these members".
    if not isinstance(document, dict) or document.keys() != _DOCUMENT_KEYS:
        raise FormatError(f"a transaction document has exactly the fields {', '.join(DOCUMENT_FIELDS)}")
    proposal, effects = document["proposal"], document["effects"]
    if not isinstance(proposal, dict) or proposal.keys() != _PROPOSAL_KEYS:
        raise FormatError(f"a proposal has exactly the fields {', '.join(PROPOSAL_FIELDS)}")
    if not isinstance(effects, dict) or effects.keys() != _EFFECTS_KEYS:
        raise FormatError(f"effects have exactly the fields {', '.join(EFFECTS_FIELDS)}")
    if not (isinstance(proposal["chaincode"], str) and isinstance(proposal["function"], str)
            and isinstance(proposal["invoker"], str) and isinstance(proposal["proposed_at"], str)):
        raise FormatError("proposal chaincode, function, invoker and proposed_at are strings")
    if not isinstance(proposal["args"], dict):
        raise FormatError("proposal args are an object")
    if not isinstance(document["signature"], str):
        raise FormatError("the signature is a base64 string")
    for posting in effects["postings"] if isinstance(effects["postings"], list) else [None]:
        if not (isinstance(posting, list) and len(posting) == 3 and isinstance(posting[0], str)
                and isinstance(posting[1], str) and type(posting[2]) is int):
            raise FormatError(f"a posting is [account key, asset, integer amount], not {posting!r}")
    for write in effects["state_writes"] if isinstance(effects["state_writes"], list) else [None]:
        if not (isinstance(write, list) and len(write) == 5 and isinstance(write[0], str)
                and isinstance(write[1], str) and type(write[3]) is bool and type(write[4]) is int):
            raise FormatError(f"a state write is [namespace, key, value, is_delete, version], not {write!r}")


# --- checkpoint notes (C2SP signed-note, tlog-checkpoint, tlog-cosignature) -----------------------------


def checkpoint_body(origin: str, tree_size: int, root: bytes, block: int, header_hash: str) -> str:
    return f"{origin}\n{tree_size}\n{b64encode(root)}\nblock {block} {header_hash}\n"


def note_key_id(name: str, kind: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


def signature_lines(note: str) -> list[tuple[str, bytes]]:
    """(key name, raw signature blob) of each ``— <name> <base64>`` line after the blank line."""
    if "\n\n" not in note:
        raise FormatError("a note has a body, a blank line and signature lines")
    lines = note.split("\n\n", 1)[1].split("\n")
    out = []
    for line in lines:
        if not line:
            continue
        if not line.startswith("\u2014 ") or line.count(" ") != 2:
            raise FormatError(f"not a signature line: {line!r}")
        _, name, blob = line.split(" ")
        out.append((name, b64decode(blob)))
    return out


def verify_orderer_note(name: str, public_key: bytes, body: str, blob: bytes) -> bool:
    return (len(blob) == 68 and blob[:4] == note_key_id(name, 0x01, public_key)
            and ed25519_verify(public_key, blob[4:], body.encode()))


def verify_cosignature(name: str, public_key: bytes, body: str, blob: bytes) -> int | None:
    """The cosignature's time (unix seconds) if it verifies, else None."""
    if len(blob) != 76 or blob[:4] != note_key_id(name, 0x04, public_key):
        return None
    when = int.from_bytes(blob[4:12], "big")
    message = f"cosignature/v1\ntime {when}\n".encode() + body.encode()
    return when if ed25519_verify(public_key, blob[12:], message) else None
