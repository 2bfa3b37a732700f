"""Sorting a run's staged lines against ``payments_payment`` with set-based SQL: one
``INSERT ... SELECT`` writes every line of the statement with its outcome (each row written
once), one more adds the ledger's payments the statement lacks; never a query per line, and
the same SQL on PostgreSQL and SQLite. Only the lines missing on the ledger are then applied one
by one, because each is a ledger invocation (``services``)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from ..models import Payment
from .loading import STAGING
from .models import Outcome, ReconciliationLine

LINES = ReconciliationLine._meta.db_table
PAYMENTS = Payment._meta.db_table

# The statement is the oracle for what settled: a payment only reported (pending) is missing and
# will be credited; one the ledger refused stays refused (flagged); differing facts are flagged
# and nothing moves. Parties and chaincode are compared only where the statement names them (a
# Stripe report run without the metadata columns). A statement that lists one payment twice has
# every line after the first flagged (``d``), and those lines claim no payment row.
_DIFFERS = """(p.amount <> s.amount OR p.currency <> s.currency
      OR (s.payer <> '' AND p.payer <> s.payer) OR (s.payee <> '' AND p.payee <> s.payee)
      OR (s.chaincode <> '' AND p.chaincode <> s.chaincode))"""
_SORT = f"""
INSERT INTO {LINES} (run_id, line_no, kind, reference, source_ref, amount, currency, payer, payee, chaincode,
                     processor, booked_at, outcome, reason, payment_id, tx_hash)
SELECT %(run)s, s.line_no, s.kind, s.reference, s.source_ref, s.amount, s.currency, s.payer, s.payee, s.chaincode,
       s.processor, s.booked_at,
  CASE
    WHEN s.kind <> 'payment' THEN 'ignored'
    WHEN d.first IS NOT NULL AND s.line_no > d.first THEN 'mismatch'
    WHEN p.id IS NULL THEN 'missing'
    WHEN {_DIFFERS} THEN 'mismatch'
    WHEN p.state = 'failed' THEN 'rejected'
    WHEN p.state = 'credited' THEN 'matched'
    ELSE 'missing' END,
  CASE
    WHEN s.kind <> 'payment' THEN s.note
    WHEN d.first IS NOT NULL AND s.line_no > d.first
      THEN 'the statement lists this payment more than once (first on line ' || CAST(d.first AS TEXT) || ')'
    WHEN p.id IS NULL THEN 'no notification reached the ledger'
    WHEN p.amount <> s.amount OR p.currency <> s.currency
      THEN 'amount: ' || CAST(p.amount AS TEXT) || ' ' || p.currency || ' on the ledger, '
           || CAST(s.amount AS TEXT) || ' ' || s.currency || ' on the statement'
    WHEN s.payer <> '' AND p.payer <> s.payer
      THEN 'payer: ' || p.payer || ' on the ledger, ' || s.payer || ' on the statement'
    WHEN s.payee <> '' AND p.payee <> s.payee
      THEN 'payee: ' || p.payee || ' on the ledger, ' || s.payee || ' on the statement'
    WHEN s.chaincode <> '' AND p.chaincode <> s.chaincode
      THEN 'chaincode: ' || p.chaincode || ' on the ledger, ' || s.chaincode || ' on the statement'
    WHEN p.state = 'failed' THEN 'the ledger refused this payment: ' || p.reason
    ELSE '' END,
  CASE WHEN d.first IS NOT NULL AND s.line_no > d.first THEN NULL ELSE p.id END,
  CASE WHEN d.first IS NOT NULL AND s.line_no > d.first THEN NULL ELSE p.credit_tx_hash END
FROM {STAGING} AS s
LEFT JOIN (SELECT reference, MIN(line_no) AS first FROM {STAGING}
           WHERE kind = 'payment' GROUP BY reference HAVING COUNT(*) > 1) AS d
  ON s.kind = 'payment' AND d.reference = s.reference
LEFT JOIN {PAYMENTS} AS p
  ON s.kind = 'payment' AND p.provider = %(provider)s AND p.scope = %(scope)s AND p.payment_id = s.reference
"""

# Payments credited in the statement's period that it does not list.
_UNLISTED = f"""
INSERT INTO {LINES} (run_id, line_no, kind, reference, source_ref, amount, currency, payer, payee, chaincode,
                     processor, booked_at, outcome, reason, payment_id, tx_hash)
SELECT %(run)s, NULL, 'payment', p.payment_id, '', p.amount, p.currency, p.payer, p.payee, p.chaincode, '',
       p.created, 'unlisted', '', p.id, p.credit_tx_hash
FROM {PAYMENTS} AS p
WHERE p.provider = %(provider)s AND p.scope = %(scope)s AND p.state = 'credited'
  AND p.created >= %(since)s AND p.created < %(until)s
  AND NOT EXISTS (SELECT 1 FROM {STAGING} AS s WHERE s.kind = 'payment' AND s.reference = p.payment_id)
"""

_COUNTS = f"SELECT outcome, COUNT(*) FROM {LINES} WHERE run_id = %s GROUP BY outcome"


def lines_match(*, run_id: int, provider: str, scope: str, since: datetime | None, until: datetime | None) -> None:
    """Store every staged line sorted; add the unlisted payments when the period is known."""
    params = {"run": run_id, "provider": provider, "scope": scope}
    with connection.cursor() as cur:
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            # Room for the joins' hash tables (a statement's lines and the provider's payments)
            # in memory rather than in batches on disk; for this transaction only.
            cur.execute("SET LOCAL work_mem = '64MB'")
        cur.execute(_SORT, params)
        if since is not None and until is not None:
            adapt = connection.ops.adapt_datetimefield_value
            cur.execute(_UNLISTED, {**params, "since": adapt(since), "until": adapt(until)})


def outcome_counts(run_id: int) -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute(_COUNTS, [run_id])
        counts = {outcome: int(n) for outcome, n in cur.fetchall()}
    return {o.value: counts.get(o.value, 0) for o in Outcome if o != Outcome.PENDING}
