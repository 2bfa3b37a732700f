"""Funding windows typed as times of day in the utility's time zone become the right UTC
instants: today's window (already started: from now), past midnight, DST gaps and folds. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from frontend.forms import WindowError, local_instant, window_instants

KOLKATA, NEW_YORK = ZoneInfo("Asia/Kolkata"), ZoneInfo("America/New_York")
BERLIN, PUERTO_RICO = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Puerto_Rico")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window(start: str, end: str, now: datetime, zone, day: date | None = None):
    return window_instants(day=day, start=time.fromisoformat(start), end=time.fromisoformat(end), now=now, zone=zone)


def test_tonight_funded_at_1955_ist_starts_now_and_ends_at_2300_ist():
    now = utc(2026, 12, 6, 14, 25)  # 19:55 IST
    assert window("18:00", "23:00", now, KOLKATA) == (now, utc(2026, 12, 6, 17, 30))


def test_a_window_later_today():
    now = utc(2026, 12, 6, 4, 30)  # 10:00 IST
    assert window("18:00", "23:00", now, KOLKATA) == (utc(2026, 12, 6, 12, 30), utc(2026, 12, 6, 17, 30))


def test_a_window_that_ends_before_it_starts_runs_past_midnight():
    now = utc(2026, 12, 6, 14, 25)  # 19:55 IST
    assert window("22:00", "02:00", now, KOLKATA) == (utc(2026, 12, 6, 16, 30), utc(2026, 12, 6, 20, 30))


def test_after_midnight_the_open_overnight_window_is_last_nights():
    now = utc(2026, 12, 6, 19, 30)  # 01:00 IST on the 7th
    assert window("18:00", "02:00", now, KOLKATA) == (now, utc(2026, 12, 6, 20, 30))


def test_an_ended_window_is_refused_not_moved_to_tomorrow():
    now = utc(2026, 12, 6, 18, 0)  # 23:30 IST
    with pytest.raises(WindowError, match="already ended"):
        window("18:00", "23:00", now, KOLKATA)
    with pytest.raises(WindowError, match="already ended"):
        window("18:00", "23:00", utc(2026, 12, 6, 10), KOLKATA, day=date(2026, 12, 5))


def test_a_day_chooses_the_date():
    now = utc(2026, 12, 6, 14, 25)
    assert window("18:00", "23:00", now, KOLKATA, day=date(2026, 12, 24)) == (
        utc(2026, 12, 24, 12, 30), utc(2026, 12, 24, 17, 30))
    assert window("23:00", "01:00", now, KOLKATA, day=date(2026, 12, 31)) == (
        utc(2026, 12, 31, 17, 30), utc(2026, 12, 31, 19, 30))


def test_same_start_and_end_is_refused():
    with pytest.raises(WindowError, match="end after it starts"):
        window("18:00", "18:00", utc(2026, 12, 6, 10), KOLKATA)


def test_puerto_rico_has_no_dst():
    now = utc(2026, 7, 1, 12)  # 08:00 AST
    assert window("18:00", "23:00", now, PUERTO_RICO) == (utc(2026, 7, 1, 22), utc(2026, 7, 2, 3))
    now = utc(2026, 1, 1, 12)
    assert window("18:00", "23:00", now, PUERTO_RICO) == (utc(2026, 1, 1, 22), utc(2026, 1, 2, 3))


def test_new_york_summer_and_winter_offsets():
    assert window("18:00", "23:00", utc(2026, 7, 1, 12), NEW_YORK) == (utc(2026, 7, 1, 22), utc(2026, 7, 2, 3))
    assert window("18:00", "23:00", utc(2026, 1, 5, 12), NEW_YORK) == (utc(2026, 1, 5, 23), utc(2026, 1, 6, 4))


def test_a_time_the_spring_forward_skips_means_the_same_time_after_the_clocks_moved():
    # 2027-03-14 in New York: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist.
    assert local_instant(date(2027, 3, 14), time(2, 30), NEW_YORK) == utc(2027, 3, 14, 7, 30)  # 03:30 EDT
    now = utc(2027, 3, 14, 4)  # 23:00 EST on the 13th
    assert window("01:00", "03:00", now, NEW_YORK, day=date(2027, 3, 14)) == (
        utc(2027, 3, 14, 6), utc(2027, 3, 14, 7))  # one real hour
    # Berlin, 2027-03-28: 02:00 CET jumps to 03:00 CEST.
    assert local_instant(date(2027, 3, 28), time(2, 30), BERLIN) == utc(2027, 3, 28, 1, 30)  # 03:30 CEST


def test_a_time_the_fall_back_repeats_starts_at_the_first_and_ends_at_the_second():
    # 2027-11-07 in New York: 01:00–02:00 happens twice (EDT, then EST).
    assert local_instant(date(2027, 11, 7), time(1, 30), NEW_YORK) == utc(2027, 11, 7, 5, 30)
    assert local_instant(date(2027, 11, 7), time(1, 30), NEW_YORK, latest=True) == utc(2027, 11, 7, 6, 30)
    now = utc(2027, 11, 7, 3)  # 23:00 EDT on the 6th
    assert window("00:00", "01:30", now, NEW_YORK, day=date(2027, 11, 7)) == (
        utc(2027, 11, 7, 4), utc(2027, 11, 7, 6, 30))  # two and a half real hours
    # Berlin, 2027-10-31: 02:00–03:00 twice.
    assert window("02:15", "02:45", utc(2027, 10, 30, 12), BERLIN, day=date(2027, 10, 31)) == (
        utc(2027, 10, 31, 0, 15), utc(2027, 10, 31, 1, 45))


def test_the_zone_is_never_utc_by_accident():
    now = utc(2026, 12, 6, 14, 25)
    start, end = window("18:00", "23:00", now, KOLKATA)
    assert end.astimezone(KOLKATA).hour == 23 and end.utcoffset().total_seconds() == 0
