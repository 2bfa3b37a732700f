"""The demo's devices: street lights, a stadium and a market square around a town centre, the
demo households' meters and the producer's meter, each with a simulated key."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model

from accounts import services as accounts
from ledger.models import Organisation
from meters.models import Device, DeviceKind
from meters.services import device_register_simulated

from .organisations import PRODUCER, UTILITY

# Around Fort Kochi's town centre.
CENTRE = (Decimal("9.965400"), Decimal("76.242100"))

# (public id, name, kind, owner: "utility", "producer" or a resident's username, lat/lon offset)
DEMO_DEVICES = [
    ("SL-0001", "Street light, Beach Road north", DeviceKind.STREET_LIGHT, "utility", ("0.000400", "-0.000300")),
    ("SL-0002", "Street light, Beach Road south", DeviceKind.STREET_LIGHT, "utility", ("-0.000400", "-0.000300")),
    ("SL-0003", "Street light, Church Lane", DeviceKind.STREET_LIGHT, "utility", ("0.000200", "0.000500")),
    ("SL-0004", "Street light, Ferry Jetty", DeviceKind.STREET_LIGHT, "utility", ("-0.000700", "0.000600")),
    ("ST-0001", "Parade Ground stadium lights", DeviceKind.STADIUM_LIGHTS, "utility", ("0.001500", "0.001200")),
    ("MS-0001", "Market square lights", DeviceKind.MARKET_SQUARE, "utility", ("-0.001100", "0.001400")),
    ("HM-ALICE", "Alice's household meter", DeviceKind.HOUSEHOLD_METER, "alice", ("0.002100", "-0.001800")),
    ("HM-BOB", "Bob's household meter", DeviceKind.HOUSEHOLD_METER, "bob", ("-0.002300", "-0.001600")),
    ("PM-0001", "SunFarm solar array meter", DeviceKind.PRODUCER_METER, "producer", ("0.004000", "0.003000")),
]

# What residents are told of where the public devices are (never their coordinates).
DEMO_PLACES = {
    "SL-0001": "Beach Road, ward 1", "SL-0002": "Beach Road, ward 1", "SL-0003": "Church Lane, ward 2",
    "SL-0004": "Ferry Jetty, ward 2", "ST-0001": "Parade Ground, ward 3", "MS-0001": "Market square, ward 3",
}


def _owner(name: str) -> Organisation | None:
    if name == "utility":
        return Organisation.objects.filter(msp_id=UTILITY).first()
    if name == "producer":
        return Organisation.objects.filter(msp_id=PRODUCER).first()
    user = get_user_model().objects.filter(username=name).first()
    return None if user is None else accounts.membership_for(user).organisation


def devices_seed() -> list[str]:
    """Register the demo devices that are missing and whose owner exists (a device of a part of
    the demo that is not seeded is skipped); return what was created. The caller holds the
    transaction."""
    created: list[str] = []
    for msp_id in (UTILITY, PRODUCER):
        org = Organisation.objects.filter(msp_id=msp_id).first()
        if org is not None:
            accounts.energy_accounts_open(organisation=org)  # idempotent: the utility's shards, the producer's account
    for public_id, name, kind, owner_name, (dlat, dlon) in DEMO_DEVICES:
        if Device.objects.filter(public_id=public_id).exists():
            continue
        owner = _owner(owner_name)
        if owner is None:
            continue
        device_register_simulated(organisation=owner, kind=kind, name=name, public_id=public_id,
                                  latitude=CENTRE[0] + Decimal(dlat), longitude=CENTRE[1] + Decimal(dlon),
                                  place=DEMO_PLACES.get(public_id, ""))
        created.append(f"device {public_id}")
    return created
