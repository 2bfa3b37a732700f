"""The standalone verifier checks, from the export alone, the rights ``ledger_verify`` replays
from membership on chain: debit rights (the invoker's organisation owns the account that
token.transfer, token.burn, resident.fund and consumer.burn debit), the configuration policy
(an admin under the admin rule; member organisations, and a real majority of them, under the
majority rule), and the genesis membership of transactions made before the bootstrap.

Each attack is one a superuser could make: edit the tables or the world state the contracts
read, let a member act on the edit (its transaction is genuinely signed and hashed), then put
the edit back, so that only the replay of membership in force can tell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection

from ledger import services as ledger
from ledger.chaincodes.config import CONFIG
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Account, Identity, Organisation, StateEntry
from ledger.verify import trusted_orderer_keys, verify_chain
from tests.ledger.tampering import superuser
from tests.ledger_helpers import Member, Network, make_member
from tests.verifier.parity import both_after, export_and_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def net(db) -> Network:
    network = Network.create()
    network.mint("household:hh-alice", 5000)
    network.mint("household:hh-bob", 1000)
    return network


@pytest.fixture
def pinned(net) -> list[str]:
    return sorted(trusted_orderer_keys())


def assert_both_name(mutate, pinned: list[str], *words: str) -> None:
    inside, outside = both_after(mutate, pinned)
    assert not inside.ok and not outside.ok, (inside.problems[:1], outside.problems[:1])
    for report, who in ((inside, "ledger_verify"), (outside, "the standalone verifier")):
        first = report.problems[0].message
        assert all(w in first for w in words), f"{who}: {first}"


def lend_account(key: str, to: Organisation, action) -> None:
    """Give an account to ``to`` in the table only, let ``action`` spend it, give it back."""
    account = Account.objects.get(key=key, asset="k")
    owner = account.organisation_id
    Account.objects.filter(pk=account.pk).update(organisation=to)
    result = action()
    assert result.ok, result.reason
    Account.objects.filter(pk=account.pk).update(organisation_id=owner)


def edit_state(key: str, change) -> dict:
    """Edit a ``config`` world state entry as a superuser; returns the value to put back."""
    entry = StateEntry.objects.get(namespace=CONFIG, key=key)
    StateEntry.objects.filter(pk=entry.pk).update(value=change(entry.value))
    return entry.value


def put_back(key: str, value: dict) -> None:
    StateEntry.objects.filter(namespace=CONFIG, key=key).update(value=value)


# --- debit rights ---------------------------------------------------------------------------------


def test_a_clean_ledger_with_every_debit_and_a_majority_change_verifies(net, pinned, tmp_path):
    device = meter(net.bob, "meter-1")
    ledger.account_open(key="device:lamp-1", asset="k", organisation=net.utility.organisation, kind="device")
    assert net.alice.invoke("token", "transfer", {"from": "household:hh-alice", "to": "household:hh-bob",
                                                  "asset": "k", "amount": 5}).ok
    assert net.bob.invoke("token", "burn", {"from": "household:hh-bob", "asset": "k", "amount": 5}).ok
    assert net.alice.invoke("resident", "fund", {"device": "lamp-1", "amount": 10}).ok
    assert net.bob.invoke("resident", "fund", {"device": "meter-1", "amount": 10, "from": "household:hh-bob"}).ok
    assert device.invoke("consumer", "burn", {"amount": 4}).ok
    ledger.config_change("setPolicy", {"rule": "majority", "members": ["utility", "hh-alice", "hh-bob"]})
    assert net.utility.invoke(CONFIG, "propose", {"id": "p1", "function": "setOrganisationType",
                                                  "args": {"msp_id": "hh-bob", "org_type": "charity"}}).ok
    assert net.bob.invoke(CONFIG, "approve", {"id": "p1"}).ok
    assert verify_chain().ok
    report = export_and_verify(tmp_path / "export", orderer_keys=pinned)
    assert report.ok, [str(p) for p in report.problems]


def test_a_transfer_from_an_account_lent_in_the_table(net, pinned):
    assert_both_name(lambda: lend_account("household:hh-bob", net.alice.organisation, lambda: net.alice.invoke(
        "token", "transfer", {"from": "household:hh-bob", "to": "household:hh-alice", "asset": "k", "amount": 900})),
        pinned, "object rights", "token.transfer", "household:hh-bob", "owned by hh-bob", "not the invoker's hh-alice")


def test_a_burn_from_an_account_lent_in_the_table(net, pinned):
    assert_both_name(lambda: lend_account("household:hh-bob", net.alice.organisation, lambda: net.alice.invoke(
        "token", "burn", {"from": "household:hh-bob", "asset": "k", "amount": 900})),
        pinned, "object rights", "token.burn", "household:hh-bob", "owned by hh-bob")


def test_funding_a_device_from_an_account_lent_in_the_table(net, pinned):
    ledger.account_open(key="device:lamp-1", asset="k", organisation=net.utility.organisation, kind="device")
    assert_both_name(lambda: lend_account("household:hh-bob", net.alice.organisation, lambda: net.alice.invoke(
        "resident", "fund", {"device": "lamp-1", "amount": 900, "from": "household:hh-bob"})),
        pinned, "object rights", "resident.fund", "household:hh-bob", "owned by hh-bob")


def meter(owner: Member, name: str) -> Member:
    key = generate_private_key()
    identity = ledger.identity_register(organisation=owner.organisation, name=name, public_key=public_bytes(key),
                                        kind="device")
    ledger.account_open(key=f"device:{name}", asset="k", organisation=owner.organisation, kind="device")
    return Member(owner.organisation, Identity.objects.select_related("organisation").get(pk=identity.pk), key)


def test_a_meter_burning_a_device_account_lent_in_the_table(net, pinned):
    """Alice's meter lamp-2 burns the device account device:lamp-2, which bob owns on chain."""
    meter(net.bob, "lamp-2")
    assert net.bob.invoke("resident", "fund", {"device": "lamp-2", "amount": 50}).ok
    key = generate_private_key()
    alices = Member(net.alice.organisation, ledger.identity_register(
        organisation=net.alice.organisation, name="lamp-2", public_key=public_bytes(key), kind="device"), key)
    assert not alices.invoke("consumer", "burn", {"amount": 9}).ok  # not hers to burn
    assert_both_name(lambda: lend_account("device:lamp-2", net.alice.organisation,
                                          lambda: alices.invoke("consumer", "burn", {"amount": 9})),
                     pinned, "object rights", "consumer.burn", "device:lamp-2", "owned by hh-bob")


# --- the configuration policy ------------------------------------------------------------------------


def test_a_change_by_a_member_made_admin_in_the_world_state(net, pinned):
    def attack() -> None:
        was = edit_state("policy", lambda p: {**p, "admins": sorted([*p["admins"], "hh-alice/alice"])})
        result = net.alice.invoke(CONFIG, "setOrganisationType", {"msp_id": "hh-alice", "org_type": "bank"})
        assert result.ok, result.reason
        put_back("policy", was)

    assert_both_name(attack, pinned, "configuration policy", "hh-alice/alice may not make setOrganisationType")


def test_a_proposal_by_an_organisation_made_member_in_the_world_state(net, pinned):
    make_member("hh-carol", "household", "carol")
    carol = make_member("hh-dave", "household", "dave")
    ledger.config_change("setPolicy", {"rule": "majority", "members": ["utility", "hh-alice", "hh-bob"]})

    def attack() -> None:
        was = edit_state("policy", lambda p: {**p, "members": sorted([*p["members"], "hh-dave"])})
        result = carol.invoke(CONFIG, "propose", {"id": "p1", "function": "setOrganisationType",
                                                  "args": {"msp_id": "hh-dave", "org_type": "bank"}})
        assert result.ok, result.reason
        put_back("policy", was)

    assert_both_name(attack, pinned, "configuration policy", "hh-dave is not a member organisation")


def test_a_proposal_applied_with_approvals_forged_in_the_world_state(net, pinned):
    for msp in ("hh-carol", "hh-dave"):
        make_member(msp, "household")
    members = ["utility", "hh-alice", "hh-bob", "hh-carol", "hh-dave"]
    ledger.config_change("setPolicy", {"rule": "majority", "members": members})
    assert net.utility.invoke(CONFIG, "propose", {"id": "p1", "function": "setOrganisationType",
                                                  "args": {"msp_id": "hh-alice", "org_type": "bank"}}).ok

    def attack() -> None:
        edit_state("proposal/p1", lambda p: {**p, "approvals": ["hh-bob", "hh-carol", "utility"]})
        result = net.alice.invoke(CONFIG, "approve", {"id": "p1"})
        assert result.ok and result.result["applied"], result.reason
        assert Organisation.objects.get(msp_id="hh-alice").org_type == "bank"

    assert_both_name(attack, pinned, "configuration policy", "proposal p1 applied with 2 of 5", "not a majority")


# --- the genesis membership -----------------------------------------------------------------------


def old_ledger() -> None:
    """Members made before configuration transactions existed (rows only, as an older ledger has
    them), a household spending its own account, then the bootstrap adopting them."""
    from ledger.models import Asset

    utility = Organisation.objects.create(msp_id="old-utility", name="Old", org_type="utility")
    household = Organisation.objects.create(msp_id="old-home", name="Home", org_type="household")
    keys = {org.msp_id: generate_private_key() for org in (utility, household)}
    ids = {org.msp_id: Identity.objects.create(organisation=org, name="op", public_key=public_bytes(keys[org.msp_id]))
           for org in (utility, household)}
    asset = Asset.objects.create(code="k", name="Energy coin", scale=3, display_unit="kWh")
    Account.objects.create(key="issuance", asset=asset, kind="issuance", organisation=utility)
    Account.objects.create(key="household:old-home", asset=asset, kind="holder", organisation=household)
    Account.objects.create(key="household:other", asset=asset, kind="holder", organisation=utility)
    for i, (who, chaincode, function, args) in enumerate([
        ("old-utility", "token", "mint", {"to": "household:old-home", "asset": "k", "amount": 50}),
        ("old-home", "token", "transfer", {"from": "household:old-home", "to": "household:other", "asset": "k",
                                           "amount": 5}),
    ]):
        assert ledger.invoke(chaincode=chaincode, function=function, args=args, invoker=ids[who],
                             idempotency_key=f"old-{i}", signer=keys[who]).ok
    ledger.config_admin()


def test_transactions_before_the_bootstrap_are_judged_by_the_genesis_membership(db, tmp_path):
    """The household's account passes to the utility after the bootstrap: the household's earlier
    transfer from it was its own to make then (the final tables would say otherwise)."""
    old_ledger()
    ledger.account_transfer(account=Account.objects.get(key="household:old-home"),
                            organisation=Organisation.objects.get(msp_id="old-utility"))
    pinned = sorted(trusted_orderer_keys())
    assert verify_chain().ok
    report = export_and_verify(tmp_path / "export", orderer_keys=pinned)
    assert report.ok, [str(p) for p in report.problems]
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_bytes())
    assert ["account/k/household:old-home", {"kind": "holder", "organisation": "old-home"}] in \
        manifest["genesis"]["members"]


def test_a_genesis_in_the_manifest_that_is_not_the_bootstrap_is_refused(db, tmp_path):
    import verifier

    old_ledger()
    pinned = sorted(trusted_orderer_keys())
    directory = tmp_path / "export"
    assert export_and_verify(directory, orderer_keys=pinned).ok
    manifest = json.loads((directory / "manifest.json").read_bytes())
    members = manifest["genesis"]["members"]
    i = members.index(["org/old-home", {"name": "Home", "org_type": "household"}])
    members[i] = ["org/old-home", {"name": "Home", "org_type": "utility"}]  # may mint before the bootstrap
    Path(directory / "manifest.json").write_text(json.dumps(manifest))
    report = verifier.verify_export(directory, orderer_keys=pinned, workers=1)
    assert not report.ok
    assert "differ from the genesis membership" in report.problems[0].message, report.problems[0]


def test_a_transaction_before_the_bootstrap_against_the_genesis_membership(db):
    """Before the bootstrap, the household may not mint by the genesis membership: a mint made
    while its type was changed in the table is named by both verifiers."""
    from ledger.models import Asset

    home = Organisation.objects.create(msp_id="old-home", name="Home", org_type="household")
    utility = Organisation.objects.create(msp_id="old-utility", name="Old", org_type="utility")
    key = generate_private_key()
    op = Identity.objects.create(organisation=home, name="op", public_key=public_bytes(key))
    asset = Asset.objects.create(code="k", name="Energy coin", scale=3, display_unit="kWh")
    Account.objects.create(key="issuance", asset=asset, kind="issuance", organisation=utility)
    Account.objects.create(key="household:old-home", asset=asset, kind="holder", organisation=home)
    with superuser(), connection.cursor() as cur:
        cur.execute("UPDATE ledger_organisation SET org_type = 'utility' WHERE id = %s", [home.pk])
    op = Identity.objects.select_related("organisation").get(pk=op.pk)
    assert ledger.invoke(chaincode="token", function="mint", args={"to": "household:old-home", "asset": "k",
                                                                   "amount": 5}, invoker=op, idempotency_key="m",
                         signer=key).ok
    with superuser(), connection.cursor() as cur:
        cur.execute("UPDATE ledger_organisation SET org_type = 'household' WHERE id = %s", [home.pk])
    ledger.config_admin()  # the bootstrap lists old-home as a household
    pinned = sorted(trusted_orderer_keys())
    inside, outside = both_after(lambda: None, pinned)
    for report in (inside, outside):
        assert not report.ok and "endorsement policy" in report.problems[0].message, report.problems[:1]


def test_a_key_rotated_after_the_bootstrap_leaves_earlier_transactions_under_the_genesis_key(db, tmp_path):
    """A member older than on-chain membership signed with the key the bootstrap lists for it;
    after it rotates its key, the export and the API still state that key for what it did
    before, so both verifiers accept the ledger."""
    from ledger.models import Transaction
    from ledger.selectors import transaction_document

    old_ledger()
    home = Identity.objects.select_related("organisation").get(organisation__msp_id="old-home", name="op")
    genesis_key = bytes(home.public_key)
    ledger.identity_rotate_key(identity=home, public_key=public_bytes(generate_private_key()))
    earlier = Transaction.objects.get(idempotency_key="old-1")
    assert transaction_document(earlier)["invoker_public_key"] == genesis_key.hex()
    bootstrap = Transaction.objects.get(chaincode=CONFIG, function="bootstrap")
    assert transaction_document(bootstrap)["invoker_public_key"] == bootstrap.args["public_key"]
    assert verify_chain().ok
    report = export_and_verify(tmp_path / "export", orderer_keys=sorted(trusted_orderer_keys()))
    assert report.ok, [str(p) for p in report.problems]
