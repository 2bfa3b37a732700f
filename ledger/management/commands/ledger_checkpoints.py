from django.core.management.base import BaseCommand

from ledger.log import backfill_checkpoints, latest_checkpoint


class Command(BaseCommand):
    help = ("Write the global log's checkpoints for sealed blocks that have none (a chain sealed before "
            "the log existed); the sealer also does this on its next block.")

    def handle(self, *args, **options):
        written = backfill_checkpoints()
        latest = latest_checkpoint()
        where = f"; latest: block {latest.number}, tree size {latest.tree_size}" if latest else ""
        self.stdout.write(self.style.SUCCESS(f"{written} checkpoints written{where}"))
