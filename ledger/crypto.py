"""Ed25519 keys, signatures and AES-GCM sealing of custodial private keys."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


_public_cache: dict[bytes, Ed25519PublicKey] = {}


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    key = _public_cache.get(public_key)
    if key is None:
        try:
            key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            return False
        if len(_public_cache) > 100_000:
            _public_cache.clear()
        _public_cache[public_key] = key
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class KeyEncryptionError(ValueError):
    pass


def seal_private_key(seed: bytes, kek: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
    """Encrypt a private key seed under the key-encryption key; returns (nonce, ciphertext)."""
    nonce = os.urandom(12)
    return nonce, AESGCM(kek).encrypt(nonce, seed, associated_data)


def open_private_key(nonce: bytes, ciphertext: bytes, kek: bytes, associated_data: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(nonce, ciphertext, associated_data)
    except Exception as exc:  # cryptography raises InvalidTag
        raise KeyEncryptionError("custodial key cannot be decrypted with this key-encryption key") from exc
