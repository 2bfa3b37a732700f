import pytest

from ledger.models import Transaction
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain


@pytest.mark.django_db
def test_mint_transfer_seal_verify(network):
    network.mint("household:hh-alice", 5000)
    ok = network.alice.invoke("token", "transfer", {"from": "household:hh-alice", "to": "household:hh-bob",
                                                    "asset": "k", "amount": 2000})
    assert ok.ok, ok.reason
    assert lease_acquire(holder="t")
    config = Transaction.objects.filter(chaincode="config").count()  # the membership's own
    assert seal_next_block(holder="t", force=True).tx_count == 2 + config
    report = verify_chain()
    assert report.ok, report.problems
    assert report.transactions == 2 + config and report.blocks == 1


@pytest.mark.django_db
def test_parallel_signature_check_names_first_forged_signature(network):
    from django.db import connection

    network.mint("household:hh-alice", 5000)
    for n in range(6):
        network.alice.invoke("token", "transfer", {"from": "household:hh-alice", "to": "household:hh-bob",
                                                   "asset": "k", "amount": 10 + n})
    assert lease_acquire(holder="t")
    while seal_next_block(holder="t", max_tx=3, force=True):
        pass
    assert verify_chain(workers=2).ok

    victim = Transaction.objects.order_by("id")[4]
    forged = ("A" if victim.signature[0] != "A" else "B") + victim.signature[1:]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET session_replication_role = replica")
        cur.execute("UPDATE ledger_transaction SET signature = %s, tx_hash = tx_hash WHERE id = %s",
                    [forged, victim.pk])
        if connection.vendor == "postgresql":
            cur.execute("SET session_replication_role = DEFAULT")
    report = verify_chain(workers=2)
    assert not report.ok
    first = report.problems[0]
    assert first.tx_id == victim.pk and first.block == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_stale_account_directory_never_misroutes_or_wrongly_refuses(network):
    from ledger.contracts import AccountInfo
    from ledger.models import Account
    from ledger.services import _directory

    network.mint("household:hh-alice", 1000)
    alice = Account.objects.get(key="household:hh-alice")
    bob = Account.objects.get(key="household:hh-bob")
    # Poison the cache: alice's key points at bob's row, owned by another organisation.
    _directory._entries[("household:hh-alice", "k")] = AccountInfo(bob.pk, "household:hh-alice", "k", "holder",
                                                                   network.bob.organisation.pk, 0)
    result = network.alice.invoke("token", "transfer", {"from": "household:hh-alice", "to": "household:hh-bob",
                                                        "asset": "k", "amount": 400})
    assert result.ok, result.reason
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.balance, bob.balance) == (600, 400)


@pytest.mark.django_db
def test_unsealed_transaction_missing_from_the_sealing_queue_is_reported(network):
    from ledger.models import UnsealedTransaction

    result = network.mint("household:hh-alice", 700)
    assert UnsealedTransaction.objects.filter(transaction_id=result.tx_id).exists()
    assert verify_chain().ok
    UnsealedTransaction.objects.filter(transaction_id=result.tx_id).delete()
    report = verify_chain()
    assert not report.ok
    assert report.problems[0].tx_id == result.tx_id and "not queued" in report.problems[0].message
