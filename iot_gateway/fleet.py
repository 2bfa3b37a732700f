"""Simulated meters of registered devices: register the missing ones of a fleet (each with its
own sealed key) and build the ``SimulatedMeter`` of a device, resuming from the registers the
ledger last accepted. ``simulate_meters``, the simulator pages and the tests play devices'
meters through here."""

from __future__ import annotations

from ledger import selectors as ledger_selectors
from ledger import services as ledger
from ledger.keys import ENERGY
from ledger.models import Asset, Organisation, OrgType
from meters.models import Device, DeviceKind, EnrolmentState
from meters.services import device_register_simulated, simulated_signer

from .simulator import SimulatedMeter

FLEET_PREFIX = "SIM"
# (option name, kind, public id part, owner organisation type)
FLEET_KINDS = {
    "households": (DeviceKind.HOUSEHOLD_METER, "HM", OrgType.HOUSEHOLD),
    "street_lights": (DeviceKind.STREET_LIGHT, "SL", OrgType.UTILITY),
    "producers": (DeviceKind.PRODUCER_METER, "PM", OrgType.PRODUCER),
}
FALLBACK_ORGS = {OrgType.HOUSEHOLD: "sim-households", OrgType.UTILITY: "sim-utility", OrgType.PRODUCER: "sim-solar"}


class FleetError(Exception):
    pass


def _owner(org_type: str) -> Organisation:
    org = Organisation.objects.filter(org_type=org_type).order_by("id").first()
    if org is None:
        org = ledger.organisation_create(msp_id=FALLBACK_ORGS[org_type], name=FALLBACK_ORGS[org_type].title(),
                                         org_type=org_type)
    return org


def fleet_devices(*, households: int = 0, street_lights: int = 0, producers: int = 0,
                  prefix: str = FLEET_PREFIX) -> list[Device]:
    """The fleet's devices ``<prefix>-HM-0001``, ``<prefix>-SL-0001``, ``<prefix>-PM-0001``...,
    registering those that are missing (owned by the first organisation of the right type)."""
    if not Asset.objects.filter(code=ENERGY).exists():
        raise FleetError(f"the energy asset {ENERGY} does not exist yet: run `python manage.py seed_demo` first")
    devices = []
    for option, count in (("households", households), ("street_lights", street_lights), ("producers", producers)):
        kind, part, org_type = FLEET_KINDS[option]
        wanted = [f"{prefix}-{part}-{n:04d}" for n in range(1, count + 1)]
        existing = {d.public_id: d for d in Device.objects.filter(public_id__in=wanted)}
        owner = _owner(org_type) if len(existing) < len(wanted) else None
        for public_id in wanted:
            device = existing.get(public_id)
            if device is None:
                device = device_register_simulated(organisation=owner, kind=kind, name=f"Simulated {public_id}",
                                                   public_id=public_id)
            devices.append(device)
    return [d for d in devices if d.state != EnrolmentState.RETIRED]


def last_registers(devices: list[Device]) -> dict[str, dict[str, int]]:
    """The counter and registers of the last reading the ledger accepted from each device's
    meter (all 0 for one that never reported), by public id."""
    found = ledger_selectors.meter_registers([(d.public_id, d.kind) for d in devices])
    return {d.public_id: {name: int((found.get(d.public_id) or {}).get(name, 0))
                          for name in ("counter", "import_wh", "export_wh")} for d in devices}


def simulated_meters(devices: list[Device]) -> list[SimulatedMeter]:
    """One ``SimulatedMeter`` per device (it must have a simulated key), resuming at the last
    registers and counter the ledger accepted."""
    registers = last_registers(devices)
    meters = []
    for device in Device.objects.select_related("identity__organisation").filter(pk__in=[d.pk for d in devices]):
        last = registers[device.public_id]
        meters.append(SimulatedMeter(
            public_id=device.public_id, kind=device.kind, invoker=device.identity.qualified_name,
            signer=simulated_signer(device), counter=last["counter"], import_wh=last["import_wh"],
            export_wh=last["export_wh"],
        ))
    return meters


def simulated_meter(device: Device) -> SimulatedMeter:
    """``simulated_meters`` of one device."""
    (meter,) = simulated_meters([device])
    return meter
