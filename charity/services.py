"""The write path of ``charity``: campaigns, donations, matching and disbursement here; the end
of a campaign (cancel, close, refunds) in ``charity.ending`` and group funding in
``charity.groups``, both re-exported here, so callers import one module.

Every coin moves through the ``charity-pool`` chaincode (``charity.chain.invoke``), signed with
the acting member's custodial identity, or for automation with the organisation's own
``campaigns`` identity. Idempotency keys are derived from what the request is (the campaign's
slug, the form's key, the donation's id), so a retry replays instead of moving twice. The
ledger call is never inside this module's transaction: a refusal is recorded there and
nothing is written here; rows are written only after the ledger accepted, from its world
state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import services as accounts
from accounts.models import Membership
from ledger import services as ledger
from ledger.chaincodes.charity import shares_by_rule
from ledger.keys import DEVICES_NAMESPACE, ENERGY, beneficiaries_key, match_account, pool_account
from ledger.models import AccountKind, Asset, Organisation, OrgType, StateEntry
from ledger.selectors import world_state
from ledger.units import kwh
from meters.models import Device, DeviceKind

from .acting import (
    campaign_of,
    campaign_staff,
    charity_membership,
    check_key,
    check_wh,
    devices_after_commit,
    donation_row_write,
    first_try,
    holder_membership,
    progress_after_commit,
    require_covered,
)
from .chain import (
    CharityConflict,
    CharityError,
    LedgerRefused,
    NotPermitted,
    automation_identity,
    disbursement_state,
    donation_state,
    invoke,
    iso,
    pool_balance,
    short_hash,
)
from .ending import (
    RefundReport,
    campaign_cancel,
    campaign_close,
    campaign_refund_all,
    campaigns_close_due,
    campaigns_refund_due,
)
from .groups import contribution_record_paid, group_contribute, group_create, group_expire, groups_expire_due
from .models import (
    Beneficiary,
    Campaign,
    CampaignStatus,
    CampaignUpdate,
    Disbursement,
    Donation,
    DonationKind,
    LeftoverRule,
    MatchPledge,
    SharingRule,
)

__all__ = [
    "CharityConflict", "CharityError", "LedgerRefused", "NotPermitted", "RefundReport",
    "beneficiaries_set", "campaign_cancel", "campaign_close", "campaign_create", "campaign_edit",
    "campaign_refund_all", "campaign_update_post", "campaigns_close_due", "campaigns_disburse_due",
    "campaigns_refund_due", "charity_membership", "contribution_record_paid", "disbursement_make",
    "donation_give", "donation_record_paid", "group_contribute", "group_create", "group_expire",
    "groups_expire_due", "match_pledge",
]

logger = logging.getLogger(__name__)


# --- campaigns -----------------------------------------------------------------------------------

def _beneficiary_devices(beneficiaries: list[dict], charity: Organisation, rule: str) -> list[tuple[Device, str, int]]:
    if not beneficiaries:
        raise CharityError(_("Name at least one household to help."))
    found: list[tuple[Device, str, int]] = []
    seen: set[str] = set()
    for entry in beneficiaries:
        device = entry["device"]
        if not isinstance(device, Device):
            device = Device.objects.select_related("organisation").filter(public_id=device).first()
            if device is None:
                raise CharityError(_("There is no device %(id)s.") % {"id": entry["device"]})
        if device.public_id in seen:
            raise CharityError(_("Device %(id)s is named twice.") % {"id": device.public_id})
        seen.add(device.public_id)
        if device.is_retired or device.kind == DeviceKind.PRODUCER_METER:
            raise CharityError(_("Device %(id)s cannot receive coins.") % {"id": device.public_id})
        if device.organisation_id == charity.pk:
            raise CharityError(_("A campaign cannot fund the charity's own device %(id)s.") % {"id": device.public_id})
        weight = entry.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
            raise CharityError(_("Weights are positive whole numbers."))
        if rule != SharingRule.WEIGHTS:
            weight = 1
        label = (entry.get("label") or "").strip()[:120] or device.place or device.public_id
        found.append((device, label, weight))
    return found


def _ledger_beneficiaries(devices: list[tuple[Device, str, int]]) -> list[dict]:
    return [{"device": device.public_id, "weight": weight} for device, _label, weight in devices]


def _account_open(key: str, asset: str, owner: Organisation, kind: str) -> None:
    try:
        ledger.account_open(key=key, asset=asset, organisation=owner, kind=kind)
    except ledger.LedgerError:
        raise CharityError(_("This web address is already used by another campaign; choose another.")) from None


def _free_slug(title: str, same: Callable[[Campaign], bool]) -> str:
    """A web address from the title: the first free one, or that of the same campaign submitted
    before (a double-submitted form)."""
    base = slugify(title)[:50].strip("-") or "campaign"
    for n in range(1, 1000):
        slug = base if n == 1 else f"{base}-{n}"
        existing = Campaign.objects.filter(slug=slug).first()
        if existing is None or same(existing):
            return slug
    raise CharityError(_("This web address is already used by another campaign; choose another."))


def _default_utility() -> Organisation:
    utility = Organisation.objects.filter(org_type=OrgType.UTILITY).order_by("id").first()
    if utility is None:
        raise CharityError(_("Choose the utility whose electricity the campaign buys."))
    return utility


def campaign_create(*, user, title: str, story: str, currency: str, goal: int, minimum: int, starts_at: datetime,
                    ends_at: datetime, beneficiaries: list[dict], slug: str = "", utility: Organisation | None = None,
                    trigger_starts_at: datetime | None = None, trigger_ends_at: datetime | None = None,
                    rule: str = SharingRule.EQUAL, cap_wh: int | None = None, leftover: str = LeftoverRule.REFUND,
                    next_campaign: Campaign | None = None, auto_disburse: bool = False,
                    charity: Organisation | None = None) -> Campaign:
    """Open a campaign: its pool (``pool:<slug>``, k and the currency) and matching reserve
    (``match:<slug>``) owned by the charity, ``charity-pool.open`` with the beneficiaries, then
    the Campaign and Beneficiary rows. ``beneficiaries``: ``[{"device": Device or public id,
    "label": shown publicly, "weight": int (rule weights)}]``. ``charity``: which of the user's
    charities (default their first); ``slug``: default from the title; ``utility``: default the
    network's. Resubmitting the same campaign replays the ledger's open and returns it."""
    membership = charity_membership(user, charity)
    charity = membership.organisation
    title, story = (title or "").strip(), (story or "").strip()
    if not slug:
        slug = _free_slug(title, lambda c: c.charity_id == charity.pk and c.title == title and c.story == story
                          and c.starts_at == starts_at and c.ends_at == ends_at)
    existing = Campaign.objects.filter(slug=slug).first()
    if existing is not None:
        if existing.charity_id == charity.pk and existing.opened_tx:
            return existing
        raise CharityError(_("This web address is already used by another campaign; choose another."))
    utility = utility or _default_utility()
    if not slug or slugify(slug) != slug or len(slug) > 60:
        raise CharityError(_("The web address may hold only lower-case letters, digits and hyphens (at most 60)."))
    if not title or len(title) > 140:
        raise CharityError(_("Give the campaign a title of at most 140 characters."))
    if not story:
        raise CharityError(_("Tell donors what the campaign is for."))
    if utility.org_type != OrgType.UTILITY:
        raise CharityError(_("Choose the utility whose electricity the campaign buys."))
    if not Asset.objects.filter(code=currency).exists():
        raise CharityError(_("The ledger has no currency %(code)s.") % {"code": currency})
    for value in (goal, minimum):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CharityError(_("Goal and minimum are whole amounts in minor units."))
    if goal <= 0 or minimum > goal:
        raise CharityError(_("The goal must be positive and the minimum at most the goal."))
    if ends_at <= starts_at:
        raise CharityError(_("The campaign must end after it starts."))
    if (trigger_starts_at is None) != (trigger_ends_at is None):
        raise CharityError(_("A trigger period needs both a start and an end."))
    if trigger_starts_at is not None and trigger_ends_at is not None and trigger_ends_at <= trigger_starts_at:
        raise CharityError(_("The trigger period must end after it starts."))
    if trigger_starts_at is not None and trigger_ends_at is not None and not (
            starts_at <= trigger_starts_at and trigger_ends_at <= ends_at):
        raise CharityError(_("The trigger period must lie inside the campaign."))
    if rule not in SharingRule.values:
        raise CharityError(_("Choose how the coins are shared."))
    if rule == SharingRule.CAP and (isinstance(cap_wh, bool) or not isinstance(cap_wh, int) or cap_wh <= 0):
        raise CharityError(_("A capped rule needs the most Wh one household may receive."))
    if leftover not in LeftoverRule.values:
        raise CharityError(_("Choose what happens to what is left at the end."))
    if leftover == LeftoverRule.ROLL and next_campaign is None:
        raise CharityError(_("Rolling over needs the next campaign."))
    if next_campaign is not None and next_campaign.charity_id != charity.pk:
        raise CharityError(_("Coins can only roll into another campaign of the same charity."))
    devices = _beneficiary_devices(beneficiaries, charity, rule)

    pool, match = pool_account(slug), match_account(slug)
    _account_open(pool, ENERGY, charity, AccountKind.POOL)
    _account_open(pool, currency, charity, AccountKind.POOL)
    _account_open(match, ENERGY, charity, AccountKind.POOL)
    args: dict[str, Any] = {
        "campaign": slug, "utility": utility.msp_id, "currency": currency, "goal": goal, "minimum": minimum,
        "start": iso(starts_at), "end": iso(ends_at), "rule": rule, "leftover": leftover,
        "beneficiaries": _ledger_beneficiaries(devices),
    }
    if trigger_starts_at is not None and trigger_ends_at is not None:
        args.update(trigger_start=iso(trigger_starts_at), trigger_end=iso(trigger_ends_at))
    if rule == SharingRule.CAP:
        args["cap_wh"] = cap_wh
    if next_campaign is not None:
        args["next"] = next_campaign.slug
    result = invoke(membership.identity, "open", args, f"charity-open:{slug}")
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                slug=slug, charity=charity, utility=utility, title=title, story=story, currency=currency, goal=goal,
                minimum=minimum, starts_at=starts_at, ends_at=ends_at, trigger_starts_at=trigger_starts_at,
                trigger_ends_at=trigger_ends_at, rule=rule, cap_wh=cap_wh if rule == SharingRule.CAP else None,
                leftover=leftover, next_campaign=next_campaign, auto_disburse=auto_disburse,
                opened_tx=result.tx_hash, created_by=user)
            Beneficiary.objects.bulk_create(
                [Beneficiary(campaign=campaign, device=device, label=label, weight=weight)
                 for device, label, weight in devices])
    except IntegrityError:  # a concurrent resubmission wrote it first
        return Campaign.objects.get(slug=slug)
    return campaign


TERMS = ("goal", "minimum", "starts_at", "ends_at", "trigger_starts_at", "trigger_ends_at", "rule", "cap_wh",
         "leftover", "next_campaign")


@transaction.atomic
def campaign_edit(*, user, campaign: Campaign, title: str | None = None, story: str | None = None,
                  auto_disburse: bool | None = None, **terms: Any) -> Campaign:
    """Change the campaign's texts and automation (off-chain). The terms the ledger holds
    (``TERMS``: goal, dates, rule...) may be passed back unchanged, as an edit form does; a
    changed term is refused: donors gave under them."""
    campaign_staff(user, campaign)
    unknown = sorted(set(terms) - set(TERMS))
    if unknown:
        raise TypeError(f"campaign_edit() got unexpected arguments: {', '.join(unknown)}")
    rule = terms.get("rule", campaign.rule)
    for name, value in terms.items():
        current = getattr(campaign, name)
        if name == "cap_wh" and rule != SharingRule.CAP:
            continue
        if value != current and not (value in (None, "") and current in (None, "")):
            raise CharityError(_("The campaign's terms are on the ledger and cannot change; only its texts can."))
    fields = []
    if title is not None:
        title = title.strip()
        if not title or len(title) > 140:
            raise CharityError(_("Give the campaign a title of at most 140 characters."))
        campaign.title = title
        fields.append("title")
    if story is not None:
        story = story.strip()
        if not story:
            raise CharityError(_("Tell donors what the campaign is for."))
        campaign.story = story
        fields.append("story")
    if auto_disburse is not None:
        campaign.auto_disburse = auto_disburse
        fields.append("auto_disburse")
    if fields:
        campaign.save(update_fields=fields)
    return campaign


def _beneficiaries_version(slug: str) -> int:
    """How often the ledger's beneficiary list changed (its world-state version): with the
    change itself it keys a form that carries no idempotency key of its own."""
    return StateEntry.objects.filter(namespace=DEVICES_NAMESPACE, key=beneficiaries_key(slug)).values_list(
        "version", flat=True).first() or 0


def beneficiaries_set(*, user, campaign: Campaign, beneficiaries: list[dict],
                      idempotency_key: str = "") -> list[Beneficiary]:
    """Make the campaign's beneficiaries exactly ``beneficiaries`` (same shape as for
    ``campaign_create``): ``charity-pool.beneficiaries`` adds the new (and re-weighted) and
    removes the dropped devices; labels change off-chain. Without an ``idempotency_key`` the
    change is keyed by the list's version on the ledger: a retry after it applied finds
    nothing to change."""
    membership = campaign_staff(user, campaign)
    if idempotency_key:
        check_key(idempotency_key)
    if campaign.status != CampaignStatus.OPEN:
        raise CharityError(_("The campaign has ended; its beneficiaries can no longer change."))
    devices = _beneficiary_devices(beneficiaries, campaign.charity, campaign.rule)
    current = {b.device.public_id: b for b in campaign.beneficiaries.select_related("device")}
    wanted = {device.public_id: (device, label, weight) for device, label, weight in devices}
    add = [{"device": pid, "weight": weight} for pid, (_d, _l, weight) in wanted.items()
           if pid not in current or current[pid].weight != weight]
    remove = sorted(pid for pid in current if pid not in wanted)
    if add or remove:
        key = idempotency_key or "v{}:{}".format(_beneficiaries_version(campaign.slug),
                                                  short_hash(repr(sorted(a["device"] for a in add)), repr(remove)))
        args: dict[str, Any] = {"campaign": campaign.slug}
        if add:
            args["add"] = add
        if remove:
            args["remove"] = remove
        invoke(membership.identity, "beneficiaries", args, f"charity-beneficiaries:{campaign.slug}:{key}")
    with transaction.atomic():
        campaign.beneficiaries.filter(device__public_id__in=remove).delete()
        for device, label, weight in wanted.values():
            Beneficiary.objects.update_or_create(campaign=campaign, device=device,
                                                 defaults={"label": label, "weight": weight})
    return list(campaign.beneficiaries.select_related("device"))


@transaction.atomic
def campaign_update_post(*, user, campaign: Campaign, title: str, body: str) -> CampaignUpdate:
    """A news post on the campaign's page (off-chain)."""
    campaign_staff(user, campaign)
    title, body = (title or "").strip(), (body or "").strip()
    if not title or len(title) > 140 or not body:
        raise CharityError(_("An update needs a title of at most 140 characters and some text."))
    return CampaignUpdate.objects.create(campaign=campaign, title=title, body=body, author=user)


# --- donations -----------------------------------------------------------------------------------

def donation_give(*, user, campaign: Campaign | str, amount_wh: int, idempotency_key: str, anonymous: bool = False,
                  show_name: bool = False, donor_name: str = "", organisation: Organisation | None = None) -> Donation:
    """Give ``amount_wh`` of the user's household coins to the campaign (``charity-pool.give``,
    matched by the sponsor while the reserve lasts). ``anonymous``: no name is kept with the
    donation; otherwise ``donor_name`` (default: the user's name) is kept and shown publicly only
    with ``show_name`` (the donor's consent). The same key returns the first donation."""
    campaign = campaign_of(campaign)
    check_key(idempotency_key)
    amount_wh = check_wh(amount_wh)
    membership = holder_membership(user, organisation)
    source = accounts.household_account_key(membership.organisation)
    key = f"charity-give:{idempotency_key}"
    donation_id = "give-" + short_hash(str(membership.identity.pk), idempotency_key)
    if first_try(membership.identity, key):  # a replay is answered by the ledger whatever moved since
        if campaign.status != CampaignStatus.OPEN:
            raise CharityError(_("This campaign is no longer taking donations."))
        now = timezone.now()
        if not campaign.starts_at <= now < campaign.ends_at:
            raise CharityError(_("This campaign takes donations from %(start)s to %(end)s.")
                               % {"start": campaign.starts_at.isoformat(), "end": campaign.ends_at.isoformat()})
        require_covered(source, amount_wh, membership.organisation.name)
    result = invoke(membership.identity, "give",
                    {"campaign": campaign.slug, "donation": donation_id, "amount": amount_wh, "from": source}, key)
    state = donation_state(campaign.slug, donation_id) or {"kind": DonationKind.COINS, "wh": amount_wh}
    name = "" if anonymous else (donor_name or user.get_full_name() or user.get_username()).strip()
    donation = donation_row_write(campaign, donation_id, state, tx_hash=result.tx_hash, donor=user, donor_name=name,
                             show_name=show_name and not anonymous)
    progress_after_commit(campaign.slug)
    return donation


def donation_record_paid(*, campaign: Campaign | str, donation_id: str, tx_hash: str, payment: int | None = None,
                         donor=None, donor_name: str = "", show_name: bool = False) -> Donation | None:
    """Record a fiat donation the payments path credited through ``charity-pool.donate``
    (called inside the crediting transaction; idempotent: a second call returns the first row).
    Read from the ledger's ``donation/<slug>/<id>``; None when the ledger holds no such donation."""
    campaign = campaign_of(campaign)
    state = donation_state(campaign.slug, donation_id)
    if state is None:
        logger.warning("campaign %s: the ledger holds no donation %s to record", campaign.slug, donation_id)
        return None
    donation = donation_row_write(campaign, donation_id, state, tx_hash=tx_hash, donor=donor, donor_name=donor_name,
                             show_name=show_name, payment_id=payment)
    progress_after_commit(campaign.slug)
    return donation


# --- matching ------------------------------------------------------------------------------------

def _sponsor_account(membership: Membership, from_account: str | None) -> str:
    if from_account:
        return from_account
    if membership.organisation.org_type == OrgType.HOUSEHOLD:
        return accounts.household_account_key(membership.organisation)
    raise CharityError(_("Choose the account the matching coins come from."))


def match_pledge(*, user, campaign: Campaign | str, amount_wh: int, idempotency_key: str, sponsor_name: str = "",
                 from_account: str | None = None, organisation: Organisation | None = None) -> MatchPledge:
    """A sponsor moves ``amount_wh`` into ``match:<slug>``; later donations are matched 1:1 until
    it is used up. One sponsor per campaign, who may top up (the row then adds the amount)."""
    campaign = campaign_of(campaign)
    check_key(idempotency_key)
    amount_wh = check_wh(amount_wh)
    membership = holder_membership(user, organisation)
    source = _sponsor_account(membership, from_account)
    existing = MatchPledge.objects.filter(campaign=campaign).first()
    key = f"charity-pledge:{idempotency_key}"
    first = first_try(membership.identity, key)
    if first:
        if campaign.status != CampaignStatus.OPEN:
            raise CharityError(_("This campaign is no longer taking pledges."))
        if existing is not None and existing.sponsor_id != membership.organisation_id:
            raise CharityError(_("This campaign already has a sponsor."))
        require_covered(source, amount_wh, membership.organisation.name)
    result = invoke(membership.identity, "pledge", {"campaign": campaign.slug, "amount": amount_wh, "from": source},
                    key)
    if result.replayed and existing is not None:
        return existing
    name = (sponsor_name or membership.organisation.name).strip()[:120]
    with transaction.atomic():
        pledge, created = MatchPledge.objects.select_for_update().get_or_create(
            campaign=campaign, defaults={"sponsor": membership.organisation, "sponsor_name": name, "cap_wh": amount_wh,
                                         "tx_hash": result.tx_hash})
        if not created and pledge.tx_hash != result.tx_hash:
            pledge.cap_wh += amount_wh
            pledge.tx_hash = result.tx_hash
            pledge.save(update_fields=["cap_wh", "tx_hash"])
    progress_after_commit(campaign.slug)
    return pledge


# --- disbursement --------------------------------------------------------------------------------

def _disburse(campaign: Campaign, identity, disbursement_id: str, key: str, *, amount_wh: int | None,
              to: list[str] | None, automatic: bool, by=None, now: datetime | None = None) -> Disbursement:
    args: dict[str, Any] = {"campaign": campaign.slug, "disbursement": disbursement_id}
    if amount_wh is not None:
        args["amount"] = amount_wh
    if to:
        args["to"] = sorted(set(to))
    result = invoke(identity, "disburse", args, key, proposed_at=now)
    recorded = disbursement_state(campaign.slug, disbursement_id) or (
        result.result if isinstance(result.result, dict) else {})
    shares = recorded.get("households")
    households = len(shares) if isinstance(shares, (list, dict)) else int(shares or 0)
    try:
        with transaction.atomic():
            disbursement, _created = Disbursement.objects.get_or_create(
                campaign=campaign, disbursement_id=disbursement_id,
                defaults={"total_wh": int(recorded.get("total") or 0), "households": households,
                          "remainder_wh": int(recorded.get("remainder") or 0), "automatic": automatic, "by": by,
                          "tx_hash": result.tx_hash})
    except IntegrityError:
        disbursement = Disbursement.objects.get(campaign=campaign, disbursement_id=disbursement_id)
    progress_after_commit(campaign.slug)
    devices_after_commit(_funded_devices(recorded, to, campaign))
    return disbursement


def _funded_devices(recorded: dict, to: list[str] | None, campaign: Campaign) -> list[str]:
    shares = recorded.get("households")
    if isinstance(shares, dict):
        return list(shares)
    if isinstance(shares, list):
        return [s["device"] if isinstance(s, dict) else str(s) for s in shares]
    return to or list(campaign.beneficiaries.values_list("device__public_id", flat=True))


def disbursement_make(*, user, campaign: Campaign | str, idempotency_key: str, amount_wh: int | None = None,
                      to: list[str] | None = None) -> Disbursement:
    """Charity staff turn the pool (or ``amount_wh`` of it) into funded windows for the
    beneficiaries (or the named subset ``to``), by the campaign's rule."""
    campaign = campaign_of(campaign)
    membership = campaign_staff(user, campaign)
    check_key(idempotency_key)
    if amount_wh is not None:
        amount_wh = check_wh(amount_wh)
    key = f"charity-disburse:{idempotency_key}"
    disbursement_id = "manual-" + short_hash(str(membership.identity.pk), idempotency_key)
    if first_try(membership.identity, key):
        if campaign.status != CampaignStatus.OPEN:
            raise CharityError(_("The campaign has ended; nothing more can be disbursed."))
        held = pool_balance(campaign.slug)
        if held <= 0 or (amount_wh is not None and amount_wh > held):
            raise CharityError(_("The pool holds %(held)s kWh.") % {"held": kwh(held)})
    return _disburse(campaign, membership.identity, disbursement_id, key, amount_wh=amount_wh, to=to,
                     automatic=False, by=user)


def _auto_disburse_every() -> timedelta:
    return timedelta(seconds=getattr(settings, "CHARITY_AUTO_DISBURSE_SECONDS", 3600))


def _inside(now: datetime, start: datetime | None, end: datetime | None) -> bool:
    return start is None or end is None or start <= now < end


def campaigns_disburse_due(*, now: datetime | None = None) -> list[Disbursement]:
    """Automatic disbursement: every open campaign with ``auto_disburse`` inside its window (and
    its trigger period, if any) whose pool gives some beneficiary a whole Wh by its rule
    disburses the whole pool, at most once per period (CHARITY_AUTO_DISBURSE_SECONDS): the
    disbursement id names the period, so a second run in it finds it done (or replays, if the
    row was not written). Returns the disbursements made by this run."""
    now = now or timezone.now()
    every = int(_auto_disburse_every().total_seconds())
    period = int(now.timestamp()) // every * every
    done = []
    campaigns = Campaign.objects.select_related("charity").filter(
        status=CampaignStatus.OPEN, auto_disburse=True, starts_at__lte=now, ends_at__gt=now).order_by("id")
    for campaign in campaigns:
        if not _inside(now, campaign.trigger_starts_at, campaign.trigger_ends_at):
            continue
        disbursement_id = f"auto-{period}"
        if Disbursement.objects.filter(campaign=campaign, disbursement_id=disbursement_id).exists():
            continue
        listed = world_state(DEVICES_NAMESPACE, [beneficiaries_key(campaign.slug)]).get(
            beneficiaries_key(campaign.slug)) or {}
        if not sum(shares_by_rule(campaign.rule, pool_balance(campaign.slug), listed, campaign.cap_wh).values()):
            continue  # nothing to give (an empty pool, everyone at the cap): no refusal to record
        try:
            done.append(_disburse(campaign, automation_identity(campaign.charity), disbursement_id,
                                  f"charity-disburse:{campaign.slug}:{disbursement_id}", amount_wh=None, to=None,
                                  automatic=True, now=now))
        except CharityError as exc:
            logger.info("campaign %s: automatic disbursement refused: %s", campaign.slug, exc)
    return done
