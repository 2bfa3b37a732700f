"""Membership on chain: configuration transactions, their policy, key rotation and revocation,
and ``ledger_verify`` replaying them and naming every superuser edit of the membership tables."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from ledger import services as ledger
from ledger.chaincodes.config import CONFIG
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Account, Identity, IdentityKind, Organisation, StateEntry, Transaction
from ledger.verify import verify_chain
from tests.ledger.tampering import superuser
from tests.ledger_helpers import Network, make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def net() -> Network:
    network = Network.create()
    network.mint("household:hh-alice", 5000)
    network.mint("household:hh-bob", 1000)
    return network


def messages(report) -> list[str]:
    return [p.message for p in report.problems]


def verify_after(mutate):
    """Apply ``mutate`` as a superuser in a savepoint, verify reporting every problem, roll back."""
    with transaction.atomic():
        with superuser():
            mutate()
        report = verify_chain(first_only=False)
        transaction.set_rollback(True)
    return report


def assert_named(mutate, *words: str) -> list[str]:
    report = verify_after(mutate)
    found = messages(report)
    assert any(all(w in m for w in words) for m in found), found
    return found


def sql(statement: str, params: list | None = None):
    def run() -> None:
        with connection.cursor() as cur:
            cur.execute(statement, params or [])
            assert cur.rowcount >= 1, statement

    return run


def transfer(member, source: str, dest: str, amount: int):
    return member.invoke("token", "transfer", {"from": source, "to": dest, "asset": "k", "amount": amount})


# --- configuration transactions -----------------------------------------------------------------

def test_the_first_configuration_transaction_is_a_self_signed_bootstrap(net):
    config = list(Transaction.objects.filter(chaincode=CONFIG).order_by("id").select_related("invoker__organisation"))
    first = config[0]
    assert first.function == "bootstrap" and first.status == "valid"
    assert first.invoker.qualified_name == f"{first.args['msp_id']}/{first.args['admin']}"
    assert bytes(first.invoker.public_key).hex() == first.args["public_key"]
    assert first.invoker.organisation.org_type == "operator"
    assert Transaction.objects.order_by("id").first() == first
    assert {t.function for t in config[1:]} == {"createOrganisation", "registerIdentity", "createAsset",
                                                "openAccount"}
    assert all(t.invoker_id == first.invoker_id and t.status == "valid" for t in config)
    policy = StateEntry.objects.get(namespace=CONFIG, key="policy").value
    assert policy == {"rule": "admin", "admins": [first.invoker.qualified_name], "members": []}
    # The tables are the view of that history: each row matches its config state.
    assert StateEntry.objects.get(namespace=CONFIG, key="org/hh-alice").value == {"name": "Hh-Alice",
                                                                                   "org_type": "household"}
    assert StateEntry.objects.get(namespace=CONFIG, key="account/k/household:hh-bob").value == {
        "kind": "holder", "organisation": "hh-bob"}
    assert verify_chain().ok


def test_a_second_bootstrap_is_refused(net):
    admin = ledger.config_admin()
    result = ledger.invoke(chaincode=CONFIG, function="bootstrap", args={
        "msp_id": admin.organisation.msp_id, "name": "again", "org_type": "operator", "admin": admin.name,
        "public_key": bytes(admin.public_key).hex()}, invoker=admin, idempotency_key=None,
        signer=ledger.config_admin_key())
    assert not result.ok and "already bootstrapped" in result.reason


def test_a_member_that_is_not_the_admin_cannot_change_membership(net):
    for member in (net.alice, net.utility):
        result = member.invoke(CONFIG, "setOrganisationType", {"msp_id": "hh-alice", "org_type": "bank"})
        assert not result.ok and "is not a configuration admin" in result.reason
        result = member.invoke(CONFIG, "openAccount", {"key": "household:hh-alice", "asset": "INR",
                                                       "kind": "holder", "organisation": member.organisation.msp_id})
        assert not result.ok
    assert Organisation.objects.get(msp_id="hh-alice").org_type == "household"
    assert verify_chain().ok


def test_duplicates_raise_an_integrity_error_as_the_unique_constraint_did(net):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError, match="already exists"):
        ledger.organisation_create(msp_id="hh-alice", name="again", org_type="household")
    with pytest.raises(ledger.LedgerError, match="belongs to another organisation"):
        ledger.account_open(key="household:hh-alice", asset="k", organisation=net.bob.organisation)


def test_type_change_and_account_transfer_through_the_ledger_verify(net):
    ledger.organisation_set_type(organisation=net.bob.organisation, org_type="bank")
    account = Account.objects.get(key="household:hh-alice", asset="k")
    ledger.account_transfer(account=account, organisation=net.bob.organisation)
    assert Organisation.objects.get(msp_id="hh-bob").org_type == "bank"
    assert Account.objects.get(pk=account.pk).organisation == net.bob.organisation
    # The new owner spends it; the old one no longer can.
    assert transfer(net.bob, "household:hh-alice", "household:hh-bob", 10).ok
    assert not transfer(net.alice, "household:hh-alice", "household:hh-bob", 10).ok
    report = verify_chain()
    assert report.ok, messages(report)


# --- keys ------------------------------------------------------------------------------------------

NEUTRAL_POINT = bytes([1]) + bytes(31)  # small order: under it, one signature verifies every message


def test_a_key_of_small_order_is_never_registered(net):
    from ledger.crypto import usable_public_key

    last = Transaction.objects.order_by("-id").values_list("id", flat=True).first()
    order_8 = (2707385501144840649318225287225658788936804267575313519463743609750303402022).to_bytes(32, "little")
    for key in (NEUTRAL_POINT, order_8, bytes(32)):
        assert not usable_public_key(key)
        with pytest.raises(ledger.LedgerError, match="not a usable Ed25519 key"):
            ledger.config_change("registerIdentity", {"identity": "utility/meter-x", "kind": "device",
                                                      "public_key": key.hex()})
        with pytest.raises(ledger.LedgerError, match="not a usable Ed25519 key"):
            ledger.identity_rotate_key(identity=net.alice.identity, public_key=key)
    assert usable_public_key(public_bytes(generate_private_key()))
    assert not Transaction.objects.filter(id__gt=last, status="valid").exists()  # refused, recorded as such
    assert not Identity.objects.filter(name="meter-x").exists()
    assert bytes(Identity.objects.get(pk=net.alice.identity.pk).public_key) == bytes(net.alice.identity.public_key)


def test_key_rotation_old_transactions_still_verify_and_the_old_key_is_refused(net):
    assert transfer(net.alice, "household:hh-alice", "household:hh-bob", 1).ok
    new_key = generate_private_key()
    identity = ledger.identity_rotate_key(identity=net.alice.identity, public_key=public_bytes(new_key))
    assert bytes(identity.public_key) == public_bytes(new_key)
    net.alice.identity = Identity.objects.select_related("organisation").get(pk=identity.pk)
    old = transfer(net.alice, "household:hh-alice", "household:hh-bob", 2)  # signed with the old key
    assert not old.ok and "invalid signature" in old.reason
    net.alice.key = new_key
    assert transfer(net.alice, "household:hh-alice", "household:hh-bob", 3).ok
    report = verify_chain()
    assert report.ok, messages(report)


def test_a_revoked_identity_is_refused_afterwards_and_its_past_still_verifies(net):
    assert transfer(net.bob, "household:hh-bob", "household:hh-alice", 1).ok
    ledger.identity_revoke(identity=net.bob.identity)
    net.bob.identity = Identity.objects.get(pk=net.bob.identity.pk)
    refused = transfer(net.bob, "household:hh-bob", "household:hh-alice", 1)
    assert not refused.ok and "revoked" in refused.reason
    with pytest.raises(ledger.LedgerError, match="revoked"):
        ledger.identity_revoke(identity=net.bob.identity)
    report = verify_chain()
    assert report.ok, messages(report)
    assert_named(sql("UPDATE ledger_identity SET revoked_at = NULL WHERE id = %s", [net.bob.identity.pk]),
                 "identity hh-bob/bob", "revoked")


# --- the majority policy ------------------------------------------------------------------------

def test_majority_policy_applies_a_proposal_once_most_members_approve(net):
    carol = make_member("hh-carol", "household", "carol")
    ledger.config_change("setPolicy", {"rule": "majority", "members": ["utility", "hh-alice", "hh-bob"]})
    with pytest.raises(ledger.LedgerError, match="majority"):
        ledger.organisation_set_type(organisation=carol.organisation, org_type="bank")
    change = {"msp_id": "hh-carol", "org_type": "bank"}
    outsider = carol.invoke(CONFIG, "propose", {"id": "p1", "function": "setOrganisationType", "args": change})
    assert not outsider.ok and "not a member organisation" in outsider.reason
    proposed = net.utility.invoke(CONFIG, "propose", {"id": "p1", "function": "setOrganisationType", "args": change})
    assert proposed.ok and proposed.result["pending"] == "p1"
    assert Organisation.objects.get(msp_id="hh-carol").org_type == "household"
    again = net.utility.invoke(CONFIG, "approve", {"id": "p1"})
    assert not again.ok and "already approved" in again.reason
    approved = net.alice.invoke(CONFIG, "approve", {"id": "p1"})
    assert approved.ok, approved.reason
    assert approved.result["approvals"] == ["hh-alice", "utility"]
    assert Organisation.objects.get(msp_id="hh-carol").org_type == "bank"
    assert not StateEntry.objects.filter(namespace=CONFIG, key="proposal/p1", is_deleted=False).exists()
    # A revoked member identity's later proposals are refused.
    ledger_bob = net.bob.identity
    net.bob.invoke(CONFIG, "propose", {"id": "p2", "function": "revokeIdentity", "args": {"identity": "hh-bob/bob"}})
    assert net.alice.invoke(CONFIG, "approve", {"id": "p2"}).ok
    net.bob.identity = Identity.objects.get(pk=ledger_bob.pk)
    late = net.bob.invoke(CONFIG, "propose", {"id": "p3", "function": "setOrganisationType", "args": change})
    assert not late.ok and "revoked" in late.reason
    report = verify_chain()
    assert report.ok, messages(report)


# --- ledger_verify names every superuser edit of the membership tables ----------------------

def test_an_organisation_type_changed_in_the_table_is_named(net):
    assert_named(sql("UPDATE ledger_organisation SET org_type = 'bank' WHERE msp_id = 'hh-alice'"),
                 "organisation hh-alice", "type", "'bank' in the table", "'household' on chain")


def test_a_household_made_a_utility_in_the_table_then_minting_breaks_the_endorsement_policy(net):
    def attack() -> None:
        sql("UPDATE ledger_organisation SET org_type = 'utility' WHERE msp_id = 'hh-alice'")()
        net.alice.identity = Identity.objects.select_related("organisation").get(pk=net.alice.identity.pk)
        assert net.alice.invoke("token", "mint", {"to": "household:hh-alice", "asset": "k", "amount": 9}).ok

    found = assert_named(attack, "endorsement policy", "token.mint", "hh-alice of type household")
    assert any("organisation hh-alice" in m for m in found)


def test_an_account_given_to_another_organisation_in_the_table_is_named(net):
    def attack() -> None:
        sql("UPDATE ledger_account SET organisation_id = %s WHERE key = 'household:hh-bob'",
            [net.alice.organisation.pk])()
        assert transfer(net.alice, "household:hh-bob", "household:hh-alice", 500).ok

    found = assert_named(attack, "object rights", "household:hh-bob", "owned by hh-bob")
    assert any("account k/household:hh-bob: owner is 'hh-alice' in the table but 'hh-bob' on chain" in m
               for m in found), found


def test_an_account_kind_changed_in_the_table_is_named(net):
    assert_named(sql("UPDATE ledger_account SET kind = 'pool' WHERE key = 'household:hh-alice' AND asset_id = 'k'"),
                 "account k/household:hh-alice", "kind", "'pool' in the table")


def test_an_identity_kind_changed_in_the_table_is_named(net):
    assert_named(sql("UPDATE ledger_identity SET kind = 'device' WHERE id = %s", [net.alice.identity.pk]),
                 "identity hh-alice/alice", "kind", "'device' in the table")


def test_a_key_swapped_in_the_table_is_named_and_its_signatures_refused(net):
    attacker = generate_private_key()

    def attack() -> None:
        sql("UPDATE ledger_identity SET public_key = %s WHERE id = %s",
            [public_bytes(attacker), net.alice.identity.pk])()
        net.alice.identity = Identity.objects.select_related("organisation").get(pk=net.alice.identity.pk)
        net.alice.key = attacker
        assert transfer(net.alice, "household:hh-alice", "household:hh-bob", 4000).ok

    found = assert_named(attack, "invoker signature does not verify")
    assert any("identity hh-alice/alice: the public key in the table is not the key in force on chain" in m
               for m in found), found


def test_a_forged_identity_row_is_named(net):
    def forge() -> None:
        Identity.objects.create(organisation=net.alice.organisation, name="mallory",
                                public_key=public_bytes(generate_private_key()), kind=IdentityKind.USER)

    assert_named(forge, "identity hh-alice/mallory is in the table but not on chain")


def test_a_deleted_identity_row_is_named(net):
    spare = ledger.identity_register(organisation=net.bob.organisation, name="spare",
                                     public_key=public_bytes(generate_private_key()))
    assert_named(sql("DELETE FROM ledger_identity WHERE id = %s", [spare.pk]),
                 "identity hh-bob/spare is on chain but missing from the table")


def test_forged_and_deleted_organisations_and_accounts_are_named(net):
    assert_named(sql("INSERT INTO ledger_organisation (msp_id, name, org_type, created_at) "
                     "VALUES ('fakebank', 'Fake', 'bank', now())"), "organisation fakebank is in the table but not")
    assert_named(sql("DELETE FROM ledger_account WHERE key = 'household:hh-bob' AND asset_id = 'k'"),
                 "account k/household:hh-bob is on chain but missing")


def test_a_ledger_with_members_but_no_configuration_history_fails(net):
    def erase() -> None:
        sql("DELETE FROM ledger_stateentry WHERE namespace = 'config'")()
        sql("DELETE FROM ledger_statewrite WHERE namespace = 'config'")()

    report = verify_after(erase)
    assert not report.ok


def test_a_ledger_with_members_before_on_chain_membership_adopts_them_in_the_bootstrap(db):
    """Members made before configuration transactions existed (rows only, as an older ledger
    has them): the bootstrap lists them, and what they did before verifies against that list."""
    utility = Organisation.objects.create(msp_id="old-utility", name="Old", org_type="utility")
    key = generate_private_key()
    operator = Identity.objects.create(organisation=utility, name="op", public_key=public_bytes(key))
    from ledger.models import Account as AccountRow
    from ledger.models import Asset

    asset = Asset.objects.create(code="k", name="Energy coin", scale=3, display_unit="kWh")
    AccountRow.objects.create(key="issuance", asset=asset, kind="issuance", organisation=utility)
    AccountRow.objects.create(key="utility:old", asset=asset, kind="holder", organisation=utility)
    assert ledger.invoke(chaincode="token", function="mint", args={"to": "utility:old", "asset": "k", "amount": 5},
                         invoker=operator, idempotency_key="old-1", signer=key).ok
    report = verify_chain()
    assert not report.ok and "no configuration bootstrap" in messages(report)[0]

    ledger.config_admin()  # what migration 0013 does on such a ledger
    genesis = Transaction.objects.get(chaincode=CONFIG, function="bootstrap").args["genesis"]
    assert ["org/old-utility", {"name": "Old", "org_type": "utility"}] in genesis
    assert ["account/k/utility:old", {"kind": "holder", "organisation": "old-utility"}] in genesis
    report = verify_chain()
    assert report.ok, messages(report)
    assert_named(sql("UPDATE ledger_organisation SET org_type = 'bank' WHERE msp_id = 'old-utility'"),
                 "organisation old-utility", "type")


def test_config_changes_registers_a_fleet_in_batches_and_is_all_or_nothing(net):
    keys = {f"m-{n}": generate_private_key() for n in range(5)}
    changes = [("registerIdentity", {"identity": f"utility/{name}", "kind": "device",
                                     "public_key": public_bytes(key).hex()}) for name, key in keys.items()]
    changes += [("openAccount", {"key": f"device:{name}", "asset": "k", "kind": "device", "organisation": "utility"})
                for name in keys]
    results = ledger.config_changes(changes, batch_size=4)
    assert len(results) == 10
    assert sorted(Identity.objects.filter(name__startswith="m-").values_list("name", flat=True)) == sorted(keys)
    assert bytes(Identity.objects.get(name="m-3").public_key) == public_bytes(keys["m-3"])
    assert Account.objects.get(key="device:m-4", asset="k").organisation == net.utility.organisation
    report = verify_chain()
    assert report.ok, messages(report)

    count = Transaction.objects.count()
    with pytest.raises(ledger.MembershipConflict):
        ledger.config_changes([("createOrganisation", {"msp_id": "fresh", "name": "Fresh", "org_type": "bank"}),
                               ("openAccount", {"key": "device:m-1", "asset": "k", "kind": "device",
                                                "organisation": "utility"})])
    assert Transaction.objects.count() == count and not Organisation.objects.filter(msp_id="fresh").exists()
