"""Closing days: the write path that turns each station's billed local days into statements and
dues (``energy-billing.closeDay``, see docs/billing.md "Dues and fines"), as the station's
distributor's service identity.

A day is closed once it has ended plus ``GRACE`` and its last slot is billed for every household
of the station (or, whatever is missing, ``LATE`` after it ended: the statement lists the slots
without a bill). A closed day whose bills changed since (a slot re-billed, billed late, or
deleted) is closed again, and the chaincode posts only the difference. Whether a day needs
closing is read from world state first, so a run with nothing to do invokes nothing; the
idempotency key names the day's bills (their versions), so re-running a run records nothing new.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from ledger.chaincodes import billing_math as bm
from ledger.keys import BILLING_NAMESPACE, bill_key, statement_key
from ledger.models import Organisation
from ledger.selectors import world_state

from . import chain

logger = logging.getLogger(__name__)

GRACE = timedelta(minutes=30)  # after the day ends: its last slot's bill usually lands within minutes
LATE = timedelta(hours=6)  # close even with slots unbilled (a meter that never reported)
LOOKBACK_DAYS = 3  # days whose slots the billing tasks may still re-bill (units up to 2 days back)


@dataclass(frozen=True)
class Closed:
    station: str
    date: str
    issued: int  # statements (re-)issued by this close
    tx_hash: str


def _local_today(now: datetime, tz: str) -> date:
    return now.astimezone(bm.zone(tz)).date()


def _day_bills(station: str, societies: list[str], day: date, tz: str) -> tuple[list[str], dict[str, Any]]:
    slots = [bm.slot_id(start) for start, _ in bm.day_slots(day, tz)]
    keys = [bill_key(station, s, slot) for s in societies for slot in slots]
    return slots, world_state(BILLING_NAMESPACE, keys)


def _statements_stale(station: str, societies: list[str], day: date, tz: str, slots: list[str],
                      bills: dict[str, Any]) -> bool:
    """Whether closing the day now would (re-)issue any household's statement: the same test
    the chaincode makes (amount, billed slots, missing slots, time zone)."""
    keys = {s: statement_key(station, s, day.isoformat()) for s in societies}
    issued = world_state(BILLING_NAMESPACE, list(keys.values()))
    for society in societies:
        own = [bills.get(bill_key(station, society, slot)) for slot in slots]
        statement = issued.get(keys[society])
        if statement is None:
            return True
        fresh = {"amount": sum(b["amount"] for b in own if b), "slots": sum(1 for b in own if b),
                 "missing": [slot for slot, b in zip(slots, own, strict=True) if b is None], "timezone": tz}
        if any(statement.get(name) != value for name, value in fresh.items()):
            return True
    return False


def due(station: str, record: dict[str, Any], day: date, tz: str, now: datetime) -> bool:
    """Whether ``day`` of the station should be closed (again) now."""
    societies = record["societies"]
    day_slots = bm.day_slots(day, tz)
    end = day_slots[-1][1]
    if now < end + GRACE:
        return False
    slots, bills = _day_bills(station, societies, day, tz)
    if not bills and not world_state(BILLING_NAMESPACE, [statement_key(station, s, day.isoformat())
                                                         for s in societies]):
        return False  # nothing billed and nothing issued: no day to close
    last_billed = all(bill_key(station, s, slots[-1]) in bills for s in societies)
    if not last_billed and now < end + LATE:
        return False
    return _statements_stale(station, societies, day, tz, slots, bills)


def _fingerprint(bills: dict[str, Any]) -> str:
    """The day's bills, by key, version and billing time: a new key once any of them changes
    (a bill deleted and billed again starts at version 1 again, at another time)."""
    text = "|".join(f"{key}@{bill['version']}:{bill['billedAt']}" for key, bill in sorted(bills.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def close_day(station: str, day: date, *, record: dict[str, Any] | None = None) -> Closed:
    """``closeDay`` for one station and local day, as the station's distributor. Raises
    ``chain.BillingError`` (``LedgerRefused``: the ledger's reason, recorded there)."""
    record = record or chain.station_state(station)
    if record is None:
        raise chain.BillingError(f"no station {station!r}")
    distributor = Organisation.objects.filter(msp_id=record["distributor"]).first()
    if distributor is None:
        raise chain.BillingError(f"station {station!r}'s distributor {record['distributor']!r} is not an organisation")
    tz = chain.billing_timezone()
    _, bills = _day_bills(station, record["societies"], day, tz)
    key = f"billing-close-day:{station}:{day.isoformat()}:{tz}:{','.join(record['societies'])}:{_fingerprint(bills)}"
    result = chain.invoke(chain.service_identity(distributor), "closeDay",
                          {"stationId": station, "date": day.isoformat()}, key)
    issued = result.result.get("issued", 0) if isinstance(result.result, dict) else 0
    return Closed(station, day.isoformat(), issued, result.tx_hash)


def close_days(*, now: datetime | None = None) -> list[Closed]:
    """Close (or close again) every station's local days of the last ``LOOKBACK_DAYS`` that are
    due. One station's refusal is logged and does not stop the others."""
    now = now or timezone.now()
    tz = chain.billing_timezone()
    today = _local_today(now, tz)
    closed = []
    for station, record in chain.stations().items():
        for back in range(LOOKBACK_DAYS, 0, -1):  # oldest first; today has not ended
            day = today - timedelta(days=back)
            if not due(station, record, day, tz, now):
                continue
            try:
                closed.append(close_day(station, day, record=record))
            except chain.BillingError as exc:
                logger.warning("closing %s of station %s was refused: %s", day, station, exc)
    return closed
