"""Hypothesis: random interleavings of Stripe payments reported by two event types,
redeliveries, cumulative refunds arriving in any order, and disputes opened and closed keep,
for every payment, credited − reversed = paid − refunded (the money a processor really kept),
credit it exactly once, and leave no balance negative; coins stay conserved and the chain
verifies. Events go through the real endpoint, signed the way Stripe signs."""

from __future__ import annotations

import itertools

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.chaincodes.energy_math import refunded_wh
from ledger.models import Transaction
from payments.models import Payment
from payments.testing import RETAIL_PRICE, build_market

from .stripe_kit import SECRETS, assert_conserved_and_verified, event_for, post

_examples = itertools.count()
OPS = ("session", "intent", "refund", "dispute_open", "dispute_close")


@st.composite
def scenarios(draw):
    payments = []
    for _ in range(draw(st.integers(1, 2))):
        amount = draw(st.integers(50, 4000))
        totals = sorted(set(draw(st.lists(st.integers(1, amount), max_size=3))))
        payments.append({"amount": amount, "totals": totals, "outcome": draw(st.sampled_from(["won", "lost"]))})
    ops = draw(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, len(payments) - 1), st.integers(0, 2)),
                        min_size=2, max_size=14))
    return payments, ops


@pytest.fixture
def market(db, settings):
    settings.STRIPE_WEBHOOK_SECRETS = SECRETS
    return build_market(bank_msp="stripebank")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(scenario=scenarios())
def test_any_interleaving_credits_once_and_reverses_what_was_refunded(market, scenario):
    payments, ops = scenario
    run = next(_examples)
    client = Client()
    start = market.household_balance()
    model = [{"credited": False, "refunded": 0, "lost": False} for _ in payments]

    def pi(i: int) -> str:
        return f"pi_h{run}x{i}"

    for op, i, j in ops:
        p, m = payments[i], model[i]
        # Stripe disputes what is left after the refunds it will make (never more than was paid).
        disputed = p["amount"] - (p["totals"][-1] if p["totals"] else 0)
        if op in ("session", "intent"):
            etype = "checkout.session.completed" if op == "session" else "payment_intent.succeeded"
            amounts = {"amount_total": p["amount"]} if op == "session" else {
                "amount": p["amount"], "amount_received": p["amount"]}
            event = event_for(etype, event_id=f"evt_h{run}_{op}_{i}", payment_intent=pi(i), **amounts)
            m["credited"] = True
        elif op == "refund":
            if not p["totals"]:
                continue
            total = p["totals"][j % len(p["totals"])]
            event = event_for("charge.refunded", event_id=f"evt_h{run}_rf_{i}_{total}", payment_intent=pi(i),
                              amount=p["amount"], amount_refunded=total, id=f"ch_h{run}x{i}")
            if m["credited"]:
                m["refunded"] = max(m["refunded"], total)
        elif op == "dispute_open":
            event = event_for("charge.dispute.created", event_id=f"evt_h{run}_do_{i}", payment_intent=pi(i),
                              amount=disputed, id=f"du_h{run}x{i}", status="needs_response")
        else:
            if p["outcome"] == "lost" and disputed == 0:
                continue
            event = event_for("charge.dispute.closed", event_id=f"evt_h{run}_dc_{i}", payment_intent=pi(i),
                              amount=disputed, id=f"du_h{run}x{i}", status=p["outcome"])
            if m["credited"] and p["outcome"] == "lost":
                m["lost"] = True
        response = post(client, event)
        # Only a reversal or dispute before its payment's credit is refused (409, retried by Stripe).
        assert response.status_code in (200, 409), response.content
        assert response.status_code == 200 or (not m["credited"] and op in ("refund", "dispute_open",
                                                                            "dispute_close"))

    expected_wh = 0
    for i, (p, m) in enumerate(zip(payments, model, strict=True)):
        row = Payment.objects.filter(provider="stripe", payment_id=pi(i)).first()
        if not m["credited"]:
            assert row is None
            continue
        assert row is not None and row.state == "credited"
        disputed = p["amount"] - (p["totals"][-1] if p["totals"] else 0)
        reversed_expected = m["refunded"] + (disputed if m["lost"] else 0)
        paid, refunded = p["amount"], reversed_expected
        # credited − reversed = paid − refunded, never negative.
        assert row.amount - row.amount_reversed == paid - refunded >= 0
        credits = Transaction.objects.filter(idempotency_key=f"payment:stripe::{pi(i)}")
        assert credits.count() == 1  # exactly once
        sale = credits.get().result
        taken = sum(r.tx_hash and Transaction.objects.get(tx_hash=r.tx_hash).result["wh"] for r in row.reversals.all())
        assert taken == refunded_wh(refunded=row.amount_reversed, sale_wh=sale["wh"], price_per_kwh=RETAIL_PRICE)
        expected_wh += sale["wh"] - taken
    assert market.household_balance() - start == expected_wh
    assert_conserved_and_verified()
