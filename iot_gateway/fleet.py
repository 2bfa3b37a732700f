"""The simulated fleet's devices: register the missing ones (each with its own sealed key)
and build ``SimulatedMeter``s that resume from the registers the ledger last accepted."""

from __future__ import annotations

from ledger import services as ledger
from ledger.contracts import registry
from ledger.models import Asset, Organisation, OrgType, StateEntry
from ledger.readings import chaincode_for
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
    if not Asset.objects.filter(code="k").exists():
        raise FleetError("the energy asset k does not exist yet: run `python manage.py seed_demo` first")
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


def last_registers(devices: list[Device]) -> dict[str, dict]:
    """The last accepted reading of each device from world state ``registers/<public id>``."""
    by_namespace: dict[str, list[str]] = {}
    for device in devices:
        namespace = registry.resolve(*chaincode_for(device.kind)).namespace
        by_namespace.setdefault(namespace, []).append(f"registers/{device.public_id}")
    found = {}
    for namespace, keys in by_namespace.items():
        for key, value in StateEntry.objects.filter(namespace=namespace, key__in=keys, is_deleted=False).values_list(
                "key", "value"):
            found[key.removeprefix("registers/")] = value
    return found


def simulated_meters(devices: list[Device]) -> list[SimulatedMeter]:
    """One ``SimulatedMeter`` per device (it must have a simulated key), resuming at the last
    registers and counter the ledger accepted."""
    registers = last_registers(devices)
    meters = []
    for device in Device.objects.select_related("organisation").filter(pk__in=[d.pk for d in devices]):
        last = registers.get(device.public_id) or {}
        meters.append(SimulatedMeter(
            public_id=device.public_id, kind=device.kind, invoker=f"{device.organisation.msp_id}/{device.public_id}",
            signer=simulated_signer(device), counter=last.get("counter", 0), import_wh=last.get("import_wh", 0),
            export_wh=last.get("export_wh", 0),
        ))
    return meters
