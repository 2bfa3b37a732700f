"""On generated ledgers (random sequences of invocations, sealed at random points, some edited
afterwards as a superuser would), ``ledger_verify`` and the standalone verifier agree: both
accept the ledger, or both refuse it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ledger import services as ledger
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Account, Block, Identity, Posting, StateEntry, Transaction
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import trusted_orderer_keys, verify_chain
from tests.ledger.tampering import superuser
from tests.ledger_helpers import Network
from tests.verifier.parity import export_and_verify

pytestmark = pytest.mark.django_db

HOUSEHOLDS = ["household:hh-alice", "household:hh-bob"]

steps = st.one_of(
    st.tuples(st.just("mint"), st.sampled_from(HOUSEHOLDS), st.integers(1, 5000)),
    st.tuples(st.just("transfer"), st.sampled_from([0, 1]), st.integers(1, 3000)),
    st.tuples(st.just("burn"), st.sampled_from([0, 1]), st.integers(1, 500)),
    st.tuples(st.just("note"), st.sampled_from(["a", "b"]), st.one_of(st.none(), st.text("xyzé", max_size=4))),
    st.tuples(st.just("forged"), st.just(0), st.just(0)),
    st.tuples(st.just("policy"), st.just(0), st.just(0)),
    st.tuples(st.just("seal"), st.integers(1, 4), st.just(0)),
)
TAMPERING = [None, "posting_amount", "tx_reason", "tx_args", "block_timestamp", "balance", "state_value",
             "identity_key", "delete_tx", "unseal", "lent_debit", "made_admin"]


def _run(net: Network, step: tuple) -> None:
    kind, a, b = step
    alice, bob = net.alice, net.bob
    members = [alice, bob]
    if kind == "mint":
        net.mint(a, b)
    elif kind == "transfer":
        member = members[a]
        source, dest = HOUSEHOLDS[a], HOUSEHOLDS[1 - a]
        member.invoke("token", "transfer", {"from": source, "to": dest, "asset": "k", "amount": b})
    elif kind == "burn":
        members[a].invoke("token", "burn", {"from": HOUSEHOLDS[a], "asset": "k", "amount": b})
    elif kind == "note":
        args = {"key": a} if b is None else {"key": a, "text": b}
        alice.invoke("token", "note", args)
    elif kind == "forged":
        ledger.invoke(chaincode="token", function="note", args={"key": "f", "text": "forged"}, invoker=bob.identity,
                      idempotency_key=f"forged-{Transaction.objects.count()}", signer=generate_private_key())
    elif kind == "policy":
        alice.invoke("token", "mint", {"to": HOUSEHOLDS[0], "asset": "k", "amount": 5})
    elif kind == "seal":
        assert lease_acquire(holder="agree")
        seal_next_block(holder="agree", max_tx=a, force=True)


def _tamper(kind: str | None, pick: int, net: Network) -> None:
    def nth(qs):
        rows = list(qs)
        return rows[pick % len(rows)] if rows else None

    if kind == "posting_amount" and (p := nth(Posting.objects.order_by("id"))):
        Posting.objects.filter(pk=p.pk).update(amount=p.amount * 2)
    elif kind == "tx_reason" and (t := nth(Transaction.objects.order_by("id"))):
        Transaction.objects.filter(pk=t.pk).update(reason=t.reason + "!")
    elif kind == "tx_args" and (t := nth(Transaction.objects.order_by("id"))):
        Transaction.objects.filter(pk=t.pk).update(args={**t.args, "extra": 1})
    elif kind == "block_timestamp" and (blk := nth(Block.objects.order_by("id"))):
        Block.objects.filter(pk=blk.pk).update(timestamp=blk.timestamp + timedelta(microseconds=1))
    elif kind == "balance" and (acc := nth(Account.objects.order_by("id"))):
        Account.objects.filter(pk=acc.pk).update(balance=acc.balance + 1)
    elif kind == "state_value" and (e := nth(StateEntry.objects.order_by("id"))):
        StateEntry.objects.filter(pk=e.pk).update(value={"tampered": True})
    elif kind == "identity_key" and (i := nth(Identity.objects.filter(transactions__isnull=False).distinct())):
        Identity.objects.filter(pk=i.pk).update(public_key=public_bytes(generate_private_key()))
    elif kind == "delete_tx" and (t := nth(Transaction.objects.filter(block__isnull=False).order_by("id"))):
        with connection.cursor() as cur:
            for table in ("ledger_posting", "ledger_statewrite"):
                cur.execute(f"DELETE FROM {table} WHERE transaction_id = %s", [t.pk])
            cur.execute("DELETE FROM ledger_transaction WHERE id = %s", [t.pk])
    elif kind == "unseal" and (t := nth(Transaction.objects.filter(block__isnull=False).order_by("id"))):
        Transaction.objects.filter(pk=t.pk).update(block=None)
    elif kind == "lent_debit":
        # Bob's account lent to alice in the table while she spends from it, then given back.
        account = Account.objects.get(key=HOUSEHOLDS[1], asset="k")
        Account.objects.filter(pk=account.pk).update(organisation=net.alice.organisation)
        net.alice.invoke("token", "transfer", {"from": HOUSEHOLDS[1], "to": HOUSEHOLDS[0], "asset": "k",
                                               "amount": 1 + pick % 3})
        Account.objects.filter(pk=account.pk).update(organisation=account.organisation)
    elif kind == "made_admin":
        # Alice made a configuration admin in the world state for one change, then not.
        entry = StateEntry.objects.get(namespace="config", key="policy")
        StateEntry.objects.filter(pk=entry.pk).update(value={**entry.value, "admins": [*entry.value["admins"],
                                                                                        "hh-alice/alice"]})
        net.alice.invoke("config", "setOrganisationType", {"msp_id": "hh-alice", "org_type": "household"})
        StateEntry.objects.filter(pk=entry.pk).update(value=entry.value)


@pytest.fixture
def net(db) -> Network:
    return Network.create()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=st.lists(steps, min_size=1, max_size=12), tampering=st.sampled_from(TAMPERING),
       pick=st.integers(0, 50))
# Attacks on the rights replayed from membership on chain, every run.
@example(program=[("mint", HOUSEHOLDS[1], 100), ("seal", 2, 0)], tampering="lent_debit", pick=0)
@example(program=[("note", "a", "x")], tampering="made_admin", pick=0)
def test_ledger_verify_and_the_standalone_verifier_agree(net, tmp_path_factory, program, tampering, pick):
    pinned = sorted(trusted_orderer_keys())
    with transaction.atomic():
        for step in program:
            _run(net, step)
        clean = export_and_verify(tmp_path_factory.mktemp("clean"), orderer_keys=pinned)
        assert verify_chain(workers=0).ok and clean.ok, [str(p) for p in clean.problems]
        with superuser():
            _tamper(tampering, pick, net)
        inside = verify_chain(workers=0)
        outside = export_and_verify(tmp_path_factory.mktemp("edited"), orderer_keys=pinned)
        event(f"{tampering}: {'accepted' if inside.ok else 'refused'}")
        if tampering == "made_admin":
            assert not inside.ok and "configuration policy" in inside.problems[0].message, inside.problems[:1]
        assert inside.ok == outside.ok, (tampering, [str(p) for p in inside.problems],
                                         [str(p) for p in outside.problems])
        transaction.set_rollback(True)
