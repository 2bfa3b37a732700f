"""``seed_demo`` builds the demo through services and chaincode, a rerun changes nothing, and a
refusal leaves nothing of the demo behind."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import CustodialKey, Membership, Role
from charity.models import Campaign, CampaignUpdate, Contribution, Disbursement, Donation, GroupFunding, MatchPledge
from demo import charity, readings
from ledger.models import Account, Asset, Block, Identity, Organisation, Posting, StateEntry, Transaction, TxStatus
from ledger.sealing import lease_acquire, lease_release, seal_next_block
from ledger.selectors import device_windows
from ledger.verify import verify_chain
from meters.models import Device
from payments.models import BankSecret, Payment, ProcessedEvent, ReconciliationLine, ReconciliationRun, WebhookEvent

pytestmark = pytest.mark.django_db

# The economy's six transactions, demo.charity's twelve (the campaign opened, the sponsor's
# pledge, two coin gifts, the bank's donation, the disbursement, two group fundings opened and
# four contributions), then demo.readings: two purchases, two fundings and a week of readings
# from three meters, then demo.billing's dues terms and station.
CHARITY_TXS = 1 + 1 + 2 + 1 + 1 + 2 + 4
SEEDED_TXS = 6 + CHARITY_TXS + 2 + 2 + 3 * readings.READINGS_PER_METER + 2


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        "users": get_user_model().objects.count(),
        "organisations": Organisation.objects.count(),
        "identities": Identity.objects.count(),
        "memberships": Membership.objects.count(),
        "keys": CustodialKey.objects.count(),
        "assets": Asset.objects.count(),
        "accounts": Account.objects.count(),
        "transactions": Transaction.objects.count(),
        "postings": Posting.objects.count(),
        "state": list(StateEntry.objects.values_list("namespace", "key", "version").order_by("namespace", "key")),
        "devices": Device.objects.count(),
        "bank secrets": BankSecret.objects.count(),
        "deliveries": WebhookEvent.objects.count(),
        "reconciliation": list(ReconciliationLine.objects.order_by("id").values_list("run_id", "outcome", "tx_hash")),
        "claimed events": ProcessedEvent.objects.count(),
        "balances": dict(Account.objects.values_list("key", "balance").order_by("key", "asset_id")),
        "charity": [model.objects.count() for model in (Campaign, MatchPledge, Donation, Disbursement, CampaignUpdate,
                                                        GroupFunding, Contribution)],
    }


def balance(key: str, asset: str = "k") -> int:
    return Account.objects.get(key=key, asset_id=asset).balance


def test_seed_creates_the_demo_network():
    out = seed()
    assert "Seeded the demo" in out

    types = dict(Organisation.objects.exclude(org_type="operator").values_list("msp_id", "org_type"))
    assert types == {
        "gridco-utility": "utility",
        "sunfarm": "producer",
        "demobank": "bank",
        "warmhomes": "charity",
        "audit": "auditor",
        "gridop": "grid",
        "discom": "distributor",
        "hh-alice": "household",
        "hh-bob": "household",
    }
    k, inr = Asset.objects.get(code="k"), Asset.objects.get(code="INR")
    assert (k.scale, k.display_unit, inr.scale) == (3, "kWh", 2)
    assert Account.objects.get(key="issuance", asset=k).organisation.msp_id == "gridco-utility"

    users = get_user_model().objects
    for username in ("utility", "producer", "auditor", "charity", "grid", "distributor", "alice", "bob", "carol"):
        assert users.get(username=username).check_password("gridcoin-demo"), username
    expected = {
        ("utility", "gridco-utility", Role.OWNER),
        ("producer", "sunfarm", Role.OWNER),
        ("auditor", "audit", Role.OWNER),
        ("charity", "warmhomes", Role.OWNER),
        ("grid", "gridop", Role.OWNER),
        ("distributor", "discom", Role.OWNER),
        ("alice", "hh-alice", Role.OWNER),
        ("bob", "hh-bob", Role.OWNER),
        ("carol", "hh-alice", Role.MEMBER),
        # the witnesses' readers of the ledger API (demo.witnesses)
        ("witness-demobank", "demobank", Role.MEMBER),
        ("witness-warmhomes", "warmhomes", Role.MEMBER),
        ("witness-audit", "audit", Role.MEMBER),
    }
    got = set(Membership.objects.values_list("user__username", "organisation__msp_id", "role"))
    assert got == expected
    witnesses = Identity.objects.filter(name="witness", kind="service")
    assert sorted(w.organisation.msp_id for w in witnesses) == ["audit", "demobank", "warmhomes"]
    # Members and the six service identities (the utility's operator, the bank's webhook
    # receiver, the charity's campaign automation, the grid's, the distributor's and the
    # utility's billing) hold custodial keys; the nine demo meters hold their own.
    assert CustodialKey.objects.count() == len(expected) + 6
    assert Identity.objects.filter(kind="device").count() == 9

    # A week of the meters' readings (demo.readings): each local hour of the day 7 times.
    solar = readings.DAYS * sum(readings.solar_watts(h) for h in range(24))
    drawn = {m: readings.DAYS * sum(readings.household_watts(h, m) for h in range(24)) for m in readings.HOUSEHOLDS}
    assert balance("producer:sunfarm") == 600_000 + solar  # 1,000 kWh generated, 400 kWh sold wholesale
    utility = Account.objects.filter(key__startswith="utility:gridco-utility:", asset_id="k")
    # Sold: 75 kWh to residents, 50 kWh for the club's donation; 10 kWh pledged to match.
    assert utility.count() == 16 and sum(a.balance for a in utility) == 385_000 - 60_000 - 50_000 - 10_000
    # ₹40.00 at ₹8.00/kWh, 3.5 kWh given to the campaign and the group fundings, then ₹240 spent on her meter
    assert balance("household:hh-alice") == 5_000 - 2_000 - 1_000 - 500
    # ₹80.00 on the statement (no webhook), 4.5 kWh given, and the same ₹240 on his meter
    assert balance("household:hh-bob") == 10_000 - 1_000 - 2_000 - 1_500
    # The pool (3 kWh of coins, 50 kWh bought by the club, 10 kWh matched) went out by weight 1:2.
    shares = {"HM-ALICE": 21_000, "HM-BOB": 42_000}
    windows = device_windows(list(drawn))
    for meter, wh in drawn.items():
        # funded a week's use, and some left; the last three days' readings drew on the share first
        assert balance(f"device:{meter}") == 30_000 + shares[meter] - wh > 0
        (window,) = windows[meter]
        assert window["campaign"] == charity.CAMPAIGN and 0 < window["remaining"] < shares[meter]
    assert balance("pool:heat-wave-fort-kochi") == 0 and balance("match:heat-wave-fort-kochi") == 0
    assert balance("escrow:saturday-match") == 3_000 and balance("device:ST-0001") == 0  # collecting
    assert balance("escrow:friday-night-market") == 0 and balance("device:MS-0001") == 2_000  # funded
    assert balance("issuance") == -1_000_000 - solar + sum(drawn.values())
    # Every coin moved through the economy's chaincodes: the producer's meter minted, the bank
    # reported the wholesale and retail payments (Bob's through its statement), the utility's
    # operator set the prices, residents funded their meters, whose readings burned.
    txs = Transaction.objects.exclude(chaincode="config")  # the membership's are below
    assert txs.count() == SEEDED_TXS and all(t.status == TxStatus.VALID for t in txs)
    assert {t.invoker.qualified_name for t in txs} == {
        "sunfarm/PM-0001", "gridco-utility/operator", "demobank/webhooks", "hh-alice/HM-ALICE", "hh-bob/HM-BOB",
        "hh-alice/alice", "hh-bob/bob", "warmhomes/charity", "warmhomes/campaigns", "gridco-utility/utility", "discom/billing",
        "gridco-utility/billing"}
    assert {(t.chaincode, t.function) for t in txs} == {
        ("generator", "mint"), ("pricing", "set"), ("wholesale-seller", "sell"), ("retail-seller", "sell"),
        ("resident", "fund"), ("consumer", "burn"),
        *(("charity-pool", f) for f in ("open", "pledge", "give", "donate", "disburse", "group_open", "contribute")),
        ("energy-billing", "configure"), ("energy-billing", "registerStation")}


def test_seed_twice_changes_nothing():
    seed()
    first = snapshot()
    out = seed()
    assert "already exists" in out and "nothing changed" in out
    assert snapshot() == first


def test_seed_then_seal_verifies_and_a_rerun_after_sealing_still_changes_nothing():
    seed()
    assert lease_acquire(holder="t")
    sealed = 0
    while (block := seal_next_block(holder="t", force=True)) is not None:
        sealed += block.tx_count
    config = Transaction.objects.filter(chaincode="config", status=TxStatus.VALID).count()
    assert sealed == SEEDED_TXS + config == Transaction.objects.count()
    blocks = Block.objects.count()
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
    assert (report.blocks, report.transactions, report.unsealed) == (blocks, SEEDED_TXS + config, 0)

    before = snapshot()
    assert "already exists" in seed()
    assert snapshot() == before
    assert seal_next_block(holder="t", force=True) is None  # nothing new to seal
    assert Block.objects.count() == blocks
    lease_release(holder="t")
    assert verify_chain().ok


def test_seed_completes_a_partial_demo():
    """Whatever already exists (here the utility and both assets) is reused, the rest is made."""
    from ledger import services as ledger

    utility = ledger.organisation_create(msp_id="gridco-utility", name="GridCo", org_type="utility")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    ledger.asset_create(code="INR", name="Rupee", scale=2, display_unit="INR", issuer=utility)
    out = seed()
    assert "organisation gridco-utility" not in out and "asset k" not in out
    assert "organisation sunfarm" in out and "user carol" in out and "retail-seller.sell" in out
    assert balance("household:hh-alice") == 5_000 - 2_000 - 1_000 - 500  # her gifts to the campaign and the group fundings


def test_seed_refuses_a_demo_organisation_of_the_wrong_type():
    from ledger import services as ledger

    ledger.organisation_create(msp_id="sunfarm", name="Sun Farm", org_type="household")
    with pytest.raises(CommandError, match="sunfarm exists with type household"):
        seed()


def test_seed_refuses_to_promote_a_user_it_did_not_create():
    """Someone who signed up as 'utility' before the seed must not receive the utility's keys."""
    from accounts.services import user_signup
    from ledger import services as ledger

    utility = ledger.organisation_create(msp_id="other-utility", name="Other", org_type="utility")
    ledger.asset_create(code="k", name="Energy", scale=3, display_unit="kWh", issuer=utility)
    user_signup(username="utility", password="not-the-demo-1")
    before = snapshot()
    with pytest.raises(CommandError, match="refusing to grant demo roles"):
        seed()
    assert snapshot() == before  # atomic: nothing of the demo was left behind
    assert not Membership.objects.filter(user__username="utility", organisation__msp_id="gridco-utility").exists()


def test_reusing_an_idempotency_key_replays_the_first_result():
    """The meter's seeded generator.mint, sent again with its key, is replayed, not re-minted."""
    seed()
    from ledger import services as ledger
    from meters.models import Device
    from meters.services import simulated_signer

    meter = Device.objects.get(public_id="PM-0001")
    result = ledger.invoke(chaincode="generator", function="mint", args={"amount": 1_000_000},
                           invoker=meter.identity, idempotency_key="seed-demo-generate",
                           signer=simulated_signer(meter))
    assert result.replayed and result.ok
    assert balance("producer:sunfarm") == 600_000 + readings.DAYS * sum(readings.solar_watts(h) for h in range(24))


def test_seed_refuses_when_a_demo_idempotency_key_was_used_for_another_body(monkeypatch):
    from demo import energy

    seed()
    before = snapshot()
    monkeypatch.setattr(energy, "GENERATED_WH", energy.GENERATED_WH + 1)
    with pytest.raises(CommandError, match="seed-demo-generate was already used for something else"):
        seed()
    assert snapshot() == before


def test_seed_refuses_production_and_changes_nothing(settings):
    """The demo's users share a published password; production never gets them."""
    settings.PRODUCTION = True
    before = snapshot()
    with pytest.raises(CommandError, match="refusing to seed the demo in production"):
        seed()
    assert snapshot() == before
    assert not get_user_model().objects.filter(username="utility").exists()


def test_the_demo_statement_is_reconciled_and_credits_the_payment_no_webhook_reported(settings, tmp_path):
    settings.GRIDCOIN_STATEMENTS_DIR = tmp_path / "statements"
    seed()
    run = ReconciliationRun.objects.get()
    assert (run.source, run.scope, run.state) == ("bank", "demobank", "done")
    outcomes = dict(run.lines.values_list("reference", "outcome"))
    assert outcomes == {"seed-demo-wholesale": "matched", "seed-demo-retail-alice": "matched",
                        "seed-demo-retail-bob": "missing"}
    bob = Payment.objects.get(payment_id="seed-demo-retail-bob")
    assert bob.state == "credited" and bob.credit_tx_hash == run.lines.get(reference=bob.payment_id).tx_hash
    assert Transaction.objects.get(tx_hash=bob.credit_tx_hash).chaincode == "retail-seller"
    assert balance("household:hh-bob") > 0
