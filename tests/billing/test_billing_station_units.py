"""``energy-billing.initStationUnits``: a station's slot of units from the households' signed meter
readings, in one invocation, all or none, checked against the readings, never rewritten unchanged."""

from __future__ import annotations

import pytest

from ledger.keys import units_key

from .world import SLOT, STATION, T0, BillingWorld, build_billing_world, slot, state, writes

pytestmark = pytest.mark.postgres

SLOT_ID = "2026-06-01T02:30:00+00:00"


@pytest.fixture
def bw(db) -> BillingWorld:
    return build_billing_world()


def reading(counter: int, imported: int, exported: int = 0, tx: str = "a") -> dict:
    return {"counter": counter, "import_wh": imported, "export_wh": exported, "tx": tx * 64}


def entry(society: str = "hh-alice", unit: int = 400, **kw) -> dict:
    return {"societyId": society, "unit": unit, "meter": f"HM-{society[3:].upper()}",
            "from": reading(10, 1000, 50, "a"), "to": reading(12, 1500, 150, "b")} | kw


def station_units(bw: BillingWorld, units: list, who="distributor", start=T0, station=STATION):
    return bw.invoke(who, "initStationUnits", {"stationId": station} | slot(start) | {"units": units})


def test_a_station_slot_records_every_household_with_its_readings(bw):
    bob = entry("hh-bob", -300, **{"from": reading(3, 20, 0, "c"), "to": reading(4, 20, 300, "d")})
    result = station_units(bw, [entry(), bob])
    assert result.ok, result.reason
    assert result.result == {"stationId": STATION, "startTime": SLOT_ID, "units": 2, "recorded": 2, "total": 100}
    alice = state(units_key(STATION, "hh-alice", SLOT_ID))
    assert alice == {"societyId": "hh-alice", "stationId": STATION, "startTime": SLOT_ID,
                     "endTime": "2026-06-01T02:45:00+00:00", "unit": 400, "meter": "HM-ALICE",
                     "from": reading(10, 1000, 50, "a"), "to": reading(12, 1500, 150, "b")}
    assert bw.ok("household", "readUnit", {"societyId": "hh-alice", "stationId": STATION,
                                           "startTime": SLOT_ID})["unit"] == 400
    bw.freq(T0, 5000)  # the recorded units bill like initUnit's
    assert bw.ok("distributor", "initStationBill", {"stationId": STATION} | slot(T0))["amount"] == 71 - 53


def test_unchanged_units_are_not_rewritten_and_changed_ones_are(bw):
    assert station_units(bw, [entry(), entry("hh-bob", 0, **{"from": None, "to": None})]).result["recorded"] == 2
    again = station_units(bw, [entry(), entry("hh-bob", 0, **{"from": None, "to": None})])
    assert again.ok and again.result["recorded"] == 0
    late = entry("hh-bob", 20, **{"from": reading(1, 5, 0, "c"), "to": reading(2, 25, 0, "d")})
    assert station_units(bw, [entry(), late]).result["recorded"] == 1
    assert len(writes(units_key(STATION, "hh-alice", SLOT_ID))) == 1
    assert [w.value["unit"] for w in writes(units_key(STATION, "hh-bob", SLOT_ID))] == [0, 20]


@pytest.mark.parametrize(("units", "reason"), [
    ([entry(unit=401)], "readings give 400 Wh"),
    ([entry(), entry()], "listed twice"),
    ([entry(), entry("hh-carol")], "does not serve 'hh-carol'"),
    ([entry(unit="400")], "unit must be an integer"),
    ([entry(unit=True)], "unit must be an integer"),
    ([entry(meter=7)], "meter must be"),
    ([entry(meter=None)], "meter is required"),
    ([entry(**{"from": reading(10, 1000, 50) | {"counter": "10"}})], "from.counter must be a non-negative integer"),
    ([entry(**{"to": reading(12, -1)})], "to.import_wh must be a non-negative integer"),
    ([entry(**{"to": reading(12, 1500, 150) | {"tx": "XYZ"}})], "to.tx must be a transaction hash"),
    ([entry(**{"to": reading(12, 1500, 150) | {"extra": 1}})], "exactly counter"),
    ([entry(**{"to": reading(9, 1500, 150)})], "cannot go backwards"),
    ([entry(unit=0, **{"from": None})], "both null"),
    ([entry(unit=5, **{"from": None, "to": None})], "unit must be 0"),
    ([{"societyId": "hh-alice", "unit": 0}], "exactly societyId"),
    ([entry(societyId=3)], "societyId must be"),
    ([], "non-empty list"),
    ("hh-alice", "non-empty list"),
])
def test_bad_units_are_refused_and_nothing_is_written(bw, units, reason):
    result = station_units(bw, [entry("hh-bob", 0, **{"from": None, "to": None}), *units]
                           if isinstance(units, list) and units else units)
    assert not result.ok and reason in result.reason, result.reason
    assert writes(units_key(STATION, "hh-bob", SLOT_ID)) == []
    assert writes(units_key(STATION, "hh-alice", SLOT_ID)) == []


def test_only_the_stations_distributor_for_a_closed_aligned_slot(bw):
    rival = station_units(bw, [entry()], who=bw.rival)
    assert not rival.ok and "not run by distributor-two" in rival.reason
    early = bw.invoke("distributor", "initStationUnits", {"stationId": STATION} | slot(T0) | {"units": [entry()]},
                      at=T0 + SLOT / 2)
    assert not early.ok and "has not closed" in early.reason
    unknown = station_units(bw, [entry()], station="st-nowhere")
    assert not unknown.ok and "no station 'st-nowhere'" in unknown.reason
    assert writes(units_key(STATION, "hh-alice", SLOT_ID)) == []
