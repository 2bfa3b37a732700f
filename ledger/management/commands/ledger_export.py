from django.core.management.base import BaseCommand

from ledger.export import export_ledger


class Command(BaseCommand):
    help = ("Write a portable export of the ledger (JSON Lines per range of blocks, manifest, membership, "
            "policies, orderer keys) for the standalone verifier: python -m verifier DIR.")

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="directory to write (created if missing)")
        parser.add_argument("--blocks-per-file", type=int, default=1000)

    def handle(self, *args, out: str, blocks_per_file: int, **options):
        summary = export_ledger(out, blocks_per_file=blocks_per_file)
        self.stdout.write(self.style.SUCCESS(
            f"exported {summary.blocks} blocks, {summary.transactions} transactions "
            f"({summary.pending} not yet sealed) into {out}: {len(summary.files)} files"))
