"""The tariff and slot arithmetic of ``energy-billing``, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from ledger.chaincodes import billing_math as bm

SLOT_START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)

# REFERENCE.md, "Frequency-based billing": anchor points as printed there (Hz -> paise/kWh).
PRINTED = {"50.10": "0", "50.05": "0", "50.04": "35.60", "50.00": "178.00", "49.99": "198.84",
           "49.70": "803.20", "49.69": "824.04", "49.60": "824.04"}


def expected_paise(hz: Decimal) -> Decimal:
    """The 2014 vector as REFERENCE.md words it, in decimal paise per kWh."""
    step = Decimal("0.01")
    if hz >= Decimal("50.05"):
        return Decimal(0)
    if hz >= Decimal("50.00"):
        return Decimal("35.60") * ((Decimal("50.05") - hz) / step)
    if hz >= Decimal("49.70"):
        return Decimal("178.00") + Decimal("20.84") * ((Decimal("50.00") - hz) / step)
    return Decimal("824.04")


def every_step() -> list[Decimal]:
    return [Decimal(c) / 100 for c in range(4960, 5011)]


def test_the_rule_matches_the_printed_anchor_points():
    for hz, paise in PRINTED.items():
        assert expected_paise(Decimal(hz)) == Decimal(paise)


@pytest.mark.parametrize("hz", every_step(), ids=str)
def test_cerc_2014_at_every_hundredth_of_a_hertz(hz: Decimal):
    centi_hz = int(hz * 100)
    assert bm.rate(bm.CERC_2014, centi_hz, SLOT_START) == int(expected_paise(hz) * 100)


def test_the_vector_has_fifty_one_distinct_points_and_falls_with_frequency():
    rates = [bm.rate(bm.CERC_2014, int(hz * 100), SLOT_START) for hz in every_step()]
    assert len(rates) == 51
    assert rates == sorted(rates, reverse=True)
    assert rates[0] == 82404 and rates[-1] == 0


def test_bill_rounds_half_away_from_zero_and_credits_export_symmetrically():
    # 1 Wh at 35.60 paise/kWh = 0.0356 paise -> 0; 15 Wh -> 0.534 -> 1; 1000 Wh -> 35.6 -> 36
    assert bm.bill_amount(1, 3560) == 0
    assert bm.bill_amount(15, 3560) == 1
    assert bm.bill_amount(1000, 3560) == 36
    assert bm.bill_amount(-1000, 3560) == -36
    assert bm.bill_amount(500, 1) == 0  # 0.005 paise
    assert bm.bill_amount(50_000, 1) == 1  # exactly 0.5 paise rounds away from zero
    assert bm.bill_amount(-50_000, 1) == -1
    for wh in range(-3000, 3001, 37):
        for rate in (0, 3560, 19884, 82404):
            exact = Decimal(wh * rate) / 100_000
            want = int(exact.copy_abs().quantize(Decimal(1), rounding=ROUND_HALF_UP)) * (1 if exact >= 0 else -1)
            assert bm.bill_amount(wh, rate) == want
            assert bm.bill_amount(-wh, rate) == -bm.bill_amount(wh, rate)


def test_tariff_is_chosen_by_the_slot_start():
    later = {**bm.CERC_2014, "effective_from": "2026-06-01T08:15:00+00:00", "floor_rate": 1}
    schedule = [bm.CERC_2014, later]
    assert bm.tariff_for(schedule, SLOT_START) is bm.CERC_2014
    assert bm.tariff_for(schedule, SLOT_START + bm.SLOT) is later
    assert bm.tariff_for(list(reversed(schedule)), SLOT_START + timedelta(days=1)) is later
    with pytest.raises(bm.BillingError):
        bm.tariff_for(schedule, datetime(2010, 1, 1, tzinfo=UTC))


EXCHANGE = {"effective_from": "2026-01-01T00:00:00+05:30", "kind": "exchange_linked", "band": [4990, 5005],
            "base_rate": 40000, "cap_percent": 150, "prices": {"2026-06-01T08:00:00+00:00": 60000}}


def test_exchange_linked_rate_uses_the_slot_clearing_price_and_the_band():
    assert bm.validate_tariff(EXCHANGE) is EXCHANGE
    other = SLOT_START + bm.SLOT  # no clearing price: the base rate
    assert bm.rate(EXCHANGE, 5005, SLOT_START) == 0
    assert bm.rate(EXCHANGE, 5100, SLOT_START) == 0
    assert bm.rate(EXCHANGE, 5000, SLOT_START) == 60000
    assert bm.rate(EXCHANGE, 5000, other) == 40000
    assert bm.rate(EXCHANGE, 5004, SLOT_START) == 12000  # 60000 x 1/5
    assert bm.rate(EXCHANGE, 4995, SLOT_START) == 75000  # halfway to the 90000 cap
    assert bm.rate(EXCHANGE, 4990, SLOT_START) == 90000
    assert bm.rate(EXCHANGE, 4989, SLOT_START) == 90000
    assert bm.rate(EXCHANGE, 4989, other) == 60000


def test_the_normal_rate_may_be_the_higher_of_day_ahead_and_real_time_prices():
    other = SLOT_START + bm.SLOT
    both = {**EXCHANGE, "prices": {bm.slot_id(SLOT_START): {"dam": 52000, "rtm": 61000},
                                   bm.slot_id(other): {"dam": 70000, "rtm": 45000}}}
    assert bm.validate_tariff(both) is both
    assert bm.rate(both, 5000, SLOT_START) == 61000  # real time higher
    assert bm.rate(both, 5000, other) == 70000  # day ahead higher
    assert bm.rate(both, 4990, other) == 105000  # the cap follows the chosen normal rate: 150 %
    assert bm.rate(both, 5004, SLOT_START) == 12200
    assert bm.rate(both, 5000, other + bm.SLOT) == 40000  # no price for that slot: the base rate
    same = {**EXCHANGE, "prices": {bm.slot_id(SLOT_START): {"dam": 60000, "rtm": 60000}}}
    assert [bm.rate(same, f, SLOT_START) for f in (4989, 4995, 5000, 5004)] == \
        [bm.rate(EXCHANGE, f, SLOT_START) for f in (4989, 4995, 5000, 5004)]


@pytest.mark.parametrize("price", [
    {"dam": 60000}, {"rtm": 60000}, {"dam": 60000, "rtm": 61000, "gdam": 1}, {"dam": 600.5, "rtm": 1},
    {"dam": True, "rtm": 1}, {"dam": -1, "rtm": 1}, {"dam": "60000", "rtm": 1}, [60000, 61000], -5, None,
])
def test_malformed_clearing_prices_are_refused(price):
    with pytest.raises(bm.BillingError):
        bm.validate_tariff({**EXCHANGE, "prices": {bm.slot_id(SLOT_START): price}})


@pytest.mark.parametrize("key", [
    "2026-06-01T13:30:00+05:30",  # the same instant, but bills look prices up by the UTC name
    "2026-06-01T08:00:00", "2026-06-01T08:00:00Z", "tomorrow", "",
])
def test_prices_are_keyed_by_the_slot_name_bills_look_up(key):
    with pytest.raises(bm.BillingError, match="UTC ISO 8601"):
        bm.validate_tariff({**EXCHANGE, "prices": {key: 60000}})


@pytest.mark.parametrize("broken", [
    {**EXCHANGE, "band": [5000, 5005]},
    {**EXCHANGE, "base_rate": 1.5},
    {**EXCHANGE, "cap_percent": 90},
    {**EXCHANGE, "prices": {"2026-06-01T08:00:00+00:00": 1.0}},
    {**EXCHANGE, "kind": "flat"},
    {**EXCHANGE, "effective_from": "2026-01-01T00:00:00"},
    {**bm.CERC_2014, "bands": []},
    {**bm.CERC_2014, "floor_rate": 824.04},
    {**bm.CERC_2014, "bands": [{"from": 5000, "below": 5005, "base": 0, "step": 3560},
                               {"from": 4970, "below": 4999, "base": 17800, "step": 2084}]},
])
def test_malformed_tariffs_are_refused(broken):
    with pytest.raises(bm.BillingError):
        bm.validate_tariff(broken)


def test_kolkata_days_always_have_96_slots():
    for day in (date(2026, 3, 8), date(2026, 11, 1), date(2026, 6, 1), date(2028, 2, 29)):
        slots = bm.day_slots(day, "Asia/Kolkata")
        assert len(slots) == 96
        assert slots[0][0] == datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=5, minutes=30)


def test_new_york_dst_days_have_92_and_100_slots():
    assert len(bm.day_slots(date(2026, 3, 8), "America/New_York")) == 92
    assert len(bm.day_slots(date(2026, 11, 1), "America/New_York")) == 100
    assert len(bm.day_slots(date(2026, 6, 1), "America/New_York")) == 96
    for start, end in bm.day_slots(date(2026, 11, 1), "America/New_York"):
        bm.check_slot(start, end, "America/New_York")


def test_slots_must_be_one_aligned_quarter_hour():
    tz = "Asia/Kolkata"
    aligned = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)  # 08:00 in Kolkata
    bm.check_slot(aligned, aligned + bm.SLOT, tz)
    with pytest.raises(bm.BillingError, match="15 minutes"):
        bm.check_slot(aligned, aligned + timedelta(minutes=30), tz)
    with pytest.raises(bm.BillingError, match=":00, :15"):
        # 08:00 UTC is 13:30 in Kolkata, aligned; 08:05 UTC is not
        bm.check_slot(aligned + timedelta(minutes=5), aligned + timedelta(minutes=20), tz)
    with pytest.raises(bm.BillingError, match=":00, :15"):
        bm.check_slot(aligned + timedelta(seconds=1), aligned + bm.SLOT + timedelta(seconds=1), tz)
    with pytest.raises(bm.BillingError, match="timezone"):
        bm.check_slot(datetime(2026, 6, 1, 8), datetime(2026, 6, 1, 8, 15), tz)
    # A zone with a 45-minute offset: a UTC quarter hour is a local one only where the offsets agree.
    nepal = datetime(2026, 6, 1, 2, 15, tzinfo=UTC)  # 08:00 in Kathmandu (+05:45)
    bm.check_slot(nepal, nepal + bm.SLOT, "Asia/Kathmandu")
    with pytest.raises(bm.BillingError):
        bm.zone("Mars/Olympus")


def test_slot_ids_are_utc():
    local = datetime(2026, 6, 1, 8, 0, tzinfo=bm.zone("Asia/Kolkata"))
    assert bm.slot_id(local) == "2026-06-01T02:30:00+00:00"
