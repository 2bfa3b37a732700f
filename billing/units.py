"""A station's slot units from its households' signed meter readings (docs/billing.md, "Units
from signed meter readings"). Reads only: the gateway's audit rows of applied readings
(``iot_gateway.MeterReading``, status applied, with the reading transaction's hash) stand for what
each meter signed; the reading's own signed ``timestamp`` places it in time, not when it arrived.

A household's units in the slot (start, end] are ``Δimport − Δexport`` between its meter's last
reading at or before ``start`` and its last at or before ``end`` (a reading exactly at a slot's end
closes that slot and opens the next). A meter with no reading before the slot starts from its
first reading ever (the energy before that is unknowable). A household with no reading yet gets
unit 0 with no readings.

The cost does not grow with queries per household: a run of consecutive slots takes two queries
(each meter's last reading before the run, every reading inside it), whatever the households."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from iot_gateway.models import MeterReading, ReadingStatus
from meters.models import Device, DeviceKind, EnrolmentState

SLOT = timedelta(minutes=15)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slot_floor(moment: datetime) -> datetime:
    """The start of the slot ``moment`` falls in, [start, end). Every time zone in use is a whole
    number of quarter hours off UTC, so local quarter hours are UTC quarter hours."""
    seconds = int((moment - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % int(SLOT.total_seconds()))


def slot_closed_by(moment: datetime) -> datetime:
    """The start of the slot a reading taken at ``moment`` closes: start < moment ≤ end."""
    floor = slot_floor(moment)
    return floor - SLOT if floor == moment else floor


@dataclass(frozen=True)
class Reading:
    counter: int
    import_wh: int
    export_wh: int
    tx: str
    timestamp: datetime

    def signed(self) -> dict[str, Any]:
        return {"counter": self.counter, "import_wh": self.import_wh, "export_wh": self.export_wh, "tx": self.tx}


def household_meters(societies: Iterable[str]) -> dict[str, Device | None]:
    """Each household's billing meter: its household meter (the first enrolled that is not
    retired, else the first): ``None`` for a household without one."""
    meters: dict[str, Device | None] = dict.fromkeys(societies)
    devices = Device.objects.filter(kind=DeviceKind.HOUSEHOLD_METER, organisation__msp_id__in=list(meters)).annotate(
        msp=F("organisation__msp_id")).order_by("id")
    for device in devices:
        current = meters[device.msp]
        if current is None or (current.state == EnrolmentState.RETIRED and device.state != EnrolmentState.RETIRED):
            meters[device.msp] = device
    return meters


def _applied():
    return MeterReading.objects.filter(status=ReadingStatus.APPLIED).exclude(tx_hash="").exclude(timestamp=None)


def _reading(row: tuple) -> Reading:
    counter, import_wh, export_wh, tx, timestamp = row
    return Reading(counter, import_wh, export_wh, tx, timestamp)


FIELDS = ("counter", "import_wh", "export_wh", "tx_hash", "timestamp")


def last_readings(device_ids: list[int], at: datetime) -> dict[int, Reading]:
    """Each device's last applied reading with ``timestamp`` ≤ ``at``, in one query: on
    PostgreSQL a lateral index probe per device, elsewhere a window over the rows."""
    if not device_ids:
        return {}
    if connection.vendor == "postgresql":
        table = MeterReading._meta.db_table
        sql = (f"SELECT d.id, r.counter, r.import_wh, r.export_wh, r.tx_hash, r.timestamp "
               f"FROM unnest(%s::bigint[]) AS d(id) CROSS JOIN LATERAL ("
               f"  SELECT counter, import_wh, export_wh, tx_hash, timestamp FROM {table} m"
               f"  WHERE m.device_id = d.id AND m.status = %s AND m.tx_hash <> '' AND m.timestamp <= %s"
               f"  ORDER BY m.timestamp DESC, m.counter DESC LIMIT 1) r")
        with connection.cursor() as cursor:
            cursor.execute(sql, [device_ids, ReadingStatus.APPLIED, at])
            return {row[0]: _reading(row[1:]) for row in cursor.fetchall()}
    rows = _applied().filter(device_id__in=device_ids, timestamp__lte=at).annotate(
        n=Window(RowNumber(), partition_by=[F("device_id")], order_by=[F("timestamp").desc(), F("counter").desc()])
    ).filter(n=1).values_list("device_id", *FIELDS)
    return {row[0]: _reading(row[1:]) for row in rows}


def readings_between(device_ids: list[int], after: datetime, until: datetime) -> dict[int, list[Reading]]:
    """Every applied reading with ``after`` < ``timestamp`` ≤ ``until``, by device, in time order."""
    found: dict[int, list[Reading]] = defaultdict(list)
    if not device_ids:
        return found
    rows = _applied().filter(device_id__in=device_ids, timestamp__gt=after, timestamp__lte=until).order_by(
        "device_id", "timestamp", "counter").values_list("device_id", *FIELDS)
    for row in rows.iterator(chunk_size=5000):
        found[row[0]].append(_reading(row[1:]))
    return found


def entry(society: str, meter: Device | None, first: Reading | None, last: Reading | None) -> dict[str, Any]:
    """A household's entry of ``initStationUnits``."""
    if first is None or last is None:
        return {"societyId": society, "unit": 0, "meter": meter.public_id if meter else None, "from": None, "to": None}
    unit = (last.import_wh - first.import_wh) - (last.export_wh - first.export_wh)
    assert meter is not None
    return {"societyId": society, "unit": unit, "meter": meter.public_id, "from": first.signed(), "to": last.signed()}


def runs(starts: Iterable[datetime]) -> list[list[datetime]]:
    """Slot starts grouped into runs of consecutive slots."""
    grouped: list[list[datetime]] = []
    for start in sorted(set(starts)):
        if grouped and grouped[-1][-1] + SLOT == start:
            grouped[-1].append(start)
        else:
            grouped.append([start])
    return grouped


def station_units(meters: dict[str, Device | None], starts: Iterable[datetime]) -> dict[datetime, list[dict]]:
    """The ``initStationUnits`` entries of each of these slots for the households in ``meters``
    (society → its meter), in society order."""
    by_device = {device.pk: device for device in meters.values() if device is not None}
    ids = sorted(by_device)
    societies = sorted(meters)
    result: dict[datetime, list[dict]] = {}
    for run in runs(starts):
        current = last_readings(ids, run[0])
        inside = readings_between(ids, run[0], run[-1] + SLOT)
        first_of: dict[int, Reading | None] = {pk: current.get(pk) for pk in ids}
        pending = {pk: iter(inside.get(pk, ())) for pk in ids}
        peeked: dict[int, Reading | None] = {pk: next(pending[pk], None) for pk in ids}
        for start in run:
            end = start + SLOT
            entries = []
            for society in societies:
                device = meters[society]
                if device is None:
                    entries.append(entry(society, None, None, None))
                    continue
                pk = device.pk
                first = last = first_of[pk]
                while (nxt := peeked[pk]) is not None and nxt.timestamp <= end:
                    if first is None:
                        first = nxt  # the meter's first reading ever
                    last = nxt
                    peeked[pk] = next(pending[pk], None)
                first_of[pk] = last
                entries.append(entry(society, device, first, last))
            result[start] = entries
    return result


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def values_digest(entries: list[dict]) -> str:
    """What a bill depends on of the units: each household's unit."""
    return digest([[e["societyId"], e["unit"]] for e in entries])
