import sys

from django.core.management.base import BaseCommand

from ledger.verify import verify_chain


class Command(BaseCommand):
    help = "Replay the ledger from genesis; exit non-zero naming the first bad block and transaction."

    def add_arguments(self, parser):
        parser.add_argument("--no-signatures", action="store_true", help="skip Ed25519 signature checks")
        parser.add_argument("--all", action="store_true", help="report every problem, not only the first")

    def handle(self, *args, no_signatures=False, all=False, **options):
        def progress(report):
            if report.blocks % 100 == 0:
                self.stderr.write(f"  … {report.blocks} blocks, {report.transactions} transactions checked")

        report = verify_chain(check_signatures=not no_signatures, first_only=not all, progress=progress)
        rate = report.transactions / report.seconds if report.seconds else 0.0
        summary = (f"{report.blocks} blocks, {report.transactions} transactions ({report.unsealed} not yet sealed), "
                   f"{report.accounts} accounts in {report.seconds:.2f}s ({rate:,.0f} tx/s)"
                   f"{'' if not no_signatures else ', signatures not checked'}")
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"ledger OK: {summary}"))
            return
        for problem in report.problems:
            self.stderr.write(self.style.ERROR(f"LEDGER INVALID: {problem}"))
        self.stderr.write(summary)
        sys.exit(1)
