"""``energy-billing``: frequency-based billing (seed 001), with its function names and argument
order: the grid records each 15-minute slot's average frequency, the distributor records each of
its households' units, and a bill prices the units at the rate the tariff in force gives for that
frequency (``billing_math``). Money is integer paise; export (negative units) is credited.

Who may do what is enforced here, on the ledger, not by the apps:
- ``initFreq``/``deleteFreq``: the grid. ``readFreq``: grid, utility, distributor, auditor and
  households (every bill rests on the frequency, so whoever holds a bill may check it).
- ``registerStation``: a distributor names the households (societies) its station serves; a
  station belongs to the distributor that first registered it.
- ``initUnit``/``deleteUnit``: the distributor, for households its station serves;
  ``initStationUnits`` records a whole station's slot from the households' signed meter readings.
- ``initBill``/``initStationBill``/``deleteBill``: the station's distributor or the utility.
- ``readUnit``/``readBill``: the household itself, the station's distributor, utility, auditor.
- ``setTariff``/``configure``: the utility. The shipped CERC 2014 vector is always the first entry
  of the schedule (it is never stored, so a ledger with no ``setTariff`` bills by it); a tariff
  the utility adds applies to slots starting at or after its ``effective_from``. The time zone
  slots align to is ``billing-config.timezone`` (default Asia/Kolkata), set by ``configure``,
  which also sets the dues threshold and fine (``billing_dues``: statements, dues, payments).

Billing a slot twice never doubles it: the bill is one world-state entry per household and slot;
an ``initBill`` whose inputs (frequency, units, tariff) are unchanged writes nothing and returns
the bill, one whose inputs changed replaces it (version + 1, ``replaces`` = the old amount), and
the replaced bill stays in the ledger's history. Deletes are recorded state deletions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..contracts import Context, Contract, ContractError, registry
from ..keys import (
    BILLING_CONFIG_KEY,
    BILLING_NAMESPACE,
    TARIFFS_KEY,
    bill_key,
    freq_key,
    station_key,
    units_key,
)
from . import billing_math as bm

CURRENCY = "INR"
MIN_FREQ, MAX_FREQ = 4500, 5500  # centi-hertz: anything outside is a broken instrument, not a grid
NAME_LENGTH = 64

billing = registry.register(Contract(
    "energy-billing", "Frequency-based billing: slot frequencies, household units, bills and tariffs.",
    namespace=BILLING_NAMESPACE))

GRID, DISTRIBUTOR, UTILITY, HOUSEHOLD, AUDITOR = "grid", "distributor", "utility", "household", "auditor"


# --- helpers -------------------------------------------------------------------------------------

def timezone_of(ctx: Context) -> str:
    config = ctx.get_state(BILLING_CONFIG_KEY) or {}
    return str(config.get("timezone", bm.DEFAULT_TIMEZONE))


def _moment(ctx: Context, name: str) -> datetime:
    text = ctx.arg_str(name, max_length=40)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"argument {name!r} must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ContractError(f"argument {name!r} must carry a timezone")
    return moment


def slot_args(ctx: Context, *, closed: bool = True) -> tuple[datetime, str]:
    """(start, slot id) of ``startTime``/``endTime``: one aligned slot, over by now when ``closed``
    (an average frequency or a unit count of a slot that has not ended cannot be known)."""
    start, end = _moment(ctx, "startTime"), _moment(ctx, "endTime")
    try:
        bm.check_slot(start, end, timezone_of(ctx))
    except bm.BillingError as exc:
        raise ContractError(str(exc)) from None
    if closed and end > ctx.now:
        raise ContractError(f"the slot ending {end.isoformat()} has not closed yet")
    return start, bm.slot_id(start)


def start_arg(ctx: Context) -> tuple[datetime, str]:
    start = _moment(ctx, "startTime")
    if not bm.is_aligned(start, timezone_of(ctx)):
        raise ContractError(f"a slot starts at :00, :15, :30 or :45 in {timezone_of(ctx)}")
    return start, bm.slot_id(start)


def station_of(ctx: Context, station: str) -> dict[str, Any]:
    record = ctx.get_state(station_key(station))
    if record is None:
        raise ContractError(f"no station {station!r}")
    return record


def own_station(ctx: Context, station: str) -> dict[str, Any]:
    """The station, which the invoking distributor must run (the utility may act on any)."""
    record = station_of(ctx, station)
    if ctx.invoker.org_type == DISTRIBUTOR and record["distributor"] != ctx.invoker.msp_id:
        raise ContractError(f"station {station!r} is not run by {ctx.invoker.msp_id}")
    return record


def served(ctx: Context, station: str, society: str) -> dict[str, Any]:
    record = own_station(ctx, station)
    if society not in record["societies"]:
        raise ContractError(f"station {station!r} does not serve {society!r}")
    return record


def may_read_household(ctx: Context, station: str, society: str) -> None:
    """A household reads only its own records; a distributor only its station's."""
    if ctx.invoker.org_type == HOUSEHOLD and ctx.invoker.msp_id != society:
        raise ContractError(f"{ctx.invoker.msp_id} may read only its own records")
    if ctx.invoker.org_type == DISTRIBUTOR:
        served(ctx, station, society)


def tariffs(ctx: Context) -> list[dict[str, Any]]:
    return [bm.CERC_2014, *(ctx.get_state(TARIFFS_KEY) or [])]


def slot_price(ctx: Context, start: datetime, slot: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """(frequency record, rate, the bill's tariff reference) of a slot: the same for every household
    of it. Refuses a slot without a recorded frequency."""
    freq = ctx.get_state(freq_key(slot))
    if freq is None:
        raise ContractError(f"no frequency recorded for the slot starting {slot}: no bill")
    try:
        tariff = bm.tariff_for(tariffs(ctx), start)
        rate = bm.rate(tariff, freq["avgFreq"], start)
    except bm.BillingError as exc:
        raise ContractError(str(exc)) from None
    return freq, rate, {"effective_from": tariff["effective_from"], "kind": tariff["kind"]}


def household_bill(station: str, society: str, slot: str, units: dict[str, Any] | None,
                   priced: tuple[dict[str, Any], int, dict[str, str]]) -> dict[str, Any]:
    """The bill of one household's slot (not yet written); refuses without units."""
    if units is None:
        raise ContractError(f"no units recorded for {society!r} at {station!r} in the slot starting {slot}: no bill")
    freq, rate, tariff = priced
    unit = units["unit"]
    return {"societyId": society, "stationId": station, "startTime": slot, "endTime": units["endTime"],
            "avgFreq": freq["avgFreq"], "unit": unit, "rate": rate, "amount": bm.bill_amount(unit, rate),
            "currency": CURRENCY, "tariff": dict(tariff)}


def price(ctx: Context, station: str, society: str, start: datetime, slot: str) -> dict[str, Any]:
    """The bill of one household's slot (not yet written); refuses without frequency or units."""
    priced = slot_price(ctx, start, slot)
    return household_bill(station, society, slot, ctx.get_state(units_key(station, society, slot)), priced)


PRICED_FIELDS = ("avgFreq", "unit", "rate", "amount", "tariff")
BILLED_UNIT_FIELDS = ("unit", "endTime")  # what a bill takes from the household's units


def store_bill(ctx: Context, key: str, bill: dict[str, Any], existing: dict[str, Any] | None,
               billed_at: str) -> str:
    """Write a slot's bill at ``key`` unless the same bill is already there (a changed one
    replaces it); completes ``bill`` and returns its status."""
    if existing is not None and all(existing[f] == bill[f] for f in PRICED_FIELDS):
        return "unchanged"
    bill["billedAt"] = billed_at
    if existing is None:
        bill["version"] = 1
    else:
        bill["version"] = existing["version"] + 1
        bill["replaces"] = existing["amount"]
        ctx.emit("billing.rebilled", {"key": key, "amount": bill["amount"], "replaces": existing["amount"]})
    ctx.put_state(key, bill)
    return "billed" if existing is None else "rebilled"


def write_bill(ctx: Context, bill: dict[str, Any]) -> dict[str, Any]:
    """Write a slot's bill unless the same bill is already there; a changed one replaces it."""
    key = bill_key(bill["stationId"], bill["societyId"], bill["startTime"])
    existing = ctx.get_state(key)
    status = store_bill(ctx, key, bill, existing, ctx.now.isoformat())
    if status == "unchanged":
        return {**existing, "status": status}
    return {**bill, "status": status}


def _name(ctx: Context, name: str) -> str:
    value = ctx.arg_str(name, max_length=NAME_LENGTH)
    if "/" in value:
        raise ContractError(f"argument {name!r} cannot contain '/'")
    return value


# --- configuration -------------------------------------------------------------------------------

@billing.function("configure", orgs={UTILITY})
def configure(ctx: Context) -> dict:
    """Set the IANA time zone slots align to, the dues threshold and the fine (non-negative
    paise); any of them, the others stay. The utility that sets dues terms is the one dues are
    paid to (``payDues``'s payee)."""
    dues = {name: ctx.arg_int(name, positive=False, required=False) for name in ("dues_threshold", "fine")}
    given = {name: value for name, value in dues.items() if value is not None}
    tz = ctx.arg_str("timezone", max_length=64, required=not given)
    for name, value in given.items():
        if value < 0:
            raise ContractError(f"argument {name!r} must be a non-negative integer (paise)")
    config = dict(ctx.get_state(BILLING_CONFIG_KEY) or {})
    if tz is not None:
        try:
            bm.zone(tz)
        except bm.BillingError as exc:
            raise ContractError(str(exc)) from None
        config["timezone"] = tz
    if given:
        config.update(given, utility=ctx.invoker.msp_id)
    ctx.put_state(BILLING_CONFIG_KEY, config)
    return config


@billing.function("setTariff", orgs={UTILITY})
def set_tariff(ctx: Context) -> dict:
    """Add a tariff (data, see ``billing_math``), in force for slots from its ``effective_from``;
    one with the same ``effective_from`` as an earlier one replaces it."""
    tariff = ctx.args.get("tariff")
    try:
        bm.validate_tariff(tariff)
    except bm.BillingError as exc:
        raise ContractError(str(exc)) from None
    assert isinstance(tariff, dict)
    since = bm.effective_from(tariff)
    if since <= bm.effective_from(bm.CERC_2014):
        raise ContractError("a tariff must take effect after the shipped CERC 2014 vector")
    schedule = [t for t in (ctx.get_state(TARIFFS_KEY) or []) if bm.effective_from(t) != since]
    schedule.append(tariff)
    schedule.sort(key=bm.effective_from)
    ctx.put_state(TARIFFS_KEY, schedule)
    return {"effective_from": tariff["effective_from"], "kind": tariff["kind"], "tariffs": len(schedule) + 1}


@billing.function("registerStation", orgs={DISTRIBUTOR})
def register_station(ctx: Context) -> dict:
    """Name the households (their organisations' MSP ids) the invoker's station serves."""
    station = _name(ctx, "stationId")
    societies = ctx.args.get("societies")
    if (not isinstance(societies, list) or not societies
            or any(not isinstance(s, str) or not s or "/" in s or len(s) > NAME_LENGTH for s in societies)):
        raise ContractError("argument 'societies' must be a non-empty list of household MSP ids")
    existing = ctx.get_state(station_key(station))
    if existing is not None and existing["distributor"] != ctx.invoker.msp_id:
        raise ContractError(f"station {station!r} is run by another distributor")
    record = {"distributor": ctx.invoker.msp_id, "societies": sorted(set(societies))}
    ctx.put_state(station_key(station), record)
    return {"stationId": station, **record}


# --- frequency: the grid ------------------------------------------------------------------------

@billing.function("initFreq", orgs={GRID})
def init_freq(ctx: Context) -> dict:
    """Record a closed slot's average frequency (centi-hertz: 50.00 Hz = 5000)."""
    _, slot = slot_args(ctx)
    avg = ctx.arg_int("avgFreq")
    if not MIN_FREQ <= avg <= MAX_FREQ:
        raise ContractError(f"avgFreq must be between {MIN_FREQ} and {MAX_FREQ} centi-hertz")
    record = {"startTime": slot, "endTime": _moment(ctx, "endTime").astimezone(bm.UTC).isoformat(), "avgFreq": avg,
              "grid": ctx.invoker.msp_id}
    ctx.put_state(freq_key(slot), record)
    return record


def _recorded(ctx: Context, key: str, missing: str) -> dict:
    """The record at ``key``, or a refusal saying what is missing."""
    record = ctx.get_state(key)
    if record is None:
        raise ContractError(missing)
    return record


def _delete(ctx: Context, key: str, missing: str) -> dict:
    """A recorded deletion (the ledger keeps the history) of a record that must exist."""
    _recorded(ctx, key, missing)
    ctx.del_state(key)
    return {"deleted": key}


@billing.function("readFreq", orgs={GRID, UTILITY, DISTRIBUTOR, HOUSEHOLD, AUDITOR})
def read_freq(ctx: Context) -> dict:
    _, slot = start_arg(ctx)
    return _recorded(ctx, freq_key(slot), f"no frequency recorded for the slot starting {slot}")


@billing.function("deleteFreq", orgs={GRID})
def delete_freq(ctx: Context) -> dict:
    _, slot = start_arg(ctx)
    return _delete(ctx, freq_key(slot), f"no frequency recorded for the slot starting {slot}")


# --- units: the distributor ---------------------------------------------------------------------

@billing.function("initUnit", orgs={DISTRIBUTOR})
def init_unit(ctx: Context) -> dict:
    """Record a household's Wh in a closed slot (negative: energy it exported)."""
    society, station = _name(ctx, "societyId"), _name(ctx, "stationId")
    _, slot = slot_args(ctx)
    unit = ctx.arg_int("unit", positive=False)
    served(ctx, station, society)
    record = {"societyId": society, "stationId": station, "startTime": slot,
              "endTime": _moment(ctx, "endTime").astimezone(bm.UTC).isoformat(), "unit": unit}
    ctx.put_state(units_key(station, society, slot), record)
    return record


READING_FIELDS = ("counter", "import_wh", "export_wh", "tx")
TX_HASH_LENGTH = 64


def _reading(entry: int, side: str, value: Any) -> dict[str, Any]:
    """One end of a meter-read interval: the reading's cumulative registers and its transaction."""
    where = f"units[{entry}].{side}"
    if not isinstance(value, dict) or set(value) != set(READING_FIELDS):
        raise ContractError(f"{where} must be an object with exactly {', '.join(READING_FIELDS)}")
    for field in ("counter", "import_wh", "export_wh"):
        number = value[field]
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ContractError(f"{where}.{field} must be a non-negative integer")
    tx = value["tx"]
    if (not isinstance(tx, str) or len(tx) != TX_HASH_LENGTH
            or any(c not in "0123456789abcdef" for c in tx)):
        raise ContractError(f"{where}.tx must be a transaction hash (64 lowercase hex digits)")
    return {field: value[field] for field in READING_FIELDS}


def _meter_units(entry: int, value: Any, societies: list[str], station: str) -> dict[str, Any]:
    """One household's entry of ``initStationUnits``, checked: its units must be what its meter's
    two readings say (``Δimport − Δexport``), or 0 with no readings at all."""
    where = f"units[{entry}]"
    if not isinstance(value, dict) or set(value) != {"societyId", "unit", "meter", "from", "to"}:
        raise ContractError(f"{where} must be an object with exactly societyId, unit, meter, from, to")
    society = value["societyId"]
    if not isinstance(society, str) or not society or "/" in society or len(society) > NAME_LENGTH:
        raise ContractError(f"{where}.societyId must be a household MSP id")
    if society not in societies:
        raise ContractError(f"station {station!r} does not serve {society!r}")
    unit = value["unit"]
    if isinstance(unit, bool) or not isinstance(unit, int):
        raise ContractError(f"{where}.unit must be an integer (Wh)")
    meter = value["meter"]
    if meter is not None and (not isinstance(meter, str) or not meter or len(meter) > NAME_LENGTH):
        raise ContractError(f"{where}.meter must be the meter's id (a string) or null")
    if value["from"] is None or value["to"] is None:
        if value["from"] is not None or value["to"] is not None or unit != 0:
            raise ContractError(f"{where}: without readings (from and to both null) the unit must be 0")
        return {"societyId": society, "unit": 0, "meter": meter, "from": None, "to": None}
    if meter is None:
        raise ContractError(f"{where}.meter is required with readings")
    first, last = _reading(entry, "from", value["from"]), _reading(entry, "to", value["to"])
    if any(last[f] < first[f] for f in ("counter", "import_wh", "export_wh")):
        raise ContractError(f"{where}: the meter's counter and registers cannot go backwards from 'from' to 'to'")
    expected = (last["import_wh"] - first["import_wh"]) - (last["export_wh"] - first["export_wh"])
    if unit != expected:
        raise ContractError(f"{where}.unit is {unit} Wh but the readings give {expected} Wh (Δimport − Δexport)")
    return {"societyId": society, "unit": unit, "meter": meter, "from": first, "to": last}


RECORDED_FIELDS = ("unit", "meter", "from", "to")


@billing.function("initStationUnits", orgs={DISTRIBUTOR})
def init_station_units(ctx: Context) -> dict:
    """Record a closed slot's units of the station's households from their signed meter readings,
    all or none: each entry names the meter and the two readings (cumulative registers and the
    reading transaction's hash) whose difference is the unit, so anyone can check it against what
    the meter signed. Units already recorded unchanged are not rewritten."""
    station = _name(ctx, "stationId")
    # Read, not written: locked for reading, so other stations' slots are recorded (and billed)
    # at the same time (later reads of them are cached).
    ctx.get_states([BILLING_CONFIG_KEY, station_key(station)], shared=True)
    _, slot = slot_args(ctx)
    end = _moment(ctx, "endTime").astimezone(bm.UTC).isoformat()
    record = own_station(ctx, station)
    raw = ctx.args.get("units")
    if not isinstance(raw, list) or not raw:
        raise ContractError("argument 'units' must be a non-empty list of {societyId, unit, meter, from, to}")
    entries = [_meter_units(n, value, record["societies"], station) for n, value in enumerate(raw)]
    seen: set[str] = set()
    for entry in entries:
        if entry["societyId"] in seen:
            raise ContractError(f"{entry['societyId']!r} is listed twice")
        seen.add(entry["societyId"])
    keys = [units_key(station, e["societyId"], slot) for e in entries]
    existing = ctx.get_states(keys)
    recorded = 0
    for key, entry in zip(keys, entries, strict=True):
        old = existing[key]
        if old is not None and all(old.get(f) == entry[f] for f in RECORDED_FIELDS):
            continue
        ctx.put_state(key, {**entry, "stationId": station, "startTime": slot, "endTime": end})
        recorded += 1
    return {"stationId": station, "startTime": slot, "units": len(entries), "recorded": recorded,
            "total": sum(e["unit"] for e in entries)}


def _household_slot(ctx: Context) -> tuple[str, str, str]:
    society, station = _name(ctx, "societyId"), _name(ctx, "stationId")
    _, slot = start_arg(ctx)
    return society, station, slot


@billing.function("readUnit", orgs={DISTRIBUTOR, UTILITY, HOUSEHOLD, AUDITOR})
def read_unit(ctx: Context) -> dict:
    society, station, slot = _household_slot(ctx)
    may_read_household(ctx, station, society)
    return _recorded(ctx, units_key(station, society, slot),
                     f"no units recorded for {society!r} at {station!r} in the slot starting {slot}")


@billing.function("deleteUnit", orgs={DISTRIBUTOR})
def delete_unit(ctx: Context) -> dict:
    society, station, slot = _household_slot(ctx)
    served(ctx, station, society)
    return _delete(ctx, units_key(station, society, slot),
                   f"no units recorded for {society!r} at {station!r} in the slot starting {slot}")


# --- bills ---------------------------------------------------------------------------------------

@billing.function("initBill", orgs={DISTRIBUTOR, UTILITY})
def init_bill(ctx: Context) -> dict:
    """Price one household's slot with the tariff in force and write its bill (paise)."""
    society, station = _name(ctx, "societyId"), _name(ctx, "stationId")
    start, slot = slot_args(ctx)
    served(ctx, station, society)
    return write_bill(ctx, price(ctx, station, society, start, slot))


@billing.function("initStationBill", orgs={DISTRIBUTOR, UTILITY})
def init_station_bill(ctx: Context) -> dict:
    """Bill every household the station serves for one slot, all or none."""
    station = _name(ctx, "stationId")
    # The few records every station's slot needs, in one read (later reads of them are cached),
    # locked for reading only: slots of other stations (or other slots of this one) are billed
    # at the same time, while a change of any of them waits for this invocation (and the next
    # bill of the slot prices by it).
    ctx.get_states([BILLING_CONFIG_KEY, TARIFFS_KEY, station_key(station),
                    freq_key(bm.slot_id(_moment(ctx, "startTime")))], shared=True)
    start, slot = slot_args(ctx)
    societies = own_station(ctx, station)["societies"]
    # One read for every household's units (only what a bill takes from them) and one for
    # their bills, each a range of keys (the slot's directory); the slot is priced once (its
    # frequency and tariff are the same for all of them), then each household's units at that rate.
    unit_keys = [units_key(station, s, slot) for s in societies]
    bill_keys = [bill_key(station, s, slot) for s in societies]
    units = ctx.get_fields(unit_keys, BILLED_UNIT_FIELDS, span=True)
    states = ctx.get_states(bill_keys, span=True)
    priced = slot_price(ctx, start, slot)
    bills = [household_bill(station, society, slot, units[key], priced)
             for society, key in zip(societies, unit_keys, strict=True)]
    billed_at = ctx.now.isoformat()
    billed = amount = 0
    for bill, key in zip(bills, bill_keys, strict=True):
        if store_bill(ctx, key, bill, states[key], billed_at) != "unchanged":
            billed += 1
        amount += bill["amount"]
    return {"stationId": station, "startTime": slot, "bills": len(bills), "billed": billed,
            "amount": amount, "currency": CURRENCY}


@billing.function("readBill", orgs={DISTRIBUTOR, UTILITY, HOUSEHOLD, AUDITOR})
def read_bill(ctx: Context) -> dict:
    society, station, slot = _household_slot(ctx)
    may_read_household(ctx, station, society)
    return _recorded(ctx, bill_key(station, society, slot),
                     f"no bill for {society!r} at {station!r} in the slot starting {slot}")


@billing.function("deleteBill", orgs={DISTRIBUTOR, UTILITY})
def delete_bill(ctx: Context) -> dict:
    society, station, slot = _household_slot(ctx)
    served(ctx, station, society)
    return _delete(ctx, bill_key(station, society, slot),
                   f"no bill for {society!r} at {station!r} in the slot starting {slot}")
