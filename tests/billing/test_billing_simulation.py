"""The simulated day's profiles (pure, no database): frequency around 50 Hz with dips and highs,
households' morning and evening peaks, midday export for those with panels, all integers and
the same for the same seed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from billing import simulation as sim
from ledger.chaincodes.billing_math import day_slots, zone

DAY = date(2026, 6, 1)


def local_starts(day: date = DAY, tz: str = "Asia/Kolkata") -> list:
    return [start.astimezone(zone(tz)) for start, _ in day_slots(day, tz)]


def slot_of(hour: float) -> int:
    return int(hour * 4)


@pytest.mark.parametrize("seed", range(20))
def test_frequency_stays_around_50_hz_with_a_dip_and_a_high_every_day(seed):
    freqs = sim.day_frequencies(seed=seed, day=DAY, local_starts=local_starts())
    assert len(freqs) == 96 and all(type(f) is int for f in freqs)
    assert all(sim.LOWEST <= f <= sim.HIGHEST for f in freqs)
    assert abs(sum(freqs) / len(freqs) - 5000) < 5
    assert any(4970 <= f < 4990 for f in freqs), "a dip to 49.70–49.90 Hz"
    assert any(f >= 5005 for f in freqs), "a high at 50.05 Hz or above"
    assert sum(1 for f in freqs if 4991 <= f <= 5004) > 80, "mostly the walk near 50 Hz"


def test_frequency_follows_the_slots_of_a_dst_day():
    starts = local_starts(date(2026, 3, 8), "America/New_York")
    assert len(sim.day_frequencies(seed=1, day=date(2026, 3, 8), local_starts=starts)) == len(starts) == 92


def test_the_same_seed_gives_the_same_day_and_another_seed_or_day_another():
    starts = local_starts()
    first = sim.day_frequencies(seed="demo", day=DAY, local_starts=starts)
    assert first == sim.day_frequencies(seed="demo", day=DAY, local_starts=starts)
    assert first != sim.day_frequencies(seed="other", day=DAY, local_starts=starts)
    assert first != sim.day_frequencies(seed="demo", day=DAY + timedelta(days=1), local_starts=starts)
    profile = sim.household_profile(seed="demo", index=3)
    assert profile == sim.household_profile(seed="demo", index=3)
    energy = sim.day_energy(profile, seed="demo", day=DAY, local_starts=starts)
    assert energy == sim.day_energy(profile, seed="demo", day=DAY, local_starts=starts)


def test_households_peak_in_the_morning_and_more_in_the_evening():
    starts = local_starts()
    for index in range(30):
        profile = sim.household_profile(seed=7, index=index)
        if profile.has_solar:
            continue
        imports = [i for i, _ in sim.day_energy(profile, seed=7, day=DAY, local_starts=starts)]
        night = sum(imports[slot_of(2):slot_of(4)])
        morning = sum(imports[slot_of(7):slot_of(9)])
        evening = sum(imports[slot_of(19):slot_of(21)])
        assert night < morning and night < evening
        assert all(type(i) is int and i >= 0 for i in imports)


def test_a_share_of_households_exports_at_midday_and_only_by_day():
    starts = local_starts()
    profiles = [sim.household_profile(seed=11, index=i) for i in range(100)]
    solar = [p for p in profiles if p.has_solar]
    assert 15 <= len(solar) <= 45  # about SOLAR_SHARE
    for profile in profiles:
        energy = sim.day_energy(profile, seed=11, day=DAY, local_starts=starts)
        exports = [e for _, e in energy]
        assert all(e == 0 for e in exports[:slot_of(6)] + exports[slot_of(18):])
        if profile.has_solar:
            assert sum(exports[slot_of(11):slot_of(14)]) > 0
            assert sum(energy[slot_of(12)]) > 0 and energy[slot_of(20)][1] == 0
        else:
            assert not any(exports)
        for import_wh, export_wh in energy:
            assert import_wh == 0 or export_wh == 0  # a slot nets the home's use against its panels
