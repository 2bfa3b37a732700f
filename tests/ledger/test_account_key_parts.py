"""ledger.keys.account_key_parts reads back every account key ledger.keys writes."""

from ledger import keys


def test_every_account_key_reads_back():
    assert keys.account_key_parts(keys.household_account("hh-alice")) == ("household", ("hh-alice",))
    assert keys.account_key_parts(keys.device_account("SL-0001")) == ("device", ("SL-0001",))
    assert keys.account_key_parts(keys.producer_account("sunfarm")) == ("producer", ("sunfarm",))
    assert keys.account_key_parts(keys.utility_account("gridco-utility", 12)) == ("utility", ("gridco-utility", "12"))
    assert keys.account_key_parts(keys.credit_account("hh-alice", "gridco")) == ("credit", ("hh-alice", "gridco"))
    assert keys.account_key_parts(keys.debt_account("hh-alice", "gridco")) == ("debt", ("hh-alice", "gridco"))
    assert keys.account_key_parts("issuance") == ("issuance", ())
    assert keys.account_key_parts(keys.pool_account("heatwave")) == ("pool", ("heatwave",))
    assert keys.account_key_parts(keys.match_account("heatwave")) == ("match", ("heatwave",))
    assert keys.account_key_parts(keys.escrow_account("lamp")) == ("escrow", ("lamp",))
    assert keys.account_key_parts("vault:heatwave") == ("vault:heatwave", ())
