"""Reads of ``notifications``: a user's list and unread count, their preferences, and who is
told about a device or a payment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from accounts.models import Membership
from ledger.keys import ENERGY
from ledger.models import Account, OrgType
from ledger.selectors import device_windows
from meters.models import Device

from . import texts
from .models import Channel, Kind, Notification, Preference, PushSubscription

LIST_LENGTH = 50


@dataclass(frozen=True)
class NotificationView:
    id: int
    kind: str
    title: str
    body: str
    url: str
    created_at: Any
    unread: bool


def notifications_for(user, *, limit: int = LIST_LENGTH) -> list[NotificationView]:
    rows = Notification.objects.filter(user=user, in_app=True).order_by("-created_at", "-id")[:limit]
    return [NotificationView(n.pk, n.kind, texts.title(n.kind, n.data), texts.body(n.kind, n.data), n.url,
                             n.created_at, n.read_at is None) for n in rows]


def unread_count(user) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).count()


def disabled_channels(user_ids: Iterable[int], kind: str) -> dict[int, set[str]]:
    """{user id: channels turned off for ``kind``} (no row: every channel on)."""
    out: dict[int, set[str]] = {}
    for user_id, channel in Preference.objects.filter(user_id__in=list(user_ids), kind=kind,
                                                      enabled=False).values_list("user_id", "channel"):
        out.setdefault(user_id, set()).add(channel)
    return out


def preferences_for(user) -> dict[tuple[str, str], bool]:
    """{(kind, channel): enabled} for every kind and channel."""
    off = {(k, c) for k, c in Preference.objects.filter(user=user, enabled=False).values_list("kind", "channel")}
    return {(kind, channel): (kind, channel) not in off for kind in Kind.values for channel in Channel.values}


def push_subscriptions_of(user_id: int) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(user_id=user_id).order_by("id")


def _members_of(organisation_ids: Iterable[int]) -> set[int]:
    """Users of the household organisations among ``organisation_ids``: residents. A utility's
    or a charity's staff are not told about every street light they run or fund."""
    return set(Membership.objects.filter(organisation_id__in=list(organisation_ids),
                                         organisation__org_type=OrgType.HOUSEHOLD)
               .values_list("user_id", flat=True))


def device_recipients(device: Device) -> set[int]:
    """The device's owners and the residents whose coins fund it in a window that has not
    been settled yet (``resident.fund`` keeps each window's funding account on the ledger)."""
    funders = {w["funder"] for w in device_windows([device.public_id]).get(device.public_id, [])
               if w.get("funder")}
    orgs = {device.organisation_id}
    if funders:
        orgs |= set(Account.objects.filter(key__in=funders, asset_id=ENERGY).values_list("organisation_id", flat=True))
    return _members_of(orgs)


def payment_recipients(payer_msp_id: str) -> set[int]:
    """The residents of the household that paid."""
    return set(Membership.objects.filter(organisation__msp_id=payer_msp_id, organisation__org_type=OrgType.HOUSEHOLD)
               .values_list("user_id", flat=True))


def users_by_id(user_ids: Iterable[int]) -> dict[int, Any]:
    return {u.pk: u for u in get_user_model().objects.filter(pk__in=list(user_ids))}


