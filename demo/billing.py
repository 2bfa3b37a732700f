"""The demo's frequency billing side: the grid operator (State Grid) and the distributor (Ward
Power) each get their billing service identity, and the distributor registers station
``st-ward1`` serving Alice's and Bob's households, through the ledger like any distributor.
The organisations and their logins (``grid``, ``distributor``) come from ``demo.organisations``.
Seeded once: the station is looked up on the ledger first."""

from __future__ import annotations

from billing import chain
from ledger.models import Organisation

from .errors import DemoSeedError
from .organisations import DISTRIBUTOR, GRID, UTILITY

STATION = "st-ward1"
SOCIETIES = ["hh-alice", "hh-bob"]


def _organisation(msp_id: str) -> Organisation:
    org = Organisation.objects.filter(msp_id=msp_id).first()
    if org is None:
        raise DemoSeedError(f"the demo organisation {msp_id!r} is missing")
    return org


def billing_seed() -> list[str]:
    created: list[str] = []
    identities = {msp_id: chain.service_identity(_organisation(msp_id)) for msp_id in (GRID, DISTRIBUTOR, UTILITY)}
    station = chain.station_state(STATION)
    if station is not None and station.get("distributor") == DISTRIBUTOR and set(SOCIETIES) <= set(station["societies"]):
        return created
    societies = sorted(set(SOCIETIES) | set(station["societies"] if station else []))
    try:
        chain.invoke(identities[DISTRIBUTOR], "registerStation", {"stationId": STATION, "societies": societies},
                     f"seed-demo-station-{STATION}-{'-'.join(societies)}")
    except chain.BillingError as exc:
        raise DemoSeedError(f"registering station {STATION} was refused: {exc}") from exc
    created.append(f"station {STATION} ({', '.join(societies)})")
    return created
