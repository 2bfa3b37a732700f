"""meters.services.device_fund: validation with clear messages, nothing changes on refusal,
idempotent double submits, windows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.models import Account, Transaction
from meters import selectors, services
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


def balances() -> dict[str, int]:
    return dict(Account.objects.filter(asset_id="k").values_list("key", "balance"))


def fund(mw, **kwargs):
    args = {"user": mw.alice.user, "public_id": "SL-0001", "amount_wh": 1000, "idempotency_key": "k1", **kwargs}
    return services.device_fund(**args)


def test_funding_moves_coins_and_returns_the_device_state(mw):
    result = fund(mw, amount_wh=1500)
    assert result.invoke.ok and not result.replayed
    assert (result.balance_wh, result.relay, result.window) == (1500, "on", None)
    after = balances()
    assert after["household:hh-alice"] == 3799 - 1500 and after["device:SL-0001"] == 1500
    tx = Transaction.objects.get(tx_hash=result.tx_hash)
    assert (tx.chaincode, tx.function, tx.invoker_id) == ("resident", "fund", mw.alice.identity.pk)


def test_a_member_funds_from_the_household(mw):
    result = fund(mw, user=mw.bob.user, amount_wh=99)
    assert Transaction.objects.get(tx_hash=result.tx_hash).invoker.name == "bob"
    assert balances()["household:hh-alice"] == 3700


@pytest.mark.parametrize("amount", [0, -5, True, "12"])
def test_amount_must_be_a_positive_integer(mw, amount):
    before, txs = balances(), Transaction.objects.count()
    with pytest.raises(services.FundingError, match="positive"):
        fund(mw, amount_wh=amount)
    assert balances() == before and Transaction.objects.count() == txs


def test_not_above_the_balance_and_nothing_changes(mw):
    before, txs = balances(), Transaction.objects.count()
    with pytest.raises(services.FundingError) as exc:
        fund(mw, amount_wh=3800)
    assert str(exc.value) == "Not enough coins: alice's household holds 3.799 kWh, you asked to fund 3.800 kWh."
    assert balances() == before and Transaction.objects.count() == txs
    assert fund(mw, amount_wh=3799).balance_wh == 3799  # exactly the balance is fine


def test_unknown_device(mw):
    with pytest.raises(services.DeviceNotFound, match="no device 'XX-1'"):
        fund(mw, public_id="XX-1")


def test_retired_device(mw):
    txs = Transaction.objects.count()
    with pytest.raises(services.DeviceRetired, match="retired"):
        fund(mw, public_id="SL-0099")
    assert Transaction.objects.count() == txs


def test_a_stranger_funds_a_household_meter_by_its_id(mw):
    result = fund(mw, user=mw.charlie.user, public_id="HM-ALICE", amount_wh=100)
    assert result.balance_wh == 100 and balances()["household:hh-charlie"] == 1801


def test_user_without_organisation(mw, django_user_model):
    nobody = django_user_model.objects.create_user(username="nobody", password="x-password-1")
    with pytest.raises(services.NotPermitted):
        fund(mw, user=nobody)


@pytest.mark.parametrize("start,end,message", [
    (timedelta(hours=2), timedelta(hours=1), "end after it starts"),
    (timedelta(hours=-3), timedelta(hours=-1), "already ended"),
    (timedelta(hours=-1), timedelta(hours=1), "cannot start in the past"),
    (timedelta(hours=1), timedelta(days=8), "at most 7 days"),
    (timedelta(hours=1), None, "both a start and an end"),
    (None, timedelta(hours=1), "both a start and an end"),
])
def test_window_validation(mw, start, end, message):
    now = timezone.now()
    before, txs = balances(), Transaction.objects.count()
    with pytest.raises(services.FundingError, match=message):
        fund(mw, window_start=None if start is None else now + start, window_end=None if end is None else now + end)
    assert balances() == before and Transaction.objects.count() == txs


def test_naive_window_is_refused(mw):
    now = timezone.now().replace(tzinfo=None)
    with pytest.raises(services.FundingError, match="timezone"):
        fund(mw, window_start=now + timedelta(hours=1), window_end=now + timedelta(hours=2))


def test_window_funding_reserves_coins(mw):
    now = timezone.now()
    result = fund(mw, amount_wh=500, window_start=now + timedelta(hours=1), window_end=now + timedelta(hours=2))
    assert result.relay == "off" and result.window["end"] == (now + timedelta(hours=2)).isoformat()
    state = selectors.device_state(mw.light)
    assert state.reserved == 500 and state.raw_windows[0]["funder"] == "household:hh-alice"


def test_double_submit_moves_coins_once(mw):
    first = fund(mw, amount_wh=2000, idempotency_key="same")
    # The balance no longer covers a second 2 kWh; the replay is answered by the ledger anyway.
    second = fund(mw, amount_wh=2000, idempotency_key="same")
    assert second.replayed and second.tx_hash == first.tx_hash and second.balance_wh == 2000
    assert balances()["device:SL-0001"] == 2000 and balances()["household:hh-alice"] == 1799


def test_same_key_for_another_request_is_a_conflict(mw):
    fund(mw, amount_wh=10, idempotency_key="same")
    with pytest.raises(services.FundingConflict, match="different values"):
        fund(mw, amount_wh=11, idempotency_key="same")
    assert balances()["device:SL-0001"] == 10


def test_kwh_to_wh_is_exact():
    assert services.kwh_to_wh(Decimal("1.234")) == 1234
    assert services.kwh_to_wh(Decimal("0.001")) == 1
    with pytest.raises(services.FundingError):
        services.kwh_to_wh(Decimal("0.0005"))


def test_fund_form_converts_kwh_without_floats():
    from frontend.forms import FundForm

    form = FundForm({"public_id": "SL-0001", "amount_kwh": "2.005", "idempotency_key": "6f1e0a4c-9f83-4c55-9a8e-0d7f86a1b1a2"})
    assert form.is_valid(), form.errors
    assert form.amount_wh == 2005 and isinstance(form.amount_wh, int)
    too_fine = FundForm({"public_id": "SL-0001", "amount_kwh": "1.0001", "idempotency_key": "6f1e0a4c-9f83-4c55-9a8e-0d7f86a1b1a2"})
    assert not too_fine.is_valid() and "amount_kwh" in too_fine.errors
    zero = FundForm({"public_id": "SL-0001", "amount_kwh": "0", "idempotency_key": "6f1e0a4c-9f83-4c55-9a8e-0d7f86a1b1a2"})
    assert not zero.is_valid()
