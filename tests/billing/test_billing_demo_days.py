"""``seed_demo --billing-days``: the day before yesterday and yesterday billed for Alice's and
Bob's households from their meters' signed readings, closed into statements and dues, Alice's
household fined once and Bob's not; a rerun changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from ledger.keys import BILLING_NAMESPACE, dues_key
from ledger.models import Transaction
from ledger.selectors import world_state

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)  # committed invocation by invocation, as the seed runs them
def test_the_demo_has_two_billed_days_and_one_fined_household():
    out = StringIO()
    call_command("seed_demo", "--billing-days", stdout=out)
    assert out.getvalue().count("billed day ") == 2 and "dues threshold" in out.getvalue()

    statements = world_state(BILLING_NAMESPACE, prefix="statement/st-ward1/")
    assert sorted(k.split("/")[2] for k in statements) == ["hh-alice", "hh-alice", "hh-bob", "hh-bob"]
    assert all(s["missing"] == [] and s["amount"] > 0 for s in statements.values())
    alice, bob = (world_state(BILLING_NAMESPACE, [dues_key(s)])[dues_key(s)] for s in ("hh-alice", "hh-bob"))
    assert [i["kind"] for i in alice["items"]] == ["statement", "statement", "fine"]
    assert (alice["fines"], alice["in_breach"]) == (1, True)
    assert [i["kind"] for i in bob["items"]] == ["statement", "statement"] and bob["fines"] == 0
    for dues, society in ((alice, "hh-alice"), (bob, "hh-bob")):
        billed = sum(s["amount"] for k, s in statements.items() if k.split("/")[2] == society)
        assert sum(i["amount"] for i in dues["items"] if i["kind"] == "statement") == billed

    txs = Transaction.objects.count()
    again = StringIO()
    call_command("seed_demo", "--billing-days", stdout=again)
    assert "nothing changed" in again.getvalue() and Transaction.objects.count() == txs
