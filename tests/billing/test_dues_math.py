"""The dues arithmetic of ``energy-billing`` (pure): random sequences of statements, adjustments
and payments keep the books consistent, never leave an item more than fully open, and fine each
breach exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.chaincodes.billing_dues import new_dues, pay, post

NOW = "2026-06-02T00:00:00+00:00"

operation = st.one_of(
    st.tuples(st.just("statement"), st.integers(min_value=-2_000, max_value=5_000)),
    st.tuples(st.just("adjustment"), st.integers(min_value=-5_000, max_value=5_000)),
    st.tuples(st.just("payment"), st.integers(min_value=1, max_value=6_000)),
)


def check(dues: dict, paid: int) -> None:
    items = dues["items"]
    assert all(0 <= i["open"] <= max(i["amount"], 0) for i in items)
    assert dues["outstanding"] == sum(i["open"] for i in items) >= 0
    assert dues["credit"] >= 0 and (dues["credit"] == 0 or dues["outstanding"] == 0)
    assert dues["outstanding"] - dues["credit"] == sum(i["amount"] for i in items) - paid
    assert dues["paid"] == paid
    # oldest first: cleared items, then at most one partly paid, then items still fully open
    states = ["cleared" if i["open"] == 0 else "open" if i["open"] == i["amount"] else "partly"
              for i in items if i["amount"] > 0]
    assert states == sorted(states, key=["cleared", "partly", "open"].index)
    assert states.count("partly") <= 1


@given(ops=st.lists(operation, max_size=40), threshold=st.none() | st.integers(min_value=0, max_value=8_000),
       fine=st.integers(min_value=0, max_value=500))
def test_books_balance_and_each_breach_is_fined_once(ops, threshold, fine):
    terms = {"dues_threshold": threshold, "fine": fine}
    dues, paid, breaches, was_in_breach = new_dues("hh-alice"), 0, 0, False
    for n, (kind, amount) in enumerate(ops):
        if kind == "payment":
            cleared = pay(dues, amount, terms, NOW)
            paid += amount
            assert sum(c["amount"] for c in cleared) <= amount
        elif amount:
            post(dues, {"id": f"{kind}:{n}", "kind": kind, "amount": amount}, terms, NOW)
        check(dues, paid)
        # a breach starts when outstanding goes above the threshold from at or below it
        in_breach = threshold is not None and dues["outstanding"] > threshold
        assert dues["in_breach"] == in_breach
        if in_breach and not was_in_breach:
            breaches += 1
        was_in_breach = in_breach
        fines = [i for i in dues["items"] if i["kind"] == "fine"]
        assert len(fines) == (breaches if fine else 0) == dues["fines"]
        assert all(i["amount"] == fine for i in fines)
