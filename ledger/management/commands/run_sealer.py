import signal

from django.core.management.base import BaseCommand

from ledger.sealing import SealerLoop


class Command(BaseCommand):
    help = "Run the block sealer (ordering service). Only one runs at a time: others wait for the lease."

    def add_arguments(self, parser):
        parser.add_argument("--holder", help="name of this sealer in the lease (default: host:pid:random)")
        parser.add_argument("--poll", type=float, default=0.05)

    def handle(self, *args, holder=None, poll=0.05, **options):
        loop = SealerLoop(holder=holder, poll=poll)
        signal.signal(signal.SIGTERM, lambda *_: loop.stop())
        signal.signal(signal.SIGINT, lambda *_: loop.stop())
        self.stdout.write(f"sealer {loop.holder} running")
        loop.run()
