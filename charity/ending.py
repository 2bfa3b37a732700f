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
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.chaincodes.charity import donation_refunds, refund_round_due, refund_round_of
from ledger.keys import DEVICES_NAMESPACE, ENERGY, account_key_parts, campaign_key, pool_account
from ledger.models import Transaction, TxStatus
from ledger.selectors import balances, device_windows, world_state

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
    pool_balance,
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
    refunded: int = 0  # refunded in the last round run, now or before
    refused: list[tuple[str, str]] = field(default_factory=list)  # (donation id, reason)
    payment_refunds: int = 0  # fiat refunds requested from the payments path (each round's once)
    sponsor_wh: int = 0
    round: int = 0  # the last refund round run

    @property
    def complete(self) -> bool:
        return not self.refused and self.refunded == self.total


Progress = Callable[[int, int, str], None]


def _round_key(base: str, round_: int) -> str:
    """A refund's idempotency key in ``round_``: round 1 keeps the key refunds always had."""
    return base if round_ <= 1 else f"{base}:round-{round_}"


def _request_payment_refund(campaign: Campaign, donation_id: str, donation: Donation | None,
                            state: dict[str, Any], round_: int, amount: int) -> bool:
    """Ask the payments path to give a fiat donor the money of one refund round back (its
    idempotency key is the donation's and the round's, so asking again never refunds twice)."""
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
            reason=f"campaign {campaign.slug} {campaign.status}: donation refunded (round {round_})",
            idempotency_key=bounded_key(_round_key(f"charity-refund:{campaign.slug}:{donation_id}", round_)))
    except ValueError as exc:  # payments' RefundRefused: the coins went back, the money did not yet
        logger.error("campaign %s: the money of donation %s cannot be refunded: %s", campaign.slug, donation_id, exc)
        raise
    return True


def _refund_donation(campaign: Campaign, identity, round_: int, donation_id: str, state: dict[str, Any],
                     row: Donation | None, report: RefundReport, now: datetime | None) -> None:
    first_key = f"charity-refund:{campaign.slug}:{donation_id}"
    if int(state.get("refunded_round", 1 if state.get("refunded") else 0)) >= round_:
        # refunded in this round before: by this identity (found by its key) or another
        after = state
    else:
        try:
            invoke(identity, "refund", {"campaign": campaign.slug, "donation": donation_id},
                   _round_key(first_key, round_), proposed_at=now)
        except CharityError as exc:
            report.refused.append((donation_id, str(exc)))
            logger.warning("campaign %s: refund of %s refused: %s", campaign.slug, donation_id, exc)
            return
        after = donation_state(campaign.slug, donation_id) or state
    report.refunded += 1
    if row is not None:
        _mirror_refund(row, identity, first_key, after)
    if after.get("kind") == DonationKind.FIAT:
        try:
            for done_round, refunded in sorted(donation_refunds(after).items(), key=lambda kv: int(kv[0])):
                if _request_payment_refund(campaign, donation_id, row, after, int(done_round),
                                           int(refunded.get("amount") or 0)):
                    report.payment_refunds += 1
        except ValueError as exc:
            report.refused.append((donation_id, str(exc)))
    elif after.get("kind") == DonationKind.ROLL and after.get("refunded_wh"):
        _reopen_refunds_of_earlier(after.get("account") or "")


def _mirror_refund(row: Donation, identity, first_key: str, state: dict[str, Any]) -> None:
    """The row shows what all rounds refunded and the first round's transaction."""
    wh, amount = int(state.get("refunded_wh") or 0), int(state.get("refunded_amount") or 0)
    fields = []
    if not row.refund_tx_hash:
        row.refund_tx_hash = Transaction.objects.filter(
            invoker=identity, idempotency_key=bounded_key(first_key)).values_list("tx_hash", flat=True).first() or ""
        fields.append("refund_tx_hash")
    if (row.refunded_wh, row.refunded_amount) != (wh, amount):
        row.refunded_wh, row.refunded_amount = wh, amount
        fields += ["refunded_wh", "refunded_amount"]
    if fields:
        row.save(update_fields=fields)


def _reopen_refunds_of_earlier(pool: str) -> None:
    """A refunded roll went back to the earlier campaign's pool, which the ledger turned
    ``refunding`` for its own donors (or shares in its next round): the row follows, and the
    refund sweep takes it up."""
    role, names = account_key_parts(pool)
    earlier = Campaign.objects.filter(slug=names[0]).first() if role == "pool" and names else None
    if earlier is None:
        return
    _status_from_ledger(earlier)
    if earlier.status in ENDED_STATUSES:
        Campaign.objects.filter(pk=earlier.pk).update(refunds_done_at=None)


def _refund_sponsor(campaign: Campaign, identity, report: RefundReport | None, now: datetime | None) -> None:
    """The sponsor's share of the round's snapshot and the unused reserve back (once per round;
    nothing without a sponsor)."""
    state = campaign_state(campaign.slug) or {}
    if not state.get("sponsor"):
        return
    round_ = refund_round_of(state)
    base = f"charity-refund-sponsor:{campaign.slug}"
    # Round 0 is the unused reserve's return when a roll closes the campaign; a refunded roll
    # may open round 1 later, which must not replay it (nor a return made before rounds existed,
    # which used the bare key).
    if round_ == 0:
        key = f"{base}:close"
    elif round_ == 1 and state.get("sponsor_round") is None:
        key = base
    else:
        key = f"{base}:round-{round_}"
    if not state.get("sponsor_refunded"):
        try:
            invoke(identity, "refund_sponsor", {"campaign": campaign.slug}, key, proposed_at=now)
        except CharityError as exc:
            if report is not None:
                report.refused.append(("sponsor", str(exc)))
            logger.warning("campaign %s: refund of the sponsor refused: %s", campaign.slug, exc)
            return
        state = campaign_state(campaign.slug) or state
    returned = int(state.get("sponsor_refunded_wh") or 0) + int(state.get("match_returned_wh") or 0)
    if report is not None:
        report.sponsor_wh = returned
    first = Transaction.objects.filter(
        Q(idempotency_key=base) | Q(idempotency_key__startswith=f"{base}:"), invoker=identity,
        status=TxStatus.VALID).order_by("id").values_list("tx_hash", flat=True).first() or ""
    MatchPledge.objects.filter(campaign=campaign).exclude(returned_wh=returned).update(returned_wh=returned)
    if first:
        MatchPledge.objects.filter(campaign=campaign, refund_tx_hash="").update(refund_tx_hash=first)


def _refund_round(campaign: Campaign, identity, round_: int, progress: Progress | None,
                  now: datetime | None) -> RefundReport:
    """Every donation's refund in ``round_``, then the sponsor's."""
    states = donation_states(campaign.slug)
    report = RefundReport(total=len(states), round=round_)
    rows = {d.donation_id: d for d in campaign.donations.select_related("payment")}
    for n, (donation_id, state) in enumerate(sorted(states.items()), start=1):
        _refund_donation(campaign, identity, round_, donation_id, state, rows.get(donation_id), report, now)
        if progress is not None:
            progress(n, report.total, donation_id)
    _refund_sponsor(campaign, identity, report, now)
    return report


def campaign_refund_all(*, campaign: Campaign | str, progress: Progress | None = None,
                        now: datetime | None = None) -> RefundReport:
    """Refund every donation of a cancelled, failed or refunding campaign (``charity-pool.refund``,
    one invocation per donation and round, keyed by both), then the sponsor
    (``refund_sponsor``); while coins came back to the pool since the round's snapshot (windows
    settled later, a refunded roll), open the next round (``next_refund_round``) and refund it
    the same way. Coin donors get coins back; a fiat donation's share returns to the utility and
    each round's ``refunded_amount`` is requested back to the payer through ``payments``.
    ``progress(current, total, label)`` is called after each donation. Safe to run again: done
    work replays."""
    campaign = campaign_of(campaign)
    if campaign.status not in ENDED_STATUSES:
        raise CharityError(_("Only a cancelled or failed campaign, or one whose leftover is refunded, "
                             "can be refunded."))
    identity = automation_identity(campaign.charity)
    while True:
        state = campaign_state(campaign.slug) or {}
        round_ = max(refund_round_of(state), 1)
        report = _refund_round(campaign, identity, round_, progress, now)
        if not report.complete:
            break
        state = campaign_state(campaign.slug) or {}
        if not refund_round_due(state, pool_balance(campaign.slug)):
            break
        try:
            invoke(identity, "next_refund_round", {"campaign": campaign.slug},
                   attempt_key(identity, f"charity-refund-round:{campaign.slug}:{round_ + 1}"), proposed_at=now)
        except CharityError as exc:
            report.refused.append(("round", str(exc)))
            logger.warning("campaign %s: refund round %s refused: %s", campaign.slug, round_ + 1, exc)
            break
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


def _pools_grown() -> list[int]:
    """Fully refunded campaigns whose pool got coins back since their last round's snapshot
    (windows settled after the refunds): a new round is due (two reads for all of them)."""
    done = list(Campaign.objects.filter(status__in=ENDED_STATUSES, refunds_done_at__isnull=False)
                .values_list("pk", "slug"))
    if not done:
        return []
    states = world_state(DEVICES_NAMESPACE, [campaign_key(slug) for _pk, slug in done])
    pools = balances([pool_account(slug) for _pk, slug in done], ENERGY)
    return [pk for pk, slug in done
            if refund_round_due(states.get(campaign_key(slug)) or {}, pools.get(pool_account(slug), 0))]


def campaigns_refund_due(*, now: datetime | None = None, progress: Progress | None = None) -> dict[str, RefundReport]:
    """Refund every cancelled, failed or refunding campaign not yet fully refunded, or whose pool
    got coins back since its last refund round (and those a refunded roll sends back to, in the
    same pass)."""
    reports: dict[str, RefundReport] = {}
    grown = _pools_grown()
    if grown:
        Campaign.objects.filter(pk__in=grown).update(refunds_done_at=None)
    while True:
        due = Campaign.objects.select_related("charity").filter(
            status__in=ENDED_STATUSES, refunds_done_at__isnull=True).exclude(slug__in=list(reports)).order_by("id")
        batch = list(due)
        if not batch:
            return reports
        for campaign in batch:
            reports[campaign.slug] = campaign_refund_all(campaign=campaign, progress=progress, now=now)
