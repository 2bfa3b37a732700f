"""A simulated day for 100 households billed end to end by the billing tasks (run as the worker
runs them), then reconciled against the ledger: every unit is the difference of two readings the
meter signed, every bill is units × the rate for the slot's frequency rounded, each household's
bills add up to its statement and to the dues posted, and ``ledger_verify`` replays it clean."""

from __future__ import annotations

import io
import time
from collections import defaultdict
from datetime import date, datetime

import pytest
from django.core.management import call_command

from billing import chain, tasks
from billing import simulation as sim
from billing.models import SimulationStatus
from billing.simulation_runs import METER_ID, simulation_run_create
from demo.billing import STATION, billing_seed
from demo.organisations import organisations_seed
from ledger.chaincodes import billing_math as bm
from ledger.keys import BILLING_NAMESPACE, dues_key
from ledger.models import Transaction, TxStatus
from ledger.selectors import world_state

pytestmark = pytest.mark.postgres

DAY = date(2026, 6, 1)
HOUSEHOLDS = 100
SEED = "e2e"


@pytest.fixture
def demo_grid(transactional_db):  # committed as the worker commits: each invocation its own transaction
    organisations_seed()
    billing_seed()


def _by_society(prefix: str) -> dict[str, dict[str, dict]]:
    """World-state records under ``units|bill/<station>/<slot>/<society>`` or
    ``statement/<station>/<society>/<day>``, by society, then slot or day."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for key, value in world_state(BILLING_NAMESPACE, prefix=f"{prefix}/{STATION}/").items():
        _, _, first, second = key.split("/", 3)
        society, name = (first, second) if prefix == "statement" else (second, first)
        out[society][name] = value
    return out


def test_a_simulated_day_for_100_households_reconciles_to_the_ledger(demo_grid, celery_eager):
    run = simulation_run_create(households=HOUSEHOLDS, day=DAY, seed=SEED, seconds_per_slot=0)
    started = time.perf_counter()
    tasks.simulate_day.delay(run.pk)  # eager: the worker's code path, in this process
    print(f"simulated and billed {HOUSEHOLDS} households' day in {time.perf_counter() - started:.1f}s")
    run.refresh_from_db()
    assert run.status == SimulationStatus.DONE, run.error
    tz = chain.billing_timezone()
    slots = [bm.slot_id(start) for start, _ in bm.day_slots(DAY, tz)]
    assert run.slots_done == run.slots_total == len(slots) == 96

    societies = [f"sim-hh-{n:04d}" for n in range(1, HOUSEHOLDS + 1)]
    assert set(societies) <= set(chain.station_state(STATION)["societies"])
    freqs = chain.frequencies(slots)
    local_starts = [start.astimezone(bm.zone(tz)) for start, _ in bm.day_slots(DAY, tz)]
    assert [freqs[s] for s in slots] == sim.day_frequencies(seed=SEED, day=DAY, local_starts=local_starts)

    units, bills, statements = _by_society("units"), _by_society("bill"), _by_society("statement")
    readings = {t.tx_hash: t.args for t in Transaction.objects.filter(
        chaincode="consumer", function="burn", status=TxStatus.VALID, invoker__name__startswith="SIM-HH-")}
    assert len(readings) == HOUSEHOLDS * (len(slots) + 1)  # an opening reading, then one at every slot's end

    schedule = [bm.CERC_2014]  # no tariff set: the shipped vector prices every slot
    for n, society in enumerate(societies, start=1):
        expected = sim.day_energy(sim.household_profile(seed=SEED, index=n), seed=SEED, day=DAY,
                                  local_starts=local_starts)
        assert set(slots) <= set(units[society]) and set(bills[society]) == set(slots), society
        for slot, (import_wh, export_wh) in zip(slots, expected, strict=True):
            record = units[society][slot]
            assert record["meter"] == METER_ID.format(n)
            before, after = readings[record["from"]["tx"]], readings[record["to"]["tx"]]
            for side, signed in (("from", before), ("to", after)):
                assert {f: record[side][f] for f in ("counter", "import_wh", "export_wh")} == {
                    f: signed[f] for f in ("counter", "import_wh", "export_wh")}
            assert record["unit"] == (after["import_wh"] - before["import_wh"]) - (
                after["export_wh"] - before["export_wh"]) == import_wh - export_wh

            bill = bills[society][slot]
            start = datetime.fromisoformat(slot)
            rate = bm.rate(bm.tariff_for(schedule, start), freqs[slot], start)
            assert (bill["unit"], bill["avgFreq"], bill["rate"]) == (record["unit"], freqs[slot], rate)
            assert bill["amount"] == bm.bill_amount(record["unit"], rate)

        total = sum(b["amount"] for b in bills[society].values())
        statement = statements[society][DAY.isoformat()]
        assert statement["amount"] == total and statement["missing"] == []
        dues = world_state(BILLING_NAMESPACE, [dues_key(society)])[dues_key(society)]
        posted = [i for i in dues["items"] if i["kind"] in ("statement", "adjustment")]
        assert sum(i["amount"] for i in posted) == total
        assert dues["outstanding"] - dues["credit"] == sum(i["amount"] for i in dues["items"]) - dues["paid"]

    out, err = io.StringIO(), io.StringIO()
    call_command("ledger_verify", stdout=out, stderr=err, no_color=True)
    assert "ledger OK" in out.getvalue(), err.getvalue()
