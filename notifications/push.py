"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), through
``pywebpush``. The VAPID key pair identifies this server to push services: in production it
comes from GRIDCOIN_VAPID_PRIVATE_KEY (without it push is off); the embedded default generates
one into the data directory on first use, as it does its other keys."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

VAPID_KEY_FILE = "vapid_private_key"
PUSH_TIMEOUT_SECONDS = 10
PUSH_TTL_SECONDS = 24 * 3600  # a phone that is off for a day still gets it when it comes back


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushGone(Exception):
    """The push service says the subscription no longer exists (404 or 410)."""


class PushTransient(Exception):
    """The push service could not be reached or asked us to come back later; retry."""


class PushRefused(Exception):
    """The push service refused the message for good (400, 403, 413, ...)."""


def _generated_private_key() -> str:
    path = settings.DATA_DIR / VAPID_KEY_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process generated it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_private_key())
    return path.read_text().strip()


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    try:
        return Vapid.from_raw(private_key.encode())
    except Exception as exc:  # py_vapid raises whatever its decoding met
        raise ImproperlyConfigured("GRIDCOIN_VAPID_PRIVATE_KEY must be the base64url of a P-256 private key's "
                                   "32 bytes") from exc


def vapid() -> Vapid | None:
    """This server's VAPID key, or None when push is not configured (production without a key)."""
    configured = settings.GRIDCOIN_VAPID_PRIVATE_KEY
    if configured:
        return _vapid(configured)
    if settings.PRODUCTION:
        return None
    return _vapid(_generated_private_key())


def application_server_key() -> str | None:
    """The public key browsers subscribe with (``applicationServerKey``): the uncompressed
    P-256 point, base64url."""
    key = vapid()
    if key is None:
        return None
    return b64url(key.public_key.public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint))


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def push_send(subscription: Subscription, payload: dict[str, Any]) -> None:
    """Encrypt ``payload`` (JSON) for the subscription and post it to its push service.
    Raises PushGone, PushTransient or PushRefused; returns when the service accepted it."""
    key = vapid()
    if key is None:
        raise PushRefused("push is not configured (GRIDCOIN_VAPID_PRIVATE_KEY)")
    try:
        webpush(subscription_info={"endpoint": subscription.endpoint,
                                   "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
                data=json.dumps(payload, separators=(",", ":")), vapid_private_key=key,
                vapid_claims={"sub": settings.GRIDCOIN_VAPID_SUBJECT}, content_encoding="aes128gcm",
                timeout=PUSH_TIMEOUT_SECONDS, ttl=PUSH_TTL_SECONDS)
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (404, 410):
            raise PushGone(str(status)) from exc
        if status is None or status == 429 or status >= 500:
            raise PushTransient(f"push service answered {status}") from exc
        raise PushRefused(f"push service answered {status}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise PushTransient(f"push service unreachable: {exc.__class__.__name__}") from exc
    except (ValueError, TypeError) as exc:  # keys that are not a P-256 point / 16-byte secret
        raise PushRefused(f"the subscription's keys are unusable: {exc}") from exc


def new_private_key() -> str:
    """A fresh VAPID private key as GRIDCOIN_VAPID_PRIVATE_KEY takes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))
