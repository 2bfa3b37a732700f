"""The utility's billing settings, without code: add a tariff (``setTariff``) and set the dues
threshold and fine (``configure``), each one invocation as the signed-in utility member's own
identity. The chaincode checks the data again; a refusal changes nothing."""

from __future__ import annotations

from typing import Any

from accounts import services as accounts
from accounts.models import Membership
from ledger import services as ledger
from ledger.chaincodes import billing_math as bm
from ledger.models import OrgType

from . import selectors


class TariffError(ValueError):
    """A tariff or setting the ledger (or this check) refused; the message says why."""


class NotPermitted(TariffError):
    pass


def utility_membership(user) -> Membership:
    membership = selectors.membership_of(user, OrgType.UTILITY)
    if membership is None:
        raise NotPermitted("Only utility staff can change tariffs.")
    return membership


def _invoke(user, function: str, args: dict[str, Any], idempotency_key: str) -> ledger.InvokeResult:
    membership = utility_membership(user)
    if not idempotency_key or len(idempotency_key) > 200:
        raise TariffError("An idempotency key of 1 to 200 characters is required.")
    try:
        result = accounts.invoke_as(identity=membership.identity, chaincode="energy-billing", function=function,
                                    args=args, idempotency_key=f"billing-{function}:{idempotency_key}")
    except ledger.IdempotencyConflict:
        raise TariffError("This form was already submitted with different values; reload and try again.") from None
    if not result.ok:
        raise TariffError(result.reason or "refused")
    return result


def tariff_set(*, user, tariff: dict[str, Any], idempotency_key: str) -> ledger.InvokeResult:
    """Add ``tariff`` (``billing_math`` data) to the schedule."""
    try:
        bm.validate_tariff(tariff)
    except bm.BillingError as exc:
        raise TariffError(str(exc)) from None
    return _invoke(user, "setTariff", {"tariff": tariff}, idempotency_key)


def dues_configure(*, user, dues_threshold: int, fine: int, idempotency_key: str) -> ledger.InvokeResult:
    """Set the dues threshold and the fine (paise); the invoking utility becomes the payee of dues."""
    for name, value in (("dues threshold", dues_threshold), ("fine", fine)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TariffError(f"The {name} must be a whole, non-negative number of paise.")
    return _invoke(user, "configure", {"dues_threshold": dues_threshold, "fine": fine}, idempotency_key)
