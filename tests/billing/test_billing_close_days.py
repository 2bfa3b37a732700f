"""``billing.dues.close_days``: a station's local day is closed once its last slot is billed
(plus a grace), or late whatever is missing; a re-bill closes it again; a run with nothing to do
records nothing, and running it twice changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from billing import dues
from ledger.chaincodes import billing_math as bm
from ledger.keys import dues_key, statement_key
from ledger.models import Transaction

from .world import STATION, BillingWorld, build_billing_world, slot, state, writes

pytestmark = pytest.mark.postgres

DAY = date(2026, 6, 1)
SLOTS = bm.day_slots(DAY, "Asia/Kolkata")
END = SLOTS[-1][1]  # 2026-06-01T18:30Z: midnight in Kolkata
AT = END + timedelta(minutes=5)


@pytest.fixture
def bw(db) -> BillingWorld:
    return build_billing_world()


def bill(bw: BillingWorld, start: datetime, alice: int | None, bob: int | None = 1000) -> None:
    bw.ok("grid", "initFreq", slot(start) | {"avgFreq": 4990}, at=AT)
    for society, wh in (("hh-alice", alice), ("hh-bob", bob)):
        if wh is None:
            continue
        bw.ok("distributor", "initUnit", {"societyId": society, "stationId": STATION} | slot(start) | {"unit": wh},
              at=AT)
        assert bw.ok("distributor", "initBill", {"societyId": society, "stationId": STATION} | slot(start), at=AT)


def closes() -> int:
    return Transaction.objects.filter(chaincode="energy-billing", function="closeDay").count()


def test_a_day_is_closed_after_its_last_slot_is_billed_and_the_grace(bw):
    first, last = SLOTS[10][0], SLOTS[-1][0]
    bill(bw, first, 1000)
    assert dues.close_days(now=END + timedelta(hours=2)) == []  # the last slot is not billed yet
    bill(bw, last, 3000)
    assert dues.close_days(now=END + timedelta(minutes=10)) == []  # within the grace
    [closed] = dues.close_days(now=END + dues.GRACE)
    assert (closed.station, closed.date, closed.issued) == (STATION, "2026-06-01", 2)
    assert state(statement_key(STATION, "hh-alice", "2026-06-01"))["amount"] == 386 + 1159
    assert state(dues_key("hh-bob"))["outstanding"] == 772
    assert dues.close_days(now=END + timedelta(hours=1)) == [] and closes() == 1  # nothing to do: no invocation
    again = dues.close_day(STATION, DAY)  # the same bills: the ledger answers with the first close
    assert again.tx_hash == closed.tx_hash and closes() == 1


def test_a_day_with_a_missing_household_is_closed_late(bw):
    bill(bw, SLOTS[-1][0], 1000, bob=None)
    assert dues.close_days(now=END + timedelta(hours=1)) == []
    [closed] = dues.close_days(now=END + dues.LATE)
    assert closed.issued == 2
    bob = state(statement_key(STATION, "hh-bob", "2026-06-01"))
    assert bob["amount"] == 0 and len(bob["missing"]) == 96
    bw.ok("distributor", "initUnit", {"societyId": "hh-bob", "stationId": STATION} | slot(SLOTS[-1][0])
          | {"unit": 1000}, at=AT)
    bw.ok("distributor", "initBill", {"societyId": "hh-bob", "stationId": STATION} | slot(SLOTS[-1][0]), at=AT)
    [late] = dues.close_days(now=END + timedelta(days=1))  # bob's bill came late: his statement is re-issued
    assert late.issued == 1
    assert state(statement_key(STATION, "hh-bob", "2026-06-01"))["version"] == 2
    assert [i["kind"] for i in state(dues_key("hh-bob"))["items"]] == ["adjustment"]


def test_a_rebilled_slot_closes_its_day_again_once(bw):
    bill(bw, SLOTS[-1][0], 1000)
    assert len(dues.close_days(now=END + timedelta(hours=1))) == 1
    bw.ok("distributor", "initUnit", {"societyId": "hh-alice", "stationId": STATION} | slot(SLOTS[-1][0])
          | {"unit": 3000}, at=AT)
    assert bw.ok("distributor", "initBill", {"societyId": "hh-alice", "stationId": STATION} | slot(SLOTS[-1][0]),
                 at=AT)["status"] == "rebilled"
    [reclosed] = dues.close_days(now=END + timedelta(hours=2))
    assert reclosed.issued == 1
    alice = state(dues_key("hh-alice"))
    assert [(i["kind"], i["amount"]) for i in alice["items"]] == [("statement", 386), ("adjustment", 773)]
    assert dues.close_days(now=END + timedelta(hours=3)) == [] and closes() == 2
    assert len(writes(statement_key(STATION, "hh-alice", "2026-06-01"))) == 2


def test_days_out_of_the_lookback_and_days_without_bills_are_left_alone(bw):
    bill(bw, SLOTS[-1][0], 1000)
    assert dues.close_days(now=END + timedelta(days=dues.LOOKBACK_DAYS + 1)) == []
    assert dues.close_days(now=datetime(2026, 5, 30, tzinfo=UTC)) == []
    assert closes() == 0


def test_the_task_closes_due_days_and_a_rerun_closes_nothing(bw):
    from billing import tasks

    bill(bw, SLOTS[-1][0], 1000)
    now = (END + timedelta(hours=1)).isoformat()
    assert tasks.close_days(now=now) == {"closed": 1, "issued": 2}
    assert tasks.close_days(now=now) == {"closed": 0, "issued": 0} and closes() == 1
