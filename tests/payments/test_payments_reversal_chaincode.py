"""The reverse chaincode functions through the ledger: a reversal id applies once even under
another ledger key, the sale's facts cannot change between reversals, and wholesale reversals
leave the utility's debt to the producer, paid first out of the next wholesale purchase."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.services import invoke_as
from ledger import services as ledger
from ledger.chaincodes.energy import DEBT, debt_account, producer_account
from ledger.chaincodes.energy_math import fiat_to_wh
from payments.models import Payment
from payments.reversals import PaymentKey, payment_reverse
from payments.sales import bank_invoker
from payments.selectors import energy_debt_of
from payments.testing import RETAIL_PRICE, WHOLESALE_PRICE, balance, build_market

from .stripe_kit import assert_conserved_and_verified


@pytest.fixture
def market(db):
    return build_market()


def reverse_args(**overrides):
    args = {"payment_id": "pay-1", "reversal_id": "r-1", "kind": "refund", "payer": "hh-alice", "payee": "utility",
            "amount": 500, "currency": "INR", "sale_amount": 2000,
            "sale_wh": fiat_to_wh(amount=2000, credit=0, price_per_kwh=RETAIL_PRICE).wh, "sale_price": RETAIL_PRICE}
    args.update(overrides)
    return args


def test_a_reversal_id_applies_once_even_under_another_ledger_key(market):
    market.deliver(market.notification(id="pay-1", amount=2000))
    with transaction.atomic():
        assert payment_reverse(PaymentKey("bank", "testbank", "pay-1"), reversal_id="r-1", kind="refund",
                               amount=500).status == "applied"
    identity, signer = bank_invoker(market.bank)
    again = ledger.invoke(chaincode="retail-seller", function="reverse", args=reverse_args(), invoker=identity,
                          idempotency_key="another-key", signer=signer)
    assert not again.ok and "applied before" in again.reason
    other_sale = ledger.invoke(chaincode="retail-seller", function="reverse", invoker=identity, signer=signer,
                               args=reverse_args(reversal_id="r-2", sale_price=RETAIL_PRICE + 1),
                               idempotency_key="third-key")
    assert not other_sale.ok and "reversed before as a sale" in other_sale.reason
    assert Payment.objects.get().amount_reversed == 500
    assert_conserved_and_verified()


def test_the_reverse_functions_are_for_banks_only(market):
    refused = invoke_as(identity=market.operator, chaincode="retail-seller", function="reverse",
                        args=reverse_args(), idempotency_key="utility-tries")
    assert not refused.ok and "endorsement policy" in refused.reason


def test_a_wholesale_return_after_the_utility_sold_the_energy_leaves_debt_paid_by_the_next_purchase(db):
    market = build_market(stock=0)
    market.operate("token", "mint", {"to": producer_account("sunfarm"), "asset": "k", "amount": 100_000})
    bought = fiat_to_wh(amount=5000, credit=0, price_per_kwh=WHOLESALE_PRICE).wh  # 10,000 Wh
    assert market.deliver(market.notification(id="ws-1", payer="utility", payee="sunfarm",
                                              chaincode="wholesale-seller", amount=5000)).json()["status"] == "applied"
    sold = fiat_to_wh(amount=4000, credit=0, price_per_kwh=RETAIL_PRICE).wh  # 5,000 Wh to the household
    assert market.deliver(market.notification(id="rt-1", amount=4000)).json()["status"] == "applied"
    back = market.deliver({"id": "ws-rtn", "bank": "testbank", "return_of": "ws-1", "amount": 5000, "currency": "INR"})
    assert (back.json()["taken_back"], back.json()["owed"]) == (bought - sold, sold)
    assert market.utility_stock() == 0 and energy_debt_of("utility") == sold
    assert balance(debt_account("utility", "sunfarm"), DEBT) == sold
    assert_conserved_and_verified()
    again = market.deliver(market.notification(id="ws-2", payer="utility", payee="sunfarm",
                                               chaincode="wholesale-seller", amount=5000)).json()
    assert (again["status"], again["wh"]) == ("applied", bought)
    assert market.utility_stock() == bought - sold and energy_debt_of("utility") == 0
    # The producer sold 10,000 Wh twice, got 5,000 back, and kept 5,000 of the second sale as repayment.
    assert balance(producer_account("sunfarm")) == 100_000 - bought
    assert_conserved_and_verified()
