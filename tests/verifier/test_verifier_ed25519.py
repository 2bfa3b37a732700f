"""The standalone verifier's two Ed25519 implementations apply one rule, libsodium's (the ledger's
own): RFC 8032's equation, refusing also keys that are not canonical or of small order and an R of
small order. libsodium (the optional ``sodium`` extra) applies it itself; with OpenSSL the
verifier refuses those points before the equation. A signature OpenSSL alone would accept (the
neutral point as key, valid for every message) is refused both ways, and every other case agrees."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from verifier.checker import Checker

from verifier import formats

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


def test_a_small_order_key_signs_every_message_and_is_refused_both_ways(backend):
    """The neutral point as key and as R, with S = 0: [0]B = R + [k]A holds for every message,
    so OpenSSL alone accepts it; the rule refuses small-order points."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signature = IDENTITY + bytes(32)
    for message in (b"", b"any message at all"):
        Ed25519PublicKey.from_public_bytes(IDENTITY).verify(signature, message)  # OpenSSL alone: accepted
        assert _both(IDENTITY, signature, message) == (False, False)
    seed = bytes(range(32))
    anything = _any_message_signature(seed)  # under the neutral key, with an R of prime order
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(anything, b"whatever")  # OpenSSL alone: accepted
    assert _both(IDENTITY, anything, b"whatever") == (False, False)
    real = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    forged = _neutral_r_signature(seed, real, b"m")  # R of small order under a real key
    Ed25519PublicKey.from_public_bytes(real).verify(forged, b"m")  # OpenSSL alone: accepted
    assert _both(real, forged, b"m") == (False, False)


def _field_sqrt(a: int) -> int | None:
    a %= P
    root = pow(a, (P + 3) // 8, P)
    if (root * root - a) % P:
        root = root * pow(2, (P - 1) // 4, P) % P
    return root if (root * root - a) % P == 0 else None


def _add(one: tuple[int, int], two: tuple[int, int]) -> tuple[int, int]:
    """Affine addition on -x^2 + y^2 = 1 + d x^2 y^2 (complete on edwards25519)."""
    d = -121665 * pow(121666, -1, P) % P
    (x1, y1), (x2, y2) = one, two
    t = d * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + y1 * x2) * pow(1 + t, -1, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P)


def _order(point: tuple[int, int]) -> int:
    multiple, n = point, 1
    while multiple != (0, 1):
        multiple, n = _add(multiple, point), n + 1
        assert n <= 8
    return n


def test_the_small_order_points_are_derived_from_the_curve():
    """Every y with x^2 = (y^2 - 1) / (d y^2 + 1) a square, whose point has order 1, 2, 4 or 8: the
    y of the order-8 points solve d y^4 + 2 y^2 - 1 = 0."""
    d = -121665 * pow(121666, -1, P) % P
    candidates = {0, 1, P - 1}
    root = _field_sqrt(1 + d)
    for s in (root, P - root):
        y = _field_sqrt((s - 1) * pow(d, -1, P))
        if y is not None:
            candidates |= {y, P - y}
    orders = {}
    for y in candidates:
        x = _field_sqrt((y * y - 1) * pow(d * y * y + 1, -1, P))
        assert x is not None
        orders[y] = _order((x, y))
    assert sorted(orders.values()) == [1, 2, 4, 8, 8]
    assert formats.ORDER_8_Y in orders and orders[formats.ORDER_8_Y] == 8
    assert set(orders) | {P, P + 1} == formats.SMALL_ORDER_Y
    for y in formats.SMALL_ORDER_Y:
        for sign in (0, 1 << 255):
            assert not formats.usable_public_key(((y | sign) & ((1 << 256) - 1)).to_bytes(32, "little"))
    assert not formats.usable_public_key((P + 2).to_bytes(32, "little"))  # not canonical
    assert formats.usable_public_key(Ed25519PrivateKey.generate().public_key().public_bytes_raw())


def _secret_scalar(seed: bytes) -> int:
    """RFC 8032 §5.1.5: the clamped first half of SHA-512(seed)."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] = (h[31] & 127) | 64
    return int.from_bytes(h, "little")


def _neutral_r_signature(seed: bytes, public: bytes, message: bytes) -> bytes:
    """R = the neutral point, S = k a mod L: [S]B = R + [k]A holds (OpenSSL accepts), but R has
    small order."""
    k = int.from_bytes(hashlib.sha512(IDENTITY + public + message).digest(), "little") % ORDER
    return IDENTITY + (k * _secret_scalar(seed) % ORDER).to_bytes(32, "little")


def _any_message_signature(seed: bytes) -> bytes:
    """Under the neutral point as key: R = [a]B, S = a, so [S]B = R + [k]A for every message."""
    r = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return r + (_secret_scalar(seed) % ORDER).to_bytes(32, "little")


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
    if choice == 5:  # the neutral point as R under a real key, S making the equation hold
        return public, _neutral_r_signature(draw_seed, public, message), message
    if choice == 6 and position % 3 == 0:  # the neutral point as key, a signature of every message
        return IDENTITY, _any_message_signature(draw_seed), message
    if choice == 6:  # points of small order, either sign, as key and as R, S = 0
        small = sorted(formats.SMALL_ORDER_Y)
        key_y, r_y = small[position % len(small)], small[(position // 8) % len(small)]
        sign = (position & 1) << 255
        return ((key_y | sign).to_bytes(32, "little"), ((r_y | sign).to_bytes(32, "little") + bytes(32)),
                message)
    return public, signature[:63], message  # a short signature


@settings(max_examples=120, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=200),
       choice=st.integers(min_value=0, max_value=7), position=st.integers(min_value=0, max_value=511))
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
    assert auto.returncode == 0 and "Ed25519 checked with libsodium" in auto.stdout
    openssl = _cli(directory, "--ed25519", "openssl", cwd=tmp_path)
    assert openssl.returncode == 0 and "Ed25519 checked with OpenSSL" in openssl.stdout
    assert openssl.stdout.split(" in ")[0] == auto.stdout.split(" in ")[0]  # the same counts
    bare = _cli(directory, cwd=tmp_path, without_nacl=True)
    assert bare.returncode == 0 and "Ed25519 checked with OpenSSL" in bare.stdout, bare.stderr
    refused = _cli(directory, "--ed25519", "libsodium", cwd=tmp_path, without_nacl=True)
    assert refused.returncode == 2 and "PyNaCl is not installed" in refused.stderr
