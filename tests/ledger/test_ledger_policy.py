"""Endorsement policies and object-level rights: who may invoke what, and what a refusal leaves
behind (a recorded, rejected transaction that moves nothing and writes no state)."""

from __future__ import annotations

import uuid

import pytest

from ledger import services as ledger
from ledger.contracts import Context, Contract, ContractError, registry
from ledger.models import Account, Posting, StateEntry, StateWrite, Transaction
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain
from tests.ledger_helpers import make_member

pytestmark = pytest.mark.django_db

ALICE = "household:hh-alice"
BOB = "household:hh-bob"


def balances() -> dict[tuple[str, str], int]:
    return {(a.key, a.asset_id): a.balance for a in Account.objects.all()}


def ledger_footprint() -> tuple[dict, int, int, int]:
    return balances(), Posting.objects.count(), StateWrite.objects.count(), StateEntry.objects.count()


def assert_rejected_and_inert(result, before, *, reason_contains: str) -> Transaction:
    """The invocation is recorded as rejected, with the reason, and changed nothing else."""
    assert result.status == "rejected", result
    assert reason_contains in result.reason, result.reason
    tx = Transaction.objects.get(tx_hash=result.tx_hash)
    assert tx.status == "rejected" and tx.reason == result.reason and tx.result is None
    assert not tx.postings.exists() and not tx.state_writes.exists()
    assert ledger_footprint() == before
    return tx


def seal_and_verify() -> None:
    assert lease_acquire(holder="t")
    assert seal_next_block(holder="t", force=True) is not None
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


@pytest.mark.parametrize("org_type", ["household", "producer", "bank"])
def test_only_the_utility_may_mint(network, org_type):
    minter = network.alice if org_type == "household" else make_member(f"{org_type}-1", org_type)
    before = ledger_footprint()
    result = minter.invoke("token", "mint", {"to": ALICE, "asset": "k", "amount": 1000})
    assert_rejected_and_inert(
        result, before, reason_contains=f"endorsement policy: token.mint may be invoked by utility, not {org_type}"
    )
    seal_and_verify()


def test_utility_mints(network):
    result = network.utility.invoke("token", "mint", {"to": ALICE, "asset": "k", "amount": 1000})
    assert result.ok and result.reason == ""
    assert Account.objects.get(key=ALICE, asset_id="k").balance == 1000
    assert Account.objects.get(key="issuance", asset_id="k").balance == -1000


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("transfer", {"from": BOB, "to": ALICE, "asset": "k", "amount": 100}),
        ("burn", {"from": BOB, "asset": "k", "amount": 100}),
    ],
)
def test_spending_from_another_organisations_account_is_refused(network, function, args):
    network.mint(BOB, 500)
    before = ledger_footprint()
    result = network.alice.invoke("token", function, args)
    assert_rejected_and_inert(result, before, reason_contains="k account 'household:hh-bob' does not belong")
    # the owner may
    assert network.bob.invoke("token", function, args).ok
    seal_and_verify()


def test_even_the_utility_cannot_spend_a_household_account(network):
    network.mint(BOB, 500)
    before = ledger_footprint()
    result = network.utility.invoke("token", "transfer", {"from": BOB, "to": ALICE, "asset": "k", "amount": 1})
    assert_rejected_and_inert(result, before, reason_contains="does not belong")


@pytest.mark.parametrize(
    ("chaincode", "function", "reason"),
    [
        ("no-such-chaincode", "mint", "unknown chaincode 'no-such-chaincode'"),
        ("token", "steal", "chaincode 'token' has no function 'steal'"),
    ],
)
def test_unknown_chaincode_or_function_is_rejected_and_recorded(network, chaincode, function, reason):
    before = ledger_footprint()
    result = network.alice.invoke(chaincode, function, {"to": ALICE, "asset": "k", "amount": 1})
    tx = assert_rejected_and_inert(result, before, reason_contains=reason)
    assert (tx.chaincode, tx.function) == (chaincode, function)
    seal_and_verify()


@pytest.mark.parametrize(
    ("who", "function", "args"),
    [
        ("utility", "mint", {"to": ALICE, "asset": "k", "amount": 1}),
        ("alice", "transfer", {"from": ALICE, "to": BOB, "asset": "k", "amount": 1}),
        ("alice", "note", {"key": "hello", "text": "world"}),
    ],
)
def test_a_revoked_identity_is_refused(network, who, function, args):
    network.mint(ALICE, 100)
    member = getattr(network, who)
    member.identity = ledger.identity_revoke(identity=member.identity)
    before = ledger_footprint()
    result = member.invoke("token", function, args)
    assert_rejected_and_inert(result, before, reason_contains=f"identity {member.identity.qualified_name} is revoked")
    seal_and_verify()


# --- a contract registered by the test ---------------------------------------------------------

@pytest.fixture
def bank_contract():
    """A throwaway chaincode whose ``settle`` only banks may invoke; removed afterwards."""
    contract = Contract(f"test-bank-{uuid.uuid4().hex[:12]}", "registered by test_ledger_policy")

    @contract.function(orgs={"bank"})
    def settle(ctx: Context) -> dict:
        to, amount = ctx.arg_str("to"), ctx.arg_int("amount")
        ctx.put_state(f"settled:{to}", {"amount": amount})
        ctx.emit("settled", {"to": to, "amount": amount})
        return {"to": to, "amount": amount}

    @contract.function(orgs={"bank"})
    def settle_then_refuse(ctx: Context) -> None:
        """Writes state and records a posting, then refuses: none of it may survive."""
        ctx.put_state("half-done", {"step": 1})
        ctx.transfer(ctx.arg_str("from"), ctx.arg_str("to"), 1, "k")
        raise ContractError("changed my mind")

    @contract.function()
    def open_to_all(ctx: Context) -> dict:
        return {"by": ctx.invoker.name}

    registry.register(contract)
    yield contract
    registry._contracts.pop(contract.name, None)


def test_custom_contract_policy_admits_its_organisation(network, bank_contract):
    bank = make_member("bank-1", "bank")
    result = bank.invoke(bank_contract.name, "settle", {"to": ALICE, "amount": 42})
    assert result.ok, result.reason
    assert result.result == {"to": ALICE, "amount": 42}
    entry = StateEntry.objects.get(namespace=bank_contract.name, key=f"settled:{ALICE}")
    assert entry.value == {"amount": 42} and entry.version == 1
    assert Transaction.objects.get(tx_hash=result.tx_hash).events == [
        {"name": "settled", "payload": {"to": ALICE, "amount": 42}}
    ]
    seal_and_verify()


@pytest.mark.parametrize("who", ["utility", "alice", "producer"])
def test_custom_contract_policy_refuses_other_organisations(network, bank_contract, who):
    member = make_member("producer-1", "producer") if who == "producer" else getattr(network, who)
    before = ledger_footprint()
    result = member.invoke(bank_contract.name, "settle", {"to": ALICE, "amount": 42})
    org_type = member.organisation.org_type
    assert_rejected_and_inert(
        result, before,
        reason_contains=f"endorsement policy: {bank_contract.name}.settle may be invoked by bank, not {org_type}",
    )
    # a function without a policy is open to every organisation type
    assert member.invoke(bank_contract.name, "open_to_all", {}).result == {"by": member.identity.qualified_name}
    seal_and_verify()


def test_a_contract_that_refuses_midway_leaves_no_trace(network, bank_contract):
    network.mint(ALICE, 100)
    bank = make_member("bank-1", "bank")
    before = ledger_footprint()
    result = bank.invoke(bank_contract.name, "settle_then_refuse", {"from": ALICE, "to": BOB})
    assert_rejected_and_inert(result, before, reason_contains="changed my mind")
    assert not StateEntry.objects.filter(namespace=bank_contract.name).exists()
    seal_and_verify()


def test_registering_a_second_contract_under_a_taken_name_fails(bank_contract):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Contract(bank_contract.name))
