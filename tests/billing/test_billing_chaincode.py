"""``energy-billing`` through the ledger on PostgreSQL: frequencies, units and bills, the tariff in
force, refusals that write nothing, no double billing, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.contracts import registry
from ledger.keys import BILLING_CONFIG_KEY, TARIFFS_KEY, bill_key, freq_key, units_key
from ledger.models import Transaction, TxStatus
from ledger.verify import verify_chain

from .world import LATER, ORG_TYPES, SLOT, STATION, T0, BillingWorld, build_billing_world, slot, state, writes

pytestmark = pytest.mark.postgres

SLOT_ID = "2026-06-01T02:30:00+00:00"


@pytest.fixture
def bw(db) -> BillingWorld:
    return build_billing_world()


def alice_args(start=T0) -> dict:
    return {"societyId": "hh-alice", "stationId": STATION, "startTime": start.isoformat()}


def test_a_bill_prices_the_units_at_the_slot_frequency(bw):
    bw.freq(T0, 4999)  # 49.99 Hz: 198.84 paise/kWh
    bw.unit(T0, 2000)
    result = bw.bill(T0)
    assert result.ok, result.reason
    bill = state(bill_key(STATION, "hh-alice", SLOT_ID))
    assert bill["rate"] == 19884 and bill["unit"] == 2000 and bill["avgFreq"] == 4999
    assert bill["amount"] == 398  # 2 kWh x 198.84 = 397.68 paise, half away from zero
    assert bill["currency"] == "INR" and bill["version"] == 1
    assert bill["tariff"] == {"effective_from": "2014-02-17T00:00:00+05:30", "kind": "frequency_vector"}
    assert bw.ok("household", "readBill", alice_args()) == bill


def test_export_is_credited_at_the_same_slot_rate(bw):
    bw.freq(T0, 5000)  # 178.00 paise/kWh
    bw.unit(T0, -1500)
    assert bw.bill(T0).result["amount"] == -267  # -1.5 kWh x 178 = -267 paise
    bw.freq(T0 + SLOT, 5005)  # no charge and no credit at or above 50.05 Hz
    bw.unit(T0 + SLOT, -1500)
    assert bw.bill(T0 + SLOT).result["amount"] == 0


def test_a_slot_without_frequency_or_units_is_refused_and_writes_nothing(bw):
    bw.unit(T0, 1000)
    result = bw.bill(T0)
    assert not result.ok and "no frequency recorded" in result.reason
    assert Transaction.objects.get(pk=result.tx_id).status == TxStatus.REJECTED  # the refusal is recorded
    bw.freq(T0 + SLOT, 5000)
    result = bw.bill(T0 + SLOT)
    assert not result.ok and "no units recorded for 'hh-alice'" in result.reason
    for start in (T0, T0 + SLOT):
        assert writes(bill_key(STATION, "hh-alice", start.isoformat())) == []


def test_billing_a_slot_twice_never_doubles_and_late_units_rebill_only_that_slot(bw):
    for start in (T0, T0 + SLOT):
        bw.freq(start, 4990)  # 178 + 10 x 20.84 = 386.40 paise/kWh
        bw.unit(start, 1000)
        assert bw.bill(start).result["status"] == "billed"
    again = bw.bill(T0)
    assert again.ok and again.result["status"] == "unchanged" and again.result["amount"] == 386
    assert bw.bill(T0, who="utility").result["status"] == "unchanged"
    assert len(writes(bill_key(STATION, "hh-alice", SLOT_ID))) == 1

    bw.unit(T0, 3000)  # late units
    rebilled = bw.bill(T0).result
    assert rebilled["status"] == "rebilled" and rebilled["amount"] == 1159 and rebilled["replaces"] == 386
    history = writes(bill_key(STATION, "hh-alice", SLOT_ID))
    assert [w.value["amount"] for w in history] == [386, 1159]  # the replaced bill stays in history
    assert state(bill_key(STATION, "hh-alice", SLOT_ID))["version"] == 2
    second = (T0 + SLOT).isoformat()
    assert len(writes(bill_key(STATION, "hh-alice", second))) == 1
    report = verify_chain()  # the recorded transactions replay to the same world state
    assert report.ok, [str(p) for p in report.problems]


def test_a_station_slot_is_billed_in_one_invocation_all_or_none(bw):
    bw.freq(T0, 5000)
    bw.unit(T0, 1000)
    refused = bw.invoke("distributor", "initStationBill", {"stationId": STATION} | slot(T0))
    assert not refused.ok and "hh-bob" in refused.reason
    assert writes(bill_key(STATION, "hh-alice", SLOT_ID)) == []
    bw.unit(T0, -400, society="hh-bob")
    result = bw.ok("distributor", "initStationBill", {"stationId": STATION} | slot(T0))
    assert result == {"stationId": STATION, "startTime": SLOT_ID, "bills": 2, "billed": 2, "amount": 178 - 71,
                      "currency": "INR"}
    assert bw.ok("distributor", "initStationBill", {"stationId": STATION} | slot(T0))["billed"] == 0
    assert bw.bill(T0, society="hh-bob").result["status"] == "unchanged"
    rival = bw.invoke(bw.rival, "initStationBill", {"stationId": STATION} | slot(T0))
    assert not rival.ok and "not run by distributor-two" in rival.reason


def test_the_tariff_in_force_is_chosen_by_the_slot_start(bw):
    later = T0 + SLOT
    tariff = {"effective_from": later.isoformat(), "kind": "exchange_linked", "band": [4990, 5005],
              "base_rate": 40000, "cap_percent": 150, "prices": {(later + SLOT).isoformat(): 60000}}
    assert bw.ok("utility", "setTariff", {"tariff": tariff})["tariffs"] == 2
    assert state(TARIFFS_KEY) == [tariff]
    for n in range(3):
        bw.freq(T0 + n * SLOT, 5000)
        bw.unit(T0 + n * SLOT, 1000)
    assert [bw.bill(T0 + n * SLOT).result["rate"] for n in range(3)] == [17800, 40000, 60000]
    broken = bw.invoke("utility", "setTariff", {"tariff": {**tariff, "base_rate": "400"}})
    assert not broken.ok and "base_rate" in broken.reason
    early = bw.invoke("utility", "setTariff", {"tariff": {**tariff, "effective_from": "2010-01-01T00:00:00+00:00"}})
    assert not early.ok


def test_an_exchange_linked_bill_takes_the_higher_of_day_ahead_and_real_time(bw):
    tariff = {"effective_from": T0.isoformat(), "kind": "exchange_linked", "band": [4990, 5005],
              "base_rate": 40000, "cap_percent": 150,
              "prices": {SLOT_ID: {"dam": 52000, "rtm": 61000}, (T0 + SLOT).isoformat(): {"dam": 70000, "rtm": 1}}}
    bw.ok("utility", "setTariff", {"tariff": tariff})
    for n in range(2):
        bw.freq(T0 + n * SLOT, 5000)
        bw.unit(T0 + n * SLOT, 1000)
    assert [(b.result["rate"], b.result["amount"]) for b in (bw.bill(T0), bw.bill(T0 + SLOT))] == \
        [(61000, 610), (70000, 700)]
    one_market = {**tariff, "prices": {SLOT_ID: {"dam": 52000}}}
    refused = bw.invoke("utility", "setTariff", {"tariff": one_market})
    assert not refused.ok and "dam" in refused.reason
    local_key = {**tariff, "prices": {"2026-06-01T08:00:00+05:30": 60000}}
    refused = bw.invoke("utility", "setTariff", {"tariff": local_key})
    assert not refused.ok and "UTC ISO 8601" in refused.reason
    assert state(TARIFFS_KEY) == [tariff]


def test_slots_are_aligned_in_the_configured_zone_and_closed(bw):
    off = T0 + timedelta(minutes=5)
    refused = bw.invoke("grid", "initFreq", slot(off) | {"avgFreq": 5000})
    assert not refused.ok and ":00, :15, :30 or :45 in Asia/Kolkata" in refused.reason
    long = bw.invoke("grid", "initFreq", {"startTime": T0.isoformat(), "endTime": (T0 + 2 * SLOT).isoformat(),
                                          "avgFreq": 5000})
    assert not long.ok and "15 minutes" in long.reason
    early = bw.invoke("grid", "initFreq", slot(T0) | {"avgFreq": 5000}, at=T0 + timedelta(minutes=10))
    assert not early.ok and "has not closed" in early.reason
    naive = bw.invoke("grid", "initFreq", {"startTime": "2026-06-01T02:30:00", "endTime": "2026-06-01T02:45:00",
                                           "avgFreq": 5000})
    assert not naive.ok and "timezone" in naive.reason
    silly = bw.invoke("grid", "initFreq", slot(T0) | {"avgFreq": 50})
    assert not silly.ok and "centi-hertz" in silly.reason
    assert writes(freq_key(SLOT_ID)) == []
    assert bw.ok("utility", "configure", {"timezone": "America/New_York"}) == {"timezone": "America/New_York"}
    assert state(BILLING_CONFIG_KEY) == {"timezone": "America/New_York"}
    bw.freq(T0, 5000)  # 22:30 in New York
    assert not bw.invoke("utility", "configure", {"timezone": "Mars/Olympus"}).ok


def test_reads_are_scoped_to_the_reader(bw):
    bw.freq(T0, 5000)
    bw.unit(T0, 1000)
    bw.bill(T0)
    carol = bw.invoke(bw.carol, "readBill", alice_args())
    assert not carol.ok and "only its own records" in carol.reason
    bob = bw.invoke(bw.bob, "readUnit", alice_args())
    assert not bob.ok and "only its own records" in bob.reason
    rival = bw.invoke(bw.rival, "readBill", alice_args())
    assert not rival.ok and "not run by distributor-two" in rival.reason
    assert bw.ok("auditor", "readUnit", alice_args())["unit"] == 1000
    assert bw.ok(bw.bob, "readFreq", {"startTime": T0.isoformat()})["avgFreq"] == 5000
    units_for_carol = bw.invoke("distributor", "initUnit", {"societyId": "hh-carol", "stationId": STATION}
                                | slot(T0) | {"unit": 5})
    assert not units_for_carol.ok and "does not serve 'hh-carol'" in units_for_carol.reason
    stolen = bw.invoke(bw.rival, "registerStation", {"stationId": STATION, "societies": ["hh-alice"]})
    assert not stolen.ok and "another distributor" in stolen.reason


def test_deletes_are_recorded_and_history_kept(bw):
    bw.freq(T0, 5000)
    bw.unit(T0, 1000)
    bw.bill(T0)
    for function, key in (("deleteBill", bill_key(STATION, "hh-alice", SLOT_ID)),
                          ("deleteUnit", units_key(STATION, "hh-alice", SLOT_ID))):
        assert bw.ok("distributor", function, alice_args()) == {"deleted": key}
        assert state(key) is None
        assert [w.is_delete for w in writes(key)] == [False, True]
        again = bw.invoke("distributor", function, alice_args())
        assert not again.ok
    bw.ok("grid", "deleteFreq", {"startTime": T0.isoformat()})
    assert [w.is_delete for w in writes(freq_key(SLOT_ID))] == [False, True]
    assert not bw.invoke("grid", "readFreq", {"startTime": T0.isoformat()}).ok
    assert not bw.bill(T0).ok  # the frequency and the units are gone: no bill


# --- the permission matrix: every organisation type x every function -------------------------------

MATRIX = """
function         utility grid distributor producer bank charity agent household auditor
configure        Y       N    N           N        N    N       N     N         N
setTariff        Y       N    N           N        N    N       N     N         N
registerStation  N       N    Y           N        N    N       N     N         N
initFreq         N       Y    N           N        N    N       N     N         N
readFreq         Y       Y    Y           N        N    N       N     Y         Y
deleteFreq       N       Y    N           N        N    N       N     N         N
initUnit         N       N    Y           N        N    N       N     N         N
initStationUnits N       N    Y           N        N    N       N     N         N
readUnit         Y       N    Y           N        N    N       N     Y         Y
deleteUnit       N       N    Y           N        N    N       N     N         N
initBill         Y       N    Y           N        N    N       N     N         N
initStationBill  Y       N    Y           N        N    N       N     N         N
readBill         Y       N    Y           N        N    N       N     Y         Y
deleteBill       Y       N    Y           N        N    N       N     N         N
closeDay         Y       N    Y           N        N    N       N     N         N
readStatement    Y       N    Y           N        N    N       N     Y         Y
readDues         Y       N    Y           N        N    N       N     Y         Y
payDues          N       N    N           N        Y    N       N     N         N
"""


def matrix() -> dict[str, dict[str, bool]]:
    header, *rows = [line.split() for line in MATRIX.strip().splitlines()]
    assert header[1:] == list(ORG_TYPES)
    return {row[0]: {org: cell == "Y" for org, cell in zip(header[1:], row[1:], strict=True)} for row in rows}


def test_the_matrix_lists_every_function_of_the_chaincode():
    contract = next(c for c in registry.contracts() if c.name == "energy-billing")
    assert set(contract.functions) == set(matrix())


def call_args(function: str, n: int, start) -> dict:
    """Arguments valid for the household hh-alice at slot ``start``; ``n`` keeps writes apart."""
    household = alice_args(start)
    return {
        "configure": {"timezone": "Asia/Kolkata"},
        "setTariff": {"tariff": {"effective_from": f"2027-01-{n + 1:02d}T00:00:00+05:30", "kind": "exchange_linked",
                                 "band": [4990, 5005], "base_rate": 40000, "cap_percent": 150}},
        "registerStation": {"stationId": f"st-{n}", "societies": ["hh-alice"]},
        "initFreq": slot(start) | {"avgFreq": 5001},
        "readFreq": {"startTime": start.isoformat()},
        "deleteFreq": {"startTime": start.isoformat()},
        "initUnit": household | slot(start) | {"unit": 7},
        "readUnit": household, "deleteUnit": household, "readBill": household, "deleteBill": household,
        "initBill": household | slot(start),
        "initStationBill": {"stationId": STATION} | slot(start),
        "initStationUnits": {"stationId": STATION} | slot(start) | {"units": [
            {"societyId": "hh-alice", "unit": 5, "meter": "HM-ALICE",
             "from": {"counter": n, "import_wh": 100, "export_wh": 0, "tx": "a" * 64},
             "to": {"counter": n + 1, "import_wh": 105, "export_wh": 0, "tx": "b" * 64}}]},
        "closeDay": {"stationId": STATION, "date": CLOSED_DAY},
        "readStatement": {"societyId": "hh-alice", "stationId": STATION, "date": CLOSED_DAY},
        "readDues": {"societyId": "hh-alice"},
        "payDues": {"event_id": f"ev-{n}", "payer": "hh-alice", "payee": "utility-one", "amount": 100 + n,
                    "currency": "INR", "paid_at": LATER.isoformat(), "account": "bill:hh-alice"},
    }[function]


CLOSED_DAY = "2026-05-31"  # over in Kolkata by LATER
DUES_FUNCTIONS = {"readStatement", "readDues", "payDues"}


@pytest.mark.parametrize("function", list(matrix()))
def test_permission_matrix(bw, function):
    if function in DUES_FUNCTIONS:  # dues exist once a day is closed and are paid to the utility
        bw.ok("utility", "configure", {"dues_threshold": 10_000, "fine": 500})
        bw.ok("distributor", "closeDay", {"stationId": STATION, "date": CLOSED_DAY})
    for n, org_type in enumerate(ORG_TYPES):
        start = T0 + n * SLOT  # each organisation acts on its own slot, prepared by those allowed to
        bw.freq(start, 4995)
        for society in ("hh-alice", "hh-bob"):
            bw.unit(start, 1000, society=society)
        assert bw.bill(start).ok
        result = bw.invoke(org_type, function, call_args(function, n, start), at=LATER)
        if matrix()[function][org_type]:
            assert result.ok, f"{org_type} {function}: {result.reason}"
        else:
            assert not result.ok, f"{org_type} may call {function}"
            assert result.reason.startswith("endorsement policy"), result.reason
