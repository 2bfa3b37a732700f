"""The write path of ``meters``: register devices, fund them, settle ended windows.
Every coin movement is a chaincode invocation through ``ledger.services``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as accounts
from accounts.keys import custodial_signer, key_encryption_key
from accounts.models import Membership
from ledger import services as ledger
from ledger.crypto import (
    generate_private_key,
    open_private_key,
    private_key_from_seed,
    private_seed,
    public_bytes,
    seal_private_key,
)
from ledger.keys import ENERGY, device_account
from ledger.models import Account, AccountKind, IdentityKind, Organisation, OrgType, Transaction
from ledger.units import kwh

from . import live, selectors
from .models import PUBLIC_KINDS, Device, DeviceKind, EnrolmentState, SimulatedMeterKey

logger = logging.getLogger(__name__)

WH_PER_KWH = 1000
MAX_WINDOW = timedelta(days=7)
# A window typed as "from now" on a phone is a minute or two old by the time it arrives.
WINDOW_START_GRACE = timedelta(minutes=5)
SCHEDULER_IDENTITY = "scheduler"


class DeviceError(Exception):
    """A request about a device that cannot go ahead; the message is shown to the user."""


class DeviceNotFound(DeviceError):
    pass


class DeviceRetired(DeviceError):
    pass


class FundingError(DeviceError):
    """The funding request is invalid; nothing was sent to the ledger."""


class FundingConflict(FundingError):
    """The idempotency key was already used for a different request."""


class FundingRejected(DeviceError):
    """The ledger refused the invocation (recorded with its reason; nothing moved)."""

    def __init__(self, result: ledger.InvokeResult):
        super().__init__(result.reason)
        self.result = result


class NotPermitted(DeviceError):
    pass


# --- registry -------------------------------------------------------------------------------

@transaction.atomic
def device_register(*, organisation: Organisation, kind: str, name: str, public_id: str, public_key: bytes,
                    latitude: Decimal | None = None, longitude: Decimal | None = None,
                    state: str = EnrolmentState.ACTIVE, place: str = "") -> Device:
    """Register a meter's own key as a ledger identity (kind device, named by its public id)
    and open the account it holds coins in: ``device:<public_id>`` for consumers, the owner's
    ``producer:<msp>`` for producer meters (a producer's meters mint to the producer)."""
    if kind not in DeviceKind.values:
        raise DeviceError(f"unknown device kind {kind!r}")
    if Device.objects.filter(public_id=public_id).exists():
        raise DeviceError(f"a device {public_id} is already registered")
    identity = ledger.identity_register(organisation=organisation, name=public_id, public_key=public_key,
                                        kind=IdentityKind.DEVICE)
    if kind == DeviceKind.PRODUCER_METER:
        if organisation.org_type != OrgType.PRODUCER:
            raise DeviceError("a producer meter belongs to a producer organisation")
        accounts.energy_accounts_open(organisation=organisation)
    else:
        ledger.account_open(key=device_account(public_id), asset=ENERGY, organisation=organisation,
                            kind=AccountKind.DEVICE)
    return Device.objects.create(
        public_id=public_id, name=name, kind=kind, organisation=organisation, identity=identity,
        latitude=latitude, longitude=longitude, place=place, state=state, is_public=kind in PUBLIC_KINDS,
    )


def _aad(device: Device) -> bytes:
    return f"gridcoin-simulated-meter:{device.pk}".encode()


@transaction.atomic
def device_register_simulated(*, organisation: Organisation, kind: str, name: str, public_id: str,
                              latitude: Decimal | None = None, longitude: Decimal | None = None,
                              place: str = "") -> Device:
    """Register a device whose meter the demo or a simulator plays: its key pair is generated
    here and the private half kept sealed, so the simulator can sign its readings."""
    key = generate_private_key()
    device = device_register(organisation=organisation, kind=kind, name=name, public_id=public_id,
                             public_key=public_bytes(key), latitude=latitude, longitude=longitude, place=place)
    nonce, ciphertext = seal_private_key(private_seed(key), key_encryption_key(), _aad(device))
    SimulatedMeterKey.objects.create(device=device, nonce=nonce, ciphertext=ciphertext)
    return device


def simulated_signer(device: Device) -> Ed25519PrivateKey:
    """The key ``device_register_simulated`` sealed (opened here, next to where it is sealed).
    Simulations play the device through ``iot_gateway.fleet.simulated_meter``, which signs with it."""
    stored = SimulatedMeterKey.objects.get(device=device)
    seed = open_private_key(bytes(stored.nonce), bytes(stored.ciphertext), key_encryption_key(), _aad(device))
    return private_key_from_seed(seed)


@transaction.atomic
def device_retire(*, device: Device) -> Device:
    """Retired devices keep their history but can no longer be funded."""
    device.state = EnrolmentState.RETIRED
    device.save(update_fields=["state"])
    return device


# --- funding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FundingResult:
    device: Device
    invoke: ledger.InvokeResult
    amount_wh: int
    balance_wh: int  # the device's balance right after this funding
    relay: str
    window: dict | None

    @property
    def tx_hash(self) -> str:
        return self.invoke.tx_hash

    @property
    def replayed(self) -> bool:
        return self.invoke.replayed


def kwh_to_wh(kwh: Decimal) -> int:
    """Exact: a kWh amount with at most three decimals is a whole number of Wh."""
    wh = kwh * WH_PER_KWH
    if wh != wh.to_integral_value():
        raise FundingError(_("Amounts have at most three decimals (whole Wh)."))
    return int(wh)


def _device_for_funding(public_id: str) -> Device:
    device = Device.objects.filter(public_id=public_id).first()
    if device is None:
        raise DeviceNotFound(_("There is no device %(id)s. Check the id on its sticker.") % {"id": repr(public_id)})
    if device.is_retired:
        raise DeviceRetired(_("Device %(id)s is retired and can no longer be funded.") % {"id": public_id})
    if device.kind == DeviceKind.PRODUCER_METER:
        raise FundingError(_("Device %(id)s is a producer meter; only consumer devices can be funded.")
                           % {"id": public_id})
    return device


def _check_window(start: datetime | None, end: datetime | None, now: datetime) -> dict | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise FundingError(_("A window needs both a start and an end."))
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise FundingError(_("Window times must carry a timezone."))
    if end <= start:
        raise FundingError(_("The window must end after it starts."))
    if end <= now:
        raise FundingError(_("The window has already ended; choose an end in the future."))
    if start < now - WINDOW_START_GRACE:
        raise FundingError(_("The window cannot start in the past."))
    if end - start > MAX_WINDOW:
        raise FundingError(_("A window may last at most 7 days."))
    # Kept as UTC whatever zone they arrived in: the ledger's record reads the same everywhere.
    return {"start": start.astimezone(UTC).isoformat(), "end": end.astimezone(UTC).isoformat()}


def device_fund(*, user, public_id: str, amount_wh: int, window_start: datetime | None = None,
                window_end: datetime | None = None, idempotency_key: str,
                organisation: Organisation | None = None) -> FundingResult:
    """Move ``amount_wh`` from the user's household account to device ``public_id`` as
    ``resident.fund``, signed with the user's custodial identity.

    Checked here for a clear message (nothing reaches the ledger): the device exists and is
    not retired, the amount is positive and covered, the window is sensible. The ledger checks
    again under its locks; a race it loses raises FundingRejected. The same idempotency key
    returns the first result (a double-submitted form moves coins once).

    Not wrapped in one transaction: ``ledger.invoke`` commits (and retries) on its own.
    """
    if not idempotency_key or len(idempotency_key) > 200:
        raise FundingError(_("An idempotency key of 1 to 200 characters is required."))
    device = _device_for_funding(public_id)
    try:
        membership = accounts.membership_for(user, organisation)
    except Membership.DoesNotExist:
        raise NotPermitted(_("You are not a member of any organisation that holds coins.")) from None
    if isinstance(amount_wh, bool) or not isinstance(amount_wh, int) or amount_wh <= 0:
        raise FundingError(_("The amount must be a positive number of Wh."))
    key = f"fund:{idempotency_key}"
    args: dict[str, Any] = {"device": device.public_id, "amount": amount_wh}
    window = _check_window(window_start, window_end, timezone.now())
    if window is not None:
        args["window_start"], args["window_end"] = window["start"], window["end"]
    source = accounts.household_account_key(membership.organisation)
    first_try = not Transaction.objects.filter(invoker=membership.identity, idempotency_key=key).exists()
    if first_try:  # a replay is answered by the ledger even if the balance has moved since
        account = Account.objects.filter(key=source, asset_id=ENERGY).first()
        if account is None:
            raise FundingError(_("%(name)s has no energy account to fund from.") % {"name": membership.organisation.name})
        if amount_wh > account.balance:
            raise FundingError(
                _("Not enough coins: %(name)s holds %(held)s kWh, you asked to fund %(asked)s kWh.")
                % {"name": membership.organisation.name, "held": kwh(account.balance), "asked": kwh(amount_wh)}
            )
    try:
        result = accounts.invoke_as(identity=membership.identity, chaincode="resident", function="fund",
                                    args=args, idempotency_key=key)
    except ledger.IdempotencyConflict:
        raise FundingConflict(_("This request was already submitted with different values (idempotency key "
                                "reused); reload the page and try again.")) from None
    if not result.ok:
        raise FundingRejected(result)
    _announce(device.public_id)
    return FundingResult(device=device, invoke=result, amount_wh=amount_wh, balance_wh=result.result["balance"],
                         relay=result.result["relay"], window=result.result.get("window"))


def _announce(public_id: str) -> None:
    """Push the device's new state (websocket, relay) once the change has committed."""
    transaction.on_commit(lambda: live.device_state_changed(public_id))


# --- settlement of ended windows --------------------------------------------------------------

def windows_settle_due(now: datetime | None = None) -> list[ledger.InvokeResult]:
    """Invoke ``resident.settle`` for every device with an ended funded window, as the
    utility's scheduler identity. The idempotency key names the device and the latest ended
    window, so a rerun (or a second worker) replays instead of settling twice."""
    now = now or timezone.now()
    due = selectors.windows_due(now)
    if not due:
        return []
    utility = Organisation.objects.filter(org_type=OrgType.UTILITY).order_by("id").first()
    if utility is None:
        logger.warning("windows are due for settlement but there is no utility to settle them")
        return []
    identity = accounts.service_identity(organisation=utility, name=SCHEDULER_IDENTITY)
    signer = custodial_signer(identity)
    results = []
    for public_id, last_end in due:
        result = ledger.invoke(chaincode="resident", function="settle", args={"device": public_id},
                               invoker=identity, idempotency_key=f"settle:{public_id}:{last_end}",
                               signer=signer, proposed_at=now)
        if not result.ok:
            logger.info("settling %s was refused: %s", public_id, result.reason)
        else:
            _announce(public_id)
        results.append(result)
    return results
