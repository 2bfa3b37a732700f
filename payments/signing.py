"""Webhook signatures, Stripe's scheme: header ``t=<unix>,v1=<hex>[,v1=<hex>...]``, each v1 an
HMAC-SHA256 with a shared secret over ``"<t>.<raw body>"``. Pure: no ORM, no clock of its own."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 1000


class SignatureError(Exception):
    """The delivery is not authentic (or not fresh); the message says why."""


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """What a sender puts in the header: one v1 per secret it signs with (rotation)."""
    return ",".join([f"t={timestamp}", *(f"v1={compute_signature(s, timestamp, body)}" for s in secrets)])


def parse_signature_header(header: str | None) -> SignatureHeader:
    if not header:
        raise SignatureError("missing signature header")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("signature header too long")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("signature header items must be name=value")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value.lower())
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise SignatureError("signature header needs exactly one t=<unix seconds>")
    if not signatures:
        raise SignatureError("signature header has no v1 signature")
    return SignatureHeader(timestamp=int(timestamps[0]), signatures=tuple(signatures))


NO_MATCH = "no v1 signature matches an active secret (forged, altered or signed with a retired secret)"


def match_secret(*, header: SignatureHeader, body: bytes, secrets: Iterable[tuple[object, str]]) -> object | None:
    """The label of the first secret one of whose v1 signatures matches, else None."""
    prefix = f"{header.timestamp}.".encode() + body
    for label, secret in secrets:
        expected = hmac.new(secret.encode(), prefix, hashlib.sha256).hexdigest()
        # Compare with every candidate (no early exit on a partial match), constant time each.
        if any(hmac.compare_digest(expected, candidate) for candidate in header.signatures):
            return label
    return None


def check_freshness(*, header: SignatureHeader, now: float, tolerance: int = TOLERANCE_SECONDS) -> None:
    age = now - header.timestamp
    if age > tolerance:
        raise SignatureError(f"signature timestamp is {int(age)} s old; deliveries older than {tolerance} s are refused")
    if age < -tolerance:
        raise SignatureError(f"signature timestamp is {int(-age)} s in the future; clocks may differ by at most {tolerance} s")


def verify_signature(*, header: SignatureHeader, body: bytes, secrets: Iterable[tuple[object, str]],
                     now: float, tolerance: int = TOLERANCE_SECONDS) -> object:
    """Return the label of the first secret one of whose v1 signatures matches, else raise.
    The timestamp is checked after the signature, so a stale but authentic delivery says so."""
    matched = match_secret(header=header, body=body, secrets=secrets)
    if matched is None:
        raise SignatureError(NO_MATCH)
    check_freshness(header=header, now=now, tolerance=tolerance)
    return matched
