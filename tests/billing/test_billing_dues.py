"""``energy-billing`` dues through the ledger on PostgreSQL: day statements, re-closing after a
re-bill, fines once per breach, payments oldest first with overpayment as credit, who may read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.chaincodes import billing_math as bm
from ledger.keys import BILLING_CONFIG_KEY, dues_key, dues_payment_key, statement_key
from ledger.verify import verify_chain

from .world import LATER, SLOT, STATION, T0, BillingWorld, build_billing_world, slot, state, writes

pytestmark = pytest.mark.postgres

DAY = "2026-06-01"  # T0 is 08:00 on this day in Kolkata
AFTER = datetime(2026, 6, 2, 0, 0, tzinfo=UTC)  # 05:30 on the 2nd in Kolkata: the 1st has ended
SLOTS = [bm.slot_id(start) for start, _ in bm.day_slots(datetime.fromisoformat(DAY).date(), "Asia/Kolkata")]


@pytest.fixture
def bw(db) -> BillingWorld:
    return build_billing_world()


def billed(bw: BillingWorld, start: datetime, alice: int, bob: int = 0, freq: int = 4990) -> None:
    """Frequency 4990 prices at 386.40 paise/kWh: 1000 Wh = 386 paise, 3000 Wh = 1159 paise."""
    at = max(LATER, start + 2 * SLOT)
    bw.ok("grid", "initFreq", slot(start) | {"avgFreq": freq}, at=at)
    for society, wh in (("hh-alice", alice), ("hh-bob", bob)):
        bw.ok("distributor", "initUnit", {"societyId": society, "stationId": STATION} | slot(start) | {"unit": wh},
              at=at)
    assert bw.ok("distributor", "initStationBill", {"stationId": STATION} | slot(start), at=at)


def close(bw: BillingWorld, who="distributor", day: str = DAY, at: datetime = AFTER):
    return bw.invoke(who, "closeDay", {"stationId": STATION, "date": day}, at=at)


def pay(bw: BillingWorld, amount: int, event_id: str, *, account: str = "bill:hh-alice", payee: str = "utility-one",
        currency: str = "INR", at: datetime = AFTER):
    return bw.invoke("bank", "payDues", {"event_id": event_id, "payer": "hh-alice", "payee": payee, "amount": amount,
                                          "currency": currency, "paid_at": at.isoformat(), "account": account}, at=at)


def dues(society: str = "hh-alice") -> dict:
    return state(dues_key(society))


def terms(bw: BillingWorld, threshold: int, fine: int) -> None:
    bw.ok("utility", "configure", {"dues_threshold": threshold, "fine": fine})


def test_configure_keeps_the_time_zone_and_adds_dues_terms(bw):
    assert bw.ok("utility", "configure", {"timezone": "Asia/Kolkata"}) == {"timezone": "Asia/Kolkata"}
    assert bw.ok("utility", "configure", {"fine": 5000}) == {"timezone": "Asia/Kolkata", "fine": 5000,
                                                            "utility": "utility-one"}
    terms(bw, 0, 0)  # zero is allowed: any outstanding breaches, no fine
    assert state(BILLING_CONFIG_KEY) == {"timezone": "Asia/Kolkata", "fine": 0, "dues_threshold": 0,
                                         "utility": "utility-one"}
    for bad in ({"fine": -1}, {"dues_threshold": "100"}, {"fine": True}, {}):
        result = bw.invoke("utility", "configure", bad)
        assert not result.ok, bad
    assert "'timezone' is required" in bw.invoke("utility", "configure", {}).reason
    assert len(writes(BILLING_CONFIG_KEY)) == 3


def test_a_closed_day_becomes_a_statement_and_a_due_item_once(bw):
    billed(bw, T0, 1000, 3000)
    billed(bw, T0 + SLOT, 3000, -1000)
    result = close(bw)
    assert result.ok, result.reason
    assert result.result == {"stationId": STATION, "date": DAY, "statements": 2, "issued": 2,
                             "amount": 386 + 1159 + 1159 - 386, "currency": "INR", "fined": []}
    statement = state(statement_key(STATION, "hh-alice", DAY))
    assert statement["amount"] == 1545 and statement["slots"] == 2 and statement["version"] == 1
    assert len(statement["missing"]) == 94 and T0.isoformat() not in statement["missing"]
    assert statement["missing"] == [s for s in SLOTS if s not in (T0.isoformat(), (T0 + SLOT).isoformat())]
    alice = dues()
    assert [(i["id"], i["kind"], i["amount"], i["open"]) for i in alice["items"]] == [
        (f"statement:{STATION}:{DAY}", "statement", 1545, 1545)]
    assert alice["outstanding"] == 1545 and alice["credit"] == 0 and alice["stations"] == [STATION]
    assert dues("hh-bob")["outstanding"] == 1159 - 386

    again = close(bw, who="utility")
    assert again.ok and again.result["issued"] == 0
    assert len(writes(statement_key(STATION, "hh-alice", DAY))) == 1
    assert len(writes(dues_key("hh-alice"))) == 1


def test_a_day_closes_only_once_it_has_ended_and_only_for_its_distributor(bw):
    early = close(bw, at=datetime(2026, 6, 1, 18, 0, tzinfo=UTC))  # 23:30 in Kolkata
    assert not early.ok and "has not ended yet in Asia/Kolkata" in early.reason
    rival = close(bw, who=bw.rival)
    assert not rival.ok and "not run by distributor-two" in rival.reason
    for bad in ("2026-6-1", "01/06/2026", "2026-02-30"):
        refused = bw.invoke("distributor", "closeDay", {"stationId": STATION, "date": bad}, at=AFTER)
        assert not refused.ok and "YYYY-MM-DD" in refused.reason
    assert writes(statement_key(STATION, "hh-alice", DAY)) == []
    empty = close(bw)  # a day without bills: statements of 0, no due item
    assert empty.ok and empty.result["amount"] == 0
    assert state(statement_key(STATION, "hh-alice", DAY))["slots"] == 0 and dues()["items"] == []


def test_reclosing_after_a_rebill_posts_only_the_difference(bw):
    terms(bw, 100_000, 0)
    billed(bw, T0, 1000)
    billed(bw, T0 + SLOT, 1000)
    assert close(bw).ok
    assert pay(bw, 500, "pay-1").ok  # 772 owed, 500 paid
    bw.unit(T0, 3000)  # late units: the slot is re-billed (386 → 1159)
    assert bw.bill(T0).result["status"] == "rebilled"
    assert close(bw).result["issued"] == 1
    statement = state(statement_key(STATION, "hh-alice", DAY))
    assert statement["version"] == 2 and statement["replaces"] == 772 and statement["amount"] == 1545
    items = dues()["items"]
    assert [(i["kind"], i["amount"], i["open"]) for i in items] == [("statement", 772, 272),
                                                                    ("adjustment", 773, 773)]
    assert items[1]["id"] == f"adjustment:{STATION}:{DAY}:2"
    assert dues()["outstanding"] == 1045 == 1545 - 500
    assert close(bw).result["issued"] == 0  # never doubled

    bw.unit(T0, -1000)  # the household exported after all: credit applied to the oldest open items
    bw.bill(T0)
    assert close(bw).ok
    alice = dues()
    assert [(i["kind"], i["amount"], i["open"]) for i in alice["items"]] == [
        ("statement", 772, 0), ("adjustment", 773, 0), ("adjustment", -1545, 0)]
    assert alice["outstanding"] == 0 and alice["credit"] == 500  # 0 billed, 500 paid
    history = [w.value["amount"] for w in writes(statement_key(STATION, "hh-alice", DAY))]
    assert history == [772, 1545, 0]
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


def test_a_fine_once_per_breach(bw):
    terms(bw, 1000, 100)
    billed(bw, T0, 3000)  # 1159 > 1000: in breach
    result = close(bw)
    assert result.result["fined"] == ["hh-alice"]
    alice = dues()
    assert [(i["kind"], i["amount"]) for i in alice["items"]] == [("statement", 1159), ("fine", 100)]
    assert alice["in_breach"] and alice["fines"] == 1 and alice["outstanding"] == 1259
    bw.unit(T0, 3100)  # re-billed higher while still in breach: no second fine
    bw.bill(T0)
    assert close(bw).result["fined"] == []
    assert dues()["fines"] == 1
    assert pay(bw, 200, "pay-1").ok  # 1398 - 200 = 1198: still above the threshold, still one breach
    assert dues()["in_breach"] and dues()["fines"] == 1
    assert pay(bw, 300, "pay-2").ok  # 898: the breach ends
    assert not dues()["in_breach"]
    billed(bw, datetime(2026, 6, 2, 2, 30, tzinfo=UTC), 1000)  # the next day: 898 + 386 > 1000 again
    assert close(bw, day="2026-06-02", at=datetime(2026, 6, 3, tzinfo=UTC)).result["fined"] == ["hh-alice"]
    alice = dues()
    assert alice["fines"] == 2 and [i["kind"] for i in alice["items"]].count("fine") == 2
    assert alice["items"][-1]["id"] == "fine:2"


def test_payments_clear_oldest_first_and_overpayment_is_credit(bw):
    terms(bw, 1000, 100)
    billed(bw, T0, 3000)
    close(bw)  # statement 1159, fine 100
    billed(bw, datetime(2026, 6, 2, 2, 30, tzinfo=UTC), 1000)
    close(bw, day="2026-06-02", at=datetime(2026, 6, 3, tzinfo=UTC))  # statement 386; still in breach
    first = pay(bw, 1200, "pay-1")
    assert first.ok, first.reason
    assert first.result["cleared"] == [{"id": f"statement:{STATION}:{DAY}", "amount": 1159},
                                       {"id": "fine:1", "amount": 41}]
    assert first.result["outstanding"] == 59 + 386 and first.result["credit"] == 0
    second = pay(bw, 1000, "pay-2")
    assert second.result["cleared"] == [{"id": "fine:1", "amount": 59},
                                        {"id": f"statement:{STATION}:2026-06-02", "amount": 386}]
    alice = dues()
    assert alice["outstanding"] == 0 and alice["credit"] == 555 and alice["paid"] == 2200
    assert state(dues_payment_key("hh-alice", "pay-2"))["credit"] == 555
    billed(bw, datetime(2026, 6, 3, 2, 30, tzinfo=UTC), 1000)  # the next statement is paid by the credit
    close(bw, day="2026-06-03", at=datetime(2026, 6, 4, tzinfo=UTC))
    assert dues()["credit"] == 555 - 386 and dues()["outstanding"] == 0


def test_refused_payments_change_nothing(bw):
    billed(bw, T0, 1000)
    close(bw)
    unconfigured = pay(bw, 100, "pay-0")
    assert not unconfigured.ok and "no utility has set dues terms" in unconfigured.reason
    terms(bw, 5000, 100)
    for kw, reason in (({"account": "bill:hh-nobody"}, "unknown bill account"),
                       ({"account": "household:hh-alice"}, "not a bill account"),
                       ({"payee": "grid-one"}, "dues are paid in INR to utility-one"),
                       ({"currency": "USD"}, "dues are paid in INR to utility-one")):
        refused = pay(bw, 100, "pay-1", **kw)
        assert not refused.ok and reason in refused.reason, refused.reason
    assert pay(bw, 100, "pay-1").ok
    twice = pay(bw, 100, "pay-1")
    assert not twice.ok and "exists already" in twice.reason
    assert dues()["paid"] == 100 and len(writes(dues_key("hh-alice"))) == 2
    assert not bw.invoke("household", "payDues", {"event_id": "x", "payer": "hh-alice", "payee": "utility-one",
                                                  "amount": 1, "currency": "INR", "paid_at": AFTER.isoformat(),
                                                  "account": "bill:hh-alice"}, at=AFTER).ok


def test_dues_and_statements_are_read_by_the_household_its_distributor_utility_auditor(bw):
    billed(bw, T0, 1000)
    close(bw)
    args = {"societyId": "hh-alice"}
    statement_args = {"societyId": "hh-alice", "stationId": STATION, "date": DAY}
    assert bw.ok("household", "readDues", args)["account"] == "bill:hh-alice"
    for who in ("distributor", "utility", "auditor"):
        assert bw.ok(who, "readDues", args)["outstanding"] == 386
        assert bw.ok(who, "readStatement", statement_args)["amount"] == 386
    for who in (bw.bob, bw.carol):
        assert "only its own records" in bw.invoke(who, "readDues", args).reason
        assert "only its own records" in bw.invoke(who, "readStatement", statement_args).reason
    assert "not served by a station of distributor-two" in bw.invoke(bw.rival, "readDues", args).reason
    assert not bw.invoke(bw.rival, "readStatement", statement_args).ok
    assert "no dues for 'hh-carol'" in bw.invoke(bw.carol, "readDues", {"societyId": "hh-carol"}).reason
    missing = bw.invoke("household", "readStatement", statement_args | {"date": "2026-05-31"})
    assert not missing.ok and "no statement" in missing.reason
