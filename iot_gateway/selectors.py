"""Reads of what the gateway saw: which meters are online now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from meters.models import Device, EnrolmentState

from .models import MeterReading

# A meter that reports over HTTP (or whose MQTT session state is older than its last reading)
# counts as online while its last reading is this recent; meters report every few minutes.
ONLINE_WITHIN = timedelta(minutes=15)


@dataclass(frozen=True)
class MeterPresence:
    device: Device
    online: bool
    last_seen: datetime | None  # the latest of its last reading and its last MQTT status change


@dataclass
class FleetPresence:
    online: list[MeterPresence] = field(default_factory=list)
    offline: list[MeterPresence] = field(default_factory=list)  # includes meters never heard from

    @property
    def total(self) -> int:
        return len(self.online) + len(self.offline)


def meters_presence(now: datetime | None = None) -> FleetPresence:
    """Every enrolled (not retired) device's meter, online or offline now. The most recent thing
    the gateway heard decides: an MQTT status (online while the session lives, offline from its
    last will) unless a reading came after it, then the reading's age (``ONLINE_WITHIN``). One
    query: the last reading per device is an index lookup each."""
    now = now or timezone.now()
    last_reading = (MeterReading.objects.filter(device_id=OuterRef("pk")).order_by("-received_at")
                    .values("received_at")[:1])
    devices = (Device.objects.exclude(state=EnrolmentState.RETIRED).select_related("organisation", "mqtt_status")
               .annotate(last_reading=Subquery(last_reading)).order_by("public_id"))
    fleet = FleetPresence()
    for device in devices:
        status = getattr(device, "mqtt_status", None)
        heard = device.last_reading
        if status is not None and (heard is None or status.changed_at >= heard):
            online, last_seen = status.online, status.changed_at
        else:
            online, last_seen = heard is not None and heard >= now - ONLINE_WITHIN, heard
        (fleet.online if online else fleet.offline).append(MeterPresence(device, online, last_seen))
    return fleet
