"""The write path of ``notifications``: record who is told about an event (once per user and
event), their read marks, preferences and push subscriptions, notice devices changing level,
and send a delivery on its channel (called by the Celery task).

Events come in two ways. A payment's credit is announced by ``payments`` inside the crediting
transaction (``notify_payment_credited``). A device's state is observed after every change
that ``meters`` announces (funding, a gateway batch, a window settling): ``devices_observe``
compares it with the level the device was last seen at (``DeviceWatch``) and a change of level
is the event. Comparing with the ledger's state rather than reacting to each reading means an
observation that is missed (a crash after commit) is caught up by the next one, and one made
twice finds the level already changed and says nothing.

"Low" is: fewer than GRIDCOIN_NOTIFY_LOW_WH spendable Wh (default 500 Wh), or less than
GRIDCOIN_NOTIFY_LOW_MINUTES (default 60) of use at the device's recent rate, estimated from
its import register over at least RATE_SAMPLE (15 min). "Off" is the relay off (no coins it
may use now). A device is told low once per drop: it is low again only after being funded
back above the mark. Its first observation only records its level.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.models import OrgType
from meters.models import Device
from meters.signals import DeviceObservation

from . import push, selectors
from .models import (
    OUTBOUND_CHANNELS,
    Channel,
    Delivery,
    DeviceLevel,
    DeviceWatch,
    Kind,
    Notification,
    Preference,
    PushSubscription,
)
from .sending import (  # noqa: F401  (the task's entry points, gathered with the rest of the write path)
    DELIVERY_CLAIM_TIMEOUT,
    MAX_ATTEMPTS,
    DeliveryRetry,
    deliveries_resend_due,
    delivery_enqueuer,
    delivery_send,
    resend_wait,
)

logger = logging.getLogger(__name__)

RATE_SAMPLE = timedelta(minutes=15)
RETAIL_SALE = "retail-seller"  # the chaincode that sells coins to a resident


class NotificationError(Exception):
    """A request the user made cannot go ahead; the message is shown to them."""


# --- recording events -------------------------------------------------------------------------

_NOTIFICATION_COLUMNS = "user_id, kind, event_key, data, url, in_app, created_at"
_VALUES = "(" + ", ".join(["%s"] * len(_NOTIFICATION_COLUMNS.split(","))) + ")"
_ON_CONFLICT = " ON CONFLICT (user_id, event_key) DO NOTHING RETURNING id, user_id"


@transaction.atomic
def notifications_create(*, kind: str, event_key: str, user_ids: Iterable[int] = (),
                         organisation_ids: Iterable[int] = (), data: dict[str, Any],
                         url: str = "") -> list[Notification]:
    """One notification per user (``user_ids`` and the members of ``organisation_ids``) for the
    event ``event_key``, with a delivery per channel they can be reached on and have not turned
    off, each sent by a task after commit. A user who already has this event (it was processed
    before, or concurrently) gets nothing new. Returns the new notifications.

    It runs inside every credited payment's transaction, so on PostgreSQL it is one statement
    (who, on which channels, and the insert that skips users who have the event already), and
    one more for the deliveries when someone is told by e-mail or push. ON CONFLICT DO NOTHING
    RETURNING returns only the rows this call inserted (the ORM's ignore_conflicts returns
    none), so a concurrent copy of the event enqueues nothing twice."""
    query = selectors.recipients_sql(kind, user_ids=user_ids, organisation_ids=organisation_ids)
    if query is None:
        return []
    now, text = timezone.now(), json.dumps(data)
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            recipients_query, params = query
            cursor.execute(
                f"WITH r AS ({recipients_query}), ins AS (INSERT INTO {table} ({_NOTIFICATION_COLUMNS}) "
                "SELECT r.user_id, %s, %s, %s::jsonb, %s, r.in_app, %s FROM r WHERE r.in_app OR r.email OR r.push "
                # ids in user order, as on SQLite: the same event reads the same way everywhere
                f"ORDER BY r.user_id{_ON_CONFLICT}) SELECT ins.id, ins.user_id, r.in_app, r.email, r.push FROM ins "
                "JOIN r ON r.user_id = ins.user_id", [*params, kind, event_key, text, url, now])
            inserted = {pk: (user_id, selectors.channels_of(*flags)) for pk, user_id, *flags in cursor.fetchall()}
        else:
            cursor.execute(*query)
            wanted = {pk: channels for pk, *flags in cursor.fetchall() if (channels := selectors.channels_of(*flags))}
            inserted = {}
            if wanted:
                rows = [(user_id, kind, event_key, text, url, Channel.IN_APP in channels, now)
                        for user_id, channels in sorted(wanted.items())]
                cursor.execute(f"INSERT INTO {table} ({_NOTIFICATION_COLUMNS}) VALUES "
                               + ", ".join([_VALUES] * len(rows)) + _ON_CONFLICT,
                               [value for row in rows for value in row])
                inserted = {pk: (user_id, wanted[user_id]) for pk, user_id in cursor.fetchall()}
    created = [Notification(pk=pk, user_id=user_id, kind=kind, event_key=event_key, data=data, url=url,
                            in_app=Channel.IN_APP in channels, created_at=now)
               for pk, (user_id, channels) in sorted(inserted.items())]
    outbound = [Delivery(notification_id=pk, channel=channel) for pk, (_, channels) in sorted(inserted.items())
                for channel in OUTBOUND_CHANNELS if channel in channels]
    for delivery in Delivery.objects.bulk_create(outbound) if outbound else []:
        transaction.on_commit(delivery_enqueuer(delivery.pk), robust=True)
    return created


def notify_payment_credited(*, payment: int, chaincode: str, payer_organisation: int, payer_type: str,
                            amount: int, currency: str, result: dict[str, Any]) -> list[Notification]:
    """A resident's coin purchase was credited: tell the paying household."""
    if chaincode != RETAIL_SALE or payer_type != OrgType.HOUSEHOLD:
        return []
    wh = result.get("delivered", result.get("wh"))
    data = {"payment": payment, "wh": wh if isinstance(wh, int) else None, "amount": amount, "currency": currency}
    return notifications_create(kind=Kind.PAYMENT_CREDITED, event_key=f"payment-credited:{payment}",
                                organisation_ids=[payer_organisation], data=data, url=reverse("frontend:wallet"))


# --- devices changing level -------------------------------------------------------------------

def low_threshold_wh(rate_wh_per_hour: int) -> int:
    return max(settings.GRIDCOIN_NOTIFY_LOW_WH, rate_wh_per_hour * settings.GRIDCOIN_NOTIFY_LOW_MINUTES // 60)


def level_of(*, spendable_wh: int, relay: str, rate_wh_per_hour: int, current: str | None, low_from_wh: int) -> str:
    if relay != "on" or spendable_wh <= 0:
        return DeviceLevel.OFF
    if spendable_wh < low_threshold_wh(rate_wh_per_hour):
        return DeviceLevel.LOW
    # Still draining from where it went low (the rate estimate may have moved the mark): low
    # until it is funded back above it, so one drop is told once.
    if current == DeviceLevel.LOW and spendable_wh <= low_from_wh:
        return DeviceLevel.LOW
    return DeviceLevel.OK


@dataclass(frozen=True)
class _Sample:
    import_wh: int | None
    at: datetime | None
    rate: int


def _resample(watch: DeviceWatch, observation: DeviceObservation) -> _Sample:
    """The register sample and rate after this observation (unchanged without a reading)."""
    current = _Sample(watch.sample_import_wh, watch.sample_at, watch.rate_wh_per_hour)
    if observation.import_wh is None or observation.reading_at is None:
        return current
    if watch.sample_at is None or watch.sample_import_wh is None or observation.import_wh < watch.sample_import_wh:
        return _Sample(observation.import_wh, observation.reading_at, watch.rate_wh_per_hour)
    elapsed = (observation.reading_at - watch.sample_at).total_seconds()
    if elapsed < RATE_SAMPLE.total_seconds():
        return current
    rate = int((observation.import_wh - watch.sample_import_wh) * 3600 // elapsed)
    return _Sample(observation.import_wh, observation.reading_at, rate)


def devices_observe(*, observations: list[DeviceObservation], now: datetime | None = None) -> list[Notification]:
    """Compare each observed device with the level it was last seen at; a device that went low
    (from ok) or off (from ok or low) notifies its owners and current funders once. The level
    is changed by compare-and-swap, so of two observers of the same change one tells it.
    Called for every gateway batch: a batch that changes no level costs one query."""
    now = now or timezone.now()
    by_id = {o.public_id: o for o in observations}
    if not by_id:
        return []
    watches = {w.public_id: w for w in DeviceWatch.objects.filter(device__public_id__in=list(by_id))
               .annotate(public_id=F("device__public_id"))}
    missing = set(by_id) - set(watches)
    changes = [(watch, by_id[public_id], change) for public_id, watch in watches.items()
               if (change := _watch_change(watch, by_id[public_id], now)) is not None]
    if not missing and not changes:
        return []
    with transaction.atomic():
        if missing:
            _baseline(missing, by_id, now)
        return _changes_apply(changes, now)


def _watch_change(watch: DeviceWatch, observation: DeviceObservation, now: datetime) -> dict[str, Any] | None:
    """The columns this observation changes on the device's watch (None: nothing)."""
    sample = _resample(watch, observation)
    level = level_of(spendable_wh=observation.spendable_wh, relay=observation.relay, rate_wh_per_hour=sample.rate,
                     current=watch.level, low_from_wh=watch.low_from_wh)
    moved = level != watch.level
    if not moved and sample == _Sample(watch.sample_import_wh, watch.sample_at, watch.rate_wh_per_hour):
        return None
    change: dict[str, Any] = {"level": level, "observed_at": now, "sample_import_wh": sample.import_wh,
                              "sample_at": sample.at, "rate_wh_per_hour": sample.rate}
    if moved and level == DeviceLevel.LOW:
        change["low_from_wh"] = observation.spendable_wh
        if watch.level == DeviceLevel.OK:
            change["low_seq"] = watch.low_seq + 1
    elif moved and level == DeviceLevel.OFF:
        change["off_seq"] = watch.off_seq + 1
    return change


SAMPLE_FIELDS = ["observed_at", "sample_import_wh", "sample_at", "rate_wh_per_hour"]


def _changes_apply(changes: list[tuple[DeviceWatch, DeviceObservation, dict[str, Any]]],
                   now: datetime) -> list[Notification]:
    events: list[tuple[str, int, str, DeviceObservation]] = []  # (kind, device pk, event key, observation)
    # Most changes only move a device's rate sample (each device every RATE_SAMPLE): one UPDATE for
    # all of them, since a gateway batch can roll over a thousand samples at once. A sample raced
    # by another observer is still a fair rate; levels and counters are not written here.
    resampled, moved = [], []
    for watch, observation, change in changes:
        if change["level"] == watch.level:
            for field in SAMPLE_FIELDS:
                setattr(watch, field, change[field])
            resampled.append(watch)
        else:
            moved.append((watch, observation, change))
    DeviceWatch.objects.bulk_update(resampled, SAMPLE_FIELDS)
    for watch, observation, change in moved:
        won = DeviceWatch.objects.filter(pk=watch.pk, level=watch.level, low_seq=watch.low_seq, off_seq=watch.off_seq,
                                         observed_at__lte=now).update(**change)
        if not won:  # another observer changed it first: theirs is the event
            continue
        if "low_seq" in change:
            events.append((Kind.DEVICE_LOW, watch.pk, f"device-low:{watch.public_id}:{change['low_seq']}", observation))
        elif "off_seq" in change:
            events.append((Kind.DEVICE_OFF, watch.pk, f"device-off:{watch.public_id}:{change['off_seq']}", observation))
    created: list[Notification] = []
    devices = Device.objects.select_related("organisation").in_bulk([pk for _, pk, _, _ in events]) if events else {}
    for kind, pk, event_key, observation in events:
        device = devices[pk]
        data = {"device": device.public_id, "device_name": device.name, "spendable_wh": observation.spendable_wh}
        created += notifications_create(kind=kind, event_key=event_key,
                                        organisation_ids=selectors.device_recipients(device),
                                        data=data, url=reverse("frontend:device", args=[device.public_id]))
    return created


def _baseline(public_ids: set[str], by_id: dict[str, DeviceObservation], now: datetime) -> None:
    """A device seen for the first time: record its level, tell nothing (no change was seen)."""
    rows = []
    for pk, public_id in Device.objects.filter(public_id__in=list(public_ids)).values_list("pk", "public_id"):
        o = by_id[public_id]
        level = level_of(spendable_wh=o.spendable_wh, relay=o.relay, rate_wh_per_hour=0, current=None, low_from_wh=0)
        rows.append(DeviceWatch(device_id=pk, level=level, observed_at=now, sample_import_wh=o.import_wh,
                                sample_at=o.reading_at if o.import_wh is not None else None,
                                low_from_wh=o.spendable_wh if level == DeviceLevel.LOW else 0))
    DeviceWatch.objects.bulk_create(rows, ignore_conflicts=True)


# --- what a user does -------------------------------------------------------------------------

@transaction.atomic
def notification_mark_read(*, user, notification_id: int) -> bool:
    """Mark one of the user's notifications read; False if it is not theirs (or not there)."""
    found = Notification.objects.filter(pk=notification_id, user=user).first()
    if found is None:
        return False
    if found.read_at is None:
        Notification.objects.filter(pk=found.pk, read_at__isnull=True).update(read_at=timezone.now())
    return True


@transaction.atomic
def notifications_mark_all_read(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


@transaction.atomic
def preferences_set(*, user, enabled: set[tuple[str, str]]) -> None:
    """Turn on exactly the (kind, channel) pairs in ``enabled``, every other one off."""
    unknown = {pair for pair in enabled if pair[0] not in Kind.values or pair[1] not in Channel.values}
    if unknown:
        raise NotificationError(_("Unknown notification choice."))
    for kind in Kind.values:
        for channel in Channel.values:
            Preference.objects.update_or_create(user=user, kind=kind, channel=channel,
                                                defaults={"enabled": (kind, channel) in enabled})


_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def _key_bytes(value: Any, length: int, name: str) -> str:
    if not isinstance(value, str) or not _B64URL.match(value) or len(value) > 200:
        raise NotificationError(_("The subscription's %(name)s key is not base64url.") % {"name": name})
    raw = push.b64url_decode(value.rstrip("="))
    if len(raw) != length or (name == "p256dh" and raw[0] != 4):
        raise NotificationError(_("The subscription's %(name)s key has the wrong length.") % {"name": name})
    return value.rstrip("=")


def _known_push_service(endpoint: str) -> bool:
    allowed = settings.GRIDCOIN_PUSH_SERVICE_HOSTS
    if not allowed:
        return True
    host = (urlsplit(endpoint).hostname or "").lower()
    return any(host.endswith(entry) if entry.startswith(".") else host == entry for entry in allowed)


@transaction.atomic
def push_subscription_save(*, user, endpoint: Any, p256dh: Any, auth: Any) -> PushSubscription:
    """Keep a browser's subscription for ``user`` (a browser that signs in as someone else
    moves its subscription to them)."""
    if not isinstance(endpoint, str) or len(endpoint) > 1000:
        raise NotificationError(_("The subscription has no endpoint."))
    secure = endpoint.startswith("https://")
    if not secure and (settings.PRODUCTION or not endpoint.startswith("http://")):
        raise NotificationError(_("A push endpoint must be an https:// URL."))
    if not _known_push_service(endpoint):
        raise NotificationError(_("This browser's push service is not one GridCoin sends to."))
    p256dh, auth = _key_bytes(p256dh, 65, "p256dh"), _key_bytes(auth, 16, "auth")
    subscription, _created = PushSubscription.objects.update_or_create(endpoint=endpoint,
                                                                defaults={"user": user, "p256dh": p256dh, "auth": auth})
    return subscription


@transaction.atomic
def push_subscription_delete(*, user, endpoint: Any) -> bool:
    if not isinstance(endpoint, str):
        return False
    deleted, _by_model = PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()
    return bool(deleted)
