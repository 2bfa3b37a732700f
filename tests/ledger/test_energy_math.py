"""The economy's arithmetic, without a database."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.chaincodes.energy_math import (
    allocate_burn,
    due_for_settlement,
    fiat_to_wh,
    price_at,
    relay_on,
    spendable,
)

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def window(start_h: float, end_h: float, remaining: int) -> dict:
    return {"start": (T0 + timedelta(hours=start_h)).isoformat(), "end": (T0 + timedelta(hours=end_h)).isoformat(),
            "remaining": remaining, "amount": remaining, "funder": "household:x"}


def test_price_in_force_is_the_latest_that_has_started():
    schedule = [{"from": (T0 - timedelta(days=2)).isoformat(), "price": 500},
                {"from": (T0 + timedelta(hours=1)).isoformat(), "price": 700},
                {"from": (T0 - timedelta(days=1)).isoformat(), "price": 600}]
    assert price_at(schedule, T0) == 600
    assert price_at(schedule, T0 + timedelta(hours=1)) == 700
    assert price_at(schedule, T0 - timedelta(days=3)) is None


def test_fiat_to_wh_floors_energy_and_keeps_the_rest_as_credit():
    sale = fiat_to_wh(amount=1000, credit=0, price_per_kwh=650)  # ₹10.00 at ₹6.50/kWh
    assert sale.wh == 1538  # 1538.46 Wh floored
    assert sale.charged == 1000  # 999.7 paise rounds up to a whole paisa
    assert sale.credit == 0
    sale = fiat_to_wh(amount=1000, credit=0, price_per_kwh=700)
    assert (sale.wh, sale.charged, sale.credit) == (1428, 1000, 0)
    sale = fiat_to_wh(amount=5, credit=3, price_per_kwh=100000)  # too little for 1 Wh: all stays credit
    assert (sale.wh, sale.charged, sale.credit) == (0, 0, 8)


@given(amount=st.integers(0, 10**9), credit=st.integers(0, 10**6), price=st.integers(1, 10**6))
def test_fiat_to_wh_never_loses_money(amount, credit, price):
    sale = fiat_to_wh(amount=amount, credit=credit, price_per_kwh=price)
    assert sale.charged + sale.credit == amount + credit
    assert sale.credit >= 0 and sale.wh >= 0
    assert sale.wh * price <= sale.charged * 1000 < sale.wh * price + 1000  # charged = exact cost rounded up
    assert (sale.wh + 1) * price > (amount + credit) * 1000  # no further whole Wh was affordable


def test_window_coins_only_burn_inside_the_window():
    windows = [window(0, 5, 3000)]
    # before the window: balance is all reserved, relay off
    assert not relay_on(3000, windows, T0 - timedelta(minutes=1))
    burned, updated = allocate_burn(500, 3000, windows, T0 - timedelta(minutes=1))
    assert burned == 0 and updated == windows
    # inside: ON, burns from the window
    assert relay_on(3000, windows, T0 + timedelta(hours=1))
    burned, updated = allocate_burn(500, 3000, windows, T0 + timedelta(hours=1))
    assert burned == 500 and updated[0]["remaining"] == 2500
    # after: ended windows are settled
    ended, still_open = due_for_settlement(updated, T0 + timedelta(hours=5))
    assert [w["remaining"] for w in ended] == [2500] and still_open == []


def test_burn_prefers_active_window_then_free_coins_and_reports_shortfall():
    windows = [window(0, 5, 1000), window(10, 12, 4000)]
    now = T0 + timedelta(hours=1)
    assert spendable(6000, windows, now) == 1000 + 1000  # 1000 free + 1000 in the active window
    burned, updated = allocate_burn(2500, 6000, windows, now)
    assert burned == 2000
    assert [w["remaining"] for w in updated] == [0, 4000]  # the future window is untouched
    assert not relay_on(6000 - burned, updated, now)


@pytest.mark.parametrize("price", [0, -5])
def test_price_must_be_positive(price):
    with pytest.raises(ValueError):
        fiat_to_wh(amount=100, credit=0, price_per_kwh=price)
