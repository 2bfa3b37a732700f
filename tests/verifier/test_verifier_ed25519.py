"""The standalone verifier's two Ed25519 implementations give one verdict: libsodium (the optional
``sodium`` extra) checks first and OpenSSL decides each of its refusals, so a signature OpenSSL
accepts and libsodium refuses (a small-order key) still verifies, and every other case agrees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import formats
from verifier.checker import Checker

VERIFIER_ROOT = Path(__file__).resolve().parents[2] / "verifier"
ORDER = 2**252 + 27742317777372353535851937790883648493  # L, the order of the base point
IDENTITY = bytes([1]) + bytes(31)  # the neutral point (0, 1): small order
P = 2**255 - 19


@pytest.fixture
def backend():
    """Restores the process's choice after a test picks one."""
    before = formats.ed25519_backend()
    yield formats.choose_ed25519
    formats.choose_ed25519(before)
    formats._keys.clear()
    formats._keys_by_hex.clear()


def _both(public_key: bytes, signature: bytes, message: bytes) -> tuple[bool, bool]:
    verdicts = []
    for name in ("openssl", "libsodium"):
        formats.choose_ed25519(name)
        formats._keys.clear()
        formats._keys_by_hex.clear()
        verdicts.append((formats.ed25519_verify(public_key, signature, message),
                         formats.ed25519_verify_hex(public_key.hex(), signature, message)))
    (openssl, openssl_hex), (sodium, sodium_hex) = verdicts
    assert openssl == openssl_hex and sodium == sodium_hex
    return openssl, sodium


def test_a_signature_only_libsodium_refuses_is_decided_by_openssl(backend):
    """The neutral point as key and as R, with S = 0: [0]B = R + [k]A holds for every message.
    OpenSSL accepts it (RFC 8032 verification, cofactorless); libsodium refuses small-order points."""
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    signature = IDENTITY + bytes(32)
    for message in (b"", b"any message at all"):
        with pytest.raises(BadSignatureError):
            crypto_sign_open(signature + message, IDENTITY)
        assert _both(IDENTITY, signature, message) == (True, True)


def _mutations(draw_seed: bytes, message: bytes, choice: int, position: int) -> tuple[bytes, bytes, bytes]:
    key = Ed25519PrivateKey.from_private_bytes(draw_seed)
    public = key.public_key().public_bytes_raw()
    signature = key.sign(message)
    r, s = signature[:32], int.from_bytes(signature[32:], "little")
    if choice == 0:  # as signed
        return public, signature, message
    if choice == 1:  # one bit of the signature flipped
        flipped = bytearray(signature)
        flipped[position % 64] ^= 1 << (position % 8)
        return public, bytes(flipped), message
    if choice == 2:  # S + L: the same point equation, a non-canonical scalar
        if s + ORDER < 2**256:
            return public, r + (s + ORDER).to_bytes(32, "little"), message
        return public, signature, message
    if choice == 3:  # another message
        return public, signature, message + b"!"
    if choice == 4:  # a key whose y is not reduced mod p (y + p still fits 255 bits for small y)
        y = int.from_bytes(public, "little") & ((1 << 255) - 1)
        sign = public[31] & 0x80
        if y + P < 2**255:
            encoded = bytearray((y + P).to_bytes(32, "little"))
            encoded[31] |= sign
            return bytes(encoded), signature, message
        return IDENTITY, IDENTITY + bytes(32), message
    if choice == 5:  # the neutral point as R with S = 0 under a real key: refused by both
        return public, IDENTITY + bytes(32), message
    return public, signature[:63], message  # a short signature


@settings(max_examples=120, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=200),
       choice=st.integers(min_value=0, max_value=6), position=st.integers(min_value=0, max_value=511))
def test_both_implementations_give_the_same_verdict(seed, message, choice, position):
    before = formats.ed25519_backend()
    try:
        public, signature, signed = _mutations(seed, message, choice, position)
        openssl, sodium = _both(public, signature, signed)
        assert openssl == sodium, (choice, public.hex(), signature.hex())
        if choice == 0:
            assert openssl
    finally:
        formats.choose_ed25519(before)


def test_worker_processes_use_the_implementation_chosen(backend):
    for name in ("openssl", "libsodium"):
        backend(name)
        checker = Checker(orderer_keys=[], policies=None, workers=2)
        try:
            chosen = {checker.worker_pool().submit(formats.ed25519_backend).result() for _ in range(4)}
        finally:
            checker.close()
        assert chosen == {name}
        assert formats.ed25519_description() in checker.finish().notes


def test_an_unknown_implementation_is_refused(backend):
    with pytest.raises(ValueError, match="one of auto, openssl, libsodium"):
        backend("nacl")


def _cli(*args: str, cwd: Path, without_nacl: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    paths = [str(VERIFIER_ROOT)]
    if without_nacl:  # a package named nacl that cannot be imported hides PyNaCl
        blocker = cwd / "blocker" / "nacl"
        blocker.mkdir(parents=True, exist_ok=True)
        (blocker / "__init__.py").write_text("raise ImportError('PyNaCl is not installed here')\n")
        paths.insert(0, str(cwd / "blocker"))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run([sys.executable, "-m", "verifier", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.django_db
def test_the_command_line_says_which_implementation_checked(tmp_path):
    from ledger.export import export_ledger
    from tests.ledger.tampering import sealed_ledger

    sealed_ledger()
    export_ledger(tmp_path / "export")
    directory = str(tmp_path / "export")
    auto = _cli(directory, cwd=tmp_path)
    assert auto.returncode == 0 and "Ed25519 checked with libsodium, each refusal confirmed by OpenSSL" in auto.stdout
    openssl = _cli(directory, "--ed25519", "openssl", cwd=tmp_path)
    assert openssl.returncode == 0 and "Ed25519 checked with OpenSSL" in openssl.stdout
    assert openssl.stdout.split(" in ")[0] == auto.stdout.split(" in ")[0]  # the same counts
    bare = _cli(directory, cwd=tmp_path, without_nacl=True)
    assert bare.returncode == 0 and "Ed25519 checked with OpenSSL" in bare.stdout, bare.stderr
    refused = _cli(directory, "--ed25519", "libsodium", cwd=tmp_path, without_nacl=True)
    assert refused.returncode == 2 and "PyNaCl is not installed" in refused.stderr
