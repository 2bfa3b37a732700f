"""The end of a campaign: cancelled by its charity, or closed after its end (failed below the
minimum, the leftover refunded, or rolled into the next campaign), and the refunds that follow,
donation by donation, keyed by the donation so that a rerun pays nothing twice. Re-exported by
``charity.services``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.keys import account_key_parts
from ledger.models import Transaction
from ledger.selectors import device_windows

from .acting import (
    ENDED_STATUSES,
    campaign_of,
    campaign_staff,
    donation_row_write,
    progress_after_commit,
)
from .chain import (
    CharityError,
    attempt_key,
    automation_identity,
    bounded_key,
    campaign_state,
    donation_state,
    donation_states,
    invoke,
)
from .models import Campaign, CampaignStatus, Donation, DonationKind, LeftoverRule, MatchPledge

logger = logging.getLogger(__name__)


def _status_from_ledger(campaign: Campaign, tx_hash: str = "") -> Campaign:
    """Mirror the ledger's status (and the transaction that set it, when this call made it)."""
    state = campaign_state(campaign.slug) or {}
    status = state.get("status")
    with transaction.atomic():
        fields = []
        if tx_hash:
            campaign.closed_tx = tx_hash
            fields.append("closed_tx")
        if status in CampaignStatus.values and status != campaign.status:
            campaign.status = status
            fields.append("status")
        if fields:
            campaign.save(update_fields=fields)
    return campaign


def _ended_on_the_ledger(campaign: Campaign) -> bool:
    """The ledger already stopped the campaign (another closer, or a crash before the row was
    written): the row catches up instead of asking for a refusal."""
    if (campaign_state(campaign.slug) or {}).get("status", "open") == "open":
        return False
    _status_from_ledger(campaign)
    return True


def campaign_cancel(*, user, campaign: Campaign | str, reason: str, idempotency_key: str = "") -> Campaign:
    """Charity staff stop the campaign (``charity-pool.cancel``); donors are then refunded by
    ``campaign_refund_all`` (the close task sweeps cancelled campaigns). A campaign is cancelled
    once: the ledger key is the campaign's, whatever ``idempotency_key`` the form carries."""
    campaign = campaign_of(campaign)
    membership = campaign_staff(user, campaign)
    reason = (reason or "").strip()
    if not reason:
        raise CharityError(_("Tell donors why the campaign is cancelled."))
    if campaign.status != CampaignStatus.OPEN or _ended_on_the_ledger(campaign):
        raise CharityError(_("The campaign has already ended."))
    result = invoke(membership.identity, "cancel", {"campaign": campaign.slug, "reason": reason[:500]},
                    f"charity-cancel:{campaign.slug}")
    campaign = _status_from_ledger(campaign, result.tx_hash)
    progress_after_commit(campaign.slug)
    return campaign


def _roll_donations(campaign: Campaign, tx_hash: str) -> None:
    """A roll moved the pool into the next campaign, where the ledger recorded a ``roll``
    donation: mirror it there."""
    target = campaign.next_campaign
    if target is None:
        return
    for donation_id, state in donation_states(target.slug).items():
        if state.get("kind") == DonationKind.ROLL and not Donation.objects.filter(
                campaign=target, donation_id=donation_id).exists():
            donation_row_write(target, donation_id, state, tx_hash=tx_hash, donor_name=campaign.title)
    progress_after_commit(target.slug)


def _settle_ended_earmarks(campaign: Campaign, now: datetime) -> None:
    """Before the close snapshots the pool, bring home what the campaign's ended funded windows
    left unburned (``resident.settle``, as the window settlement scheduler would a minute
    later, with the same idempotency keys): else those coins would reach the pool after the
    refunds or the roll were reckoned."""
    from meters.services import windows_settle_due

    devices = list(campaign.beneficiaries.values_list("device__public_id", flat=True))
    due = any(w.get("campaign") == campaign.slug and datetime.fromisoformat(w["end"]) <= now
              for windows in device_windows(devices).values() for w in windows)
    if due:
        windows_settle_due(now)


def campaign_close(*, campaign: Campaign | str, user=None, now: datetime | None = None) -> Campaign:
    """Close an ended campaign (``charity-pool.close``): below its minimum it failed, otherwise
    its leftover rule refunds (status refunding) or rolls into the next campaign (closed).
    ``user``: charity staff closing by hand; None: the charity's automation."""
    campaign = campaign_of(campaign)
    identity = campaign_staff(user, campaign).identity if user is not None else automation_identity(campaign.charity)
    if campaign.status != CampaignStatus.OPEN:
        return campaign
    if (now or timezone.now()) < campaign.ends_at:
        raise CharityError(_("The campaign runs until %(end)s.") % {"end": campaign.ends_at.isoformat()})
    if _ended_on_the_ledger(campaign):
        return campaign
    following = campaign.next_campaign
    if campaign.leftover == LeftoverRule.ROLL and following is not None and \
            (campaign_state(following.slug) or {}).get("status") != "open":
        raise CharityError(_("The next campaign, %(slug)s, is not open: the leftover cannot roll into it.")
                           % {"slug": following.slug})
    _settle_ended_earmarks(campaign, now or timezone.now())
    result = invoke(identity, "close", {"campaign": campaign.slug},
                    attempt_key(identity, f"charity-close:{campaign.slug}"), proposed_at=now)
    campaign = _status_from_ledger(campaign, result.tx_hash)
    if campaign.leftover == LeftoverRule.ROLL and campaign.status == CampaignStatus.CLOSED:
        _roll_donations(campaign, result.tx_hash)
        # Nothing is refunded to donors, but an unused matching reserve goes back to the sponsor.
        _refund_sponsor(campaign, automation_identity(campaign.charity), None, now)
    progress_after_commit(campaign.slug)
    return campaign


@dataclass
class RefundReport:
    total: int = 0  # donations on the ledger
    refunded: int = 0  # refunded now or before
    refused: list[tuple[str, str]] = field(default_factory=list)  # (donation id, reason)
    payment_refunds: int = 0  # fiat refunds requested from the payments path
    sponsor_wh: int = 0

    @property
    def complete(self) -> bool:
        return not self.refused and self.refunded == self.total


Progress = Callable[[int, int, str], None]


def _request_payment_refund(campaign: Campaign, donation_id: str, donation: Donation | None,
                            state: dict[str, Any]) -> bool:
    """Ask the payments path to give a fiat donor their money back (its idempotency key is the
    donation's, so asking again never refunds twice)."""
    amount = int(state.get("refunded_amount") or 0)
    if amount <= 0:
        return False
    from payments.models import Payment

    payment = donation.payment if donation is not None and donation.payment_id else None
    if payment is None and state.get("payment"):
        payment = Payment.objects.filter(payment_id=state["payment"]).order_by("id").first()
    if payment is None:
        logger.warning("campaign %s: fiat donation %s has no payment to refund", campaign.slug, donation_id)
        return False
    from payments import services as payments

    try:
        payments.payment_refund_request(
            provider=payment.provider, scope=payment.scope, payment_id=payment.payment_id, amount=amount,
            reason=f"campaign {campaign.slug} {campaign.status}: donation refunded",
            idempotency_key=bounded_key(f"charity-refund:{campaign.slug}:{donation_id}"))
    except ValueError as exc:  # payments' RefundRefused: the coins went back, the money did not yet
        logger.error("campaign %s: the money of donation %s cannot be refunded: %s", campaign.slug, donation_id, exc)
        raise
    return True


def _refund_donation(campaign: Campaign, identity, donation_id: str, state: dict[str, Any], row: Donation | None,
                     report: RefundReport, now: datetime | None) -> None:
    key = f"charity-refund:{campaign.slug}:{donation_id}"
    if state.get("refunded"):  # refunded before: by this identity (found by its key) or another
        tx_hash = Transaction.objects.filter(invoker=identity, idempotency_key=bounded_key(key)).values_list(
            "tx_hash", flat=True).first() or ""
        report.refunded += 1
        after = state
    else:
        try:
            result = invoke(identity, "refund", {"campaign": campaign.slug, "donation": donation_id}, key,
                            proposed_at=now)
        except CharityError as exc:
            report.refused.append((donation_id, str(exc)))
            logger.warning("campaign %s: refund of %s refused: %s", campaign.slug, donation_id, exc)
            return
        report.refunded += 1
        tx_hash = result.tx_hash
        after = donation_state(campaign.slug, donation_id) or state
    if row is not None and not row.refund_tx_hash:
        row.refunded_wh = int(after.get("refunded_wh") or 0)
        row.refunded_amount = int(after.get("refunded_amount") or 0)
        row.refund_tx_hash = tx_hash
        row.save(update_fields=["refunded_wh", "refunded_amount", "refund_tx_hash"])
    if after.get("kind") == DonationKind.FIAT:
        try:
            if _request_payment_refund(campaign, donation_id, row, after):
                report.payment_refunds += 1
        except ValueError as exc:
            report.refused.append((donation_id, str(exc)))
    elif after.get("kind") == DonationKind.ROLL and after.get("refunded_wh"):
        _reopen_refunds_of_earlier(after.get("account") or "")


def _reopen_refunds_of_earlier(pool: str) -> None:
    """A refunded roll went back to the earlier campaign's pool, which the ledger turned
    ``refunding`` for its own donors: the row follows, and the refund sweep takes it up."""
    role, names = account_key_parts(pool)
    earlier = Campaign.objects.filter(slug=names[0]).first() if role == "pool" and names else None
    if earlier is None:
        return
    _status_from_ledger(earlier)
    if earlier.status in ENDED_STATUSES:
        Campaign.objects.filter(pk=earlier.pk).update(refunds_done_at=None)


def _refund_sponsor(campaign: Campaign, identity, report: RefundReport | None, now: datetime | None) -> None:
    """The sponsor's share of the pool and the unused reserve back (once; nothing without one)."""
    state = campaign_state(campaign.slug) or {}
    if not state.get("sponsor"):
        return
    key = f"charity-refund-sponsor:{campaign.slug}"
    if state.get("sponsor_refunded"):
        tx_hash = Transaction.objects.filter(invoker=identity, idempotency_key=key).values_list(
            "tx_hash", flat=True).first() or ""
        returned = int(state.get("sponsor_refunded_wh") or 0) + int(state.get("match_returned_wh") or 0)
    else:
        try:
            result = invoke(identity, "refund_sponsor", {"campaign": campaign.slug}, key, proposed_at=now)
        except CharityError as exc:
            if report is not None:
                report.refused.append(("sponsor", str(exc)))
            logger.warning("campaign %s: refund of the sponsor refused: %s", campaign.slug, exc)
            return
        tx_hash = result.tx_hash
        returned = int(result.result.get("wh") or 0) if isinstance(result.result, dict) else 0
    if report is not None:
        report.sponsor_wh = returned
    MatchPledge.objects.filter(campaign=campaign, refund_tx_hash="").update(returned_wh=returned,
                                                                             refund_tx_hash=tx_hash)


def campaign_refund_all(*, campaign: Campaign | str, progress: Progress | None = None,
                        now: datetime | None = None) -> RefundReport:
    """Refund every donation of a cancelled, failed or refunding campaign (``charity-pool.refund``,
    one invocation per donation, keyed by it), then the sponsor (``refund_sponsor``). Coin
    donors get coins back; a fiat donation's share returns to the utility and its
    ``refunded_amount`` is requested back to the payer through ``payments``. ``progress(current,
    total, label)`` is called after each donation. Safe to run again: done work replays."""
    campaign = campaign_of(campaign)
    if campaign.status not in ENDED_STATUSES:
        raise CharityError(_("Only a cancelled or failed campaign, or one whose leftover is refunded, "
                             "can be refunded."))
    identity = automation_identity(campaign.charity)
    states = donation_states(campaign.slug)
    report = RefundReport(total=len(states))
    rows = {d.donation_id: d for d in campaign.donations.select_related("payment")}
    for n, (donation_id, state) in enumerate(sorted(states.items()), start=1):
        _refund_donation(campaign, identity, donation_id, state, rows.get(donation_id), report, now)
        if progress is not None:
            progress(n, report.total, donation_id)
    _refund_sponsor(campaign, identity, report, now)
    progress_after_commit(campaign.slug)
    if report.complete:
        Campaign.objects.filter(pk=campaign.pk, refunds_done_at__isnull=True).update(refunds_done_at=timezone.now())
        campaign.refunds_done_at = campaign.refunds_done_at or timezone.now()
    return report


def campaigns_close_due(*, now: datetime | None = None) -> list[Campaign]:
    """Close every open campaign whose end has passed (the close task, with refunds after it)."""
    now = now or timezone.now()
    closed = []
    for campaign in Campaign.objects.select_related("charity").filter(status=CampaignStatus.OPEN, ends_at__lte=now):
        try:
            closed.append(campaign_close(campaign=campaign, now=now))
        except CharityError as exc:
            logger.warning("campaign %s: closing refused: %s", campaign.slug, exc)
    return closed


def campaigns_refund_due(*, now: datetime | None = None, progress: Progress | None = None) -> dict[str, RefundReport]:
    """Refund every cancelled, failed or refunding campaign not yet fully refunded (and those a
    refunded roll sends back to, in the same pass)."""
    reports: dict[str, RefundReport] = {}
    while True:
        due = Campaign.objects.select_related("charity").filter(
            status__in=ENDED_STATUSES, refunds_done_at__isnull=True).exclude(slug__in=list(reports)).order_by("id")
        batch = list(due)
        if not batch:
            return reports
        for campaign in batch:
            reports[campaign.slug] = campaign_refund_all(campaign=campaign, progress=progress, now=now)
