"""The simulator pages' meters: each tick the page asks for is the next signed cumulative
reading of the device's simulated meter, sent through the real meter path.

The meter is the one every simulation plays (``iot_gateway.fleet.simulated_meter``: the
device's sealed key, resumed at the registers the ledger last accepted); its reading is handed
to the gateway's ingestion (``iot_gateway.services.readings_ingest``, the same call its HTTP
endpoint makes), which turns it into ``consumer.burn`` / ``generator.mint``, audits it and
announces the new state after commit. The ledger verifies the meter's signature; nothing here
can mint or burn without it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import Membership
from iot_gateway.fleet import last_registers as fleet_registers
from iot_gateway.fleet import simulated_meter
from iot_gateway.models import ReceivedVia
from iot_gateway.services import readings_ingest
from ledger.models import OrgType
from meters.models import Device, DeviceKind, SimulatedMeterKey

logger = logging.getLogger(__name__)

# One tick of the demo is a second of a sped-up day: a bulb burns 20 Wh, a solar array makes
# 250 Wh. A test (or the page) may ask for a different amount within MAX_TICK_WH.
DEFAULT_TICK_WH = {DeviceKind.PRODUCER_METER: 250}
CONSUMER_TICK_WH = 20
MAX_TICK_WH = 10_000

# Ticks of one device are serialised in this process so two browser tabs do not race for the
# same counter (the ledger would refuse the loser anyway, as a replayed counter).
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class SimulatorError(Exception):
    pass


@dataclass(frozen=True)
class Tick:
    device: Device
    counter: int
    import_wh: int
    export_wh: int
    ok: bool
    reason: str
    result: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"public_id": self.device.public_id, "ok": self.ok, "reason": self.reason, "counter": self.counter,
                "import_wh": self.import_wh, "export_wh": self.export_wh, "result": self.result}


def simulators_open_to_everyone() -> bool:
    """In the embedded demo every signed-in user may play the simulated meters; elsewhere
    only utility staff and members of the device's owner organisation."""
    value = getattr(settings, "GRIDCOIN_SIMULATORS_OPEN", None)
    return settings.ENVIRONMENT == "embedded" if value is None else bool(value)


def may_simulate(user, device: Device) -> bool:
    if not user.is_authenticated:
        return False
    if simulators_open_to_everyone():
        return True
    memberships = Membership.objects.filter(user=user, user__is_active=True)
    return (memberships.filter(organisation_id=device.organisation_id).exists()
            or memberships.filter(organisation__org_type=OrgType.UTILITY).exists())


def is_simulated(device: Device) -> bool:
    return SimulatedMeterKey.objects.filter(device=device).exists()


def last_registers(device: Device) -> dict[str, int]:
    """The counter and registers of the last reading the ledger accepted from this meter."""
    return fleet_registers([device])[device.public_id]


def meter_tick(*, device: Device, wh: int | None = None, now: datetime | None = None) -> Tick:
    """Advance the simulated meter by ``wh`` (import for consumers, export for producers) and
    send the signed cumulative reading through the meter path."""
    if not is_simulated(device):
        raise SimulatorError(f"{device.public_id} is a real meter; only simulated meters can be ticked.")
    if device.is_retired:
        raise SimulatorError(f"{device.public_id} is retired.")
    step = DEFAULT_TICK_WH.get(device.kind, CONSUMER_TICK_WH) if wh is None else wh
    if isinstance(step, bool) or not isinstance(step, int) or not 0 < step <= MAX_TICK_WH:
        raise SimulatorError(f"A tick is 1 to {MAX_TICK_WH} Wh.")
    with _locks_guard:
        lock = _locks.setdefault(device.public_id, threading.Lock())
    with lock:
        meter = simulated_meter(device)
        # A tick is energy that flowed: whether the device could pay for it is the ledger's
        # call (a shortfall turns the relay off), so the page's meter keeps its relay on.
        if meter.is_producer:
            meter.add_energy(export_wh=step)
        else:
            meter.add_energy(import_wh=step)
        message = meter.next_reading(now or timezone.now())
        import_wh, export_wh = meter.import_wh, meter.export_wh
        # In process, as the gateway's HTTP endpoint would: the embedded default needs no broker.
        (outcome,) = readings_ingest([message], received_via=ReceivedVia.HTTP)
    ok, reason, result = outcome.ok and outcome.status == "applied", outcome.reason, outcome.result or {}
    if not ok:
        logger.info("simulated reading of %s refused: %s", device.public_id, reason)
    return Tick(device=device, counter=message["counter"], import_wh=import_wh, export_wh=export_wh, ok=ok,
                reason=reason, result=result)
