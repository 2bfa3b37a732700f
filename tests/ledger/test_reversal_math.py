"""Reversal arithmetic without a database: refunds take back what the refunded money bought at
the sale's price, floored like purchases, cumulatively, never more than the sale; what the
buyer no longer holds becomes debt; the next purchase pays the debt first."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.chaincodes.energy_math import debt_repayment, fiat_to_wh, refunded_wh, reversal_of


def test_a_full_refund_takes_back_what_the_payment_bought():
    sale = fiat_to_wh(amount=1001, credit=0, price_per_kwh=800)
    assert refunded_wh(refunded=1001, sale_wh=sale.wh, price_per_kwh=800) == sale.wh == 1251


def test_energy_bought_with_older_credit_stays_with_the_buyer():
    sale = fiat_to_wh(amount=1000, credit=500, price_per_kwh=800)  # 1,875 Wh, 625 of them from the credit
    assert refunded_wh(refunded=1000, sale_wh=sale.wh, price_per_kwh=800) == 1250


def test_partial_refunds_floor_like_purchases():
    assert refunded_wh(refunded=1, sale_wh=1251, price_per_kwh=800) == 1  # 1.25 Wh → 1
    r = reversal_of(sale_wh=1251, price_per_kwh=800, sale_amount=1001, reversed_before=1, amount=1, held=10_000)
    assert r.wh == 1  # cumulative 2.5 → 2, minus the 1 already taken


def test_what_the_buyer_no_longer_holds_becomes_debt():
    r = reversal_of(sale_wh=2500, price_per_kwh=800, sale_amount=2000, reversed_before=0, amount=2000, held=900)
    assert (r.wh, r.returned, r.owed) == (2500, 900, 1600)
    assert debt_repayment(wh=1000, debt=1600) == (1000, 0)
    assert debt_repayment(wh=2000, debt=1600) == (1600, 400)
    assert debt_repayment(wh=2000, debt=0) == (0, 2000)


def test_reversals_beyond_the_sale_are_refused():
    with pytest.raises(ValueError, match="more than the sale"):
        reversal_of(sale_wh=2500, price_per_kwh=800, sale_amount=2000, reversed_before=1500, amount=501, held=0)
    with pytest.raises(ValueError):
        reversal_of(sale_wh=2500, price_per_kwh=800, sale_amount=2000, reversed_before=0, amount=0, held=0)


@given(amount=st.integers(1, 10**7), credit=st.integers(0, 10**5), price=st.integers(1, 10**5),
       steps=st.lists(st.integers(1, 10**7), max_size=12), held=st.integers(0, 10**9))
def test_refund_after_refund_never_takes_back_more_than_was_sold(amount, credit, price, steps, held):
    sale = fiat_to_wh(amount=amount, credit=credit, price_per_kwh=price)
    reversed_amount = taken = 0
    for step in steps:
        if reversed_amount + step > amount:
            with pytest.raises(ValueError):
                reversal_of(sale_wh=sale.wh, price_per_kwh=price, sale_amount=amount,
                            reversed_before=reversed_amount, amount=step, held=held)
            continue
        r = reversal_of(sale_wh=sale.wh, price_per_kwh=price, sale_amount=amount, reversed_before=reversed_amount,
                        amount=step, held=held)
        assert r.wh >= 0 and r.returned >= 0 and r.owed >= 0 and r.returned + r.owed == r.wh
        assert r.returned <= held
        reversed_amount += step
        taken += r.wh
        assert taken == refunded_wh(refunded=reversed_amount, sale_wh=sale.wh, price_per_kwh=price) <= sale.wh
    if reversed_amount == amount:  # fully refunded: exactly what this payment's money bought
        assert taken == min(sale.wh, amount * 1000 // price)
