"""Frequency-based billing arithmetic for ``energy-billing``: pure, integers only, no ORM.

Units (no floats anywhere):
- frequency: integer centi-hertz (50.05 Hz = 5005);
- energy: signed Wh (negative = energy exported by the household);
- rate: integer *hundredths of a paisa per kWh* ("centipaise/kWh"), so the CERC 2014 step of
  35.60 paise is 3560 and the cap of 824.04 paise is 82404;
- bill: integer paise (the fiat minor unit). ``bill = Wh × rate / 100_000`` (1000 Wh per kWh,
  100 centipaise per paisa), rounded **half away from zero**, so an export credit is exactly the
  negation of the same-sized import charge.

Slots: 15 minutes, starting at :00/:15/:30/:45 of the wall clock in the utility's IANA zone.
A slot is identified by its start instant; on a day when the clocks change the local day has as
many slots as it has real quarter hours (92 on a spring-forward day, 100 on a fall-back day).

Tariffs are versioned data, chosen by the slot's start (the latest ``effective_from`` ≤ start):
- ``frequency_vector`` — ``bands``: contiguous ``{"from": lo, "below": hi, "base": b, "step": s}``
  ordered from high to low frequency; f in [lo, hi) pays ``b + s × (hi − f)``; f at or above the
  first band's ``below`` pays ``above_rate``; f under the last band's ``from`` pays ``floor_rate``.
- ``exchange_linked`` — the normal rate N is the slot's exchange clearing price
  (``prices[<slot start ISO, UTC>]``: an integer, or ``{"dam": x, "rtm": y}`` whose N is the
  higher of the day-ahead and real-time prices) or else ``base_rate``; ``band = [lo, hi]`` (centi-Hz).
  f ≥ hi → 0; 5000 ≤ f < hi → N × (hi − f) / (hi − 5000) (N at 50.00 Hz, falling to 0 at hi);
  lo ≤ f < 5000 → N + (C − N) × (5000 − f) / (5000 − lo) where C = N × ``cap_percent`` / 100;
  f < lo → C. Divisions round half away from zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SLOT = timedelta(minutes=15)
DEFAULT_TIMEZONE = "Asia/Kolkata"
NOMINAL = 5000  # 50.00 Hz in centi-hertz
WH_PER_KWH = 1000
CENTIPAISE_PER_PAISA = 100
KINDS = ("frequency_vector", "exchange_linked")

# The CERC 2014 Deviation Settlement Mechanism vector (REFERENCE.md), centipaise per kWh.
CERC_2014: dict[str, Any] = {
    "effective_from": "2014-02-17T00:00:00+05:30",
    "kind": "frequency_vector",
    "name": "CERC DSM 2014",
    "above_rate": 0,
    "floor_rate": 82404,
    "bands": [
        {"from": 5000, "below": 5005, "base": 0, "step": 3560},
        {"from": 4970, "below": 5000, "base": 17800, "step": 2084},
    ],
}


class BillingError(ValueError):
    """Bad slot or tariff data; the chaincode turns it into a ContractError."""


def div_half_away(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero (denominator > 0)."""
    if denominator <= 0:
        raise BillingError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


# --- slots ---------------------------------------------------------------------------------------

def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BillingError(f"unknown time zone {name!r}") from None


def is_aligned(moment: datetime, tz: str) -> bool:
    local = moment.astimezone(zone(tz))
    return local.minute % 15 == 0 and local.second == 0 and local.microsecond == 0


def check_slot(start: datetime, end: datetime, tz: str) -> None:
    """(start, end) must be exactly one slot: 15 minutes of real time, starting on a local
    quarter hour. Both must carry a timezone."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BillingError("slot times must carry a timezone")
    if end - start != SLOT:
        raise BillingError("a slot lasts exactly 15 minutes")
    if not is_aligned(start, tz):
        raise BillingError(f"a slot starts at :00, :15, :30 or :45 in {tz}")


def slot_id(start: datetime) -> str:
    """The slot's name in world state: its start in UTC, ISO 8601."""
    if start.tzinfo is None:
        raise BillingError("slot times must carry a timezone")
    return start.astimezone(UTC).isoformat()


def day_slots(day: date, tz: str) -> list[tuple[datetime, datetime]]:
    """Every slot of a local day, as (start, end) in UTC; the count is what the wall clock has."""
    z = zone(tz)
    first = datetime(day.year, day.month, day.day, tzinfo=z).astimezone(UTC)
    nxt = day + timedelta(days=1)
    last = datetime(nxt.year, nxt.month, nxt.day, tzinfo=z).astimezone(UTC)
    slots = []
    moment = first
    while moment < last:
        slots.append((moment, moment + SLOT))
        moment += SLOT
    return slots


# --- tariffs -------------------------------------------------------------------------------------

def _int(data: Mapping[str, Any], name: str, *, minimum: int | None = 0) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BillingError(f"tariff field {name!r} must be an integer")
    if minimum is not None and value < minimum:
        raise BillingError(f"tariff field {name!r} must be at least {minimum}")
    return value


def effective_from(tariff: Mapping[str, Any]) -> datetime:
    text = tariff.get("effective_from")
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BillingError("tariff effective_from must be an ISO 8601 timestamp with a timezone")
    return moment


def validate_tariff(tariff: Any) -> dict[str, Any]:
    """Check a tariff's shape; returns it unchanged. Refuses anything that is not integer data."""
    if not isinstance(tariff, dict):
        raise BillingError("a tariff is an object")
    effective_from(tariff)
    kind = tariff.get("kind")
    if kind == "frequency_vector":
        _int(tariff, "above_rate")
        _int(tariff, "floor_rate")
        bands = tariff.get("bands")
        if not isinstance(bands, list) or not bands:
            raise BillingError("a frequency_vector tariff needs a non-empty list of bands")
        previous_from = None
        for band in bands:
            if not isinstance(band, dict):
                raise BillingError("each band is an object")
            lo, hi = _int(band, "from"), _int(band, "below")
            _int(band, "base")
            _int(band, "step")
            if lo >= hi:
                raise BillingError("a band's 'from' must be below its 'below'")
            if previous_from is not None and hi != previous_from:
                raise BillingError("bands must be contiguous, ordered from high to low frequency")
            previous_from = lo
    elif kind == "exchange_linked":
        band = tariff.get("band")
        if (not isinstance(band, list) or len(band) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in band)):
            raise BillingError("an exchange_linked tariff needs band = [lo, hi] in centi-hertz")
        lo, hi = band
        if not lo < NOMINAL < hi:
            raise BillingError("the band must contain 50.00 Hz strictly inside it")
        _int(tariff, "base_rate")
        _int(tariff, "cap_percent", minimum=100)
        prices = tariff.get("prices", {})
        if not isinstance(prices, dict):
            raise BillingError("prices maps a slot start (ISO, UTC) to a clearing price")
        for key, value in prices.items():
            _slot_key(key)
            clearing_price(value)
    else:
        raise BillingError(f"tariff kind must be one of {', '.join(KINDS)}")
    return tariff


def _slot_key(key: Any) -> None:
    """A ``prices`` key must be a slot's name exactly as bills look it up (its start, UTC ISO):
    any other spelling of the same instant would never be found, silently billing the base rate."""
    try:
        moment = datetime.fromisoformat(key) if isinstance(key, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or slot_id(moment) != key:
        raise BillingError(f"prices keys are slot starts in UTC ISO 8601 (like "
                           f"'2026-06-01T02:30:00+00:00'), not {key!r}")


def clearing_price(value: Any) -> int:
    """A slot's normal rate from its ``prices`` entry: a plain integer, or ``{"dam": x, "rtm": y}``
    (the day-ahead and real-time markets' area clearing prices), whose normal rate is the higher
    of the two, as the 2019 and later regulations define it."""
    if isinstance(value, dict):
        if set(value) != {"dam", "rtm"}:
            raise BillingError("a clearing price is an integer or {\"dam\": …, \"rtm\": …}, nothing else")
        return max(_int(value, "dam"), _int(value, "rtm"))
    return _int({"price": value}, "price")


def tariff_for(tariffs: Iterable[Mapping[str, Any]], start: datetime) -> Mapping[str, Any]:
    """The tariff in force at a slot's start: the latest ``effective_from`` ≤ start."""
    chosen: Mapping[str, Any] | None = None
    chosen_from: datetime | None = None
    for tariff in tariffs:
        since = effective_from(tariff)
        if since <= start and (chosen_from is None or since >= chosen_from):
            chosen, chosen_from = tariff, since
    if chosen is None:
        raise BillingError(f"no tariff in force at {start.isoformat()}")
    return chosen


def vector_rate(tariff: Mapping[str, Any], freq: int) -> int:
    bands = tariff["bands"]
    if freq >= bands[0]["below"]:
        return int(tariff["above_rate"])
    for band in bands:
        if band["from"] <= freq < band["below"]:
            return int(band["base"] + band["step"] * (band["below"] - freq))
    return int(tariff["floor_rate"])


def exchange_rate(tariff: Mapping[str, Any], freq: int, start: datetime) -> int:
    lo, hi = tariff["band"]
    quoted = tariff.get("prices", {}).get(slot_id(start))
    normal = int(tariff["base_rate"]) if quoted is None else clearing_price(quoted)
    cap = div_half_away(normal * int(tariff["cap_percent"]), 100)
    if freq >= hi:
        return 0
    if freq >= NOMINAL:
        return div_half_away(normal * (hi - freq), hi - NOMINAL)
    if freq >= lo:
        return normal + div_half_away((cap - normal) * (NOMINAL - freq), NOMINAL - lo)
    return cap


def rate(tariff: Mapping[str, Any], freq: int, start: datetime) -> int:
    """Centipaise per kWh for a slot at average frequency ``freq`` (centi-Hz)."""
    if tariff["kind"] == "frequency_vector":
        return vector_rate(tariff, freq)
    if tariff["kind"] == "exchange_linked":
        return exchange_rate(tariff, freq, start)
    raise BillingError(f"unknown tariff kind {tariff['kind']!r}")


def bill_amount(units_wh: int, rate_centipaise: int) -> int:
    """Paise for ``units_wh`` (negative = export, credited) at a rate; half away from zero."""
    return div_half_away(units_wh * rate_centipaise, WH_PER_KWH * CENTIPAISE_PER_PAISA)
