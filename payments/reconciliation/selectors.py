"""Reads for the reconciliation pages: who may see and upload which statements, the runs and
lines they may see. The utility sees every run; a bank's staff see their bank's statements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.models import Membership
from ledger.models import Organisation, OrgType

from .models import FLAGGED, ReconciliationLine, ReconciliationRun


@dataclass(frozen=True)
class ReconciliationAccess:
    utility: bool  # utility staff: every bank and the processor
    banks: list[Organisation]  # the banks whose statements this user may upload and see

    @property
    def allowed(self) -> bool:
        return self.utility or bool(self.banks)

    def may_use(self, source: str, scope: str) -> bool:
        if source == "stripe":
            return self.utility and not scope
        return source == "bank" and any(b.msp_id == scope for b in self.banks)


def reconciliation_access(user) -> ReconciliationAccess:  # type: ignore[no-untyped-def]
    if not getattr(user, "is_authenticated", False):
        return ReconciliationAccess(False, [])
    orgs = [m.organisation for m in Membership.objects.select_related("organisation").filter(user=user)]
    utility = any(o.org_type == OrgType.UTILITY for o in orgs)
    if utility:
        banks = list(Organisation.objects.filter(org_type=OrgType.BANK).order_by("msp_id"))
    else:
        banks = sorted((o for o in orgs if o.org_type == OrgType.BANK), key=lambda o: o.msp_id)
    return ReconciliationAccess(utility, banks)


def runs_visible(access: ReconciliationAccess) -> QuerySet[ReconciliationRun]:
    runs = ReconciliationRun.objects.order_by("-id")
    if access.utility:
        return runs
    return runs.filter(source="bank", scope__in=[b.msp_id for b in access.banks])


def run_flagged_lines(run: ReconciliationRun, limit: int = 500) -> list[ReconciliationLine]:
    return list(run.lines.filter(outcome__in=FLAGGED).order_by("line_no", "id")[:limit])


EXPORT_COLUMNS = ("line_no", "outcome", "reference", "source_ref", "amount", "currency", "payer", "payee",
                  "chaincode", "booked_at", "tx_hash", "reason")


def run_lines_export(run: ReconciliationRun) -> Iterator[tuple]:
    """Every line of the run, in statement order (ledger-only lines last), streamed."""
    rows = run.lines.order_by("line_no", "id").values_list(*EXPORT_COLUMNS)
    yield from rows.iterator(chunk_size=5000)
