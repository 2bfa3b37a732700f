"""Outside verification (issue 16), on PostgreSQL: a ledger of ``BENCH_VERIFIER_TX`` signed
transactions (default 1,000,000) built through ``ledger.batch.invoke_batch`` (the gateway's bulk
path) and sealed, then

1. ``ledger_export`` of it (tx/s, size on disk, peak memory of the exporting process);
2. the standalone verifier (``python -m verifier DIR`` in its own process, all signatures
   checked): tx/s and peak memory;
3. ``ledger_verify`` with signatures on the same ledger, in the same run: the baseline, and the
   ratio verifier / ledger_verify.

``BENCH_VERIFIER_TX=100000`` for a quick run; ``BENCH_VERIFIER_KEEP=1`` keeps the ledger and the
export from an earlier run (only the verifiers run again); ``BENCH_VERIFIER_REUSE_DB=1`` keeps
the ledger of an earlier (possibly interrupted) run and exports it again.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Timer, fresh_database, setup_django

TRANSACTIONS = int(os.environ.get("BENCH_VERIFIER_TX", "1000000"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "256"))
BATCH = 1000
KEEP = os.environ.get("BENCH_VERIFIER_KEEP") == "1"
REUSE_DB = os.environ.get("BENCH_VERIFIER_REUSE_DB") == "1"


def build_ledger(n: int) -> float:
    """``n`` signed transactions (mints, then transfers among ``ACCOUNTS`` households), sealed;
    returns the seconds spent."""
    import random

    from django.db import connection

    from ledger import services as ledger
    from ledger.batch import Request, invoke_batch
    from ledger.sealing import lease_acquire, seal_next_block
    from tests.ledger_helpers import make_member

    started = time.perf_counter()
    utility = make_member("bench-utility", "utility")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility.organisation)
    for i in range(ACCOUNTS):
        ledger.account_open(key=f"bench:{i}", asset="k", organisation=utility.organisation)
    assert lease_acquire(holder="bench-verifier", seconds=24 * 3600)
    rng = random.Random(16)
    done = 0
    while done < n:
        requests = []
        for j in range(min(BATCH, n - done)):
            k = done + j
            if k < ACCOUNTS:
                args = {"to": f"bench:{k}", "asset": "k", "amount": 1_000_000_000}
                requests.append(Request(chaincode="token", function="mint", args=args, invoker=utility.identity,
                                        idempotency_key=f"v{k}", signer=utility.key))
                continue
            a, b = rng.sample(range(ACCOUNTS), 2)
            args = {"from": f"bench:{a}", "to": f"bench:{b}", "asset": "k", "amount": 1 + k % 97}
            requests.append(Request(chaincode="token", function="transfer", args=args, invoker=utility.identity,
                                    idempotency_key=f"v{k}", signer=utility.key))
        for outcome in invoke_batch(requests):
            assert getattr(outcome, "ok", False), outcome
        done += len(requests)
        while seal_next_block(holder="bench-verifier", force=True):
            pass
        if done % 50_000 < BATCH:
            print(f"    … {done:,} transactions", flush=True)
    with connection.cursor() as cur:  # what autovacuum does on a live system after a bulk load
        cur.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def _peak_mb_children() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_export(out: Path) -> tuple[float, float]:
    """Export in a child process (its own peak memory); returns (seconds, peak MB)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gridcoin.settings"}
    with Timer() as t:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "ledger_export", "--out", str(out)], check=True,
                       env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return t.seconds, _peak_mb_children()


def run_verifier(out: Path, orderer_key: str) -> tuple[float, float, str]:
    """``python -m verifier`` as a stranger runs it: its own process, only its package on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env["PYTHONPATH"] = str(ROOT / "verifier")
    before = _peak_mb_children()
    with Timer() as t:
        done = subprocess.run([sys.executable, "-m", "verifier", str(out), "--orderer-key", orderer_key],
                              env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    peak = _peak_mb_children()
    return t.seconds, peak if peak > before else before, done.stdout.strip()


def main() -> None:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/gridcoin_bench"
    out = Path(os.environ.get("BENCH_VERIFIER_DIR") or Path(tempfile.gettempdir()) / "gridcoin-verifier-bench")
    # The orderer key lives in the data directory: a stable one lets a later run (KEEP, REUSE_DB)
    # check the blocks an earlier run signed.
    data = Path(f"{out}-data")
    data.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GRIDCOIN_DATA_DIR", str(data))
    print(f"outside verification (issue 16) on PostgreSQL, {TRANSACTIONS:,} transactions")
    if KEEP and (out / "manifest.json").exists():
        setup_django(url)
        print("  reusing the ledger and export of an earlier run (BENCH_VERIFIER_KEEP=1)")
    elif REUSE_DB:
        setup_django(url)
        print("  reusing the ledger of an earlier run (BENCH_VERIFIER_REUSE_DB=1)")
        shutil.rmtree(out, ignore_errors=True)
    else:
        url = fresh_database()
        setup_django(url)
        built = build_ledger(TRANSACTIONS)
        print(f"  built and sealed through invoke_batch:     {built:8.1f} s ({TRANSACTIONS / built:,.0f} tx/s)")
        shutil.rmtree(out, ignore_errors=True)
    from ledger.models import Transaction
    from ledger.sealing import orderer_public_hex
    from ledger.verify import verify_chain

    n = Transaction.objects.count()
    if not (KEEP and (out / "manifest.json").exists()):
        seconds, peak = run_export(out)
        size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        print(f"  ledger_export:                             {n / seconds:10,.0f} tx/s ({seconds:.1f} s, "
              f"{size:,.0f} MB, peak {peak:,.0f} MB)")
    seconds, peak, said = run_verifier(out, orderer_public_hex())
    outside = n / seconds
    print(f"  standalone verifier, with signatures:      {outside:10,.0f} tx/s ({seconds:.1f} s, peak {peak:,.0f} MB;"
          f" target >= 20,000)")
    print(f"    {said}")
    report = verify_chain(check_signatures=True)
    assert report.ok, report.problems[:3]
    inside = report.transactions / report.seconds
    print(f"  ledger_verify, with signatures:            {inside:10,.0f} tx/s ({report.seconds:.1f} s)")
    print(f"  ratio verifier / ledger_verify:            {outside / inside:10.2f}x")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory of this process (ledger_verify): {own:,.0f} MB")


if __name__ == "__main__":
    main()
