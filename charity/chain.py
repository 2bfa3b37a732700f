"""How ``charity`` talks to the ``charity-pool`` chaincode: the errors its services raise, one
invocation helper that turns the ledger's answers into them, and reads of the chaincode's
world state (namespace ``devices``, keys from ``ledger.keys``)."""

from __future__ import annotations

import hashlib
from base64 import b32encode
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as accounts
from ledger import services as ledger
from ledger.keys import (
    DEVICES_NAMESPACE,
    ENERGY,
    campaign_key,
    disbursement_key,
    donation_key,
    group_key,
    match_account,
    pool_account,
)
from ledger.models import Identity, Organisation
from ledger.selectors import balances, world_state

CHAINCODE = "charity-pool"
# The organisations' own identity for what no person does by hand: automatic disbursement,
# closing ended campaigns, refunds, expiring group fundings.
AUTOMATION_IDENTITY = "campaigns"


class CharityError(Exception):
    """A request that cannot go ahead; the message is shown to the user. Nothing was recorded
    off-chain."""


class NotPermitted(CharityError):
    pass


class CharityConflict(CharityError):
    """The idempotency key was already used for a different request."""


class LedgerRefused(CharityError):
    """The ledger refused the invocation (recorded there with its reason; nothing moved)."""

    def __init__(self, result: ledger.InvokeResult):
        super().__init__(result.reason)
        self.result = result


def invoke(identity: Identity, function: str, args: dict[str, Any], idempotency_key: str, *,
           proposed_at: datetime | None = None) -> ledger.InvokeResult:
    """``charity-pool.<function>`` as ``identity`` (custodial key). Not inside the caller's
    transaction: a refusal is recorded by the ledger even though the caller then raises."""
    try:
        result = accounts.invoke_as(identity=identity, chaincode=CHAINCODE, function=function, args=args,
                                    idempotency_key=idempotency_key, proposed_at=proposed_at)
    except ledger.IdempotencyConflict:
        raise CharityConflict(_("This request was already submitted with different values; reload the page "
                                "and try again.")) from None
    if not result.ok:
        raise LedgerRefused(result)
    return result


def automation_identity(organisation: Organisation) -> Identity:
    return accounts.service_identity(organisation=organisation, name=AUTOMATION_IDENTITY)


def iso(moment: datetime) -> str:
    """The ledger's spelling of a time: ISO 8601 in UTC (the same record read anywhere)."""
    if timezone.is_naive(moment):
        raise CharityError(_("Times must carry a timezone."))
    return moment.astimezone(UTC).isoformat()


def short_hash(*parts: str, length: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def receipt_number(campaign: str, donation_id: str) -> str:
    """A donation's receipt number: derived from the ledger's (campaign, donation) pair, so it is
    the same whenever and however often the donation is recorded, and unique with it."""
    digest = b32encode(hashlib.sha256(f"{campaign}/{donation_id}".encode()).digest()).decode()[:16]
    return "GC-" + "-".join(digest[i:i + 4] for i in range(0, 16, 4))


# --- world state ---------------------------------------------------------------------------------

def _state(key: str) -> Any:
    return world_state(DEVICES_NAMESPACE, [key]).get(key)


def campaign_state(slug: str) -> dict[str, Any] | None:
    return _state(campaign_key(slug))


def donation_state(slug: str, donation_id: str) -> dict[str, Any] | None:
    return _state(donation_key(slug, donation_id))


def donation_states(slug: str) -> dict[str, dict[str, Any]]:
    """Every donation the ledger holds for the campaign, by donation id."""
    prefix = donation_key(slug, "")
    return {key[len(prefix):]: value for key, value in world_state(DEVICES_NAMESPACE, prefix=prefix).items()
            if value}


def disbursement_state(slug: str, disbursement_id: str) -> dict[str, Any] | None:
    return _state(disbursement_key(slug, disbursement_id))


def group_state(slug: str) -> dict[str, Any] | None:
    return _state(group_key(slug))


def pool_balance(slug: str) -> int:
    return balances([pool_account(slug)], ENERGY).get(pool_account(slug), 0)


def match_balance(slug: str) -> int:
    return balances([match_account(slug)], ENERGY).get(match_account(slug), 0)
