"""Charity benchmark (issue 14), on PostgreSQL in one run:

1. ``charity-pool.disburse`` of a campaign's pool to BENCH_BENEFICIARIES households (default
   10,000) in ONE invocation through ``invoke``: one transfer and one funded window per household,
   the beneficiaries' book and the campaign's, signed, hashed and committed; its wall time and
   the process's peak resident memory while it runs (``open`` with the same list is timed too);
2. the baseline: as many plain ``token.transfer`` invocations to the same devices through
   ``ledger.batch.invoke_batch`` in one batch (signed, hashed, one database transaction);
3. their ratio. Targets: the disbursement ≤ 10 s, ≤ 1.5× the batch, ≤ 300 MB peak.

Both write the same number of balances and postings; the disbursement writes one state entry
per household on top (its windows), the batch one transaction per transfer.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from bench.common import fresh_database, setup_django

BENEFICIARIES = int(os.environ.get("BENCH_BENEFICIARIES", "10000"))
SHARE = 1000  # Wh per household
OWNERS = 100  # household organisations owning the devices


def peak_reset() -> None:
    """Start a new high-water mark of this process's resident memory (Linux ``clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build():
    """Utility, charity, OWNERS household organisations with BENEFICIARIES device accounts, a
    retail price, a funded pool and a sponsor's account for the baseline."""
    from django.utils import timezone

    from ledger import services as ledger
    from ledger.crypto import generate_private_key, public_bytes
    from ledger.keys import ENERGY, device_account, household_account, match_account, pool_account
    from ledger.models import AccountKind

    def member(msp: str, org_type: str):
        org = ledger.organisation_create(msp_id=msp, name=msp, org_type=org_type)
        key = generate_private_key()
        return org, ledger.identity_register(organisation=org, name="operator", public_key=public_bytes(key)), key

    utility, utility_id, utility_key = member("utility", "utility")
    charity, charity_id, charity_key = member("charity", "charity")
    ledger.asset_create(code=ENERGY, name="Energy coin", scale=3, display_unit="kWh", issuer=utility)
    ledger.asset_create(code="INR", name="Indian rupee credit", scale=2, display_unit="INR", issuer=utility)
    owners = [ledger.organisation_create(msp_id=f"hh-{n}", name=f"hh-{n}", org_type="household")
              for n in range(OWNERS)]
    devices = [f"HM-{n:06d}" for n in range(BENEFICIARIES)]
    # Configuration transactions written in batches, so that the bench's ledger verifies.
    ledger.config_changes([("openAccount", {"key": device_account(d), "asset": ENERGY, "kind": str(AccountKind.DEVICE),
                                            "organisation": owners[n % OWNERS].msp_id}) for n, d in enumerate(devices)])
    for asset in (ENERGY, "INR"):
        ledger.account_open(key=pool_account("bench"), asset=asset, organisation=charity, kind=AccountKind.POOL)
    ledger.account_open(key=match_account("bench"), asset=ENERGY, organisation=charity, kind=AccountKind.POOL)
    ledger.account_open(key=household_account("charity"), asset=ENERGY, organisation=charity)
    now = timezone.now()

    def invoke(identity, key, chaincode, function, args):
        result = ledger.invoke(chaincode=chaincode, function=function, args=args, invoker=identity,
                               idempotency_key=f"bench-{chaincode}-{function}-{time.monotonic_ns()}", signer=key)
        assert result.ok, result.reason
        return result

    invoke(utility_id, utility_key, "pricing", "set", {"kind": "retail", "currency": "INR", "price": 800,
                                                       "effective_from": (now - timedelta(days=1)).isoformat()})
    for account in (pool_account("bench"), household_account("charity")):
        invoke(utility_id, utility_key, "token", "mint", {"to": account, "asset": ENERGY,
                                                          "amount": SHARE * BENEFICIARIES})
    return {"now": now, "devices": devices, "charity": (charity_id, charity_key), "invoke": invoke}


def bench_disbursement(world) -> tuple[float, float, float]:
    """(seconds to open, seconds to disburse, peak MB while disbursing)."""
    identity, key = world["charity"]
    now = world["now"]
    args = {"campaign": "bench", "utility": "utility", "currency": "INR", "goal": 10_000_000, "minimum": 0,
            "start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(days=30)).isoformat(),
            "rule": "equal", "leftover": "refund", "beneficiaries": [{"device": d, "weight": 1} for d in world["devices"]]}
    started = time.perf_counter()
    world["invoke"](identity, key, "charity-pool", "open", args)
    opened = time.perf_counter() - started
    peak_reset()
    started = time.perf_counter()
    result = world["invoke"](identity, key, "charity-pool", "disburse", {"campaign": "bench", "disbursement": "d-1"})
    seconds = time.perf_counter() - started
    assert result.result["households"] == BENEFICIARIES and result.result["remainder"] == 0, result.result
    return opened, seconds, peak_mb()


def bench_batch(world) -> tuple[float, float]:
    """(seconds for BENEFICIARIES transfers through one ``invoke_batch``, peak MB meanwhile)."""
    from ledger.batch import Request, invoke_batch
    from ledger.keys import ENERGY, device_account, household_account

    identity, key = world["charity"]
    requests = [Request(chaincode="token", function="transfer", invoker=identity, signer=key,
                        idempotency_key=f"bench-transfer-{n}",
                        args={"from": household_account("charity"), "to": device_account(d), "asset": ENERGY,
                              "amount": SHARE})
                for n, d in enumerate(world["devices"])]
    peak_reset()
    started = time.perf_counter()
    outcomes = invoke_batch(requests)
    seconds = time.perf_counter() - started
    assert all(getattr(o, "ok", False) for o in outcomes), next(o for o in outcomes if not getattr(o, "ok", False))
    return seconds, peak_mb()


def main() -> None:
    url = fresh_database()
    setup_django(url)
    world = build()
    opened, disbursed, disburse_peak = bench_disbursement(world)
    batched, batch_peak = bench_batch(world)
    ratio = disbursed / batched
    print(f"charity: open with {BENEFICIARIES:,} beneficiaries {opened:.2f} s", flush=True)
    print(f"charity: one disbursement to {BENEFICIARIES:,} households {disbursed:.2f} s [target ≤ 10], "
          f"peak memory {disburse_peak:.0f} MB [target ≤ 300]", flush=True)
    print(f"charity: {BENEFICIARIES:,} transfers through invoke_batch {batched:.2f} s (peak memory "
          f"{batch_peak:.0f} MB); disbursement / batch {ratio:.2f}× [target ≤ 1.5]", flush=True)

