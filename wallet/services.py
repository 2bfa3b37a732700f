"""The write path of ``wallet``: utility staff add prices to their utility's schedule. Every
price is a ``pricing.set`` invocation through the ledger, signed with the member's custodial
identity."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from accounts import services as accounts
from accounts.models import Membership
from ledger import services as ledger
from ledger.keys import PRICE_KINDS
from ledger.models import OrgType


class PriceError(Exception):
    """A price that cannot be set; the message is shown to the user."""


class PriceConflict(PriceError):
    """The idempotency key was already used for a different price."""


class NotPermitted(PriceError):
    """The user is not staff of a utility."""


def utility_membership(user) -> Membership:
    membership = (
        Membership.objects.select_related("identity__organisation", "organisation")
        .filter(user=user, organisation__org_type=OrgType.UTILITY).order_by("id").first()
        if user.is_authenticated else None
    )
    if membership is None:
        raise NotPermitted("Only utility staff can set prices.")
    return membership


def price_set(*, user, kind: str, currency: str, price: int, effective_from: datetime,
              idempotency_key: str) -> ledger.InvokeResult:
    """Add a price (minor units per kWh) to the user's utility's schedule as ``pricing.set``.

    Not wrapped in one transaction: ``ledger.invoke`` commits (and retries) on its own."""
    membership = utility_membership(user)
    if not idempotency_key or len(idempotency_key) > 200:
        raise PriceError("An idempotency key of 1 to 200 characters is required.")
    if kind not in PRICE_KINDS:
        raise PriceError("The kind must be retail or wholesale.")
    if isinstance(price, bool) or not isinstance(price, int) or price <= 0:
        raise PriceError("The price must be a positive whole number of minor units per kWh.")
    if timezone.is_naive(effective_from):
        raise PriceError("The effective time must carry a timezone.")
    try:
        result = accounts.invoke_as(
            identity=membership.identity, chaincode="pricing", function="set",
            args={"kind": kind, "currency": currency, "price": price, "effective_from": effective_from.astimezone(UTC).isoformat()},
            idempotency_key=f"price:{idempotency_key}",
        )
    except ledger.IdempotencyConflict:
        raise PriceConflict("This form was already submitted with different values; reload and try again.") from None
    if not result.ok:
        raise PriceError(result.reason)
    return result


def user_sets_prices(user) -> bool:
    try:
        utility_membership(user)
    except NotPermitted:
        return False
    return True
