"""A ledger-only world for ``energy-billing``: one organisation of every type, a distributor's
station serving two households, a second distributor with its own station. Time is explicit."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import services as ledger
from ledger.keys import BILLING_NAMESPACE
from ledger.models import StateEntry, StateWrite
from tests.ledger_helpers import Member, make_member

SLOT = timedelta(minutes=15)
T0 = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)  # 08:00 in Kolkata: a slot boundary there
LATER = T0 + timedelta(hours=6)  # when the grid, distributor and utility act: every test slot has closed
ORG_TYPES = ("utility", "grid", "distributor", "producer", "bank", "charity", "agent", "household", "auditor")
STATION = "st-north"
_keys = itertools.count(1)


@dataclass
class BillingWorld:
    members: dict[str, Member]  # by org type; the household is hh-alice
    bob: Member  # a second household at the same station
    rival: Member  # a distributor running another station
    carol: Member  # a household of the rival's station

    def invoke(self, who: Member | str, function: str, args: dict[str, Any], *,
               at: datetime | None = None) -> ledger.InvokeResult:
        member = self.members[who] if isinstance(who, str) else who
        return ledger.invoke(chaincode="energy-billing", function=function, args=args, invoker=member.identity,
                             idempotency_key=f"billing-test-{next(_keys)}", signer=member.key,
                             proposed_at=at or LATER)

    def ok(self, who: Member | str, function: str, args: dict[str, Any], **kw) -> Any:
        result = self.invoke(who, function, args, **kw)
        assert result.ok, result.reason
        return result.result

    def freq(self, start: datetime, avg: int) -> Any:
        return self.ok("grid", "initFreq", slot(start) | {"avgFreq": avg})

    def unit(self, start: datetime, wh: int, society: str = "hh-alice", station: str = STATION) -> Any:
        who = self.rival if station == "st-south" else "distributor"
        return self.ok(who, "initUnit", {"societyId": society, "stationId": station} | slot(start) | {"unit": wh})

    def bill(self, start: datetime, society: str = "hh-alice", who: Member | str = "distributor") -> ledger.InvokeResult:
        return self.invoke(who, "initBill", {"societyId": society, "stationId": STATION} | slot(start))


def slot(start: datetime) -> dict[str, str]:
    return {"startTime": start.isoformat(), "endTime": (start + SLOT).isoformat()}


def state(key: str) -> Any:
    entry = StateEntry.objects.filter(namespace=BILLING_NAMESPACE, key=key, is_deleted=False).first()
    return None if entry is None else entry.value


def writes(key: str) -> list[StateWrite]:
    return list(StateWrite.objects.filter(namespace=BILLING_NAMESPACE, key=key).order_by("id"))


def build_billing_world() -> BillingWorld:
    members = {}
    for org_type in ORG_TYPES:
        msp = "hh-alice" if org_type == "household" else f"{org_type}-one"
        members[org_type] = make_member(msp, org_type)
    world = BillingWorld(members, make_member("hh-bob", "household"), make_member("distributor-two", "distributor"),
                         make_member("hh-carol", "household"))
    world.ok("distributor", "registerStation", {"stationId": STATION, "societies": ["hh-alice", "hh-bob"]})
    world.ok(world.rival, "registerStation", {"stationId": "st-south", "societies": ["hh-carol"]})
    return world
