"""``manage.py reconcile_payments --source FILE``: reconcile one statement here and now, printing
progress and the summary. The same service and steps as the Celery task and the upload page."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.reconciliation.models import FLAGGED, Outcome
from payments.reconciliation.progress import RunProgressRecorder
from payments.reconciliation.services import StatementRefused, reconciliation_run_create, reconciliation_run_execute


class Command(BaseCommand):
    help = ("Reconcile a statement against the ledger: a bank's camt.053 (.xml, needs --bank) or Stripe's "
            "itemized balance change report (.csv). Lines missing on the ledger are credited; the rest is "
            "matched or flagged. The same file again changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, type=Path, help="the statement file")
        parser.add_argument("--provider", choices=["bank", "stripe"],
                            help="bank (camt.053) or stripe (balance report); default from the file's extension")
        parser.add_argument("--bank", default="", help="the bank's organisation id (msp id), for bank statements")
        parser.add_argument("--processor", default="",
                            help="Stripe: the processor organisation for lines whose metadata names none")
        parser.add_argument("--rerun", action="store_true",
                            help="reconcile again a statement reconciled before (as a new run)")

    def handle(self, *args, **options):
        path: Path = options["source"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        provider = options["provider"] or {".xml": "bank", ".csv": "stripe"}.get(path.suffix.lower())
        if provider is None:
            raise CommandError("cannot tell the format from the extension: give --provider bank or stripe")
        try:
            with path.open("rb") as fh:
                made = reconciliation_run_create(source=provider, scope=options["bank"] if provider == "bank" else "",
                                                 stream=fh, file_name=path.name, processor=options["processor"],
                                                 rerun=options["rerun"])
        except StatementRefused as exc:
            raise CommandError(str(exc)) from None
        run = made.run
        if not made.created and not run.in_flight:
            self.stdout.write(f"Already reconciled as run {run.pk} (use --rerun to reconcile it again).")
        else:
            recorder = RunProgressRecorder(run_id=run.pk)
            last = [-1]

            def progress(current: int, total: int, label: str) -> None:
                recorder.set_progress(current, total, label)
                percent = 100 * current // max(total, 1)
                if percent // 10 != last[0] // 10 or label == "done":
                    last[0] = percent
                    self.stdout.write(f"{percent:3d}%  {label}")

            run = reconciliation_run_execute(run_id=run.pk, progress=progress)
        if run.state == "failed":
            raise CommandError(f"run {run.pk}: the statement was refused: {run.error}")
        self.stdout.write(f"Run {run.pk} ({run.source} {run.scope or ''} {run.statement_id}): {run.state}")
        for outcome in Outcome:
            if outcome != Outcome.PENDING:
                flag = "  (flagged)" if outcome in FLAGGED else ""
                self.stdout.write(f"  {outcome.value:<9} {run.counts.get(outcome.value, 0):>9,}{flag}")
