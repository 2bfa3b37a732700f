"""A billing world with real meters: State Grid and Ward Power (with their billing service
identities), households hh-alice and hh-bob with funded household meters whose readings are
signed by the meters' own keys and applied through the gateway's ingest service, hh-dan who has no
meter yet, and station st-ward1 serving all three. Slots are in the past (the ledger's clock is
the real one, so every slot is closed); the tasks are told their ``now``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing import chain
from iot_gateway.fleet import simulated_meter
from iot_gateway.models import MeterReading
from iot_gateway.services import readings_ingest
from iot_gateway.simulator import SimulatedMeter
from ledger import services as ledger
from ledger.models import Organisation, Transaction
from meters.services import device_register_simulated
from tests.ledger_helpers import make_member

SLOT = timedelta(minutes=15)
T0 = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)  # 08:00 in Kolkata
STATION = "st-ward1"
SOCIETIES = ("hh-alice", "hh-bob", "hh-dan")


@dataclass
class MetersWorld:
    grid: Organisation
    distributor: Organisation
    meters: dict[str, SimulatedMeter]  # by society

    def read(self, society: str, at: datetime, *, imported: int = 0, exported: int = 0) -> MeterReading:
        """The household's meter reports ``imported``/``exported`` Wh more than last time, at ``at``."""
        meter = self.meters[society]
        meter.counter += 1
        meter.import_wh += imported
        meter.export_wh += exported
        [outcome] = readings_ingest([meter.reading(counter=meter.counter, import_wh=meter.import_wh,
                                                   export_wh=meter.export_wh, timestamp=at)], received_via="http")
        assert outcome.status == "applied", outcome.reason
        return MeterReading.objects.get(tx_hash=outcome.tx_hash)

    def freq(self, start: datetime, avg: int) -> None:
        chain.invoke(chain.service_identity(self.grid), "initFreq",
                     {"startTime": start.isoformat(), "endTime": (start + SLOT).isoformat(), "avgFreq": avg},
                     f"test-freq-{start.isoformat()}-{avg}")


def build_meters_world() -> MetersWorld:
    utility = make_member("gridco", "utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility.organisation)
    grid = make_member("gridop", "grid").organisation
    distributor = make_member("discom", "distributor").organisation
    meters = {}
    for society in SOCIETIES:
        household = make_member(society, "household").organisation
        if society == "hh-dan":
            continue
        device = device_register_simulated(organisation=household, kind="household_meter", name="Meter",
                                           public_id=f"HM-{society[3:].upper()}")
        utility.invoke("token", "mint", {"to": device.account_key, "asset": "k", "amount": 1_000_000})
        meters[society] = simulated_meter(device)
    chain.invoke(chain.service_identity(distributor), "registerStation",
                 {"stationId": STATION, "societies": list(SOCIETIES)}, "test-station")
    return MetersWorld(grid, distributor, meters)


def txs(function: str) -> int:
    return Transaction.objects.filter(chaincode="energy-billing", function=function).count()
