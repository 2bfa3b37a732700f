"""Units from real signed meter readings and the billing tasks, on PostgreSQL: the meters' own
readings (through the gateway) become each slot's units with the readings that prove them, a
reading exactly at a slot's end closes that slot, late readings re-record and re-bill only the
slots they change, reruns repeat nothing, and a slot without the grid's frequency waits."""

from __future__ import annotations

import logging

import pytest

from billing import scheduler, tasks, units
from billing.models import SlotRecord, StationProgress
from ledger.keys import bill_key, units_key
from ledger.models import Transaction
from ledger.verify import verify_chain

from .meters_world import SLOT, STATION, T0, MetersWorld, build_meters_world, txs
from .world import state, writes

pytestmark = pytest.mark.postgres


@pytest.fixture
def mw(db) -> MetersWorld:
    return build_meters_world()


def iso(moment) -> str:
    return moment.isoformat()


def units_of(society: str, start) -> dict | None:
    return state(units_key(STATION, society, iso(start)))


def bill_of(society: str, start) -> dict | None:
    return state(bill_key(STATION, society, iso(start)))


def signed(row) -> dict:
    return {"counter": row.counter, "import_wh": row.import_wh, "export_wh": row.export_wh, "tx": row.tx_hash}


def test_units_are_the_meters_signed_register_deltas_and_a_reading_at_the_end_closes_the_slot(mw):
    a1 = mw.read("hh-alice", T0 - SLOT + SLOT / 3, imported=1_000)  # the meter's first reading
    mw.read("hh-alice", T0 + SLOT / 3, imported=400)
    a3 = mw.read("hh-alice", T0 + SLOT, imported=100)  # exactly at the slot's end: this slot's
    b1 = mw.read("hh-bob", T0, imported=50)  # exactly at the start: closes the slot before
    b2 = mw.read("hh-bob", T0 + SLOT + SLOT / 2, imported=30, exported=500)  # solar export

    assert tasks.record_units(now=iso(T0 + 2 * SLOT)) == {
        "recorded": 3, "unchanged": 0, "billed": 0, "waiting": 0, "failed": 0}
    first, slot, after = T0 - SLOT, T0, T0 + SLOT
    # The first slot opens at the meter's first reading ever: nothing before it is known.
    assert units_of("hh-alice", first) | {} == {
        "societyId": "hh-alice", "stationId": STATION, "startTime": iso(first), "endTime": iso(T0), "unit": 0,
        "meter": "HM-ALICE", "from": signed(a1), "to": signed(a1)}
    alice = units_of("hh-alice", slot)
    assert (alice["unit"], alice["from"], alice["to"]) == (500, signed(a1), signed(a3))
    assert units_of("hh-alice", after)["unit"] == 0 and units_of("hh-alice", after)["from"] == signed(a3)
    assert [units_of("hh-bob", s)["unit"] for s in (first, slot, after)] == [0, 0, 30 - 500]
    assert units_of("hh-bob", slot)["from"] == units_of("hh-bob", slot)["to"] == signed(b1)
    assert units_of("hh-bob", after)["to"] == signed(b2)
    # A household without a meter has used nothing the station knows of.
    assert units_of("hh-dan", slot) | {} == {
        "societyId": "hh-dan", "stationId": STATION, "startTime": iso(slot), "endTime": iso(after), "unit": 0,
        "meter": None, "from": None, "to": None}
    assert StationProgress.objects.get(station=STATION).units_through == T0 + 2 * SLOT
    # The open slot (ending after now) is not recorded.
    assert units_of("hh-alice", T0 + 2 * SLOT) is None


def test_bills_follow_the_recorded_units_and_reruns_repeat_nothing(mw):
    mw.read("hh-alice", T0 - SLOT / 3, imported=10)
    mw.read("hh-alice", T0 + SLOT, imported=2_000)
    mw.read("hh-bob", T0 - SLOT / 2)
    mw.read("hh-bob", T0 + SLOT / 2, exported=1_500)
    for start in (T0 - SLOT, T0):
        mw.freq(start, 5000)  # 178.00 paise/kWh
    now = iso(T0 + SLOT)
    scheduler.step(now=now)
    assert bill_of("hh-alice", T0)["amount"] == 356 and bill_of("hh-bob", T0)["amount"] == -267
    assert bill_of("hh-dan", T0)["amount"] == 0
    before = Transaction.objects.count()
    for _ in range(2):
        scheduler.step(now=now)
        assert tasks.record_units(now=now)["recorded"] == 0 and tasks.bill_closed_slots(now=now)["billed"] == 0
    assert Transaction.objects.count() == before  # nothing asked of the ledger again
    assert [w.value["version"] for w in writes(bill_key(STATION, "hh-alice", iso(T0)))] == [1]


def test_a_slot_without_frequency_waits_and_is_billed_once_the_grid_reports(mw, caplog):
    mw.read("hh-alice", T0 - SLOT / 2)
    mw.read("hh-alice", T0 + SLOT / 2, imported=1_000)
    mw.read("hh-alice", T0 + SLOT + SLOT / 2, imported=1_000)
    now = iso(T0 + 2 * SLOT)
    tasks.record_units(now=now)
    mw.freq(T0 - SLOT, 5000)
    mw.freq(T0, 4990)
    with caplog.at_level(logging.INFO, logger="billing.services"):
        result = tasks.bill_closed_slots(now=now)
    assert result == {"recorded": 0, "unchanged": 0, "billed": 2, "waiting": 1, "failed": 0}
    assert "1 slot(s) wait for the grid's frequency" in caplog.text
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    assert bill_of("hh-alice", T0 + SLOT) is None and txs("initStationBill") == 2
    mw.freq(T0 + SLOT, 5005)
    assert tasks.bill_closed_slots(now=now)["billed"] == 1
    assert bill_of("hh-alice", T0 + SLOT)["amount"] == 0 and bill_of("hh-alice", T0)["amount"] == 386
    assert txs("initStationBill") == 3


def test_late_readings_re_record_and_re_bill_only_the_slots_they_change(mw):
    mw.read("hh-alice", T0 - SLOT / 3, imported=0)
    mw.read("hh-alice", T0 + SLOT, imported=1_000)
    mw.read("hh-bob", T0 + SLOT / 3, imported=200)
    slots = [T0 - SLOT + n * SLOT for n in range(5)]  # up to T0 + 3 slots
    for start in slots:
        mw.freq(start, 5000)
    now = iso(T0 + 4 * SLOT)
    scheduler.step(now=now)
    assert all(bill_of("hh-alice", s)["version"] == 1 for s in slots)
    assert [bill_of("hh-alice", s)["unit"] for s in slots] == [0, 1_000, 0, 0, 0]

    # Alice's meter was offline: its reading of T0 + 1.5 slots arrives after those slots were billed.
    late = mw.read("hh-alice", T0 + SLOT + SLOT / 2, imported=300)
    recorded = tasks.record_units(now=now)
    # Its slot gets the units; the slots after it now start from the late reading (same units).
    assert recorded == {"recorded": 3, "unchanged": 0, "billed": 0, "waiting": 0, "failed": 0}
    assert units_of("hh-alice", T0 + SLOT)["unit"] == 300 and units_of("hh-alice", T0 + SLOT)["to"] == signed(late)
    assert units_of("hh-alice", T0 + 2 * SLOT)["from"] == signed(late)
    assert [r.units_version for r in SlotRecord.objects.filter(station=STATION).order_by("start")] == [1, 1, 2, 2, 2]
    # Bob's units were not rewritten; earlier slots were not touched.
    assert len(writes(units_key(STATION, "hh-bob", iso(T0 + SLOT)))) == 1
    assert len(writes(units_key(STATION, "hh-alice", iso(T0)))) == 1

    assert tasks.bill_closed_slots(now=now)["billed"] == 1  # only the slot whose units changed
    rebilled = bill_of("hh-alice", T0 + SLOT)
    assert (rebilled["version"], rebilled["amount"], rebilled["replaces"]) == (2, 53, 0)
    assert [bill_of("hh-alice", s)["version"] for s in slots] == [1, 1, 2, 1, 1]
    assert bill_of("hh-bob", T0 + SLOT)["version"] == 1  # Bob's bill of that slot was not rewritten

    again = Transaction.objects.count()
    scheduler.step(now=now)
    assert Transaction.objects.count() == again  # a rerun records and bills nothing twice
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


def test_a_late_reading_in_the_middle_changes_the_slots_up_to_the_meters_next_reading(mw):
    mw.read("hh-alice", T0 - SLOT / 3, imported=0)
    mw.read("hh-alice", T0 + SLOT / 2, imported=100)
    now = iso(T0 + 6 * SLOT)
    tasks.record_units(now=now)
    assert SlotRecord.objects.filter(station=STATION).count() == 7  # T0 - 1 slot .. T0 + 5 slots
    # Counter order: the late readings come after the last one, stamped within recorded slots.
    mw.read("hh-alice", T0 + 2 * SLOT + SLOT / 2, imported=50)
    mw.read("hh-alice", T0 + 3 * SLOT + SLOT / 2, imported=70)
    assert tasks.record_units(now=now)["recorded"] == 4  # T0 + 2 .. T0 + 5: from the first late one on
    assert [units_of("hh-alice", T0 + n * SLOT)["unit"] for n in range(-1, 6)] == [0, 100, 0, 50, 70, 0, 0]
    versions = dict(SlotRecord.objects.filter(station=STATION).values_list("start", "units_version"))
    assert [versions[T0 + n * SLOT] for n in range(-1, 6)] == [1, 1, 1, 2, 2, 2, 2]


def test_the_units_query_is_the_same_on_every_database(mw, monkeypatch):
    """The SQLite path (a window over the rows) finds the same last readings as PostgreSQL's
    lateral index probes, a reading exactly at the moment included."""
    mw.read("hh-alice", T0 - SLOT, imported=10)
    mw.read("hh-alice", T0, imported=20)
    mw.read("hh-bob", T0 + SLOT, imported=30)
    meters = units.household_meters(["hh-alice", "hh-bob", "hh-dan"])
    assert meters["hh-dan"] is None
    ids = [meters["hh-alice"].pk, meters["hh-bob"].pk]
    postgres = units.last_readings(ids, T0)
    assert [postgres[ids[0]].import_wh] == [30] and ids[1] not in postgres
    monkeypatch.setattr(units.connection, "vendor", "sqlite")
    assert units.last_readings(ids, T0) == postgres


def test_slot_arithmetic():
    assert units.slot_floor(T0 + SLOT / 3) == T0 and units.slot_floor(T0) == T0
    assert units.slot_closed_by(T0) == T0 - SLOT and units.slot_closed_by(T0 + SLOT / 3) == T0
    assert units.runs([T0 + 3 * SLOT, T0, T0 + SLOT]) == [[T0, T0 + SLOT], [T0 + 3 * SLOT]]


def test_a_station_another_process_is_sweeping_is_left_to_it(mw):
    import psycopg
    from django.db import connection

    mw.read("hh-alice", T0 - SLOT / 3, imported=5)
    mw.read("hh-alice", T0 + SLOT / 2, imported=5)
    settings = connection.settings_dict
    other = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                            user=settings["USER"], password=settings["PASSWORD"] or None, dbname=settings["NAME"],
                            autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"billing-sweep:{STATION}"])
        assert tasks.record_units(now=iso(T0 + 2 * SLOT))["recorded"] == 0 and txs("initStationUnits") == 0
    finally:
        other.close()  # its session ends: the lock is gone
    assert tasks.record_units(now=iso(T0 + 2 * SLOT))["recorded"] == 3
