"""The billing write path: record a station's slot units from its meters' signed readings
(``initStationUnits``) and bill a slot (``initStationBill``), each as the station's distributor's
service identity, and the sweeps the tasks run (docs/billing.md, "Automation").

Every invocation's idempotency key is derived from the request (station, slot, the how-manieth
recording of it, a digest of what is sent), so a rerun, or beat and the embedded scheduler at
once, repeats nothing: the ledger answers a key it has seen with its first result, and the
chaincode itself writes neither units nor a bill that are unchanged. The rows in
``billing.models`` only remember how far the sweeps got."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from iot_gateway.models import MeterReading, ReadingStatus
from ledger.models import Organisation

from . import chain, units
from .models import SlotRecord, StationProgress

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(days=2)  # late readings and missing frequencies are acted on this far back
MAX_SLOTS_PER_PASS = 2 * 96  # a station far behind catches up over several passes


@dataclass
class SweepReport:
    recorded: list[tuple[str, str]] = field(default_factory=list)  # (station, slot) invoked
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # recomputed, nothing to send
    billed: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # no frequency yet
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (station, slot, reason)


@contextmanager
def station_sweep(station_id: str) -> Iterator[bool]:
    """Whether this process may sweep the station now: one sweep of a station at a time, across
    processes (beat's two tasks, the embedded scheduler and a manual run may overlap); while
    another is at it, this pass leaves the station to it. A session-level advisory lock on
    PostgreSQL; the embedded default (SQLite) runs its sweeps on one thread."""
    if connection.vendor != "postgresql":
        yield True
        return
    name = f"billing-sweep:{station_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])


def distributor_identity(station: dict[str, Any]):
    org = Organisation.objects.filter(msp_id=station["distributor"]).first()
    if org is None:
        raise chain.BillingError(f"the distributor {station['distributor']!r} is not an organisation here")
    return chain.service_identity(org)


# --- units ---------------------------------------------------------------------------------------

def station_units_record(station_id: str, start: datetime, entries: list[dict], *,
                         identity=None, station: dict | None = None) -> SlotRecord:
    """Record one slot's units of a station (the entries ``billing.units`` computed) unless the
    same units are recorded already; returns the slot's row."""
    station = station or chain.station_state(station_id)
    if station is None:
        raise chain.BillingError(f"no station {station_id!r}")
    identity = identity or distributor_identity(station)
    full, values = units.digest(entries), units.values_digest(entries)
    row, _created = SlotRecord.objects.get_or_create(station=station_id, start=start)
    if row.units_digest == full:
        if row.stale:
            SlotRecord.objects.filter(pk=row.pk).update(stale=False)
            row.stale = False
        return row
    slot = chain.iso(start)
    key = f"billing-units:{station_id}:{slot}:{row.units_version + 1}:{full[:16]}"
    result = chain.invoke(identity, "initStationUnits",
                          {"stationId": station_id, "startTime": slot, "endTime": chain.iso(start + units.SLOT),
                           "units": entries}, key)
    with transaction.atomic():
        row = SlotRecord.objects.select_for_update().get(pk=row.pk)
        row.units_digest, row.values_digest, row.units_tx = full, values, result.tx_hash
        row.units_version += 1
        row.total_wh = sum(e["unit"] for e in entries)
        row.stale = False
        row.save()
    return row


def _late_slots(station_id: str, progress: StationProgress, meters: dict, since: datetime,
                seen: int) -> set[datetime]:
    """Slots already recorded that readings applied since the last pass (ids up to ``seen``) fall
    into, or whose baseline they change: every slot up to the one the meter's next reading closes."""
    device_ids = [d.pk for d in meters.values() if d is not None]
    if not device_ids or progress.units_through is None:
        return set()
    recorded_until = progress.units_through
    new = (MeterReading.objects.filter(pk__gt=progress.readings_seen, pk__lte=seen, device_id__in=device_ids,
                                       status=ReadingStatus.APPLIED, timestamp__lt=recorded_until)
           .exclude(tx_hash="").values_list("device_id", "timestamp"))
    late: dict[int, tuple[datetime, datetime]] = {}
    for device_id, moment in new:
        first, last = late.get(device_id, (moment, moment))
        late[device_id] = (min(first, moment), max(last, moment))
    slots: set[datetime] = set()
    for device_id, (earliest, latest) in late.items():
        nxt = (MeterReading.objects.filter(device_id=device_id, status=ReadingStatus.APPLIED, timestamp__gt=latest)
               .exclude(tx_hash="").order_by("timestamp").values_list("timestamp", flat=True).first())
        moment = max(units.slot_closed_by(earliest), since)
        last = recorded_until - units.SLOT
        if nxt is not None:
            last = min(last, units.slot_closed_by(nxt))
        while moment <= last:
            slots.add(moment)
            moment += units.SLOT
    if slots:
        logger.info("station %s: late readings change %d recorded slot(s)", station_id, len(slots))
    return slots


def _first_slot(meters: dict, now: datetime) -> datetime:
    """Where a station new to the tasks starts: its meters' first reading within the lookback,
    else the slot now open (nothing to record before)."""
    device_ids = [d.pk for d in meters.values() if d is not None]
    earliest = (MeterReading.objects.filter(device_id__in=device_ids, status=ReadingStatus.APPLIED,
                                            timestamp__gt=now - LOOKBACK, timestamp__lte=now)
                .exclude(tx_hash="").order_by("timestamp").values_list("timestamp", flat=True).first())
    return units.slot_closed_by(earliest) if earliest else units.slot_floor(now)


def units_record_due(now: datetime | None = None, *, stations: list[str] | None = None) -> SweepReport:
    """For each station: record every closed slot since its watermark, and again every earlier
    slot (within ``LOOKBACK``) that late readings changed."""
    now = now or timezone.now()
    report = SweepReport()
    for station_id, station in _swept_stations(stations):
        try:
            _station_units(station_id, station, now, report)
        except chain.BillingError as exc:
            logger.error("station %s: units not recorded: %s", station_id, exc)
            report.failed.append((station_id, "", str(exc)))
    return report


def _swept_stations(only: list[str] | None) -> Iterator[tuple[str, dict]]:
    """Each station (of ``only``, if given) whose sweep lock this pass holds while the caller
    works on it; a station another pass is at is left to it."""
    for station_id, station in sorted(chain.stations().items()):
        if only is not None and station_id not in only:
            continue
        with station_sweep(station_id) as mine:
            if not mine:
                logger.info("station %s: another sweep is recording or billing it", station_id)
                continue
            yield station_id, station


def _station_units(station_id: str, station: dict, now: datetime, report: SweepReport) -> None:
    meters = units.household_meters(station["societies"])
    progress, _ = StationProgress.objects.get_or_create(station=station_id)
    seen = MeterReading.objects.aggregate(top=Max("pk"))["top"] or 0  # before reading: nothing missed
    since = units.slot_floor(now - LOOKBACK)
    late = _late_slots(station_id, progress, meters, since, seen)
    stale = set(SlotRecord.objects.filter(station=station_id, stale=True, start__gte=since).values_list(
        "start", flat=True))
    if late:
        SlotRecord.objects.filter(station=station_id, start__in=late).update(stale=True)
    start = progress.units_through or _first_slot(meters, now)
    fresh = []
    while start + units.SLOT <= now and len(fresh) < MAX_SLOTS_PER_PASS:
        fresh.append(start)
        start += units.SLOT
    todo = sorted(late | stale | set(fresh))
    if not todo:
        StationProgress.objects.filter(pk=progress.pk).update(readings_seen=seen)
        return
    identity = distributor_identity(station)
    computed = units.station_units(meters, todo)
    through = progress.units_through
    for slot_start in todo:
        slot = chain.iso(slot_start)
        try:
            before = SlotRecord.objects.filter(station=station_id, start=slot_start).values_list(
                "units_version", flat=True).first()
            row = station_units_record(station_id, slot_start, computed[slot_start], identity=identity,
                                       station=station)
        except chain.BillingError as exc:
            logger.error("station %s slot %s: units refused: %s", station_id, slot, exc)
            report.failed.append((station_id, slot, str(exc)))
            if slot_start in fresh:
                break  # the watermark must not pass a slot left unrecorded
            continue
        (report.recorded if row.units_version != before else report.unchanged).append((station_id, slot))
        if slot_start in fresh:
            through = slot_start + units.SLOT
    StationProgress.objects.filter(pk=progress.pk).update(units_through=through, readings_seen=seen)


# --- bills ---------------------------------------------------------------------------------------

def bill_digest(avg_freq: int, values: str) -> str:
    return units.digest([avg_freq, values])


def station_slot_bill(station_id: str, row: SlotRecord, avg_freq: int, *, identity=None,
                      station: dict | None = None) -> bool:
    """Bill one slot of a station (``initStationBill``) unless its bill already rests on this
    frequency and these units; True when the ledger was asked."""
    digest = bill_digest(avg_freq, row.values_digest)
    if row.billed_digest == digest:
        return False
    station = station or chain.station_state(station_id)
    if station is None:
        raise chain.BillingError(f"no station {station_id!r}")
    identity = identity or distributor_identity(station)
    slot = chain.iso(row.start)
    key = f"billing-bill:{station_id}:{slot}:{row.bill_version + 1}:{digest[:16]}"
    result = chain.invoke(identity, "initStationBill",
                          {"stationId": station_id, "startTime": slot, "endTime": chain.iso(row.start + units.SLOT)},
                          key)
    with transaction.atomic():
        fresh = SlotRecord.objects.select_for_update().get(pk=row.pk)
        fresh.billed_digest, fresh.bill_tx, fresh.billed_at = digest, result.tx_hash, timezone.now()
        fresh.bill_version += 1
        fresh.save(update_fields=["billed_digest", "bill_tx", "billed_at", "bill_version"])
    return True


def slots_bill_due(now: datetime | None = None, *, stations: list[str] | None = None) -> SweepReport:
    """For each station: bill every recorded slot (within ``LOOKBACK``) that has a frequency and
    no bill, or whose frequency or units changed since its bill; a slot without a frequency
    waits (logged) for a later pass."""
    now = now or timezone.now()
    report = SweepReport()
    since = units.slot_floor(now - LOOKBACK)
    for station_id, station in _swept_stations(stations):
        _station_bills(station_id, station, since, report)
    return report


def _station_bills(station_id: str, station: dict, since: datetime, report: SweepReport) -> None:
    rows = list(SlotRecord.objects.filter(station=station_id, start__gte=since, units_version__gt=0,
                                          stale=False).order_by("start"))
    if not rows:
        return
    freqs = chain.frequencies([chain.iso(r.start) for r in rows])
    identity = None
    for row in rows:
        slot = chain.iso(row.start)
        if slot not in freqs:
            report.waiting.append((station_id, slot))
            continue
        try:
            identity = identity or distributor_identity(station)
            if station_slot_bill(station_id, row, freqs[slot], identity=identity, station=station):
                report.billed.append((station_id, slot))
        except chain.BillingError as exc:
            logger.error("station %s slot %s: bill refused: %s", station_id, slot, exc)
            report.failed.append((station_id, slot, str(exc)))
    waiting = [s for st, s in report.waiting if st == station_id]
    if waiting:
        logger.info("station %s: %d slot(s) wait for the grid's frequency (first %s)", station_id,
                    len(waiting), waiting[0])
