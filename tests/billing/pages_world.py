"""The billing ledger world (``tests.billing.world``) with people: a Django user in each
organisation, a day of frequencies, units and bills at st-north for Alice and Bob."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Role
from accounts.services import membership_create
from tests.billing.world import SLOT, STATION, T0, BillingWorld, build_billing_world

DAY = "2026-06-01"  # T0 is 08:00 on this day in Kolkata
FREQS = [5001, 4985, 4960, 5010]  # four slots from T0: normal, low, under the floor, high
ALICE_UNITS = [1000, 2000, -1500, 500]
BOB_UNITS = [300, 300, 300, 300]
USERS = {"alice": "household", "gina": "grid", "dina": "distributor", "uma": "utility", "audrey": "auditor",
         "pat": "producer"}


@dataclass
class PagesWorld:
    world: BillingWorld
    users: dict

    def client(self, name: str) -> Client:
        client = Client()
        if name != "anonymous":
            client.force_login(self.users[name])
        return client


def build_pages_world() -> PagesWorld:
    world = build_billing_world()
    make = get_user_model().objects.create_user
    users = {}
    for username, org_type in USERS.items():
        users[username] = make(username=username, password=f"{username}-password-1")
        membership_create(user=users[username], organisation=world.members[org_type].organisation, role=Role.OWNER)
    users["bob"] = make(username="bob", password="bob-password-1")
    membership_create(user=users["bob"], organisation=world.bob.organisation, role=Role.OWNER)
    users["rivka"] = make(username="rivka", password="rivka-password-1")
    membership_create(user=users["rivka"], organisation=world.rival.organisation, role=Role.OWNER)
    users["carol"] = make(username="carol", password="carol-password-1")
    membership_create(user=users["carol"], organisation=world.carol.organisation, role=Role.OWNER)
    for n, freq in enumerate(FREQS):
        start = T0 + n * SLOT
        world.freq(start, freq)
        world.unit(start, ALICE_UNITS[n])
        world.unit(start, BOB_UNITS[n], society="hh-bob")
        world.ok("distributor", "initStationBill", {"stationId": STATION, "startTime": start.isoformat(),
                                                    "endTime": (start + SLOT).isoformat()})
    world.freq(T0 + timedelta(hours=2), 4999)  # a frequency with no units or bills
    return PagesWorld(world, users)
