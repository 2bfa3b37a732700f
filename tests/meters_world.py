"""The personas' world (tests/personas.py) plus devices and fiat credit, for meters, wallet,
prices and settlement tests. Alice's household holds 3.799 kWh after the personas' seed."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import services as ledger
from meters.models import Device, DeviceKind
from meters.services import device_register_simulated, device_retire
from tests.personas import World, build_world


@dataclass
class MeterWorld:
    world: World
    light: Device  # public street light owned by the utility
    meter: Device  # Alice's household meter (not listed)
    retired: Device

    def __getattr__(self, name):
        return getattr(self.world, name)


def build_meter_world(settings) -> MeterWorld:
    world = build_world(settings)
    utility = world.uma.organisation
    ledger.asset_create(code="INR", name="Indian rupee credit", scale=2, display_unit="INR", issuer=utility)
    light = device_register_simulated(organisation=utility, kind=DeviceKind.STREET_LIGHT, name="Beach Road light",
                                      public_id="SL-0001", latitude="9.965400", longitude="76.242100",
                                      place="Beach Road, ward 5")
    meter = device_register_simulated(organisation=world.alice.organisation, kind=DeviceKind.HOUSEHOLD_METER,
                                      name="Alice's meter", public_id="HM-ALICE")
    retired = device_retire(device=device_register_simulated(organisation=utility, kind=DeviceKind.STREET_LIGHT,
                                                             name="Old lamp", public_id="SL-0099"))
    return MeterWorld(world=world, light=light, meter=meter, retired=retired)
