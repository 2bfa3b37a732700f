"""Reads of ``notifications``: a user's list and unread count, their preferences, and who is
told about a device or a payment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
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


def recipients_sql(kind: str, *, user_ids: Iterable[int] = (),
                   organisation_ids: Iterable[int] = ()) -> tuple[str, list[Any]] | None:
    """A statement selecting (user_id, in_app, email, push) for ``user_ids`` and the members of
    ``organisation_ids``: whether each is told ``kind`` in the app, by e-mail (they have an
    address) and by push (a browser of theirs is subscribed), less what they turned off. Plain
    SQL, so the service can fold it into its insert: it runs in every credited payment's
    transaction. None when there is nobody to ask about."""
    users, organisations = sorted(set(user_ids)), sorted(set(organisation_ids))
    if not users and not organisations:
        return None
    user_table, membership_table = get_user_model()._meta.db_table, Membership._meta.db_table
    preference_table, push_table = Preference._meta.db_table, PushSubscription._meta.db_table

    def turned_off() -> str:
        return (f"EXISTS (SELECT 1 FROM {preference_table} p WHERE p.user_id = u.id AND p.kind = %s "
                "AND p.channel = %s AND NOT p.enabled)")

    who = []
    if users:
        who.append(f"u.id IN ({', '.join(['%s'] * len(users))})")
    if organisations:
        who.append(f"u.id IN (SELECT m.user_id FROM {membership_table} m WHERE m.organisation_id IN "
                   f"({', '.join(['%s'] * len(organisations))}))")
    sql = (f"SELECT u.id AS user_id, NOT {turned_off()} AS in_app, "
           f"(u.email <> '' AND NOT {turned_off()}) AS email, "
           f"(EXISTS (SELECT 1 FROM {push_table} s WHERE s.user_id = u.id) AND NOT {turned_off()}) AS push "
           f"FROM {user_table} u WHERE u.is_active AND ({' OR '.join(who)})")
    return sql, [kind, Channel.IN_APP, kind, Channel.EMAIL, kind, Channel.PUSH, *users, *organisations]


def channels_of(in_app: Any, email: Any, push: Any) -> frozenset[str]:
    return frozenset(channel for channel, on in [(Channel.IN_APP, in_app), (Channel.EMAIL, email),
                                                 (Channel.PUSH, push)] if on)


def recipient_channels(kind: str, *, user_ids: Iterable[int] = (),
                       organisation_ids: Iterable[int] = ()) -> dict[int, frozenset[str]]:
    """{user id: the channels they are told ``kind`` on} (see ``recipients_sql``); users left
    with no channel are left out."""
    query = recipients_sql(kind, user_ids=user_ids, organisation_ids=organisation_ids)
    if query is None:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(*query)
        rows = cursor.fetchall()
    return {pk: channels for pk, *flags in rows if (channels := channels_of(*flags))}


def preferences_for(user) -> dict[tuple[str, str], bool]:
    """{(kind, channel): enabled} for every kind and channel."""
    off = {(k, c) for k, c in Preference.objects.filter(user=user, enabled=False).values_list("kind", "channel")}
    return {(kind, channel): (kind, channel) not in off for kind in Kind.values for channel in Channel.values}


def push_subscriptions_of(user_id: int) -> QuerySet[PushSubscription]:
    return PushSubscription.objects.filter(user_id=user_id).order_by("id")


def device_recipients(device: Device) -> set[int]:
    """The household organisations told about ``device``: its owner's and those whose coins
    fund it in a window that has not been settled yet (``resident.fund`` keeps each window's
    funding account on the ledger). A utility's or a charity's staff are not told about every
    street light they run or fund."""
    funders = {w["funder"] for w in device_windows([device.public_id]).get(device.public_id, []) if w.get("funder")}
    organisations = {device.organisation_id} if device.organisation.org_type == OrgType.HOUSEHOLD else set()
    if funders:
        organisations |= set(Account.objects.filter(key__in=funders, asset_id=ENERGY,
                                                    organisation__org_type=OrgType.HOUSEHOLD)
                             .values_list("organisation_id", flat=True))
    return organisations
