import pytest

from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain


@pytest.mark.django_db
def test_mint_transfer_seal_verify(network):
    network.mint("household:hh-alice", 5000)
    ok = network.alice.invoke("token", "transfer", {"from": "household:hh-alice", "to": "household:hh-bob",
                                                    "asset": "k", "amount": 2000})
    assert ok.ok, ok.reason
    assert lease_acquire(holder="t")
    assert seal_next_block(holder="t", force=True).tx_count == 2
    report = verify_chain()
    assert report.ok, report.problems
    assert report.transactions == 2 and report.blocks == 1
