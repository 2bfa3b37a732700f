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
from ledger.models import Identity, Organisation, Transaction, TxStatus
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


MAX_KEY = 200  # the payments path's limit, below the ledger's


def bounded_key(key: str) -> str:
    """``key`` as the ledger and the payments path store it: a key past 200 characters (a
    form's key after a prefix and a slug) keeps its first 150 and a digest of the whole, so it
    stays the same for the same request and distinct for another."""
    if len(key) <= MAX_KEY:
        return key
    return f"{key[:150]}~{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def invoke(identity: Identity, function: str, args: dict[str, Any], idempotency_key: str, *,
           proposed_at: datetime | None = None) -> ledger.InvokeResult:
    """``charity-pool.<function>`` as ``identity`` (custodial key). Not inside the caller's
    transaction: a refusal is recorded by the ledger even though the caller then raises."""
    try:
        result = accounts.invoke_as(identity=identity, chaincode=CHAINCODE, function=function, args=args,
                                    idempotency_key=bounded_key(idempotency_key), proposed_at=proposed_at)
    except ledger.IdempotencyConflict:
        raise CharityConflict(_("This request was already submitted with different values; reload the page "
                                "and try again.")) from None
    if not result.ok:
        raise LedgerRefused(result)
    return result


def attempt_key(identity: Identity, base: str) -> str:
    """The idempotency key for the next attempt at a derived-key invocation: ``base`` until the
    ledger accepted or refused it, then ``base#2``, ``base#3``... after refusals. The ledger
    answers a reused key with its first result, so a refusal that no longer holds (the next
    campaign opened since, say) needs a new key; an accepted attempt keeps answering."""
    base = bounded_key(base)
    tried = dict(Transaction.objects.filter(invoker=identity, idempotency_key__startswith=base).values_list(
        "idempotency_key", "status"))
    key, n = base, 1
    while key in tried and tried[key] != TxStatus.VALID:
        n += 1
        key = f"{base}#{n}"
    return key


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
