"""wallet.services and wallet.selectors called directly: who sets prices, what a refused price
leaves behind (nothing), and the schedule as of a moment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.models import StateEntry, Transaction
from tests.meters_world import MeterWorld, build_meter_world
from wallet import selectors, services

pytestmark = pytest.mark.django_db
JAN, JUL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def test_only_utility_staff_set_prices(mw):
    assert services.user_sets_prices(mw.uma.user)
    assert not services.user_sets_prices(mw.alice.user)
    with pytest.raises(services.NotPermitted):
        services.price_set(user=mw.alice.user, kind="retail", currency="INR", price=800, effective_from=JAN,
                           idempotency_key="a")


@pytest.mark.parametrize("change, words", [
    ({"kind": "bulk"}, "retail or wholesale"),
    ({"price": 0}, "positive"),
    ({"price": True}, "positive"),
    ({"effective_from": datetime(2026, 1, 1)}, "timezone"),
    ({"idempotency_key": ""}, "idempotency key"),
])
def test_a_bad_price_is_refused_and_nothing_reaches_the_ledger(mw, change, words):
    args = {"kind": "retail", "currency": "INR", "price": 800, "effective_from": JAN, "idempotency_key": "p",
            **change}
    with pytest.raises(services.PriceError, match=words):
        services.price_set(user=mw.uma.user, **args)
    assert not Transaction.objects.filter(chaincode="pricing").exists()
    assert not StateEntry.objects.filter(namespace="pricing").exists()


def test_the_schedule_in_force_at_a_moment(mw):
    for when, price, key in ((JAN, 800, "jan"), (JUL, 900, "jul")):
        services.price_set(user=mw.uma.user, kind="retail", currency="INR", price=price, effective_from=when,
                           idempotency_key=key)
    schedule = selectors.price_schedule("utility", "retail", "INR", now=datetime(2026, 3, 1, tzinfo=UTC))
    assert schedule is not None and schedule.key == "utility/retail/INR" and schedule.current == 800
    assert [e["price"] for e in schedule.entries] == [800, 900]
    assert selectors.price_schedule("utility", "retail", "INR", now=JUL).current == 900
    assert selectors.price_schedule("utility", "retail", "INR", now=datetime(2025, 1, 1, tzinfo=UTC)).current is None
    assert selectors.price_schedule("utility", "wholesale", "INR") is None
