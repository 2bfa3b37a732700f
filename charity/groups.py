"""The write path of group funding: neighbours pool coins in ``escrow:<slug>`` (owned by the
utility) to light a public device for a window. ``charity-pool.contribute`` funds the device
when the goal is reached (one funded window per contributor); past the deadline without it,
``group_expire`` refunds everyone in coins. Re-exported by ``charity.services``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import services as accounts
from ledger import services as ledger
from ledger.keys import ENERGY, escrow_account
from ledger.models import Account, AccountKind, Organisation, OrgType
from ledger.units import kwh
from meters.models import PUBLIC_KINDS, Device

from .acting import check_key, check_wh, first_try, holder_membership
from .chain import CharityError, attempt_key, automation_identity, group_state, invoke, iso, short_hash
from .models import Contribution, GroupFunding, GroupStatus

logger = logging.getLogger(__name__)

MAX_WINDOW = timedelta(days=7)


def _escrow_owner(device: Device) -> Organisation:
    """The utility that holds the escrow: the device's owner when it is one, else the network's."""
    if device.organisation.org_type == OrgType.UTILITY:
        return device.organisation
    utility = Organisation.objects.filter(org_type=OrgType.UTILITY).order_by("id").first()
    if utility is None:
        raise CharityError(_("There is no utility to hold the escrow."))
    return utility


def _announce(public_id: str) -> None:
    from meters import live as meters_live

    transaction.on_commit(partial(meters_live.device_state_changed, public_id))


def group_create(*, user, title: str, device: Device | str, goal_wh: int, deadline: datetime,
                 window_start: datetime, window_end: datetime, slug: str = "", idempotency_key: str = "",
                 organisation: Organisation | None = None) -> GroupFunding:
    """Start collecting for a public device's window: open ``escrow:<slug>`` (owned by the
    utility), ``charity-pool.group_open`` as the organiser, then the GroupFunding row. Without a
    ``slug`` one is made from the title and the form's ``idempotency_key``, so the same form
    submitted twice starts one group funding."""
    membership = holder_membership(user, organisation)
    if not slug:
        check_key(idempotency_key)
        base = slugify(title or "")[:40].strip("-") or "group"
        slug = f"{base}-{short_hash(str(membership.identity.pk), idempotency_key, length=8)}"
    existing = GroupFunding.objects.filter(slug=slug).first()
    if existing is not None:
        if existing.organiser_id == membership.organisation_id and existing.opened_tx:
            return existing
        raise CharityError(_("This web address is already used by another group funding; choose another."))
    if not slug or slugify(slug) != slug or len(slug) > 60:
        raise CharityError(_("The web address may hold only lower-case letters, digits and hyphens (at most 60)."))
    title = (title or "").strip()
    if not title or len(title) > 140:
        raise CharityError(_("Give the group funding a title of at most 140 characters."))
    if not isinstance(device, Device):
        found = Device.objects.select_related("organisation").filter(public_id=device).first()
        if found is None:
            raise CharityError(_("There is no device %(id)s.") % {"id": device})
        device = found
    if device.kind not in PUBLIC_KINDS or device.is_retired:
        raise CharityError(_("Only a public device in service can be funded by a group."))
    if isinstance(goal_wh, bool) or not isinstance(goal_wh, int) or goal_wh <= 0:
        raise CharityError(_("The goal must be a positive number of Wh."))
    now = timezone.now()
    if deadline <= now:
        raise CharityError(_("The deadline must be in the future."))
    if window_end <= window_start or window_end - window_start > MAX_WINDOW:
        raise CharityError(_("The window must end after it starts and last at most 7 days."))
    if window_end <= deadline:
        raise CharityError(_("The window must end after the deadline."))
    _owner = _escrow_owner(device)
    try:
        ledger.account_open(key=escrow_account(slug), asset=ENERGY, organisation=_owner, kind=AccountKind.ESCROW)
    except ledger.LedgerError:
        raise CharityError(_("This web address is already used by another group funding; choose another.")) from None
    result = invoke(membership.identity, "group_open",
                    {"group": slug, "device": device.public_id, "goal": goal_wh, "deadline": iso(deadline),
                     "window_start": iso(window_start), "window_end": iso(window_end)},
                    f"charity-group-open:{slug}")
    try:
        with transaction.atomic():
            return GroupFunding.objects.create(
                slug=slug, device=device, organiser=membership.organisation, title=title, goal_wh=goal_wh,
                deadline=deadline, window_start=window_start, window_end=window_end, opened_tx=result.tx_hash,
                created_by=user)
    except IntegrityError:
        return GroupFunding.objects.get(slug=slug)


def _group(group: GroupFunding | str) -> GroupFunding:
    if isinstance(group, GroupFunding):
        return group
    found = GroupFunding.objects.select_related("device").filter(slug=group).first()
    if found is None:
        raise CharityError(_("There is no group funding %(slug)s.") % {"slug": group})
    return found


def _status_from_ledger(group: GroupFunding, tx_hash: str) -> GroupFunding:
    status = (group_state(group.slug) or {}).get("status")
    if status in GroupStatus.values and status != group.status:
        group.status = status
        group.settled_tx = tx_hash
        group.save(update_fields=["status", "settled_tx"])
        if status == GroupStatus.FUNDED:
            _announce(group.device.public_id)
    return group


def group_contribute(*, user, group: GroupFunding | str, amount_wh: int, idempotency_key: str,
                     organisation: Organisation | None = None) -> Contribution:
    """Move ``amount_wh`` of the user's household coins into the group's escrow
    (``charity-pool.contribute``); the contribution that reaches the goal funds the device."""
    group = _group(group)
    check_key(idempotency_key)
    amount_wh = check_wh(amount_wh)
    membership = holder_membership(user, organisation)
    source = accounts.household_account_key(membership.organisation)
    key = f"charity-contribute:{idempotency_key}"
    contribution_id = "give-" + short_hash(str(membership.identity.pk), idempotency_key)
    if first_try(membership.identity, key):
        if group.status != GroupStatus.OPEN or timezone.now() >= group.deadline:
            raise CharityError(_("This group funding is no longer collecting."))
        account = Account.objects.filter(key=source, asset_id=ENERGY).first()
        if account is None or amount_wh > account.balance:
            raise CharityError(_("Not enough coins: %(name)s holds %(held)s kWh, you asked to give %(asked)s kWh.")
                               % {"name": membership.organisation.name, "held": kwh(account.balance if account else 0),
                                  "asked": kwh(amount_wh)})
    result = invoke(membership.identity, "contribute",
                    {"group": group.slug, "contribution": contribution_id, "amount": amount_wh, "from": source}, key)
    with transaction.atomic():
        contribution, _created = Contribution.objects.get_or_create(
            group=group, contribution_id=contribution_id,
            defaults={"contributor": user, "account": source, "wh": amount_wh, "tx_hash": result.tx_hash})
        _status_from_ledger(group, result.tx_hash)
    return contribution


def contribution_record_paid(*, group: GroupFunding | str, contribution_id: str, account: str, wh: int,
                             tx_hash: str, contributor=None) -> Contribution:
    """Record a household's fiat contribution credited through ``charity-pool.contribute_paid``
    (called by the payments path inside the crediting transaction; idempotent)."""
    group = _group(group)
    with transaction.atomic():
        contribution, _created = Contribution.objects.get_or_create(
            group=group, contribution_id=contribution_id,
            defaults={"contributor": contributor, "account": account, "wh": wh, "tx_hash": tx_hash})
        _status_from_ledger(group, tx_hash)
    return contribution


def group_expire(*, group: GroupFunding | str, now: datetime | None = None) -> GroupFunding:
    """Past its deadline without reaching the goal: every contributor gets their coins back
    (``charity-pool.group_expire`` as the utility's automation)."""
    group = _group(group)
    if group.status != GroupStatus.OPEN:
        return group
    if (now or timezone.now()) < group.deadline:
        raise CharityError(_("The group funding collects until %(deadline)s.") % {"deadline": group.deadline.isoformat()})
    tx_hash = ""
    if (group_state(group.slug) or {}).get("status", "open") == "open":  # else the ledger moved on: catch up
        owner = Account.objects.select_related("organisation").get(key=escrow_account(group.slug), asset_id=ENERGY)
        identity = automation_identity(owner.organisation)
        tx_hash = invoke(identity, "group_expire", {"group": group.slug},
                         attempt_key(identity, f"charity-group-expire:{group.slug}"), proposed_at=now).tx_hash
    with transaction.atomic():
        _status_from_ledger(group, tx_hash)
        if group.status == GroupStatus.REFUNDED:
            group.contributions.update(refunded=True)
    return group


def groups_expire_due(*, now: datetime | None = None) -> list[GroupFunding]:
    """Expire every open group funding past its deadline (the expiry task)."""
    now = now or timezone.now()
    expired = []
    for group in GroupFunding.objects.select_related("device").filter(status=GroupStatus.OPEN, deadline__lte=now):
        try:
            expired.append(group_expire(group=group, now=now))
        except CharityError as exc:
            logger.warning("group funding %s: expiry refused: %s", group.slug, exc)
    return expired
