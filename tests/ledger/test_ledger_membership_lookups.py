"""The ledger's membership lookups for apps (ledger.selectors): identities and organisations by
id or MSP id, and which accounts exist, read with one statement each, no ORM instances built
by queries of their own."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.chaincodes.energy import ENERGY, household_account
from ledger.models import Identity
from ledger.selectors import (
    IdentityKey,
    existing_accounts,
    identity_key_and_organisations,
    identity_named,
    organisation_with_msp_id,
    organisations_with_identity,
)


def test_an_organisation_by_msp_id(network):
    found = organisation_with_msp_id("hh-alice")
    assert found == network.alice.organisation
    assert (found.msp_id, found.org_type, found.created_at) == ("hh-alice", "household",
                                                                network.alice.organisation.created_at)
    assert organisation_with_msp_id("hh-nobody") is None


def test_an_identity_by_name_carries_the_organisation_given(network):
    alice = network.alice
    found = identity_named(alice.organisation, "alice")
    assert found == alice.identity and bytes(found.public_key) == bytes(alice.identity.public_key)
    assert found.revoked_at is None
    with CaptureQueriesContext(connection) as queries:
        assert found.organisation is alice.organisation
    assert len(queries) == 0
    assert identity_named(alice.organisation, "bob") is None


def test_organisations_with_their_identity_of_a_name(network):
    ledger_ids = [network.alice.organisation.pk, network.utility.organisation.pk]
    found = organisations_with_identity(ledger_ids, "alice")
    assert set(found) == set(ledger_ids)
    alice, identity = found[network.alice.organisation.pk]
    assert alice == network.alice.organisation and identity == network.alice.identity
    assert identity.organisation is alice
    assert found[network.utility.organisation.pk] == (network.utility.organisation, None)
    assert organisations_with_identity([], "alice") == {}


def test_an_identity_key_and_organisations_in_one_read(network):
    alice = network.alice
    key, orgs = identity_key_and_organisations(alice.identity.pk, ["hh-alice", "utility", "hh-nobody"])
    assert key == IdentityKey(alice.identity.pk, bytes(alice.identity.public_key), None)
    assert set(orgs) == {"hh-alice", "utility"}
    row = orgs["hh-alice"]
    assert (row.pk, row.msp_id, row.org_type) == (alice.organisation.pk, "hh-alice", "household")
    assert row.organisation() == alice.organisation

    revoked_at = timezone.now()
    Identity.objects.filter(pk=alice.identity.pk).update(revoked_at=revoked_at)
    key, _ = identity_key_and_organisations(alice.identity.pk, ["hh-alice"])
    assert key is not None and key.revoked_at == revoked_at
    key, orgs = identity_key_and_organisations(None, ["hh-nobody"])
    assert (key, orgs) == (None, {})


def test_existing_accounts_of_any_asset(network):
    alice_energy = household_account("hh-alice")
    assert existing_accounts([alice_energy, household_account("hh-nobody")]) == {(alice_energy, ENERGY)}
    assert existing_accounts([]) == set()
