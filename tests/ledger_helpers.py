"""Building blocks for ledger tests: organisations with their own signing keys."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import OperationalError, connection, transaction

from ledger import services as ledger
from ledger.crypto import generate_private_key, public_bytes
from ledger.models import Identity, Organisation

_keys = itertools.count(1)


@dataclass
class Member:
    organisation: Organisation
    identity: Identity
    key: Ed25519PrivateKey

    def invoke(self, chaincode: str, function: str, args: dict[str, Any], *,
               idempotency_key: str | None = None) -> ledger.InvokeResult:
        return ledger.invoke(chaincode=chaincode, function=function, args=args, invoker=self.identity,
                             idempotency_key=idempotency_key or f"test-{next(_keys)}", signer=self.key)


def make_member(msp_id: str, org_type: str, name: str = "operator") -> Member:
    org = ledger.organisation_create(msp_id=msp_id, name=msp_id.title(), org_type=org_type)
    key = generate_private_key()
    identity = ledger.identity_register(organisation=org, name=name, public_key=public_bytes(key))
    return Member(org, identity, key)


@dataclass
class Network:
    utility: Member
    alice: Member
    bob: Member

    @classmethod
    def create(cls) -> Network:
        utility = make_member("utility", "utility")
        ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility.organisation)
        ledger.asset_create(code="INR", name="Indian rupee credit", scale=2, display_unit="INR",
                            issuer=utility.organisation)
        alice = make_member("hh-alice", "household", "alice")
        bob = make_member("hh-bob", "household", "bob")
        for member in (alice, bob):
            ledger.account_open(key=f"household:{member.organisation.msp_id}", asset="k",
                                organisation=member.organisation)
        return cls(utility, alice, bob)

    def mint(self, account: str, amount: int, asset: str = "k") -> ledger.InvokeResult:
        result = self.utility.invoke("token", "mint", {"to": account, "asset": asset, "amount": amount})
        assert result.ok, result.reason
        return result


def seal_setup() -> None:
    """Seal what is pending (a network's configuration transactions) as a block of its own, so a
    test's blocks hold only its own transactions (they are numbered from 1)."""
    from ledger.sealing import lease_acquire, lease_release, seal_next_block

    assert lease_acquire(holder="setup")
    seal_next_block(holder="setup", force=True)
    lease_release(holder="setup")


def elsewhere(work: Callable[[], Any], *, lock_timeout_ms: int = 300) -> tuple[bool, Any]:
    """Run ``work`` on another connection in a transaction that waits at most ``lock_timeout_ms``
    for a lock: (True, its result) or (False, the lock timeout)."""
    outcome: list[tuple[bool, Any]] = []

    def attempt() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
                outcome.append((True, work()))
        except OperationalError as exc:
            outcome.append((False, exc))
        finally:
            connection.close()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return outcome[0]
