"""What every ``charity`` write shares: who may act (charity staff, a coin holder), the checks
made before the ledger is asked, the Donation row written from the ledger's record, and the
pushes sent after commit. Used by ``charity.services``, ``charity.ending`` and ``charity.groups``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts import services as accounts
from accounts.models import Membership
from ledger.keys import ENERGY
from ledger.models import Account, Organisation, OrgType, Transaction
from ledger.units import kwh

from . import live
from .chain import CharityError, NotPermitted, bounded_key, receipt_number
from .models import Campaign, CampaignStatus, Donation, DonationKind

logger = logging.getLogger(__name__)

ENDED_STATUSES = (CampaignStatus.CANCELLED, CampaignStatus.FAILED, CampaignStatus.REFUNDING)
MAX_KEY = 200


def charity_membership(user, organisation: Organisation | None = None) -> Membership:
    """The user's membership in a charity (``organisation`` if given)."""
    qs = Membership.objects.select_related("identity__organisation", "organisation").filter(
        organisation__org_type=OrgType.CHARITY)
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    membership = qs.filter(user=user).order_by("id").first() if user is not None and user.is_authenticated else None
    if membership is None:
        raise NotPermitted(_("Only a charity's staff can do this."))
    return membership


def campaign_staff(user, campaign: Campaign) -> Membership:
    try:
        return charity_membership(user, campaign.charity)
    except NotPermitted:
        raise NotPermitted(_("Only the staff of the charity that runs this campaign can do this.")) from None


def holder_membership(user, organisation: Organisation | None) -> Membership:
    """The membership whose household coins the user gives: ``organisation``'s, else their
    household's (a charity's staff member gives from home, not from the charity)."""
    if user is None or not user.is_authenticated:
        raise NotPermitted(_("Sign in to give coins."))
    if organisation is None:
        home = Membership.objects.select_related("identity__organisation", "organisation").filter(
            user=user, organisation__org_type=OrgType.HOUSEHOLD).order_by("id").first()
        if home is not None:
            return home
    try:
        return accounts.membership_for(user, organisation)
    except Membership.DoesNotExist:
        raise NotPermitted(_("You are not a member of any organisation that holds coins.")) from None


def check_key(idempotency_key: str) -> None:
    if not idempotency_key or len(idempotency_key) > MAX_KEY:
        raise CharityError(_("An idempotency key of 1 to 200 characters is required."))


def check_wh(amount_wh: Any) -> int:
    if isinstance(amount_wh, bool) or not isinstance(amount_wh, int) or amount_wh <= 0:
        raise CharityError(_("The amount must be a positive number of Wh."))
    return amount_wh


def first_try(identity, key: str) -> bool:
    return not Transaction.objects.filter(invoker=identity, idempotency_key=bounded_key(key)).exists()


def require_covered(account_key: str, amount_wh: int, name: str) -> None:
    account = Account.objects.filter(key=account_key, asset_id=ENERGY).first()
    if account is None:
        raise CharityError(_("%(name)s has no energy account to give from.") % {"name": name})
    if amount_wh > account.balance:
        raise CharityError(_("Not enough coins: %(name)s holds %(held)s kWh, you asked to give %(asked)s kWh.")
                           % {"name": name, "held": kwh(account.balance), "asked": kwh(amount_wh)})


def progress_after_commit(slug: str) -> None:
    transaction.on_commit(partial(live.progress_broadcast, slug))


def devices_after_commit(public_ids: Iterable[str]) -> None:
    """Funded windows changed the devices' state: push it (websocket, relay) after commit."""
    from meters import live as meters_live

    for public_id in sorted(set(public_ids)):
        transaction.on_commit(partial(meters_live.device_state_changed, public_id))


def donation_row_write(campaign: Campaign, donation_id: str, state: dict[str, Any], *, tx_hash: str, donor=None,
                       donor_name: str = "", show_name: bool = False, payment_id: int | None = None) -> Donation:
    """The Donation as the ledger recorded it (created once; a retry returns the first row)."""
    kind = state.get("kind", DonationKind.COINS)
    defaults = {
        "kind": kind if kind in DonationKind.values else DonationKind.COINS,
        "donor": donor, "donor_name": donor_name[:120], "show_name": bool(show_name and donor_name),
        "amount": int(state.get("amount") or 0), "currency": state.get("currency") or campaign.currency,
        "wh": int(state.get("wh") or 0), "matched_wh": int(state.get("matched_wh") or 0),
        "refunded_wh": int(state.get("refunded_wh") or 0), "refunded_amount": int(state.get("refunded_amount") or 0),
        "payment_id": payment_id, "tx_hash": tx_hash, "receipt_number": receipt_number(campaign.slug, donation_id),
    }
    try:
        with transaction.atomic():
            donation, _created = Donation.objects.get_or_create(campaign=campaign, donation_id=donation_id,
                                                                defaults=defaults)
    except IntegrityError:  # a concurrent recording won
        donation = Donation.objects.get(campaign=campaign, donation_id=donation_id)
    return donation


def campaign_of(campaign: Campaign | str) -> Campaign:
    """The campaign given, or the one with that slug."""
    if isinstance(campaign, str):
        found = Campaign.objects.select_related("charity", "utility").filter(slug=campaign).first()
        if found is None:
            raise CharityError(_("There is no campaign %(slug)s.") % {"slug": campaign})
        campaign = found
    return campaign
