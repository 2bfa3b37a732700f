"""Custodial keys: sealed at rest under the KEK, bound to their identity row, and usable to sign."""

from __future__ import annotations

import base64
import os

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from accounts import services as accounts
from accounts.keys import custodial_signer, key_encryption_key
from accounts.models import CustodialKey, Membership
from ledger import services as ledger
from ledger.crypto import KeyEncryptionError, b64, private_seed, public_bytes, unb64, verify_signature
from ledger.documents import proposal_bytes
from ledger.models import Account, Transaction, TxStatus
from ledger.sealing import lease_acquire, seal_next_block
from ledger.verify import verify_chain

pytestmark = pytest.mark.django_db


def other_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def signup(username: str):
    user = accounts.user_signup(username=username, password="correct horse battery")
    return user, Membership.objects.select_related("identity").get(user=user).identity


def test_signup_stores_a_sealed_key_without_the_raw_seed():
    user, identity = signup("asha")
    stored = CustodialKey.objects.get(identity=identity)
    ciphertext, nonce = bytes(stored.ciphertext), bytes(stored.nonce)
    seed = private_seed(custodial_signer(identity))

    assert len(seed) == 32
    assert len(nonce) == 12
    assert len(ciphertext) == 32 + 16  # AES-GCM: plaintext length plus the tag
    for encoding in (seed, seed.hex().encode(), b64(seed).encode(), seed[:16], seed[16:]):
        assert encoding not in ciphertext
        assert encoding not in nonce
    assert identity.organisation.msp_id == "hh-asha"
    assert Membership.objects.get(user=user).role == "owner"


def test_signer_matches_the_registered_public_key():
    _, identity = signup("ben")
    identity.refresh_from_db()
    key = custodial_signer(identity)
    assert public_bytes(key) == bytes(identity.public_key)


def test_every_identity_gets_its_own_key_and_nonce():
    _, first = signup("chen")
    _, second = signup("dev")
    a, b = CustodialKey.objects.get(identity=first), CustodialKey.objects.get(identity=second)
    assert bytes(a.nonce) != bytes(b.nonce)
    assert bytes(first.public_key) != bytes(second.public_key)


def test_a_different_kek_cannot_open_the_key():
    _, identity = signup("esha")
    with override_settings(GRIDCOIN_KEK=other_kek()), pytest.raises(KeyEncryptionError):
        custodial_signer(identity)
    # The right KEK still opens it afterwards.
    assert public_bytes(custodial_signer(identity)) == bytes(identity.public_key)


def test_a_kek_of_the_wrong_length_is_refused():
    short_kek = base64.b64encode(os.urandom(16)).decode()
    with override_settings(GRIDCOIN_KEK=short_kek), pytest.raises(ValueError, match="32 bytes"):
        key_encryption_key()


def test_a_ciphertext_moved_to_another_identity_does_not_open():
    """The identity id is the AES-GCM associated data: copying Alice's sealed key onto Bob's row
    (e.g. by someone with database write access) must not let Bob's identity sign as Alice."""
    _, victim = signup("farah")
    _, attacker = signup("gopal")
    stolen = CustodialKey.objects.get(identity=victim)
    CustodialKey.objects.filter(identity=attacker).update(nonce=bytes(stolen.nonce), ciphertext=bytes(stolen.ciphertext))
    with pytest.raises(KeyEncryptionError):
        custodial_signer(attacker)
    # A tampered ciphertext on its own row does not open either.
    tampered = bytearray(bytes(stolen.ciphertext))
    tampered[0] ^= 1
    CustodialKey.objects.filter(identity=victim).update(ciphertext=bytes(tampered))
    with pytest.raises(KeyEncryptionError):
        custodial_signer(victim)


def test_custodial_signatures_verify_with_the_public_key():
    _, identity = signup("hari")
    message = b"proposal bytes"
    signature = custodial_signer(identity).sign(message)
    public_key = bytes(identity.public_key)
    assert verify_signature(public_key, signature, message)
    assert not verify_signature(public_key, signature, message + b"!")
    _, other = signup("indu")
    assert not verify_signature(bytes(other.public_key), signature, message)


def test_invoke_as_mints_with_a_custodial_utility_identity():
    utility = ledger.organisation_create(msp_id="utility", name="Utility", org_type="utility")
    operator = get_user_model().objects.create_user(username="operator", password="correct horse battery")
    membership = accounts.membership_create(user=operator, organisation=utility)
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    resident, _ = signup("jaya")  # the asset exists now, so sign-up opens the household k account
    household = accounts.household_account_key(Membership.objects.get(user=resident).organisation)
    assert household == "household:hh-jaya"

    result = accounts.invoke_as(identity=membership.identity, chaincode="token", function="mint",
                                args={"to": household, "asset": "k", "amount": 1500}, idempotency_key="mint-1")
    assert result.ok, result.reason
    assert Account.objects.get(key=household, asset="k").balance == 1500
    assert Account.objects.get(key="issuance", asset="k").balance == -1500

    tx = Transaction.objects.get(pk=result.tx_id)
    assert tx.status == TxStatus.VALID and tx.invoker_id == membership.identity.pk
    signed = proposal_bytes(chaincode="token", function="mint", args=tx.args, invoker="utility/operator",
                            idempotency_key="mint-1", proposed_at=tx.proposed_at)
    assert verify_signature(bytes(membership.identity.public_key), unb64(tx.signature), signed)

    # The same key and body replays the first result; nothing moves twice.
    again = accounts.invoke_as(identity=membership.identity, chaincode="token", function="mint",
                               args={"to": household, "asset": "k", "amount": 1500}, idempotency_key="mint-1")
    assert again.replayed and again.tx_id == result.tx_id
    assert Account.objects.get(key=household, asset="k").balance == 1500

    assert lease_acquire(holder="custodial-test")
    setup = Transaction.objects.filter(chaincode="config").count()  # the membership's own
    assert seal_next_block(holder="custodial-test", force=True).tx_count == 1 + setup
    report = verify_chain()
    assert report.ok, report.problems


def test_invoke_as_a_household_cannot_mint():
    utility = ledger.organisation_create(msp_id="utility", name="Utility", org_type="utility")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    user, identity = signup("kiran")
    result = accounts.invoke_as(identity=identity, chaincode="token", function="mint",
                                args={"to": "household:hh-kiran", "asset": "k", "amount": 1}, idempotency_key="m")
    assert not result.ok
    assert Account.objects.get(key="household:hh-kiran", asset="k").balance == 0


def test_invoke_as_fails_closed_with_the_wrong_kek():
    utility = ledger.organisation_create(msp_id="utility", name="Utility", org_type="utility")
    operator = get_user_model().objects.create_user(username="operator", password="correct horse battery")
    membership = accounts.membership_create(user=operator, organisation=utility)
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    with override_settings(GRIDCOIN_KEK=other_kek()), pytest.raises(KeyEncryptionError):
        accounts.invoke_as(identity=membership.identity, chaincode="token", function="mint",
                           args={"to": "issuance", "asset": "k", "amount": 1}, idempotency_key="x")
    assert not Transaction.objects.exclude(chaincode="config").exists()
