"""How ``billing`` talks to the ``energy-billing`` chaincode: the organisations' service identity
that acts for them (the grid's, each distributor's, the utility's), one invocation helper that
turns the ledger's answers into errors, and reads of the chaincode's world state (namespace
``billing``, keys from ``ledger.keys``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from django.utils.translation import gettext as _

from accounts import services as accounts
from ledger import services as ledger
from ledger.keys import BILLING_CONFIG_KEY, BILLING_NAMESPACE, freq_key, station_key, units_key
from ledger.models import Identity, Organisation
from ledger.selectors import world_state

CHAINCODE = "energy-billing"
# The organisation's own identity for what no person does by hand: recording frequencies (the
# grid), units and bills (a distributor), closing days (the utility or a distributor).
SERVICE_IDENTITY = "billing"
MAX_KEY = 200
STATION_PREFIX = "station/"


class BillingError(Exception):
    """A request that cannot go ahead; nothing was recorded off-chain."""


class LedgerRefused(BillingError):
    """The ledger refused the invocation (recorded there with its reason; nothing changed)."""

    def __init__(self, result: ledger.InvokeResult):
        super().__init__(result.reason)
        self.result = result


def service_identity(organisation: Organisation) -> Identity:
    return accounts.service_identity(organisation=organisation, name=SERVICE_IDENTITY)


def bounded_key(key: str) -> str:
    """An idempotency key within the ledger's limit, the same for the same request."""
    if len(key) <= MAX_KEY:
        return key
    return f"{key[:150]}~{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def invoke(identity: Identity, function: str, args: dict[str, Any], idempotency_key: str, *,
           proposed_at: datetime | None = None) -> ledger.InvokeResult:
    """``energy-billing.<function>`` as ``identity`` (custodial key); a refusal raises
    ``LedgerRefused`` (the ledger has recorded it). Not inside the caller's transaction."""
    try:
        result = accounts.invoke_as(identity=identity, chaincode=CHAINCODE, function=function, args=args,
                                    idempotency_key=bounded_key(idempotency_key), proposed_at=proposed_at)
    except ledger.IdempotencyConflict:
        raise BillingError(_("This request was already submitted with different values.")) from None
    if not result.ok:
        raise LedgerRefused(result)
    return result


def iso(moment: datetime) -> str:
    """A slot's name on the ledger: its start in UTC, ISO 8601."""
    return moment.astimezone(UTC).isoformat()


# --- world state ---------------------------------------------------------------------------------

def stations() -> dict[str, dict[str, Any]]:
    """Every registered station: ``{station id: {"distributor", "societies"}}``."""
    return {key[len(STATION_PREFIX):]: value
            for key, value in world_state(BILLING_NAMESPACE, prefix=STATION_PREFIX).items()}


def station_state(station: str) -> dict[str, Any] | None:
    return world_state(BILLING_NAMESPACE, [station_key(station)]).get(station_key(station))


def billing_timezone() -> str:
    from ledger.chaincodes import billing_math as bm

    config = world_state(BILLING_NAMESPACE, [BILLING_CONFIG_KEY]).get(BILLING_CONFIG_KEY) or {}
    return str(config.get("timezone", bm.DEFAULT_TIMEZONE))


def frequencies(slots: list[str]) -> dict[str, int]:
    """The recorded average frequency (centi-hertz) of each of these slots that has one."""
    found = world_state(BILLING_NAMESPACE, [freq_key(s) for s in slots])
    return {s: found[freq_key(s)]["avgFreq"] for s in slots if freq_key(s) in found}


def recorded_units(station: str, societies: list[str], slot: str) -> dict[str, dict[str, Any]]:
    """The units records of the station's households in one slot, by society."""
    found = world_state(BILLING_NAMESPACE, [units_key(station, s, slot) for s in societies])
    return {s: found[units_key(station, s, slot)] for s in societies if units_key(station, s, slot) in found}
