"""Second-factor services: TOTP devices, backup codes and WebAuthn passkeys.

Every device is a django-otp device, so one check (``user.is_verified()``, set by
``django_otp.login``) says a session passed its second factor, whichever device it used.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .models import PasskeyCredential

BACKUP_CODES = 10
RP_NAME = "GridCoin"


class PasskeyError(ValueError):
    """A passkey response that does not verify; nothing was stored."""


# --- TOTP and backup codes ------------------------------------------------------------------

@transaction.atomic
def totp_device_start(*, user) -> TOTPDevice:
    """The user's unconfirmed authenticator-app device, created if missing. It counts only once
    confirmed with a code, so an abandoned set-up locks nobody out."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@transaction.atomic
def totp_device_confirm(*, device: TOTPDevice, code: str) -> bool:
    """Confirm the device with a code it generated; False (nothing changed but the device's
    throttle) for a wrong or throttled code."""
    allowed, _ = device.verify_is_allowed()
    if not allowed or not device.verify_token(code.strip().replace(" ", "")):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


@transaction.atomic
def totp_device_create(*, user, name: str = "Authenticator app") -> TOTPDevice:
    """A confirmed authenticator device with a fresh random key, for an account set up by an
    operator rather than by its user (the demo's staff, whose key the demo home page shows)."""
    return TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def totp_secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it (base32, no padding)."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def totp_code_now(device: TOTPDevice) -> str:
    """The code the device shows at this moment (what an authenticator app would display)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


@transaction.atomic
def backup_codes_regenerate(*, user) -> list[str]:
    """Replace the user's backup codes with fresh ones and return them (shown once; each code
    works once)."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


# --- WebAuthn passkeys ------------------------------------------------------------------------

@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str


def relying_party(request: HttpRequest) -> RelyingParty:
    """This site as WebAuthn sees it: the host the browser used (a passkey is bound to it)."""
    host = request.get_host()
    return RelyingParty(id=host.rsplit(":", 1)[0] if not host.endswith("]") else host, origin=f"{request.scheme}://{host}")


def passkey_registration_options(*, user, rp: RelyingParty) -> tuple[str, str]:
    """Options for ``navigator.credentials.create`` (JSON) and the challenge to keep."""
    options = generate_registration_options(
        rp_id=rp.id, rp_name=RP_NAME, user_name=user.get_username(), user_id=f"gridcoin-user-{user.pk}".encode(),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=bytes(c.credential_id))
                             for c in PasskeyCredential.objects.filter(user=user)],
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.PREFERRED,
                                                               user_verification=UserVerificationRequirement.PREFERRED),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


@transaction.atomic
def passkey_register(*, user, rp: RelyingParty, challenge: str, response: dict, name: str = "") -> PasskeyCredential:
    try:
        verified = verify_registration_response(credential=response, expected_challenge=base64url_to_bytes(challenge),
                                                expected_rp_id=rp.id, expected_origin=rp.origin)
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(f"the passkey could not be registered: {exc}") from exc
    if PasskeyCredential.objects.filter(credential_id=verified.credential_id).exists():
        raise PasskeyError("this passkey is already registered")
    transports = response.get("response", {}).get("transports") or []
    return PasskeyCredential.objects.create(
        user=user, name=(name or "Passkey")[:64], confirmed=True, credential_id=verified.credential_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        transports=[t for t in transports if isinstance(t, str)][:8])


def passkey_authentication_options(*, user, rp: RelyingParty) -> tuple[str, str]:
    options = generate_authentication_options(
        rp_id=rp.id, user_verification=UserVerificationRequirement.PREFERRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=bytes(c.credential_id))
                           for c in PasskeyCredential.objects.filter(user=user, confirmed=True)])
    return options_to_json(options), bytes_to_base64url(options.challenge)


@transaction.atomic
def passkey_authenticate(*, user, rp: RelyingParty, challenge: str, response: dict) -> PasskeyCredential:
    """The user's passkey that signed ``challenge``; its signature counter moves forward."""
    try:
        credential_id = base64url_to_bytes(response["rawId"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PasskeyError("not a passkey response") from exc
    credential = (PasskeyCredential.objects.select_for_update()
                  .filter(user=user, confirmed=True, credential_id=credential_id).first())
    if credential is None:
        raise PasskeyError("that passkey is not registered to this account")
    try:
        verified = verify_authentication_response(
            credential=json.dumps(response), expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=bytes(credential.public_key),
            credential_current_sign_count=credential.sign_count)
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyError(f"the passkey did not verify: {exc}") from exc
    credential.sign_count = verified.new_sign_count
    credential.last_used_at = timezone.now()
    credential.save(update_fields=["sign_count", "last_used_at"])
    return credential
