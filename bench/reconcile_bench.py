"""Reconciliation benchmark (issue 12), on PostgreSQL in one run, per statement format:

1. ``reconcile``: a statement of BENCH_RECONCILE_LINES lines (default 100,000) reconciled the
   way the task does it: the file read and parsed (streamed), its lines COPYed into a staging
   table, sorted against ``payments_payment`` by set-based SQL into
   ``payments_reconciliationline`` (every line stored with its outcome, with the table's
   foreign keys checked, and committed), the few missing payments credited through
   ``payment_credit`` (real ledger invocations), the counts stored; phases timed from the run's
   own progress reports;
2. the baseline: the same matching done as one set-based SQL join: the same file read with the
   same reader, its payment lines COPYed into a temporary table and classified against
   ``payments_payment`` (matched / mismatch / missing, plus the ledger's payments the statement
   lacks) in one query, nothing stored. Reading the statement is in both: no reconciliation can
   skip it, and it is most of the work (the join alone is printed too);
3. their ratio (target: reconcile <= 3x the join, and <= 10 s for 100,000 lines).

The ledger side is set up with bulk inserts, not webhooks: the credited payments are COPYed
into ``payments_payment`` (their ``credit_tx_hash`` is a stand-in: these rows exist to be
matched, and matching reads only the payment rows). The statement mixes in, per 100,000
lines, 100 payments whose notification never came (credited by the run), 500 amount
mismatches, and the ledger holds 100 payments the statement does not list. Both runs must
agree on every count, or the benchmark fails.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import fresh_database, setup_django

LINES = int(os.environ.get("BENCH_RECONCILE_LINES", "100000"))
MISSING = max(1, LINES // 1000)
MISMATCHED = max(1, LINES // 200)
UNLISTED = max(1, LINES // 1000)
DAY = datetime(2026, 3, 1, tzinfo=UTC)

_BASELINE = """
WITH lines AS (
  SELECT s.line_no, s.reference, s.amount, s.currency, s.payer, s.payee, p.id AS pid,
         (p.amount = s.amount AND p.currency = s.currency AND p.payer = s.payer AND p.payee = s.payee) AS same,
         p.state
  FROM bench_statement s LEFT JOIN payments_payment p
    ON p.provider = %(provider)s AND p.scope = %(scope)s AND p.payment_id = s.reference
)
SELECT CASE WHEN pid IS NULL OR (same AND state = 'pending') THEN 'missing' WHEN NOT same THEN 'mismatch'
            WHEN state = 'failed' THEN 'rejected' ELSE 'matched' END, count(*) FROM lines GROUP BY 1
UNION ALL
SELECT 'unlisted', count(*) FROM payments_payment p
WHERE p.provider = %(provider)s AND p.scope = %(scope)s AND p.state = 'credited'
  AND p.created >= %(since)s AND p.created < %(until)s
  AND NOT EXISTS (SELECT 1 FROM bench_statement s WHERE s.reference = p.payment_id)
"""


def seed_payments(market, provider: str, scope: str) -> list[tuple[str, int]]:
    """COPY the credited payments the statement will list (all but the unlisted ones listed)."""
    from django.db import connection

    payer, payee = market.household.msp_id, market.utility.msp_id
    paid = [(f"{provider}-{n:07d}", 1000 + n % 5000) for n in range(LINES - MISSING + UNLISTED)]
    columns = ("provider, scope, payment_id, chaincode, payer, payee, amount, currency, state, reason, "
               "credit_tx_hash, amount_reversed, disputed, created, credited_at")
    with connection.cursor() as cur:
        with cur.copy(f"COPY payments_payment ({columns}) FROM STDIN") as copy:
            for n, (payment_id, amount) in enumerate(paid):
                at = DAY + timedelta(seconds=n % 86_000)
                copy.write_row((provider, scope, payment_id, "retail-seller", payer, payee, amount, "INR", "credited",
                                "", hashlib.sha256(payment_id.encode()).hexdigest(), 0, "", at, at))
        cur.execute("ANALYZE payments_payment")  # as autovacuum would have, long before a daily run
    return paid


def statement_lines(market, provider: str, paid: list[tuple[str, int]]):
    from payments.reconciliation.testing import Line

    payer, payee = market.household.msp_id, market.utility.msp_id
    listed = paid[: len(paid) - UNLISTED]
    processor = market.bank.msp_id if provider == "stripe" else ""
    for n, (payment_id, amount) in enumerate(listed):
        at = (DAY + timedelta(seconds=n % 86_000)).strftime("%Y-%m-%dT%H:%M:%SZ")
        yield Line(payment_id, amount + (100 if n < MISMATCHED else 0), payer, payee, booked=at, processor=processor)
    for n in range(MISSING):
        yield Line(f"{provider}-never-notified-{n}", 800, payer, payee, booked="2026-03-01T12:00:00Z",
                   processor=processor, chaincode="retail-seller")


def write_statement(market, provider: str, paid, folder: Path) -> Path:
    from payments.reconciliation.testing import camt053_chunks, stripe_report

    path = folder / f"{provider}-statement.{'xml' if provider == 'bank' else 'csv'}"
    lines = statement_lines(market, provider, paid)
    with path.open("wb") as out:
        if provider == "bank":
            for chunk in camt053_chunks(lines, statement_id="BENCH-1"):
                out.write(chunk)
        else:
            out.write(stripe_report(lines))
    return path


def bench_reconcile(provider: str, scope: str, path: Path) -> tuple[float, dict[str, float], dict[str, int]]:
    from payments.reconciliation.services import reconciliation_run_create, reconciliation_run_execute

    marks: dict[str, float] = {}

    def progress(current: int, total: int, label: str) -> None:
        marks.setdefault(label.split(":")[0], time.perf_counter())  # when each phase began

    start = time.perf_counter()
    made = reconciliation_run_create(source=provider, scope=scope, path=path)
    run = reconciliation_run_execute(run_id=made.run.pk, progress=progress)
    elapsed = time.perf_counter() - start
    assert run.state == "done", run.error
    loaded = marks.get("matching against the ledger", start)
    matched = marks.get("applying payments missing on the ledger", marks.get("done", loaded))
    phases = {"read, parse, COPY": loaded - start, "match (SQL)": matched - loaded, "apply missing": elapsed - (matched - start)}
    return elapsed, phases, run.counts


def bench_join(provider: str, scope: str, path: Path) -> tuple[float, float, dict[str, int]]:
    """(seconds for read + COPY + join, seconds for the join alone, counts)."""
    from django.db import connection

    from payments.reconciliation.formats import statement_reader
    from payments.reconciliation.statements import PAYMENT

    start = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_statement (line_no int, reference text, amount bigint, currency text, "
                    "payer text, payee text)")
        with path.open("rb") as fh, cur.copy("COPY bench_statement FROM STDIN") as copy:
            for line in statement_reader(provider, fh).lines():
                if line.kind == PAYMENT:
                    copy.write_row((line.line_no, line.reference, line.amount, line.currency, line.payer, line.payee))
        join_start = time.perf_counter()
        cur.execute("CREATE INDEX ON bench_statement (reference)")
        cur.execute("ANALYZE bench_statement")
        cur.execute(_BASELINE, {"provider": provider, "scope": scope, "since": DAY, "until": DAY + timedelta(days=1)})
        counts = {outcome: int(n) for outcome, n in cur.fetchall()}
        end = time.perf_counter()
        cur.execute("DROP TABLE bench_statement")
    return end - start, end - join_start, counts


def main() -> None:
    url = fresh_database()
    setup_django(url)
    from payments.testing import build_market

    print(f"reconciliation benchmark on PostgreSQL, {LINES:,}-line statements ({MISSING} never notified, "
          f"{MISMATCHED} amount mismatches, {UNLISTED} on the ledger only)")
    market = build_market(stock=10**9)
    with tempfile.TemporaryDirectory(prefix="gridcoin-bench-statements-") as tmp:
        from django.conf import settings

        settings.GRIDCOIN_STATEMENTS_DIR = Path(tmp)
        for provider, scope, label in (("bank", market.bank.msp_id, "camt.053 (bank)"),
                                       ("stripe", "", "Stripe balance report (CSV)")):
            paid = seed_payments(market, provider, scope)
            path = write_statement(market, provider, paid, Path(tmp))
            size = path.stat().st_size
            joined, join_only, expected = bench_join(provider, scope, path)
            elapsed, phases, counts = bench_reconcile(provider, scope, path)
            for outcome in ("matched", "mismatch", "missing", "unlisted"):
                assert counts.get(outcome, 0) == expected.get(outcome, 0), (outcome, counts, expected)
            assert counts["missing"] == MISSING and counts["unlisted"] == UNLISTED, counts
            print(f"  {label}, {size / 1e6:.1f} MB:")
            print(f"    reconcile (parse, COPY, match, apply, store):  {LINES / elapsed:10,.0f} lines/s  "
                  f"({elapsed:.2f} s; target <= 10 s for 100,000)")
            print("      phases: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))
            print(f"    one set-based SQL join (read, COPY, join):      {LINES / joined:10,.0f} lines/s  "
                  f"({joined:.2f} s, of which the join {join_only:.2f} s)")
            print(f"    ratio reconcile / join:                         {elapsed / joined:10.2f}x  (target <= 3x)")
            print(f"    outcomes: {counts}")


if __name__ == "__main__":
    main()
