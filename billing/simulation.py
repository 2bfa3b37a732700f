"""Profiles of a simulated day: the grid's frequency and households' consumption and export,
slot by slot. Pure (no ORM, no clock): the same seed and day always give the same figures, so a
rerun of ``simulate_day`` sends the very readings it sent before.

- Frequency (centi-hertz) is a random walk pulled back towards a time-of-day level around 50 Hz
  (a little high at night and at midday, low at the morning and evening peaks), with a few
  excursions a day: dips to 49.70–49.90 Hz, mostly at the peaks, and highs to 50.05–50.09 Hz.
- A household draws a base load, a morning peak around 07:30 and a larger evening peak around
  20:00; a share of households has rooftop solar that exports around midday what the home does
  not use. Figures are whole Wh per 15-minute slot (what a meter's registers advance by).

Floats are used inside to shape the curves; everything returned is an integer.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime

NOMINAL = 5000  # 50.00 Hz
LOWEST, HIGHEST = 4950, 5030  # the walk never leaves this band
DIP_RANGE = (4970, 4990)  # 49.70–49.90 Hz
HIGH_RANGE = (5005, 5009)  # 50.05–50.09 Hz
SOLAR_SHARE = 0.3  # of households with rooftop panels
SLOT_HOURS = 0.25


def _level(hour: float) -> float:
    """Where the frequency settles at a local hour (deviation from 50 Hz, centi-hertz): demand
    above generation pulls it down at the peaks, light load lets it rise at night and midday."""
    if hour < 5:
        return 2.0
    if 6 <= hour < 10:
        return -2.5
    if 11 <= hour < 15:
        return 1.0
    if 18 <= hour < 23:
        return -4.0
    return 0.0


def _peak_hour(hour: float) -> bool:
    return 6 <= hour < 10 or 18 <= hour < 23


def _excursions(rng: random.Random, hours: list[float]) -> dict[int, int]:
    """Slot index → the frequency forced there: one to three dips (mostly at the peaks, 1–3
    slots each) and two to four highs (at night or midday, 1–2 slots each)."""
    forced: dict[int, int] = {}
    count = len(hours)
    peaks = [n for n, h in enumerate(hours) if _peak_hour(h)] or list(range(count))
    calm = [n for n, h in enumerate(hours) if not _peak_hour(h)] or list(range(count))
    for _ in range(rng.randint(1, 3)):
        start = rng.choice(peaks) if rng.random() < 0.7 else rng.randrange(count)
        depth = rng.randint(*DIP_RANGE)
        for n in range(start, min(count, start + rng.randint(1, 3))):
            forced[n] = depth + (n - start) * 4  # recovering slot by slot
    for _ in range(rng.randint(2, 4)):
        start = rng.choice(calm)
        height = rng.randint(*HIGH_RANGE)
        for n in range(start, min(count, start + rng.randint(1, 2))):
            forced.setdefault(n, height)
    return forced


def day_frequencies(*, seed: str | int, day: date, local_starts: list[datetime]) -> list[int]:
    """The average frequency (centi-hertz) of each slot of ``day``, given the slots' local
    start times."""
    rng = random.Random(f"{seed}:frequency:{day.isoformat()}")
    hours = [s.hour + s.minute / 60 for s in local_starts]
    forced = _excursions(rng, hours)
    deviation = _level(hours[0]) if hours else 0.0
    out = []
    for n, hour in enumerate(hours):
        deviation += 0.35 * (_level(hour) - deviation) + rng.gauss(0, 1.6)
        if n in forced:
            deviation = float(forced[n] - NOMINAL)  # the walk resumes from the excursion
        value = min(HIGHEST, max(LOWEST, NOMINAL + int(math.floor(deviation + 0.5))))
        if n not in forced:  # the walk itself stays out of the excursions' bands
            value = min(5004, max(4991, value))
        out.append(value)
    return out


@dataclass(frozen=True)
class HouseholdProfile:
    """How one simulated household uses (and makes) power, in watts."""

    index: int
    base_w: int
    morning_w: int
    evening_w: int
    solar_peak_w: int  # 0: no panels

    @property
    def has_solar(self) -> bool:
        return self.solar_peak_w > 0


def household_profile(*, seed: str | int, index: int) -> HouseholdProfile:
    rng = random.Random(f"{seed}:household:{index}")
    base, morning, evening = rng.randint(80, 200), rng.randint(300, 900), rng.randint(600, 1500)
    solar = rng.randint(1500, 4000) if rng.random() < SOLAR_SHARE else 0
    return HouseholdProfile(index=index, base_w=base, morning_w=morning, evening_w=evening, solar_peak_w=solar)


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2) / 2)


def demand_watts(profile: HouseholdProfile, hour: float) -> float:
    """What the home draws at a local hour (no noise)."""
    return (profile.base_w + profile.morning_w * _bump(hour, 7.5, 1.2) + profile.evening_w * _bump(hour, 20.0, 1.6)
            + 0.25 * profile.morning_w * _bump(hour, 13.0, 1.5))


def solar_watts(profile: HouseholdProfile, hour: float) -> float:
    """What the panels make at a local hour (no clouds): a sine from 06:00 to 18:00."""
    if not profile.has_solar or not 6 <= hour < 18:
        return 0.0
    return profile.solar_peak_w * math.sin(math.pi * (hour - 6) / 12)


def day_energy(profile: HouseholdProfile, *, seed: str | int, day: date,
               local_starts: list[datetime]) -> list[tuple[int, int]]:
    """(import Wh, export Wh) of each slot of ``day``: what the meter's two registers advance
    by. In a slot the home imports what it draws beyond its panels' output and exports the rest."""
    rng = random.Random(f"{seed}:energy:{day.isoformat()}:{profile.index}")
    out = []
    for start in local_starts:
        hour = start.hour + (start.minute + 7.5) / 60  # the slot's middle
        demand = demand_watts(profile, hour) * rng.uniform(0.8, 1.2)
        solar = solar_watts(profile, hour) * rng.uniform(0.7, 1.0)
        import_wh = int(max(0.0, demand - solar) * SLOT_HOURS + 0.5)
        export_wh = int(max(0.0, solar - demand) * SLOT_HOURS + 0.5)
        out.append((import_wh, export_wh))
    return out
