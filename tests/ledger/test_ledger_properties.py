"""Property test: random sequences of token operations, valid and invalid, against a model.

Each hypothesis example builds a fresh network inside ``transaction.atomic()`` and rolls it
back at the end, because pytest-django's ``db`` fixture is not reset between examples.
After every operation the ledger's answer and balances must match a plain-Python model;
after every sequence the double-entry invariants must hold and the sealed chain must verify.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger import services as ledger
from ledger.canonical import MAX_SAFE_INTEGER
from ledger.crypto import generate_private_key
from ledger.documents import SIGNATURE_REJECTION
from ledger.models import Account, Posting, StateEntry, StateWrite, Transaction, TxStatus
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain
from tests.ledger_helpers import Member, make_member

ISSUANCE = "issuance"
MEMBERS = ("utility", "alice", "bob", "solar")
# account key -> (owning member, assets it is opened in)
ACCOUNTS = {
    "household:hh-alice": ("alice", ("k", "INR")),
    "household:hh-bob": ("bob", ("k",)),
    "producer:solar": ("solar", ("k",)),
    "utility:ops": ("utility", ("k", "INR")),
}
KEYS = (*ACCOUNTS, ISSUANCE, "household:ghost")
ASSETS = ("k", "INR", "XYZ")  # XYZ does not exist
NOTE_KEYS = ("n1", "n2", "n3")

# --- operations -------------------------------------------------------------------------------

amounts = st.one_of(
    st.integers(1, 2500),
    st.integers(1, 2500),
    st.sampled_from([0, -1, -100, "100", True, None, 1.5, MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1]),
)
members = st.sampled_from(MEMBERS)
keys = st.sampled_from(KEYS)
assets = st.sampled_from(ASSETS)
idempotency = st.sampled_from(["fresh", "fresh", "fresh", "none"])
forgeries = st.sampled_from([False] * 12 + [True])  # signed with a key that is not the invoker's


@dataclass(frozen=True)
class Op:
    who: str
    function: str
    args: dict[str, Any]
    key_mode: str = "fresh"  # a new idempotency key, or "none"
    forged: bool = False


@dataclass(frozen=True)
class Replay:
    """Repeat an earlier keyed invocation's key, as ``who`` (None: the original invoker)."""

    index: int
    same_body: bool
    who: str | None = None


def _op(function: str, args: st.SearchStrategy, who: st.SearchStrategy = members) -> st.SearchStrategy[Op]:
    return st.builds(Op, who=who, function=st.just(function), args=args, key_mode=idempotency, forged=forgeries)


# Plausible operations: the right invoker, an existing account in its asset, a modest amount.
# Most of them succeed, so balances build up and later overdrafts are real races for value.
HOLDINGS = [(key, asset) for key, (_, held) in ACCOUNTS.items() for asset in held]
holdings = st.sampled_from(HOLDINGS)


@st.composite
def plausible_mint(draw) -> Op:
    key, asset = draw(holdings)
    return draw(
        _op("mint", st.just({"to": key, "asset": asset, "amount": draw(st.integers(1, 3000))}), who=st.just("utility"))
    )


@st.composite
def plausible_transfer(draw) -> Op:
    source, asset = draw(holdings)
    dest = draw(st.sampled_from([k for k, a in HOLDINGS if a == asset and k != source]))
    args = {"from": source, "to": dest, "asset": asset, "amount": draw(st.integers(1, 2500))}
    return draw(_op("transfer", st.just(args), who=st.just(ACCOUNTS[source][0])))


@st.composite
def plausible_burn(draw) -> Op:
    source, asset = draw(holdings)
    args = {"from": source, "asset": asset, "amount": draw(st.integers(1, 800))}
    return draw(_op("burn", st.just(args), who=st.just(ACCOUNTS[source][0])))


notes = _op(
    "note",
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(NOTE_KEYS),
            "text": st.one_of(
                st.text(max_size=20),
                st.text(max_size=20),
                st.none(),
                st.just("x" * 1001),
                st.just("a\x00b"),
                st.just(7),
            ),
        }
    ),
)
anything = st.one_of(
    _op("mint", st.fixed_dictionaries({"to": keys, "asset": assets, "amount": amounts})),
    _op("transfer", st.fixed_dictionaries({"from": keys, "to": keys, "asset": assets, "amount": amounts})),
    _op("burn", st.fixed_dictionaries({"from": keys, "asset": assets, "amount": amounts})),
)
replays = st.builds(
    Replay, index=st.integers(0, 50), same_body=st.booleans(), who=st.one_of(st.none(), st.none(), members)
)
operations = st.one_of(
    plausible_transfer(),
    plausible_transfer(),
    plausible_burn(),
    plausible_mint(),
    notes,
    anything,
    anything,
    replays,
    replays,
)


# --- the model --------------------------------------------------------------------------------


class Refused(Exception):
    """The model expects the contract to reject with a reason containing ``words``."""

    def __init__(self, *words: str):
        super().__init__(words)
        self.words = words


@dataclass
class Model:
    balances: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    notes: dict[str, tuple[dict, int, bool]] = field(default_factory=dict)  # key -> (value, version, deleted)
    org_type: dict[str, str] = field(default_factory=dict)
    transactions: int = 0

    def exists(self, key: str, asset: str) -> bool:
        if key == ISSUANCE:
            return asset in ("k", "INR")
        return key in ACCOUNTS and asset in ACCOUNTS[key][1]

    def expect(self, op: Op, qualified_name: str) -> tuple[dict[tuple[str, str], int], tuple | None]:
        """Balance deltas and note write of an accepted op; raises Refused for a rejected one."""
        if op.forged:
            raise Refused(SIGNATURE_REJECTION)
        a = op.args
        if op.function == "note":
            return {}, self._note(a, qualified_name)
        if op.function == "mint" and self.org_type[op.who] != "utility":
            raise Refused("endorsement policy", "token.mint", self.org_type[op.who])
        amount = _checked_amount(a["amount"])
        asset = a["asset"]
        if op.function == "mint":
            source, dest, owned = ISSUANCE, a["to"], None
            if dest == ISSUANCE:
                raise Refused("same account")
        elif op.function == "transfer":
            source, dest, owned = a["from"], a["to"], a["from"]
            if ISSUANCE in (source, dest):
                raise Refused("cannot touch the issuance account")
            if source == dest:
                raise Refused("same account")
        else:  # burn
            source, dest, owned = a["from"], ISSUANCE, a["from"]
            if source == ISSUANCE:
                raise Refused("same account")
        for key in (source, dest):
            if not self.exists(key, asset):
                raise Refused(f"no {asset} account {key!r}")
        if owned is not None and ACCOUNTS[owned][0] != op.who:
            raise Refused(f"{asset} account {owned!r} does not belong to the invoker's organisation")
        if source != ISSUANCE and self.balances[(source, asset)] < amount:
            raise Refused("insufficient funds", repr(source))
        return {(source, asset): -amount, (dest, asset): amount}, None

    def _note(self, a: dict, qualified_name: str) -> tuple:
        key, text = a["key"], a["text"]
        current = self.notes.get(key)
        previous = None if current is None or current[2] else current[0]
        version = (current[1] if current else 0) + 1
        if text is None:
            if previous is None:
                raise Refused(f"no note {key!r} to delete")
            return key, None, version, True, previous
        if not isinstance(text, str) or len(text) > 1000:
            raise Refused("argument 'text' must be a string")
        return key, {"text": text, "by": qualified_name}, version, False, previous

    def apply(self, deltas: dict[tuple[str, str], int], note: tuple | None) -> None:
        for account, delta in deltas.items():
            self.balances[account] += delta
        if note is not None:
            key, value, version, deleted, _ = note
            self.notes[key] = (value, version, deleted)
        self.transactions += 1


def _checked_amount(value: Any) -> int:
    if value is None:
        raise Refused("argument 'amount' is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused("argument 'amount' must be an integer")
    if value <= 0:
        raise Refused("argument 'amount' must be positive")
    return value


def _malformed(args: dict) -> str | None:
    """What ``invoke`` refuses outright (raising, recording nothing), as a regex of its message."""
    for value in args.values():
        if isinstance(value, float):
            return "not ledger JSON"
        if isinstance(value, int) and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return "not ledger JSON"
        if isinstance(value, str) and "\x00" in value:
            return "NUL"  # PostgreSQL cannot store NUL in JSON text
    return None


# --- the world --------------------------------------------------------------------------------


def _build_network() -> dict[str, Member]:
    people = {
        "utility": make_member("utility", "utility"),
        "alice": make_member("hh-alice", "household", "alice"),
        "bob": make_member("hh-bob", "household", "bob"),
        "solar": make_member("solar", "producer"),
    }
    issuer = people["utility"].organisation
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=issuer)
    ledger.asset_create(code="INR", name="Indian rupee credit", scale=2, display_unit="INR", issuer=issuer)
    for key, (owner, account_assets) in ACCOUNTS.items():
        for asset in account_assets:
            ledger.account_open(key=key, asset=asset, organisation=people[owner].organisation)
    return people


@dataclass
class Keyed:
    """A recorded invocation that claimed its idempotency key."""

    who: str
    key: str
    function: str
    args: dict
    tx_hash: str
    status: str
    reason: str


def _invoke(member: Member, function: str, args: dict, key: str | None, forged: bool = False):
    signer = generate_private_key() if forged else member.key
    return ledger.invoke(
        chaincode="token", function=function, args=args, invoker=member.identity, idempotency_key=key, signer=signer
    )


def _db_balances() -> dict[tuple[str, str], int]:
    return {(a.key, a.asset_id): a.balance for a in Account.objects.all()}


def _model_balances(model: Model) -> dict[tuple[str, str], int]:
    expected = {(key, asset): 0 for key, (_, account_assets) in ACCOUNTS.items() for asset in account_assets}
    expected |= {(ISSUANCE, "k"): 0, (ISSUANCE, "INR"): 0}
    for account, balance in model.balances.items():
        expected[account] = balance
    return expected


def _run_op(op: Op, i: int, people: dict[str, Member], model: Model, keyed: list[Keyed]) -> None:
    member = people[op.who]
    key = f"op-{i}" if op.key_mode == "fresh" else None
    malformed = _malformed(op.args)
    if malformed:
        with pytest.raises(ledger.LedgerError, match=malformed):
            _invoke(member, op.function, op.args, key, op.forged)
        return
    try:
        deltas, note = model.expect(op, member.identity.qualified_name)
        refused = None
    except Refused as exc:
        refused = exc
    result = _invoke(member, op.function, op.args, key, op.forged)
    assert not result.replayed
    outcome = re.sub(r"'[^']*'", "…", refused.words[0])[:40] if refused else "valid"
    event(f"{op.function}: {outcome}")  # see --hypothesis-show-statistics
    if refused is not None:
        assert result.status == TxStatus.REJECTED, (op, result)
        for word in refused.words:
            assert word in result.reason, (op, result.reason, refused.words)
        model.apply({}, None)
    else:
        assert result.status == TxStatus.VALID, (op, result.reason)
        if note is not None:
            assert result.result == {"key": op.args["key"], "previous": note[4]}
        model.apply(deltas, note)
    if key is not None and not op.forged:
        keyed.append(Keyed(op.who, key, op.function, op.args, result.tx_hash, result.status, result.reason))
    tx = Transaction.objects.get(pk=result.tx_id)
    assert tx.tx_hash == result.tx_hash
    assert tx.idempotency_key == (None if op.forged else key)


def _run_replay(op: Replay, people: dict[str, Member], model: Model, keyed: list[Keyed]) -> None:
    if not keyed:
        return
    original = keyed[op.index % len(keyed)]
    who = op.who or original.who
    args = dict(original.args) if op.same_body else {**original.args, "memo": "changed"}
    if who != original.who:
        # Idempotency keys are per invoker: another member's use of the key is a fresh invocation.
        _run_op(Op(who, original.function, args, key_mode="none"), -1, people, model, [])
        return
    event(f"replay: {'same body' if op.same_body else 'different body'}")
    before = Transaction.objects.count()
    if op.same_body:
        result = _invoke(people[who], original.function, args, original.key)
        assert result.replayed
        assert (result.tx_hash, result.status, result.reason) == (original.tx_hash, original.status, original.reason)
    else:
        with pytest.raises(ledger.IdempotencyConflict, match="different body"):
            _invoke(people[who], original.function, args, original.key)
    assert Transaction.objects.count() == before


def _check_invariants(model: Model) -> None:
    accounts = list(Account.objects.all())
    per_asset: dict[str, int] = defaultdict(int)
    for account in accounts:
        per_asset[account.asset_id] += account.balance
        if account.kind != "issuance":
            assert account.balance >= 0, account
        posted = Posting.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] or 0
        assert account.balance == posted, (account, posted)
    assert all(total == 0 for total in per_asset.values()), per_asset

    sums: dict[tuple[int, str], int] = defaultdict(int)
    for tx_id, asset, amount in Posting.objects.values_list("transaction_id", "asset_id", "amount"):
        sums[(tx_id, asset)] += amount
    assert all(total == 0 for total in sums.values()), sums
    rejected = Transaction.objects.filter(status=TxStatus.REJECTED)
    assert not Posting.objects.filter(transaction__in=rejected).exists()
    assert not StateWrite.objects.filter(transaction__in=rejected).exists()

    stored = {e.key: (e.value, e.version, e.is_deleted) for e in StateEntry.objects.filter(namespace="token")}
    assert stored == model.notes
    assert Transaction.objects.exclude(chaincode="config").count() == model.transactions


def _seal_and_verify() -> None:
    assert lease_acquire(holder="p")
    while seal_next_block(holder="p", force=True, max_tx=7) is not None:
        pass
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
    assert report.transactions == Transaction.objects.count()
    assert report.unsealed == 0
    assert not Transaction.objects.filter(block__isnull=True).exists()


@pytest.mark.django_db
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(ops=st.lists(operations, min_size=3, max_size=30))
def test_random_token_operations_keep_the_ledger_consistent(ops):
    with transaction.atomic():
        people = _build_network()
        model = Model(org_type={name: m.organisation.org_type for name, m in people.items()})
        keyed: list[Keyed] = []
        # Start with money in every account so that transfers and burns mostly go through and
        # overdrafts happen at the edge of a real balance.
        prelude = [Op("utility", "mint", {"to": key, "asset": asset, "amount": 2000}) for key, asset in HOLDINGS]
        for i, op in enumerate([*prelude, *ops], start=-len(prelude)):
            if isinstance(op, Replay):
                _run_replay(op, people, model, keyed)
            else:
                _run_op(op, i, people, model, keyed)
            assert _db_balances() == _model_balances(model), op
        _check_invariants(model)
        _seal_and_verify()
        transaction.set_rollback(True)
