"""Running a simulated day (``simulate_day`` and ``/billing/simulate/``): N simulated households
with meters at the demo distributor's station, then slot by slot the grid's frequency, every
meter's signed reading through the gateway's ingest service, and the billing tasks, as the
deployment would run them. Profiles come from ``billing.simulation``.

A day that has passed is simulated (the chaincode takes frequencies and units only for closed
slots); readings carry their slot's end as timestamp, so a reading exactly at a boundary closes
the slot it ends. Rerunning a day sends only what is missing: each meter's registers at the
day's start are its opening reading's, and the registers at every slot's end follow from the
seed, so a reading already sent is never sent again with other figures. A meter that already
reported past a slot's end (a real meter) is left alone for that slot.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts import services as accounts
from iot_gateway.fleet import simulated_meters
from iot_gateway.models import MeterReading, ReadingStatus
from iot_gateway.services import readings_ingest
from ledger import selectors as ledger_selectors
from ledger import services as ledger
from ledger.chaincodes import billing_math as bm
from ledger.models import Identity, Organisation, OrgType
from meters.models import Device, DeviceKind
from meters.services import device_register_simulated

from . import chain, simulation
from .models import SimulationRun, SimulationStatus

logger = logging.getLogger(__name__)

MAX_HOUSEHOLDS = 1_000
HOUSEHOLD_MSP = "sim-hh-{:04d}"
METER_ID = "SIM-HH-{:04d}"
DEFAULT_SEED = "gridcoin"

Progress = Callable[[int, int], None]


class SimulationError(Exception):
    """A simulated day that cannot run (bad request or missing demo grid); nothing was changed."""


@dataclass(frozen=True)
class Household:
    index: int
    organisation: Organisation
    meter: Device
    profile: simulation.HouseholdProfile


def default_day() -> date:
    """Yesterday in the billing time zone: every slot of it has closed."""
    return timezone.now().astimezone(bm.zone(chain.billing_timezone())).date() - timedelta(days=1)


def check_request(*, households: int, day: date, seconds_per_slot: float, seed: str, minimum: int = 1) -> None:
    from django.utils.translation import gettext as _

    if not minimum <= households <= MAX_HOUSEHOLDS:
        raise SimulationError(_("Simulate %(min)d to %(max)d households.") % {"min": minimum, "max": MAX_HOUSEHOLDS})
    if not 0 <= seconds_per_slot <= 60:
        raise SimulationError(_("Seconds per slot must be between 0 and 60."))
    if not seed or len(seed) > 64:
        raise SimulationError(_("The seed must be 1 to 64 characters."))
    last_end = bm.day_slots(day, chain.billing_timezone())[-1][1]
    if last_end > timezone.now():
        raise SimulationError(_("Choose a day that has ended (the ledger bills only slots that have closed)."))


# --- the demo grid's actors ------------------------------------------------------------------------

def _actors() -> tuple[Identity, Identity, str]:
    """The grid operator's and a station's distributor's billing service identities, and the
    station: the first grid organisation and the first registered station (by name) whose
    distributor is an organisation here (the demo's st-ward1)."""
    from django.utils.translation import gettext as _

    grid = Organisation.objects.filter(org_type=OrgType.GRID).order_by("id").first()
    stations = sorted(chain.stations().items())
    distributors = {o.msp_id: o for o in Organisation.objects.filter(
        org_type=OrgType.DISTRIBUTOR, msp_id__in=[record["distributor"] for _, record in stations])}
    station = next((name for name, record in stations if record["distributor"] in distributors), None)
    if grid is None or station is None:
        raise SimulationError(_("There is no grid operator or no distributor's station to simulate: "
                                "run `python manage.py seed_demo` first."))
    distributor = distributors[dict(stations)[station]["distributor"]]
    return chain.service_identity(grid), chain.service_identity(distributor), station


def _invoke(identity: Identity, function: str, args: dict, key: str) -> ledger.InvokeResult:
    try:
        return chain.invoke(identity, function, args, key)
    except chain.BillingError as exc:
        raise SimulationError(f"energy-billing.{function} was refused: {exc}") from exc


@transaction.atomic
def households_ensure(*, count: int, seed: str, station: str, distributor) -> list[Household]:
    """Simulated households 1..count (organisation ``sim-hh-0001``, meter ``SIM-HH-0001``),
    created if missing and served by ``station``; existing ones are reused."""
    households = []
    for index in range(1, count + 1):
        msp = HOUSEHOLD_MSP.format(index)
        org = Organisation.objects.filter(msp_id=msp).first()
        if org is None:
            org = ledger.organisation_create(msp_id=msp, name=f"Simulated household {index}",
                                             org_type=OrgType.HOUSEHOLD)
            accounts.energy_accounts_open(organisation=org)
        elif org.org_type != OrgType.HOUSEHOLD:
            raise SimulationError(f"organisation {msp} exists and is not a household")
        public_id = METER_ID.format(index)
        meter = Device.objects.filter(public_id=public_id).first()
        if meter is None:
            meter = device_register_simulated(organisation=org, kind=DeviceKind.HOUSEHOLD_METER,
                                              name=f"Simulated household {index}'s meter", public_id=public_id)
        elif meter.organisation_id != org.pk:
            raise SimulationError(f"meter {public_id} belongs to another organisation")
        households.append(Household(index, org, meter, simulation.household_profile(seed=seed, index=index)))
    record = chain.station_state(station) or {}
    served = set(record.get("societies", []))
    wanted = served | {h.organisation.msp_id for h in households}
    if wanted != served:
        _invoke(distributor, "registerStation", {"stationId": station, "societies": sorted(wanted)},
                f"simulate-station:{station}:{len(wanted)}:{','.join(sorted(wanted - served))[:120]}")
    return households


# --- one day ---------------------------------------------------------------------------------------

# A meter's day opens with a reading just inside the first slot: one exactly at the day's start
# would close the slot before (another day's, perhaps billed and closed already).
OPENING_AFTER = timedelta(seconds=1)


def _opening_registers(meters: list[str], day_start: datetime) -> dict[str, tuple[int, int]]:
    """Registers of each meter's reading that opened the day: at its start (the previous
    simulated day's last) or just after (``OPENING_AFTER``)."""
    rows = MeterReading.objects.filter(meter__in=meters, timestamp__gte=day_start,
                                       timestamp__lte=day_start + OPENING_AFTER, status=ReadingStatus.APPLIED)
    return {r.meter: (r.import_wh, r.export_wh) for r in rows.order_by("counter")}


@dataclass
class _MeterDay:
    meter: object  # iot_gateway.simulator.SimulatedMeter
    last_at: datetime | None  # timestamp of its last accepted reading
    registers: list[tuple[int, int]]  # cumulative (import, export) at the day's start, then at every slot's end


def _meter_days(households: list[Household], *, seed: str, day: date,
                slots: list[tuple[datetime, datetime]], tz: str) -> list[_MeterDay]:
    local_starts = [start.astimezone(bm.zone(tz)) for start, _ in slots]
    devices = [h.meter for h in households]
    meters = {m.public_id: m for m in simulated_meters(devices)}
    last = ledger_selectors.meter_registers([(d.public_id, d.kind) for d in devices])
    day_start = slots[0][0]
    opening = _opening_registers(list(meters), day_start)
    out = []
    for household in households:
        meter = meters[household.meter.public_id]
        seen = last.get(meter.public_id)
        last_at = ledger_selectors.as_utc(seen["timestamp"]) if seen else None
        if meter.public_id in opening:
            base = opening[meter.public_id]
        elif last_at is None or last_at <= day_start:
            base = (meter.import_wh, meter.export_wh)
        else:
            continue  # it reported past the day's start without an opening reading: not ours to replay
        registers = [base]
        import_wh, export_wh = base
        for slot_import, slot_export in simulation.day_energy(household.profile, seed=seed, day=day,
                                                              local_starts=local_starts):
            import_wh, export_wh = import_wh + slot_import, export_wh + slot_export
            registers.append((import_wh, export_wh))
        out.append(_MeterDay(meter, last_at, registers))
    return out


def _readings_at(meter_days: list[_MeterDay], position: int, at: datetime, *,
                 reported_since: datetime | None = None) -> list[dict]:
    """The signed readings due at ``at`` (position 0: the day's opening, n: slot n's end) from
    meters that have not reported since ``reported_since`` (default ``at``)."""
    messages = []
    since = reported_since or at
    for md in meter_days:
        if md.last_at is not None and md.last_at >= since:
            continue
        import_wh, export_wh = md.registers[position]
        md.meter.counter += 1
        messages.append(md.meter.reading(counter=md.meter.counter, import_wh=import_wh, export_wh=export_wh,
                                         timestamp=at))
        md.last_at = at
    return messages


def _ingest(messages: list[dict]) -> None:
    if not messages:
        return
    refused = [o for o in readings_ingest(messages, received_via="http") if not o.ok]
    if refused:
        raise SimulationError(f"the gateway refused a reading of {refused[0].meter}: {refused[0].reason}")


def _tasks_passed(station: str, moment: datetime) -> bool:
    """Whether the billing tasks have recorded the station's units past ``moment`` already."""
    from .models import StationProgress

    through = StationProgress.objects.filter(station=station).values_list("units_through", flat=True).first()
    return through is not None and through > moment


def _billing_tasks(at: datetime) -> None:
    """The billing tasks as the worker runs them, at a moment just after the slot closed."""
    from . import tasks

    now = at.isoformat()
    tasks.record_units(now=now)
    tasks.bill_closed_slots(now=now)


def days_close(at: datetime) -> None:
    """``close_days`` at ``at``: the task where it is wired, else its service (the same sweep)."""
    from . import tasks

    close_days = getattr(tasks, "close_days", None)
    if close_days is not None:
        close_days(now=at.isoformat())
    else:
        from .dues import close_days as close_days_service

        close_days_service(now=at)


def day_simulate(*, households: int, day: date, seed: str = DEFAULT_SEED, seconds_per_slot: float = 0,
                 progress: Progress | None = None, close: bool = True, tasks_every: int = 1) -> int:
    """Simulate ``day`` for ``households`` households (0: only the grid's frequency and the
    billing of the station's other households from their own meters' readings); returns the
    number of slots. ``progress`` is told (slots done, slots in the day) after each slot.
    ``close``: run ``close_days`` after the last slot (the statements and dues). ``tasks_every``:
    run the billing tasks after every n-th slot (and the last) only, as a worker that fell behind
    would catch up (the demo seed, to be quick)."""
    check_request(households=households, day=day, seconds_per_slot=seconds_per_slot, seed=seed, minimum=0)
    grid, distributor, station = _actors()
    tz = chain.billing_timezone()
    slots = bm.day_slots(day, tz)
    homes = households_ensure(count=households, seed=seed, station=station, distributor=distributor)
    meter_days = _meter_days(homes, seed=seed, day=day, slots=slots, tz=tz)
    freqs = simulation.day_frequencies(seed=seed, day=day,
                                       local_starts=[s.astimezone(bm.zone(tz)) for s, _ in slots])
    recorded = chain.frequencies([bm.slot_id(start) for start, _ in slots])
    day_start = slots[0][0]
    if _tasks_passed(station, day_start):
        # Every reading of the day is late for the tasks: record and bill the day once, at its
        # end, rather than re-record the rest of it after every slot.
        tasks_every = len(slots)
    _ingest(_readings_at(meter_days, 0, day_start + OPENING_AFTER, reported_since=day_start))
    if progress:
        progress(0, len(slots))
    for n, ((start, end), freq) in enumerate(zip(slots, freqs, strict=True), start=1):
        began = clock.monotonic()
        slot = bm.slot_id(start)
        if slot not in recorded:  # a frequency the grid recorded stands (others may be billed by it)
            _invoke(grid, "initFreq", {"startTime": start.isoformat(), "endTime": end.isoformat(),
                                       "avgFreq": freq}, f"simulate-freq:{slot}:{freq}")
        _ingest(_readings_at(meter_days, n, end))
        if n % tasks_every == 0 or n == len(slots):
            _billing_tasks(end)
        if close and n == len(slots):
            days_close(end + timedelta(hours=1))  # past close_days' grace
        if progress:
            progress(n, len(slots))
        rest = seconds_per_slot - (clock.monotonic() - began)
        if rest > 0:
            clock.sleep(rest)
    return len(slots)


# --- runs (the page and the command record their progress here) ---------------------------------

def simulation_run_create(*, households: int, day: date, seed: str = DEFAULT_SEED, seconds_per_slot: float = 0,
                          created_by=None) -> SimulationRun:
    check_request(households=households, day=day, seconds_per_slot=seconds_per_slot, seed=seed)
    return SimulationRun.objects.create(day=day, households=households, seed=seed, seconds_per_slot=seconds_per_slot,
                                        created_by=created_by, slots_total=len(bm.day_slots(day, chain.billing_timezone())))


def simulation_run_execute(*, run_id: int, progress: Progress | None = None) -> SimulationRun | None:
    """Run a pending run (claimed by compare-and-swap, so a task delivered twice runs it once)."""
    claimed = (SimulationRun.objects.filter(pk=run_id, status=SimulationStatus.PENDING)
               .update(status=SimulationStatus.RUNNING, started_at=timezone.now()))
    run = SimulationRun.objects.filter(pk=run_id).first()
    if not claimed or run is None:
        return run

    def report(done: int, total: int) -> None:
        SimulationRun.objects.filter(pk=run_id).update(slots_done=done, slots_total=total)
        if progress:
            progress(done, total)

    try:
        day_simulate(households=run.households, day=run.day, seed=run.seed, seconds_per_slot=run.seconds_per_slot,
                     progress=report)
    except Exception as exc:
        logger.exception("simulated day %s failed", run_id)
        SimulationRun.objects.filter(pk=run_id).update(status=SimulationStatus.FAILED, error=str(exc)[:2000],
                                                       finished_at=timezone.now())
        if not isinstance(exc, SimulationError):
            raise
    else:
        SimulationRun.objects.filter(pk=run_id).update(status=SimulationStatus.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def runs_recent(limit: int = 10) -> list[SimulationRun]:
    return list(SimulationRun.objects.order_by("-created_at", "-id")[:limit])
