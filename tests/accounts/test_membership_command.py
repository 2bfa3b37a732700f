"""``manage.py membership``: each change is one configuration transaction that ``ledger_verify``
accepts; bad input and changes the policy refuses leave the ledger and the tables untouched."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts import services as accounts
from accounts.keys import custodial_signer
from accounts.models import Membership
from ledger.crypto import generate_private_key, private_seed, public_bytes
from ledger.models import Account, Identity, Organisation, Transaction
from ledger.verify import verify_chain
from tests.ledger_helpers import Network

pytestmark = pytest.mark.django_db


@pytest.fixture
def net(db) -> Network:
    network = Network.create()
    network.mint("household:hh-alice", 500)
    return network


def run(*args: str) -> str:
    out = StringIO()
    call_command("membership", *args, stdout=out)
    return out.getvalue()


def refused(*args: str, match: str) -> None:
    """The command fails with ``match`` and writes nothing at all."""
    before = (Transaction.objects.count(), list(Organisation.objects.values_list("msp_id", "org_type")),
              list(Identity.objects.values_list("name", "public_key", "revoked_at")),
              list(Account.objects.values_list("key", "organisation_id")))
    with pytest.raises(CommandError, match=match):
        run(*args)
    after = (Transaction.objects.count(), list(Organisation.objects.values_list("msp_id", "org_type")),
             list(Identity.objects.values_list("name", "public_key", "revoked_at")),
             list(Account.objects.values_list("key", "organisation_id")))
    assert before == after


def assert_verifies() -> None:
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]


def test_set_org_type(net):
    assert "hh-alice is now a charity" in run("set-org-type", "hh-alice", "charity")
    assert Organisation.objects.get(msp_id="hh-alice").org_type == "charity"
    assert Transaction.objects.order_by("-id").first().function == "setOrganisationType"
    refused("set-org-type", "hh-alice", "wizard", match="unknown organisation type 'wizard'")
    refused("set-org-type", "nobody", "bank", match="no organisation nobody")
    refused("set-org-type", "hh-alice", "charity", match="already a charity")
    assert_verifies()


def test_rotate_key_with_a_given_public_key(net):
    key = generate_private_key()
    out = run("rotate-key", "hh-alice/alice", "--public-key", public_bytes(key).hex())
    assert public_bytes(key).hex() in out
    assert bytes(Identity.objects.get(pk=net.alice.identity.pk).public_key) == public_bytes(key)
    refused("rotate-key", "hh-alice/alice", "--public-key", "zz", match="must be hex")
    refused("rotate-key", "hh-alice/alice", "--public-key", "ab" * 31, match="32 bytes")
    refused("rotate-key", "hh-alice/alice", "--public-key", public_bytes(key).hex(), match="already")
    refused("rotate-key", "alice", "--public-key", public_bytes(key).hex(), match="<msp_id>/<name>")
    refused("rotate-key", "hh-alice/alice", "--custodial", match="no custodial key")
    assert_verifies()


def test_rotate_a_custodial_key_replaces_the_sealed_key_too(db):
    user = accounts.user_signup(username="asha", password="correct horse battery")
    identity = Membership.objects.select_related("identity__organisation").get(user=user).identity
    old = private_seed(custodial_signer(identity))
    name = identity.qualified_name
    refused("rotate-key", name, "--public-key", public_bytes(generate_private_key()).hex(),
            match="custodial key, which would no longer match")
    run("rotate-key", name, "--custodial")
    identity = Identity.objects.get(pk=identity.pk)
    signer = custodial_signer(identity)
    assert private_seed(signer) != old and public_bytes(signer) == bytes(identity.public_key)
    assert_verifies()


def test_revoke(net):
    assert "hh-bob/bob is revoked" in run("revoke", "hh-bob/bob")
    assert Identity.objects.get(pk=net.bob.identity.pk).revoked_at is not None
    refused("revoke", "hh-bob/bob", match="hh-bob/bob is revoked")
    refused("revoke", "hh-bob/nobody", match="no identity hh-bob/nobody")
    assert_verifies()


def test_transfer_account(net):
    out = run("transfer-account", "household:hh-alice", "--to", "hh-bob")
    assert "now belongs to hh-bob (was hh-alice)" in out
    assert Account.objects.get(key="household:hh-alice", asset="k").organisation.msp_id == "hh-bob"
    refused("transfer-account", "household:hh-alice", "--to", "hh-bob", match="already belongs to hh-bob")
    refused("transfer-account", "household:nobody", "--to", "hh-bob", match="no k account")
    refused("transfer-account", "household:hh-alice", "--asset", "XYZ", "--to", "hh-bob", match="no asset XYZ")
    refused("transfer-account", "household:hh-alice", "--to", "nobody", match="no organisation nobody")
    refused("transfer-account", "issuance", "--to", "hh-bob", match="issuance account")
    assert_verifies()


def test_majority_policy_propose_and_approve(net, tmp_path):
    refused("propose", "p0", "setOrganisationType", "--args", "{}", "--as", "utility/operator",
            match="proposals are for the majority rule")
    refused("set-policy", "--rule", "majority", match="one or more --member")
    refused("set-policy", "--rule", "majority", "--member", "nobody", match="no organisation nobody")
    run("set-policy", "--rule", "majority", "--member", "utility", "--member", "hh-alice", "--member", "hh-bob")
    # Direct changes are the admin's, which the majority rule no longer allows.
    refused("set-org-type", "hh-alice", "bank", match="refused, nothing changed: configuration policy")

    utility_seed, alice_seed = tmp_path / "utility.hex", tmp_path / "alice.hex"
    utility_seed.write_text(private_seed(net.utility.key).hex())
    alice_seed.write_text(private_seed(net.alice.key).hex() + "\n")
    change = '{"msp_id": "hh-bob", "org_type": "charity"}'
    refused("propose", "p1", "makeMeAdmin", "--args", change, "--as", "utility/operator", "--key-file",
            str(utility_seed), match="unknown change")
    refused("propose", "p1", "setOrganisationType", "--args", "{nope", "--as", "utility/operator", "--key-file",
            str(utility_seed), match="not JSON")
    refused("propose", "p1", "setOrganisationType", "--args", change, "--as", "utility/operator",
            match="no custodial key")
    refused("propose", "p1", "setOrganisationType", "--args", change, "--as", "utility/operator", "--key-file",
            str(alice_seed), match="not utility/operator's registered key")

    out = run("propose", "p1", "setOrganisationType", "--args", change, "--as", "utility/operator", "--key-file",
              str(utility_seed))
    assert "proposal p1 is pending, approved by utility" in out
    assert "proposal/p1: setOrganisationType" in run("show")
    refused("approve", "p1", "--as", "utility/operator", "--key-file", str(utility_seed), match="already approved")
    refused("approve", "p9", "--as", "hh-alice/alice", "--key-file", str(alice_seed), match="no pending proposal p9")
    out = run("approve", "p1", "--as", "hh-alice/alice", "--key-file", str(alice_seed))
    assert "proposal p1 is applied, approved by hh-alice, utility" in out
    assert Organisation.objects.get(msp_id="hh-bob").org_type == "charity"
    # A change that could not apply is refused when proposed.
    refused("propose", "p2", "setOrganisationType", "--args", '{"msp_id": "nobody", "org_type": "bank"}', "--as",
            "utility/operator", "--key-file", str(utility_seed), match="refused, nothing changed: no organisation nobody")
    assert "proposal/p2" not in run("show")
    # One the contract refuses by the time a majority approves it: refused, rolled back, still pending.
    dave = '{"msp_id": "hh-dave", "name": "Dave", "org_type": "household"}'
    for proposal in ("p3", "p4"):
        run("propose", proposal, "createOrganisation", "--args", dave, "--as", "utility/operator", "--key-file",
            str(utility_seed))
    assert "proposal p3 is applied" in run("approve", "p3", "--as", "hh-alice/alice", "--key-file", str(alice_seed))
    refused("approve", "p4", "--as", "hh-alice/alice", "--key-file", str(alice_seed),
            match="refused, nothing changed: organisation hh-dave already exists")
    assert "proposal/p4: createOrganisation" in run("show")
    assert_verifies()


def test_show_lists_the_policy_and_members(net):
    out = run("show")
    assert '"rule": "admin"' in out and "hh-alice  household" in out and "alice  user" in out
