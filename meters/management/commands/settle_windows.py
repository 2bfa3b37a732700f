from django.core.management.base import BaseCommand

from meters.services import windows_settle_due


class Command(BaseCommand):
    help = "Return the unspent coins of ended funded windows to their funders (one pass; safe to rerun)."

    def handle(self, *args, **options):
        results = windows_settle_due()
        if not results:
            self.stdout.write("No ended windows to settle.")
        for result in results:
            if result.ok:
                returned = sum(r["returned"] for r in result.result["returned"])
                note = " (already settled)" if result.replayed else ""
                self.stdout.write(f"{result.result['device']}: returned {returned} Wh{note} [{result.tx_hash[:12]}]")
            else:
                self.stdout.write(f"refused: {result.reason} [{result.tx_hash[:12]}]")
