"""Reads for the billing pages: who may see what, and a day's frequencies, units and bills, a
household's dues and a month's statement, all from the ``billing`` world state (the ledger's).

Nothing here writes. Permissions mirror the chaincode's read rules: a household member sees only
its own household; distributor staff only the households of stations their distributor runs;
grid, utility and auditor staff see every slot's frequency; utility and auditor see every
station. Membership in an organisation comes from ``accounts``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Membership
from ledger import selectors as ledger
from ledger.chaincodes import billing_math as bm
from ledger.keys import (
    BILLING_NAMESPACE,
    TARIFFS_KEY,
    bill_account,
    bill_key,
    dues_key,
    dues_payment_key,
    freq_key,
    units_key,
)
from ledger.models import Organisation, OrgType

from . import chain

CURRENCY = "INR"
PAST_DAYS = 7  # the past days a page links to
KEY_CHUNK = 5000  # keys per world-state query


# --- configuration ---------------------------------------------------------------------------

config = chain.billing_config
billing_timezone = chain.billing_timezone


def today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(bm.zone(billing_timezone())).date()


def parse_day(text: str | None, now: datetime | None = None) -> date | None:
    """The ``?date=`` of a page: ISO date, not after today; empty → today; bad → None."""
    if not text:
        return today(now)
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None
    return day if date(2000, 1, 1) <= day <= today(now) else None


def past_days(day: date, now: datetime | None = None) -> list[date]:
    """Up to ``PAST_DAYS`` days before ``day``, newest first."""
    return [day - timedelta(days=n) for n in range(1, PAST_DAYS + 1)]


def next_day(day: date, now: datetime | None = None) -> date | None:
    following = day + timedelta(days=1)
    return following if following <= today(now) else None


def tariff_schedule() -> list[dict[str, Any]]:
    """Every tariff, oldest first: the shipped CERC 2014 vector, then what the utility added."""
    stored = ledger.world_state(BILLING_NAMESPACE, [TARIFFS_KEY]).get(TARIFFS_KEY) or []
    return [bm.CERC_2014, *stored]


# --- who may see what --------------------------------------------------------------------------

def _memberships(user) -> list[Membership]:
    if not user.is_authenticated or not user.is_active:
        return []
    return list(Membership.objects.select_related("organisation", "identity").filter(user_id=user.pk).order_by("id"))


def organisations_of(user, *org_types: str) -> list[Organisation]:
    return [m.organisation for m in _memberships(user) if not org_types or m.organisation.org_type in org_types]


def membership_of(user, *org_types: str) -> Membership | None:
    return next((m for m in _memberships(user) if m.organisation.org_type in org_types), None)


def sees_frequencies(user) -> bool:
    return bool(organisations_of(user, OrgType.GRID, OrgType.UTILITY, OrgType.AUDITOR))


def sets_tariffs(user) -> bool:
    return bool(organisations_of(user, OrgType.UTILITY))


def household_of(user) -> Organisation | None:
    orgs = organisations_of(user, OrgType.HOUSEHOLD)
    return orgs[0] if orgs else None


stations = chain.stations


def stations_visible_to(user) -> dict[str, dict[str, Any]]:
    """The stations whose households the user may see as an operator: its distributor's own, or
    every station for utility and auditor staff."""
    orgs = organisations_of(user, OrgType.DISTRIBUTOR, OrgType.UTILITY, OrgType.AUDITOR)
    if not orgs:
        return {}
    everything = stations()
    if any(o.org_type in (OrgType.UTILITY, OrgType.AUDITOR) for o in orgs):
        return everything
    mine = {o.msp_id for o in orgs}
    return {sid: record for sid, record in everything.items() if record.get("distributor") in mine}


def stations_serving(society: str) -> list[str]:
    return sorted(sid for sid, record in stations().items() if society in record.get("societies", []))


def home_for(user) -> str | None:
    """The URL name of the user's billing view, by role; None without one."""
    types = {o.org_type for o in organisations_of(user)}
    if OrgType.HOUSEHOLD in types:
        return "billing:household"
    if OrgType.DISTRIBUTOR in types:
        return "billing:distributor"
    if types & {OrgType.GRID, OrgType.UTILITY, OrgType.AUDITOR}:
        return "billing:grid"
    return None


# --- world state, by keys ----------------------------------------------------------------------

def _state(keys: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for n in range(0, len(keys), KEY_CHUNK):
        found.update(ledger.world_state(BILLING_NAMESPACE, keys[n:n + KEY_CHUNK]))
    return found


def slots_of(day: date) -> list[tuple[datetime, datetime]]:
    return bm.day_slots(day, billing_timezone())


@dataclass(frozen=True)
class FreqSlot:
    start: datetime  # in the billing time zone
    end: datetime
    avg_freq: int | None  # centi-hertz


def day_frequencies(day: date) -> list[FreqSlot]:
    tz = bm.zone(billing_timezone())
    slots = slots_of(day)
    found = _state([freq_key(bm.slot_id(s)) for s, _e in slots])
    rows = []
    for start, end in slots:
        record = found.get(freq_key(bm.slot_id(start)))
        rows.append(FreqSlot(start.astimezone(tz), end.astimezone(tz), None if record is None else record["avgFreq"]))
    return rows


@dataclass(frozen=True)
class HouseholdSlot:
    start: datetime  # in the billing time zone
    end: datetime
    avg_freq: int | None
    unit: int | None  # Wh, negative = exported
    rate: int | None  # hundredths of a paisa per kWh
    amount: int | None  # paise
    tariff: str = ""
    version: int | None = None

    @property
    def imported(self) -> int:
        return max(self.unit or 0, 0)

    @property
    def exported(self) -> int:
        return max(-(self.unit or 0), 0)


def household_day(society: str, day: date) -> list[HouseholdSlot]:
    """Every slot of the day for a household, across the stations serving it (a household is
    normally at one station; if at several, the slot's units and bills add up)."""
    tz = bm.zone(billing_timezone())
    slots = slots_of(day)
    serving = stations_serving(society)
    keys = [freq_key(bm.slot_id(s)) for s, _e in slots]
    for station in serving:
        for start, _end in slots:
            slot = bm.slot_id(start)
            keys += [units_key(station, society, slot), bill_key(station, society, slot)]
    found = _state(keys)
    rows = []
    for start, end in slots:
        slot = bm.slot_id(start)
        freq = found.get(freq_key(slot))
        units = [found[k]["unit"] for k in (units_key(st, society, slot) for st in serving) if k in found]
        bills = [found[k] for k in (bill_key(st, society, slot) for st in serving) if k in found]
        rows.append(HouseholdSlot(
            start=start.astimezone(tz), end=end.astimezone(tz),
            avg_freq=None if freq is None else freq["avgFreq"],
            unit=sum(units) if units else None,
            rate=bills[0]["rate"] if bills else None,
            amount=sum(b["amount"] for b in bills) if bills else None,
            tariff=bills[0]["tariff"]["kind"] if bills else "",
            version=max(b["version"] for b in bills) if bills else None))
    return rows


@dataclass(frozen=True)
class DayTotals:
    imported: int = 0
    exported: int = 0
    amount: int = 0
    billed: int = 0  # slots with a bill
    metered: int = 0  # slots with units
    slots: int = 0

    @classmethod
    def of(cls, rows: list[HouseholdSlot]) -> DayTotals:
        return cls(imported=sum(r.imported for r in rows), exported=sum(r.exported for r in rows),
                   amount=sum(r.amount or 0 for r in rows), billed=sum(r.amount is not None for r in rows),
                   metered=sum(r.unit is not None for r in rows), slots=len(rows))


# --- dues ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DueItem:
    id: str
    kind: str  # statement | adjustment | fine
    amount: int  # paise
    open: int  # paise still owed
    created: str


@dataclass(frozen=True)
class Dues:
    society: str
    outstanding: int = 0
    credit: int = 0
    in_breach: bool = False
    fines: int = 0  # fines applied so far (count)
    items: list[DueItem] = field(default_factory=list)

    @property
    def account(self) -> str:
        return bill_account(self.society)

    @property
    def open_items(self) -> list[DueItem]:
        return [i for i in self.items if i.open]

    @property
    def open_fines(self) -> int:
        return sum(i.open for i in self.items if i.kind == "fine")


def _dues(society: str, record: dict[str, Any] | None) -> Dues:
    record = record or {}
    items = [DueItem(id=str(i.get("id", "")), kind=str(i.get("kind", "")), amount=int(i.get("amount", 0)),
                     open=int(i.get("open", 0)), created=str(i.get("created", "")))
             for i in record.get("items", []) if isinstance(i, dict)]
    fines = record.get("fines", 0)
    fines = len(fines) if isinstance(fines, list) else int(fines or 0)
    return Dues(society=society, outstanding=int(record.get("outstanding", 0)), credit=int(record.get("credit", 0)),
                in_breach=bool(record.get("in_breach", False)), fines=fines, items=items)


def dues_of(society: str) -> Dues:
    return _dues(society, ledger.world_state(BILLING_NAMESPACE, [dues_key(society)]).get(dues_key(society)))


def dues_many(societies: list[str]) -> dict[str, Dues]:
    found = _state([dues_key(s) for s in societies])
    return {s: _dues(s, found.get(dues_key(s))) for s in societies}


# --- the distributor's households ----------------------------------------------------------------

@dataclass(frozen=True)
class HouseholdRow:
    station: str
    society: str
    name: str
    totals: DayTotals
    dues: Dues


def station_households_day(station_records: dict[str, dict[str, Any]], day: date) -> list[HouseholdRow]:
    """Per household of these stations, the day's units and bills and its dues now."""
    slots = [bm.slot_id(s) for s, _e in slots_of(day)]
    keys: list[str] = []
    pairs = [(sid, society) for sid, record in sorted(station_records.items())
             for society in record.get("societies", [])]
    for sid, society in pairs:
        for slot in slots:
            keys += [units_key(sid, society, slot), bill_key(sid, society, slot)]
    found = _state(keys)
    names = dict(Organisation.objects.filter(msp_id__in={s for _sid, s in pairs}).values_list("msp_id", "name"))
    dues = dues_many(sorted({s for _sid, s in pairs}))
    rows = []
    for sid, society in pairs:
        imported = exported = amount = billed = metered = 0
        for slot in slots:
            units = found.get(units_key(sid, society, slot))
            if units is not None:
                metered += 1
                imported += max(units["unit"], 0)
                exported += max(-units["unit"], 0)
            bill = found.get(bill_key(sid, society, slot))
            if bill is not None:
                billed += 1
                amount += bill["amount"]
        totals = DayTotals(imported=imported, exported=exported, amount=amount, billed=billed, metered=metered,
                           slots=len(slots))
        rows.append(HouseholdRow(sid, society, names.get(society, society), totals, dues[society]))
    return rows


# --- a month ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatementDay:
    day: date
    totals: DayTotals


@dataclass(frozen=True)
class DuesPayment:
    event_id: str
    paid_at: datetime  # in the billing time zone
    amount: int  # paise


@dataclass(frozen=True)
class MonthStatement:
    society: str
    name: str
    month: date  # its first day
    days: list[StatementDay]
    dues: Dues
    timezone: str
    payments: list[DuesPayment] = field(default_factory=list)

    @property
    def totals(self) -> DayTotals:
        return DayTotals(imported=sum(d.totals.imported for d in self.days),
                         exported=sum(d.totals.exported for d in self.days),
                         amount=sum(d.totals.amount for d in self.days),
                         billed=sum(d.totals.billed for d in self.days),
                         metered=sum(d.totals.metered for d in self.days),
                         slots=sum(d.totals.slots for d in self.days))


def month_days(month: date, now: datetime | None = None) -> list[date]:
    last = today(now)
    days, day = [], month.replace(day=1)
    while day.month == month.month and day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


def payments_in(society: str, month: date) -> list[DuesPayment]:
    """The household's payments of dues (``payDues``) paid in the local month, oldest first."""
    tz = bm.zone(billing_timezone())
    found = []
    for record in ledger.world_state(BILLING_NAMESPACE, prefix=dues_payment_key(society, "")).values():
        try:
            paid_at = datetime.fromisoformat(record["paid_at"]).astimezone(tz)
        except (KeyError, TypeError, ValueError):
            continue
        if (paid_at.year, paid_at.month) == (month.year, month.month):
            found.append(DuesPayment(str(record.get("event_id", "")), paid_at, int(record.get("amount", 0))))
    return sorted(found, key=lambda p: p.paid_at)


def month_statement(society: str, month: date, now: datetime | None = None) -> MonthStatement:
    """The household's bills of a month (local days up to today), its payments of dues in the
    month and its dues now."""
    days = [StatementDay(d, DayTotals.of(household_day(society, d))) for d in month_days(month, now)]
    name = Organisation.objects.filter(msp_id=society).values_list("name", flat=True).first() or society
    return MonthStatement(society=society, name=name, month=month.replace(day=1), days=days,
                          dues=dues_of(society), timezone=billing_timezone(),
                          payments=payments_in(society, month))
