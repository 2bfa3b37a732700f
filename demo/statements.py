"""The demo bank's end-of-day statement, reconciled as the daily task would: it lists the
demo's two purchases (matched) and one payment of Bob's whose notification never came, which
reconciliation credits through the same claim and chaincode as a webhook."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

from payments.models import Payment
from payments.reconciliation.services import reconciliation_run_create, reconciliation_run_execute
from payments.reconciliation.testing import Line, camt053

from .energy import RETAIL, WHOLESALE
from .errors import DemoSeedError
from .organisations import BANK, UTILITY

NEVER_NOTIFIED = Line("seed-demo-retail-bob", 8_000, "hh-bob", UTILITY, chaincode="retail-seller")  # ₹80.00


def statements_seed() -> list[str]:
    """Reconcile the statement once; a rerun finds its first run and changes nothing. The
    statement's dates come from the demo's payments, so its bytes are the same every time."""
    purchases = {p.payment_id: p for p in Payment.objects.filter(provider="bank", scope=BANK,
                                                                 payment_id__in=[WHOLESALE[0], RETAIL[0]])}
    if len(purchases) != 2:
        raise DemoSeedError("the demo's purchases must be seeded before its statement")
    day = min(p.created for p in purchases.values()).replace(hour=0, minute=0, second=0, microsecond=0)
    booked = (day + timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [Line(event_id, amount, payer, payee, chaincode=chaincode, booked=booked)
             for event_id, payer, payee, chaincode, amount in (WHOLESALE, RETAIL)]
    lines.append(replace(NEVER_NOTIFIED, booked=booked))
    period = (day.strftime("%Y-%m-%dT%H:%M:%SZ"), (day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    statement = camt053(lines, statement_id=f"DEMOBANK-{day:%Y%m%d}", period=period)
    made = reconciliation_run_create(source="bank", scope=BANK, stream=io.BytesIO(statement),
                                     file_name="demobank-statement.xml")
    if not made.created:
        return []
    run = reconciliation_run_execute(run_id=made.run.pk)
    return [f"reconciled {run.statement_id or 'the demo statement'}: run {run.pk}, {run.state}"]
