"""Ed25519 keys, signatures and AES-GCM sealing of custodial private keys."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


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


def usable_public_key(public_key: bytes) -> bool:
    """A canonical encoding of a point of the prime-order group: no key of small order (which
    verifies signatures of any message) or with a small-order part."""
    return len(public_key) == 32 and crypto_core_ed25519_is_valid_point(public_key)


_verify_keys: dict[bytes, VerifyKey] = {}


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification through libsodium (PyNaCl), faster than OpenSSL's EVP path, which
    matters when ``ledger_verify`` re-checks every signature from genesis."""
    key = _verify_keys.get(public_key)
    try:
        if key is None:
            key = VerifyKey(public_key)
            if len(_verify_keys) > 100_000:
                _verify_keys.clear()
            _verify_keys[public_key] = key
        key.verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
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
