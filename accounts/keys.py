"""Custodial keys: generate, seal under the KEK from settings, open to sign."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from ledger.crypto import open_private_key, private_key_from_seed, private_seed, seal_private_key, unb64
from ledger.models import Identity

from .models import CustodialKey


def key_encryption_key() -> bytes:
    kek = unb64(settings.GRIDCOIN_KEK)
    if len(kek) != 32:
        raise ValueError("GRIDCOIN_KEK must be 32 bytes, base64-encoded")
    return kek


def _aad(identity: Identity) -> bytes:
    return f"gridcoin-identity:{identity.pk}".encode()


def custodial_key_store(*, identity: Identity, key: Ed25519PrivateKey) -> CustodialKey:
    nonce, ciphertext = seal_private_key(private_seed(key), key_encryption_key(), _aad(identity))
    return CustodialKey.objects.create(identity=identity, nonce=nonce, ciphertext=ciphertext)


def custodial_signer(identity: Identity) -> Ed25519PrivateKey:
    stored = CustodialKey.objects.get(identity=identity)
    seed = open_private_key(bytes(stored.nonce), bytes(stored.ciphertext), key_encryption_key(), _aad(identity))
    return private_key_from_seed(seed)
