"""Sorting a run's lines against ``payments_payment`` with set-based SQL: a handful of
statements per run, whatever its size, never a query per line (PostgreSQL and SQLite >= 3.33
both take ``UPDATE ... FROM``). Only the lines missing on the ledger are then applied one by
one, because each is a ledger invocation (``services``)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from ..models import Payment
from .models import Outcome, ReconciliationLine

LINES = ReconciliationLine._meta.db_table
PAYMENTS = Payment._meta.db_table

# A statement that lists one payment twice: every line after the first is flagged.
_DUPLICATES = f"""
UPDATE {LINES} AS l SET outcome = 'mismatch',
       reason = 'the statement lists this payment more than once (first on line ' || CAST(d.first AS TEXT) || ')'
FROM (SELECT reference, MIN(line_no) AS first FROM {LINES}
      WHERE run_id = %(run)s AND kind = 'payment' GROUP BY reference HAVING COUNT(*) > 1) AS d
WHERE l.run_id = %(run)s AND l.kind = 'payment' AND l.reference = d.reference AND l.line_no > d.first
"""

# Lines whose payment the ledger knows. The statement is the oracle for what settled: a payment
# only reported (pending) is missing and will be credited; one the ledger refused stays refused
# (flagged); differing facts are flagged and nothing moves. Parties and chaincode are compared
# only where the statement names them (a Stripe report run without the metadata columns).
_KNOWN = f"""
UPDATE {LINES} AS l SET payment_id = p.id, tx_hash = p.credit_tx_hash,
  outcome = CASE
    WHEN p.amount <> l.amount OR p.currency <> l.currency
      OR (l.payer <> '' AND p.payer <> l.payer) OR (l.payee <> '' AND p.payee <> l.payee)
      OR (l.chaincode <> '' AND p.chaincode <> l.chaincode) THEN 'mismatch'
    WHEN p.state = 'failed' THEN 'rejected'
    WHEN p.state = 'credited' THEN 'matched'
    ELSE 'missing' END,
  reason = CASE
    WHEN p.amount <> l.amount OR p.currency <> l.currency
      THEN 'amount: ' || CAST(p.amount AS TEXT) || ' ' || p.currency || ' on the ledger, '
           || CAST(l.amount AS TEXT) || ' ' || l.currency || ' on the statement'
    WHEN l.payer <> '' AND p.payer <> l.payer
      THEN 'payer: ' || p.payer || ' on the ledger, ' || l.payer || ' on the statement'
    WHEN l.payee <> '' AND p.payee <> l.payee
      THEN 'payee: ' || p.payee || ' on the ledger, ' || l.payee || ' on the statement'
    WHEN l.chaincode <> '' AND p.chaincode <> l.chaincode
      THEN 'chaincode: ' || p.chaincode || ' on the ledger, ' || l.chaincode || ' on the statement'
    WHEN p.state = 'failed' THEN 'the ledger refused this payment: ' || p.reason
    ELSE '' END
FROM {PAYMENTS} AS p
WHERE l.run_id = %(run)s AND l.kind = 'payment' AND l.outcome = 'pending'
  AND p.provider = %(provider)s AND p.scope = %(scope)s AND p.payment_id = l.reference
"""

# Lines no payment row claims: the notification never came.
_UNKNOWN = f"""
UPDATE {LINES} SET outcome = 'missing', reason = 'no notification reached the ledger'
WHERE run_id = %(run)s AND kind = 'payment' AND outcome = 'pending'
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
  AND NOT EXISTS (SELECT 1 FROM {LINES} AS l
                  WHERE l.run_id = %(run)s AND l.kind = 'payment' AND l.reference = p.payment_id)
"""

_COUNTS = f"SELECT outcome, COUNT(*) FROM {LINES} WHERE run_id = %s GROUP BY outcome"


def lines_match(*, run_id: int, provider: str, scope: str, since: datetime | None, until: datetime | None) -> None:
    """Sort every pending line of the run; add the unlisted payments when the period is known."""
    params = {"run": run_id, "provider": provider, "scope": scope}
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            # The lines were just COPYed in: without fresh statistics the planner takes the table
            # for nearly empty and joins it by nested loops.
            cur.execute(f"ANALYZE {LINES}")
        cur.execute(_DUPLICATES, params)
        cur.execute(_KNOWN, params)
        cur.execute(_UNKNOWN, params)
        if since is not None and until is not None:
            adapt = connection.ops.adapt_datetimefield_value
            cur.execute(_UNLISTED, {**params, "since": adapt(since), "until": adapt(until)})


def outcome_counts(run_id: int) -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute(_COUNTS, [run_id])
        counts = {outcome: int(n) for outcome, n in cur.fetchall()}
    return {o.value: counts.get(o.value, 0) for o in Outcome if o != Outcome.PENDING}
