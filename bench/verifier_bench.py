"""Outside verification (issue 16), on PostgreSQL: a ledger of ``BENCH_VERIFIER_TX`` signed
transactions (default 1,000,000) built through ``ledger.batch.invoke_batch`` (the gateway's bulk
path) and sealed, then

1. ``ledger_export`` of it (tx/s, size on disk, peak memory of the exporting process);
2. the standalone verifier (``python -m verifier DIR`` in its own process, all signatures
   checked, ``--workers`` one per core): tx/s, CPU time per transaction and peak memory, twice:
   as installed with its optional ``sodium`` extra (libsodium checks, OpenSSL decides each
   refusal) and with ``--ed25519 openssl`` (its two required dependencies alone);
3. each run's ceiling, measured just before and just after it: Ed25519 verifications per
   second with that implementation in as many processes as the verifier has workers, and the
   verifier's ratio to it (each transaction carries one signature);
4. ``ledger_verify`` with signatures on the same ledger, in the same run, and the ratio
   verifier / ledger_verify.

``BENCH_VERIFIER_TX=100000`` for a quick run; ``BENCH_VERIFIER_KEEP=1`` keeps the ledger and the
export from an earlier run (only the verifiers run again); ``BENCH_VERIFIER_REUSE_DB=1`` keeps
the ledger of an earlier (possibly interrupted) run and exports it again.
"""

from __future__ import annotations

import json
import multiprocessing
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


# ``python -m verifier`` as run by ``runpy``, then its own peak memory and its workers' (the
# verifier exits through SystemExit; the figures go to stderr as the last line).
_VERIFIER = """
import json, resource, runpy, sys
try:
    runpy.run_module("verifier", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
peak = {"main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
print(json.dumps(peak), file=sys.stderr)
sys.exit(code)
"""


def workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_verifier(out: Path, orderer_key: str, processes: int, implementation: str) -> dict:
    """``python -m verifier`` as a stranger runs it: its own process, only its package on the path.
    Returns seconds, CPU seconds (the verifier and its workers), peak MB of the main process and
    of the largest worker, and what it printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env["PYTHONPATH"] = str(ROOT / "verifier")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Timer() as t:
        done = subprocess.run([sys.executable, "-c", _VERIFIER, str(out), "--orderer-key", orderer_key,
                               "--workers", str(processes), "--ed25519", implementation],
                              env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr[-2000:]
    peak = json.loads(done.stderr.strip().splitlines()[-1])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"seconds": t.seconds, "cpu": cpu, "peak_main": peak["main"], "peak_worker": peak["workers"],
            "said": done.stdout.strip()}


def _verify_signatures(seconds: float, start_at: float, implementation: str) -> tuple[int, float, float]:
    """One process of the ceiling: Ed25519 verifications of 300-byte messages (a proposal's
    size) under one key, with ``cryptography`` (OpenSSL) or PyNaCl (libsodium), from
    ``start_at`` for ``seconds``. Returns the count, the seconds and the CPU seconds spent."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from nacl.bindings import crypto_sign_open

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    raw = public.public_bytes_raw()
    signed = [(key.sign(m), m) for m in (os.urandom(300) for _ in range(64))]
    while time.time() < start_at:
        time.sleep(0.001)
    started, cpu, count = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - started < seconds:
        if implementation == "openssl":
            for signature, message in signed:
                public.verify(signature, message)
        else:
            for signature, message in signed:
                crypto_sign_open(signature + message, raw)
        count += len(signed)
    return count, time.perf_counter() - started, time.process_time() - cpu


def ed25519_ceiling(processes: int, implementation: str, seconds: float = 8.0) -> tuple[float, float]:
    """Verifications per second over ``processes`` processes running at once, and the CPU
    microseconds of one verification."""
    context = multiprocessing.get_context("spawn")  # nothing of this Django process in the children
    pool = context.Pool(processes)
    try:
        start_at = time.time() + 2.0
        results = pool.starmap(_verify_signatures, [(seconds, start_at, implementation)] * processes)
    finally:
        pool.close()
        pool.join()  # reaped, so their CPU time is not counted as the verifier's
    rate = sum(count / elapsed for count, elapsed, _ in results)
    cpu_us = 1e6 * sum(cpu for _, _, cpu in results) / sum(count for count, _, _ in results)
    return rate, cpu_us


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _verifier_run(out: Path, n: int, processes: int, implementation: str, label: str) -> float:
    """One verifier run between two measures of its implementation's ceiling; returns its tx/s."""
    from ledger.sealing import orderer_public_hex

    ceiling_before, sig_cpu_before = ed25519_ceiling(processes, implementation)
    run = run_verifier(out, orderer_public_hex(), processes, implementation)
    ceiling_after, sig_cpu_after = ed25519_ceiling(processes, implementation)
    rate = n / run["seconds"]
    ceiling, sig_cpu = (ceiling_before + ceiling_after) / 2, (sig_cpu_before + sig_cpu_after) / 2
    tx_cpu = 1e6 * run["cpu"] / n
    print(f"  standalone verifier, {label} ({implementation}): {rate:10,.0f} tx/s ({run['seconds']:.1f} s, "
          f"{processes} workers; target >= 20,000)")
    print(f"    CPU {tx_cpu:.0f} µs per transaction (the verifier and its workers); peak {run['peak_main']:,.0f} MB "
          f"main process, {run['peak_worker']:,.0f} MB largest worker")
    print(f"    {run['said']}")
    print(f"    ceiling: Ed25519 verify ({implementation}), {processes} processes: {ceiling:10,.0f} /s "
          f"(before {ceiling_before:,.0f}, after {ceiling_after:,.0f}; CPU {sig_cpu:.0f} µs per verification)")
    print(f"    ratio verifier / ceiling: {rate / ceiling:.2f}x wall, "
          f"{sig_cpu / tx_cpu:.2f}x CPU (a signature's CPU / a transaction's)")
    return rate


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
    from ledger.verify import verify_chain

    n = Transaction.objects.count()
    if not (KEEP and (out / "manifest.json").exists()):
        seconds, peak = run_export(out)
        size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        print(f"  ledger_export:                             {n / seconds:10,.0f} tx/s ({seconds:.1f} s, "
              f"{size:,.0f} MB, peak {peak:,.0f} MB)")
    processes = workers()
    print(f"  {processes} cores; {_load()}")
    outside = {}
    for implementation, label in (("libsodium", "with the sodium extra"), ("openssl", "OpenSSL alone")):
        outside[implementation] = _verifier_run(out, n, processes, implementation, label)
        print(f"  {_load()}")
    report = verify_chain(check_signatures=True)
    assert report.ok, report.problems[:3]
    inside = report.transactions / report.seconds
    print(f"  ledger_verify, with signatures:            {inside:10,.0f} tx/s ({report.seconds:.1f} s)")
    for implementation, rate in outside.items():
        print(f"  ratio verifier ({implementation}) / ledger_verify: {rate / inside:6.2f}x")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory of this process (ledger_verify): {own:,.0f} MB")


if __name__ == "__main__":
    main()
