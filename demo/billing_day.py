"""Two billed days for the demo (the day before yesterday and yesterday, in the billing time
zone), so the billing pages have data: the grid's simulated frequency for every slot, Alice's and
Bob's units from the readings their meters signed (``demo.readings``), every slot billed and
each day closed into statements and dues by the billing tasks, as ``simulate_day`` runs them.

When it bills, it sets the dues threshold between Bob's two days and Alice's, so Alice's
household is fined once (the second day's statement takes it over) and Bob's is not. A day whose
last slot already has a frequency is not simulated again."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing import chain
from ledger.chaincodes import billing_math as bm
from ledger.keys import BILLING_CONFIG_KEY, BILLING_NAMESPACE, bill_key
from ledger.models import Organisation
from ledger.selectors import world_state

from .billing import STATION
from .errors import DemoSeedError
from .organisations import UTILITY

SEED = "demo"
DAYS = 2
FINE = 2_000  # ₹20.00
BILLED = ("hh-alice", "hh-bob")


def _configure_dues(days: list) -> str | None:
    """The dues threshold halfway between Bob's and Alice's bills of the days (the demo network's
    terms are far above a couple of days' bills); the fine stays if one is set."""
    config = world_state(BILLING_NAMESPACE, [BILLING_CONFIG_KEY]).get(BILLING_CONFIG_KEY) or {}
    fine = config.get("fine", FINE)
    tz = chain.billing_timezone()
    slots = [bm.slot_id(start) for day in days for start, _ in bm.day_slots(day, tz)]
    keys = {society: [bill_key(STATION, society, slot) for slot in slots] for society in BILLED}
    bills = world_state(BILLING_NAMESPACE, [k for ks in keys.values() for k in ks])
    totals = {society: sum(bills[k]["amount"] for k in ks if k in bills) for society, ks in keys.items()}
    if totals["hh-alice"] <= totals["hh-bob"]:
        return None  # no readings to tell them apart: no fine
    threshold = (totals["hh-alice"] + totals["hh-bob"]) // 2
    if config.get("dues_threshold") == threshold:
        return None
    utility = Organisation.objects.filter(msp_id=UTILITY).first()
    if utility is None:
        raise DemoSeedError(f"the demo utility {UTILITY} is missing")
    try:
        chain.invoke(chain.service_identity(utility), "configure", {"dues_threshold": threshold, "fine": fine},
                     f"seed-demo-billing-days-dues-terms-{threshold}-{fine}")
    except chain.BillingError as exc:
        raise DemoSeedError(f"setting the demo dues terms was refused: {exc}") from exc
    return f"dues threshold ₹{threshold / 100:.2f}, fine ₹{fine / 100:.2f}"


def billing_days_seed() -> list[str]:
    from billing.simulation_runs import SimulationError, day_simulate, days_close

    if chain.station_state(STATION) is None:
        return []  # a partial demo without the station
    tz = chain.billing_timezone()
    today = timezone.now().astimezone(bm.zone(tz)).date()
    days = [today - timedelta(days=n) for n in range(DAYS, 0, -1)]
    last_slots = {day: bm.slot_id(bm.day_slots(day, tz)[-1][0]) for day in days}
    recorded = chain.frequencies(list(last_slots.values()))
    created = []
    for day in (day for day in days if last_slots[day] not in recorded):
        try:
            day_simulate(households=0, day=day, seed=SEED, close=False, tasks_every=8)
        except SimulationError as exc:
            raise DemoSeedError(f"simulating {day} was refused: {exc}") from exc
        created.append(f"billed day {day} ({len(bm.day_slots(day, tz))} slots)")
    terms = _configure_dues(days) if created else None  # a human's later terms stay
    if terms:
        created.append(terms)
    # Closes only what is due (nothing on a rerun); past close_days' grace even just after midnight.
    days_close(max(timezone.now(), bm.day_slots(days[-1], tz)[-1][1] + timedelta(hours=1)))
    return created
