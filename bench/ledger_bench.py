"""Ledger benchmark (issue: foundation), all on PostgreSQL in one run:

1. interactive transfers/s through ``invoke`` with 16 threads, next to the same transfer done
   as raw SQL with psycopg (lock-free single-statement updates + an insert, one commit each)
   in the same run, and their ratio;
2. transactions sealed per second;
3. transactions verified per second by ``ledger_verify``, with and without signatures.
"""

from __future__ import annotations

import os
import random
import threading

from bench import common
from bench.common import Timer, fresh_database, setup_django

THREADS = int(os.environ.get("BENCH_THREADS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "256"))


def run_threads(worker, seconds: float) -> tuple[int, float]:
    """Run ``worker(i, stop)`` in THREADS threads for ``seconds``; returns (operations, elapsed)."""
    ops, elapsed, _ = common.run_threads(lambda i, stop, _latencies: worker(i, stop), seconds, THREADS)
    return ops, elapsed


def bench_raw_sql(url: str) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_transfer, bench_raw_account")
        conn.execute("CREATE TABLE bench_raw_account (id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))")
        conn.execute(
            "CREATE TABLE bench_raw_transfer (id bigserial PRIMARY KEY, debit bigint NOT NULL, credit bigint NOT NULL, "
            "amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("INSERT INTO bench_raw_account SELECT g, 1000000000 FROM generate_series(1, %s) g", [ACCOUNTS])

    def worker(i: int, stop: threading.Event) -> int:
        rng = random.Random(i)
        done = 0
        with psycopg.connect(url) as conn:
            while not stop.is_set():
                a, b = rng.sample(range(1, ACCOUNTS + 1), 2)
                # Update the lower id first, as any correct implementation must, or crossing
                # transfers deadlock.
                with conn.transaction():
                    for account, delta in sorted([(a, -1), (b, 1)]):
                        conn.execute("UPDATE bench_raw_account SET balance = balance + %s WHERE id = %s",
                                     [delta, account])
                    conn.execute("INSERT INTO bench_raw_transfer (debit, credit, amount) VALUES (%s, %s, %s)", [a, b, 1])
                done += 1
        return done

    ops, elapsed = run_threads(worker, SECONDS)
    return ops / elapsed


def bench_invoke() -> tuple[float, int]:
    from django.db import connection

    from ledger import services as ledger
    from tests.ledger_helpers import make_member

    utility = make_member("bench-utility", "utility")
    ledger.asset_create(code="k", name="Energy coin", scale=3, display_unit="kWh", issuer=utility.organisation)
    for n in range(ACCOUNTS):
        ledger.account_open(key=f"bench:{n}", asset="k", organisation=utility.organisation)
        utility.invoke("token", "mint", {"to": f"bench:{n}", "asset": "k", "amount": 1_000_000_000},
                       idempotency_key=f"bench-fund-{n}")

    def worker(i: int, stop: threading.Event) -> int:
        rng = random.Random(i)
        done = 0
        try:
            while not stop.is_set():
                a, b = rng.sample(range(ACCOUNTS), 2)
                result = utility.invoke("token", "transfer", {"from": f"bench:{a}", "to": f"bench:{b}", "asset": "k",
                                                              "amount": 1}, idempotency_key=f"bench-{i}-{done}")
                assert result.ok, result.reason
                done += 1
        finally:
            connection.close()
        return done

    ops, elapsed = run_threads(worker, SECONDS)
    return ops / elapsed, ops


def bench_sealing() -> tuple[float, int, int]:
    from django.conf import settings

    from ledger.models import Transaction
    from ledger.sealing import lease_acquire, seal_next_block

    pending = Transaction.objects.unsealed().count()
    assert lease_acquire(holder="bench", seconds=3600)
    blocks = 0
    with Timer() as t:
        while seal_next_block(holder="bench", force=True):
            blocks += 1
    return pending / t.seconds, pending, settings.GRIDCOIN_BLOCK_MAX_TX


def bench_verify(check_signatures: bool) -> tuple[float, int]:
    from ledger.verify import verify_chain

    report = verify_chain(check_signatures=check_signatures)
    assert report.ok, report.problems
    return report.transactions / report.seconds, report.transactions


def main() -> None:
    url = fresh_database()
    setup_django(url)
    print(f"ledger benchmark on PostgreSQL, {THREADS} threads, {SECONDS:.0f} s per phase, {ACCOUNTS} accounts")
    raw = bench_raw_sql(url)
    print(f"  raw SQL transfers (psycopg: 2 updates + 1 insert, 1 commit):{raw:10,.0f} tx/s")
    invoked, ops = bench_invoke()
    print(f"  interactive transfers through invoke (signed, hashed):     {invoked:10,.0f} tx/s  ({ops:,} tx)")
    print(f"  ratio invoke / raw SQL:                                     {invoked / raw:10.2f}x  (target >= 0.5x)")
    sealed, pending, block_size = bench_sealing()
    print(f"  sealing ({pending:,} tx, blocks of {block_size}):                       {sealed:10,.0f} tx/s  (target >= 20,000)")
    full, n = bench_verify(True)
    print(f"  ledger_verify, full with signatures ({n:,} tx):             {full:10,.0f} tx/s  (target >= 10,000)")
    fast, _ = bench_verify(False)
    print(f"  ledger_verify, without signature checks:                    {fast:10,.0f} tx/s")


if __name__ == "__main__":
    main()
