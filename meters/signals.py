"""What ``meters`` tells other apps (it imports none of them): ``devices_observed`` is sent by
``live`` after a change has committed, with ``observations``, a list of ``DeviceObservation``:
every device whose state was just announced (funding, a gateway batch, a window settling)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import Signal


@dataclass(frozen=True)
class DeviceObservation:
    public_id: str
    spendable_wh: int
    relay: str  # "on" | "off"
    import_wh: int | None = None  # the latest reading's import register, when a reading caused it
    reading_at: datetime | None = None


devices_observed = Signal()
