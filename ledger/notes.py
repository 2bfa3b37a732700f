"""Checkpoint notes and their signatures (C2SP tlog-checkpoint, signed-note, tlog-cosignature).

Pure: standard library, ``cryptography`` and PyNaCl only, so a witness or a verifier on another
machine can use it without the project. Formats are in docs/witnesses.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

DASH = "\u2014"  # every signature line starts with an em dash and a space
ED25519 = 0x01  # signed-note signature type of an Ed25519 note signature
COSIGNATURE_V1 = 0x04  # signed-note signature type of a cosignature/v1


class NoteError(ValueError):
    pass


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    tree_size: int
    root: bytes
    block: int
    header_hash: str

    def text(self) -> str:
        return checkpoint_body(self.origin, self.tree_size, self.root, self.block, self.header_hash)


def checkpoint_body(origin: str, tree_size: int, root: bytes, block: int, header_hash: str) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\nblock {block} {header_hash}\n"


def parse_body(body: str) -> CheckpointBody:
    """Strict: exactly the four lines this log writes, each ending in a newline."""
    if not body.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) != 4:
        raise NoteError(f"checkpoint body has {len(lines)} lines, expected 4")
    origin, size_text, root_text, block_line = lines
    if not origin or origin != origin.strip():
        raise NoteError("bad origin line")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError("bad tree size line")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise NoteError("bad root line") from exc
    if len(root) != 32 or base64.b64encode(root).decode() != root_text:
        raise NoteError("bad root line")
    parts = block_line.split(" ")
    if (len(parts) != 3 or parts[0] != "block" or not parts[1].isdigit()
            or (parts[1] != "0" and parts[1].startswith("0")) or len(parts[2]) != 64
            or parts[2] != parts[2].lower() or any(c not in "0123456789abcdef" for c in parts[2])):
        raise NoteError("bad block line")
    return CheckpointBody(origin, int(size_text), root, int(parts[1]), parts[2])


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def witness_name(msp_id: str) -> str:
    return f"{msp_id}/witness"


def _line(name: str, payload: bytes) -> str:
    return f"{DASH} {name} {base64.b64encode(payload).decode()}"


def parse_line(line: str) -> tuple[str, bytes]:
    """(key name, decoded signature payload) of one signature line, with or without its newline."""
    if line.endswith("\n"):
        line = line[:-1]
    if not line.startswith(DASH + " ") or "\n" in line:
        raise NoteError("a signature line starts with an em dash and a space")
    parts = line[2:].split(" ")
    if len(parts) != 2 or not parts[0]:
        raise NoteError("a signature line is '\u2014 <name> <base64>'")
    try:
        payload = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise NoteError("signature is not base64") from exc
    return parts[0], payload


def sign_note(body: str, name: str, key: Ed25519PrivateKey) -> str:
    """The orderer's Ed25519 signed-note line over ``body``."""
    return _line(name, key_id(name, ED25519, raw_public(key)) + key.sign(body.encode()))


def verify_note_line(body: str, line: str, name: str, public_key: bytes) -> bool:
    try:
        line_name, payload = parse_line(line)
    except NoteError:
        return False
    if line_name != name or len(payload) != 68 or payload[:4] != key_id(name, ED25519, public_key):
        return False
    return _verify(public_key, payload[4:], body.encode())


def cosignature_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosign(body: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    signature = key.sign(cosignature_message(body, timestamp))
    return _line(name, key_id(name, COSIGNATURE_V1, raw_public(key)) + struct.pack(">Q", timestamp) + signature)


def verify_cosignature_line(body: str, line: str, name: str, public_key: bytes) -> int | None:
    """The cosignature's timestamp if ``line`` is ``name``'s valid cosignature/v1 of ``body``."""
    try:
        line_name, payload = parse_line(line)
    except NoteError:
        return None
    if line_name != name or len(payload) != 76 or payload[:4] != key_id(name, COSIGNATURE_V1, public_key):
        return None
    timestamp = struct.unpack(">Q", payload[4:12])[0]
    return timestamp if _verify(public_key, payload[12:], cosignature_message(body, timestamp)) else None


def note_text(body: str, lines: list[str]) -> str:
    return body + "\n" + "".join(line.rstrip("\n") + "\n" for line in lines)


def _verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """The ledger's Ed25519 rule (docs/ledger-format.md): libsodium's, which also refuses keys and R
    of small order; OpenSSL's check alone would take the neutral point as a key that signed
    every message."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, ValueError):
        return False
    return True
