"""The simulator pages' meters: each tick the page asks for is the next signed cumulative
reading of a simulated meter, sent through the real meter path.

The reading is signed here with the device's simulated key (``meters.services.simulated_signer``)
exactly as a physical meter would sign it (``ledger.readings.reading_payload``), then handed to
the gateway's ingestion (``iot_gateway.services.readings_ingest``, the same call its HTTP
endpoint makes), which turns it into ``consumer.burn`` / ``generator.mint``, audits it and
announces the new state after commit. The ledger verifies the meter's signature; nothing here
can mint or burn without it."""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import Membership
from iot_gateway.models import ReceivedVia
from iot_gateway.services import readings_ingest
from ledger.models import OrgType, StateEntry
from ledger.readings import reading_payload
from meters.models import Device, DeviceKind, SimulatedMeterKey
from meters.services import simulated_signer

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


def _namespace(device: Device) -> str:
    return "generator" if device.kind == DeviceKind.PRODUCER_METER else "devices"


def last_registers(device: Device) -> dict[str, int]:
    """The last reading the ledger accepted from this meter (world state ``registers/<id>``)."""
    entry = StateEntry.objects.filter(namespace=_namespace(device), key=f"registers/{device.public_id}",
                                      is_deleted=False).first()
    value = (entry.value if entry else None) or {}
    return {"counter": int(value.get("counter", 0)), "import_wh": int(value.get("import_wh", 0)),
            "export_wh": int(value.get("export_wh", 0))}


def signed_reading(device: Device, *, counter: int, import_wh: int, export_wh: int, at: datetime) -> dict[str, Any]:
    """The message a meter publishes: registers, counter, timestamp and its signature."""
    invoker = f"{device.organisation.msp_id}/{device.public_id}"
    payload = reading_payload(device_kind=device.kind, invoker=invoker, counter=counter, import_wh=import_wh,
                              export_wh=export_wh, timestamp=at)
    signature = simulated_signer(device).sign(payload)
    return {"meter": device.public_id, "counter": counter, "import_wh": import_wh, "export_wh": export_wh,
            "timestamp": at.isoformat(), "signature": base64.b64encode(signature).decode()}


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
        last = last_registers(device)
        producer = device.kind == DeviceKind.PRODUCER_METER
        import_wh = last["import_wh"] + (0 if producer else step)
        export_wh = last["export_wh"] + (step if producer else 0)
        message = signed_reading(device, counter=last["counter"] + 1, import_wh=import_wh, export_wh=export_wh,
                                 at=now or timezone.now())
        # In process, as the gateway's HTTP endpoint would: the embedded default needs no broker.
        (outcome,) = readings_ingest([message], received_via=ReceivedVia.HTTP)
    ok, reason, result = outcome.ok and outcome.status == "applied", outcome.reason, outcome.result or {}
    if not ok:
        logger.info("simulated reading of %s refused: %s", device.public_id, reason)
    return Tick(device=device, counter=message["counter"], import_wh=import_wh, export_wh=export_wh, ok=ok,
                reason=reason, result=result)
